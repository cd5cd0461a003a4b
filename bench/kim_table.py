"""Kim (2014) CNN-rand, reproduced with wordconv's defaults on MR, TREC and SST-2.

    python bench/kim_table.py                  # full table: MR 10 folds, TREC and SST-2 x 3 seeds
    python bench/kim_table.py --quick          # MR fold 0, TREC and SST-2 with one seed

Each row is measured beside its peer in the same run: TF-IDF (1-2-grams) + logistic regression
(scikit-learn) on the same split.  Also reported: the wall time of one MR fold (train + evaluate),
throughput in tokens/s, and that throughput as a fraction of this machine's fp32 matmul peak,
measured here in the same run.  Needs WORDCONV_DATA (or --data-dir) pointing at the datasets.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from wordconv.pipeline import evaluate_examples, fit, load_splits, resolve_config

KIM = {"mr": 76.1, "trec": 91.2, "sst2": 82.7}
GOAL = {"mr": 76.1, "trec": 91.2, "sst2": 82.0}


def matmul_peak_gflops(n: int = 2048, reps: int = 10, trials: int = 5) -> float:
    """Best of ``trials`` timings of ``reps`` fp32 n x n matmuls (the best is the least disturbed)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(trials):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def textcnn_flops_per_token(cfg) -> float:
    """Useful FLOPs per real token for one training step of Kim's CNN: the convolutions dominate.

    Forward: 2*E*F*w multiply-adds per position and width; backward: twice that (input + weight grads).
    """
    e, f = cfg.embeddings.dim, cfg.model.num_filters
    return 3 * sum(2 * e * f * w for w in cfg.model.filter_widths)


def tfidf_lr(splits) -> tuple[float, float]:
    t = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x = vec.fit_transform([e.text for e in splits.train])
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(x, [e.label for e in splits.train])
    acc = (clf.predict(vec.transform([e.text for e in splits.test])) == [e.label for e in splits.test]).mean()
    return float(acc) * 100, time.perf_counter() - t


def run_one(data: str, fold: int | None, seed: int, data_dir: str | None, sets: list[str]) -> dict:
    cfg = resolve_config(None, ["training.progress=false", *sets], data=data, fold=fold, seed=seed, data_dir=data_dir)
    t0 = time.perf_counter()
    splits = load_splits(cfg)
    art, result = fit(cfg, splits, Console(stderr=True, quiet=True))
    metrics, _ = evaluate_examples(art, splits.test, "test")
    wall = time.perf_counter() - t0
    peer_acc, peer_s = tfidf_lr(splits)
    return {
        "data": data, "fold": fold, "seed": seed, "accuracy": metrics["accuracy"] * 100, "f1_macro": metrics["f1_macro"],
        "wall_seconds": wall, "train_seconds": result.train_seconds, "epochs": len(result.history),
        "best_epoch": result.best_epoch, "tokens_per_second": result.train_tokens / result.train_seconds,
        "flops_per_token": textcnn_flops_per_token(cfg) if cfg.model.type == "textcnn" else None,
        "peer_tfidf_lr_accuracy": peer_acc, "peer_seconds": peer_s,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="MR fold 0 and one seed for TREC/SST-2")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    ap.add_argument("--only", nargs="+", choices=["mr", "trec", "sst2"], default=["mr", "trec", "sst2"])
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override for every run")
    ap.add_argument("--out", default="bench/results/kim_table.json")
    args = ap.parse_args(argv)
    console = Console(width=160)
    peak = matmul_peak_gflops()
    console.print(f"fp32 matmul peak (2048^2, {torch.get_num_threads()} threads): {peak:.1f} GFLOP/s")
    seeds = args.seeds[:1] if args.quick else args.seeds
    runs = []
    plan = []
    if "mr" in args.only:
        plan += [("mr", k, seeds[0]) for k in ([0] if args.quick else range(10))]
    for name in ("trec", "sst2"):
        if name in args.only:
            plan += [(name, None, s) for s in seeds]
    for data, fold, seed in plan:
        r = run_one(data, fold, seed, args.data_dir, args.sets)
        if r["flops_per_token"]:
            r["peak_fraction"] = r["tokens_per_second"] * r["flops_per_token"] / (peak * 1e9)
        runs.append(r)
        console.print(f"{data:5} fold={fold} seed={seed}: acc {r['accuracy']:.2f} (TF-IDF+LR {r['peer_tfidf_lr_accuracy']:.2f}) "
                      f"wall {r['wall_seconds']:.1f}s, {r['epochs']} epochs (best {r['best_epoch']}), "
                      f"{r['tokens_per_second']:,.0f} tok/s, {100 * r.get('peak_fraction', 0):.1f}% of peak")
    table = Table(title="Kim (2014) CNN-rand with wordconv defaults")
    for col in ("data", "runs", "accuracy mean", "min-max", "stdev", "Kim 2014", "goal", "TF-IDF+LR", "ratio vs peer",
                "wall s / run"):
        table.add_column(col, justify="right")
    summary = {}
    for name in args.only:
        rs = [r for r in runs if r["data"] == name]
        accs = [r["accuracy"] for r in rs]
        peer = statistics.mean(r["peer_tfidf_lr_accuracy"] for r in rs)
        mean = statistics.mean(accs)
        summary[name] = {"mean": mean, "min": min(accs), "max": max(accs),
                         "stdev": statistics.stdev(accs) if len(accs) > 1 else 0.0, "peer": peer,
                         "wall_mean": statistics.mean(r["wall_seconds"] for r in rs), "goal": GOAL[name],
                         "meets_goal": mean >= GOAL[name]}
        s = summary[name]
        table.add_row(name, str(len(rs)), f"{mean:.2f}", f"{s['min']:.2f}-{s['max']:.2f}", f"{s['stdev']:.2f}",
                      f"{KIM[name]}", f"{GOAL[name]}", f"{peer:.2f}", f"{mean / peer:.3f}", f"{s['wall_mean']:.1f}")
    console.print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}",
        "matmul_peak_gflops": peak, "summary": summary, "runs": runs}, indent=2))
    console.print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
