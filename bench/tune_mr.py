"""Hyperparameter search on MR: does random search beat the default config, and do two workers help?

    python bench/tune_mr.py                  # 24 random trials on fold 0, both configs on 10 folds,
                                             # then 1 vs 2 workers on a 12-point grid (about an hour)
    python bench/tune_mr.py --trials 2 --epochs 1 --eval-folds 2 --workers-epochs 1 --no-write   # smoke run

1. **Search**: ``wordconv.tune`` with random search over ``configs/spaces/textcnn.yaml`` (Kim's TextCNN,
   CNN-rand), objective = dev accuracy of MR fold 0 (the dev set carved from fold 0's training part),
   median pruning.  Resumable: the study lives in ``OUT/search/study.db``.
2. **Evaluation**: the default config and the best config trained on folds 0..K-1, test accuracy of
   each fold.  The best config "beats" the default when the mean paired gain is larger than the
   fold-to-fold std of the default's accuracies.  Caveat, reported with the table: the search chose
   on fold 0's dev set, which lies in the test part of other folds.
3. **Workers**: the same 12-point grid run by one ``wordconv tune`` process (2 torch threads) and by two
   processes sharing an SQLite study (1 thread each), from fresh storages; wall time from start to
   the last exit, and a check that no grid point ran twice.

Runs are cached in ``bench/results/tune_mr.json`` (an interrupted run continues); the table goes to
BENCHMARKS.md between ``<!-- tune:begin -->`` / ``<!-- tune:end -->``.  Needs WORDCONV_DATA (or
--data-dir) pointing at the datasets.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import machine, write_between  # bench/ is on sys.path
from rich.console import Console

import wordconv
from wordconv.pipeline import evaluate_examples, fit, load_splits, resolve_config

BEGIN, END, HEADING = "<!-- tune:begin -->", "<!-- tune:end -->", "## Hyperparameter search"
WORKER_GRID = {"model.num_filters": {"type": "choice", "values": [50, 100, 150]},
               "model.filter_widths": {"type": "choice", "values": [[3, 4, 5], [2, 3, 4]]},
               "model.dropout": {"type": "choice", "values": [0.3, 0.5]}}
GRID_SIZE = math.prod(len(d["values"]) for d in WORKER_GRID.values())  # 12


def test_accuracy(config, fold: int, args, console: Console) -> dict:
    """Train ``config`` (None: the defaults; else a config file) on one fold; its test accuracy."""
    cfg = resolve_config(config, ["training.progress=false", *args.sets], data=args.data, model="textcnn", fold=fold,
                         seed=args.seed, data_dir=args.data_dir, epochs=args.epochs)
    splits = load_splits(cfg)
    t = time.perf_counter()
    art, result = fit(cfg, splits, Console(stderr=True, quiet=True))
    metrics, _ = evaluate_examples(art, splits.test, "test")
    return {"fold": fold, "accuracy": metrics["accuracy"] * 100, "dev_accuracy": result.best_dev["accuracy"] * 100,
            "epochs": len(result.history), "seconds": round(time.perf_counter() - t, 1)}


def run_workers(n: int, args, out: Path, space_file: Path) -> dict:
    """``n`` `wordconv tune` processes on one fresh SQLite study; wall time until the last one exits."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    threads = 2 // n if n <= 2 else 1
    cmd = [sys.executable, "-m", "wordconv.cli", "tune", "--data", args.data, "--model", "textcnn",
           "--space", str(space_file), "--sampler", "grid", "--trials", str(GRID_SIZE), "--output", str(out),
           "--seed", str(args.seed), "--pruner", "none", "--quiet", "--epochs", str(args.workers_epochs),
           "--set", f"training.threads={threads}", *[x for s in args.sets for x in ("--set", s)]]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    t = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    errors = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - t
    for p, e in zip(procs, errors):
        if p.returncode != 0:
            raise SystemExit(f"a worker failed ({p.returncode}):\n{e}")
    import optuna

    study = optuna.load_study(study_name=f"{Path(args.data).stem}-textcnn", storage=f"sqlite:///{out / 'study.db'}")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    points = [json.dumps(t.params, sort_keys=True) for t in done]
    per_worker = {}
    for t in done:
        pid = t.user_attrs["wordconv_worker"]["pid"]
        per_worker[pid] = per_worker.get(pid, 0) + 1
    return {"workers": n, "threads": threads, "wall_seconds": round(wall, 1), "complete": len(done),
            "duplicates": len(points) - len(set(points)), "trials_per_worker": sorted(per_worker.values())}


def summary(accs: list[float]) -> str:
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return f"{statistics.mean(accs):.2f} ± {sd:.2f}"


def markdown(state: dict, meta: dict) -> str:
    s = state.get("search")
    lines = []
    if s:
        by_fold = {name: {r["fold"]: r["accuracy"] for r in state[name]} for name in ("default", "best")}
        default = [by_fold["default"][f] for f in sorted(by_fold["default"])]
        best = [by_fold["best"][f] for f in sorted(by_fold["best"])]
        folds = sorted(by_fold["default"])
        common = sorted(set(by_fold["default"]) & set(by_fold["best"]))
        name = meta["data"].upper() if meta["data"].isalnum() else meta["data"]
        lines += [(f"Random search, {s['trials']} trials on {name} fold 0 (objective: dev accuracy), "
                   f"{s['complete']} complete / {s['pruned']} pruned, {s['wall_seconds'] / 60:.0f} min; "
                   f"space `{meta['space']}`."), "",
                  f"| config | {name} test accuracy, folds {folds[0]}-{folds[-1]} (mean ± std) | per fold |",
                  "| --- | --- | --- |",
                  f"| default (Kim CNN-rand) | {summary(default)} | {' '.join(f'{a:.1f}' for a in default)} |",
                  (f"| best of the search (trial {s['best_trial']}, dev {s['best_value'] * 100:.2f}), folds "
                   f"{common[0]}-{common[-1]} | {summary(best)} | {' '.join(f'{a:.1f}' for a in best)} |"), ""]
        if len(common) > 1 and len(default) > 1:
            gains = [by_fold["best"][f] - by_fold["default"][f] for f in common]
            gain, sd = statistics.mean(gains), statistics.stdev(default)
            verdict = ("beats the default by more than the fold-to-fold std" if gain > sd else
                       "does NOT beat the default by more than the fold-to-fold std")
            lines += [(f"Gain of the best config on folds {common[0]}-{common[-1]}: {gain:+.2f} points (paired, std "
                       f"{statistics.stdev(gains):.2f}) vs the default's fold-to-fold std {sd:.2f} (folds "
                       f"{folds[0]}-{folds[-1]}): the searched config {verdict}. Caveat: the search chose on fold "
                       "0's dev set, which lies in other folds' test parts."), ""]
        params = ", ".join(f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={json.dumps(v)}`"
                           for k, v in s["best_params"].items())
        lines += [f"Best parameters: {params}.", ""]
    w = state.get("workers")
    if w:
        one, two = w["1"], w["2"]
        lines += ["| workers | torch threads each | grid trials | wall | trials per worker | duplicate grid points |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in (one, two):
            lines.append(f"| {r['workers']} | {r['threads']} | {r['complete']} | {r['wall_seconds']:.0f} s | "
                         f"{'/'.join(map(str, r['trials_per_worker']))} | {r['duplicates']} |")
        lines += ["", (f"Wall time of one worker / two workers: {one['wall_seconds'] / two['wall_seconds']:.2f} "
                       f"(above 1: two are faster; {GRID_SIZE}-point grid, {meta['workers_epochs']} epochs per trial, "
                       "process start-up included)."), ""]
    runs = [("search and evaluation", state.get("search_meta")), ("workers", state.get("workers_meta"))]
    for what, m in runs:
        if m:
            lines.append(f"_{what.capitalize()}: run {m['date']}, {m['machine']}; command `{m['command']}`._\n")
    if not any(m for _, m in runs):
        lines.append(f"_Run {meta['date']}, {meta['machine']}; command `{meta['command']}`._\n")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="mr", help="a CV dataset (registry name or a file without a test split)")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--space", default="configs/spaces/textcnn.yaml")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=None, help="maximum epochs per trial (default: the config's)")
    ap.add_argument("--eval-folds", type=int, default=10)
    ap.add_argument("--workers-epochs", type=int, default=2, help="epochs per trial in the workers comparison")
    ap.add_argument("--skip-workers", action="store_true")
    ap.add_argument("--workers-only", action="store_true",
                    help="re-run only the 1-vs-2-workers comparison; the search and evaluation come from --results")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override for every run")
    ap.add_argument("--out-dir", default="runs/bench-tune")
    ap.add_argument("--results", default="bench/results/tune_mr.json")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    console = Console(width=160)
    out_dir, results = Path(args.out_dir), Path(args.results)
    key = {"data": args.data, "space": args.space, "trials": args.trials, "epochs": args.epochs, "seed": args.seed,
           "sets": args.sets, "eval_folds": args.eval_folds, "workers_epochs": args.workers_epochs}
    state = json.loads(results.read_text()) if results.exists() else {}
    if args.workers_only:
        if "search" not in state:
            raise SystemExit(f"--workers-only needs a finished search in {results}; run without it first")
    elif state.get("key") != key:  # another setting: start over
        state = {"key": key, "default": [], "best": []}

    def save() -> None:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(state, indent=1))

    if not args.workers_only:
        t = time.perf_counter()
        r = wordconv.tune(args.data, "textcnn", args.space, trials=args.trials, sampler="random",
                          output=out_dir / "search", seed=args.seed, overrides=args.sets, epochs=args.epochs,
                          data_dir=args.data_dir, console=Console(stderr=True))
        if r.best_config is None:
            raise SystemExit("no trial completed")
        states = [row["state"] for row in r.table]
        state["search"] = {"trials": len(r.table), "complete": states.count("complete"), "pruned": states.count("pruned"),
                           "wall_seconds": state.get("search", {}).get("wall_seconds", 0) + time.perf_counter() - t,
                           "best_trial": r.best_trial, "best_value": r.best_value, "best_params": r.best_params}
        save()
        console.print(r.rich_table())
        for name, config in (("default", None), ("best", r.best_config)):
            done = {x["fold"] for x in state[name]}
            for fold in range(args.eval_folds):
                if fold in done:
                    continue
                state[name].append(test_accuracy(config, fold, args, console))
                save()
                x = state[name][-1]
                console.print(f"{name:8} fold {fold}: test {x['accuracy']:.2f} (dev {x['dev_accuracy']:.2f}, "
                              f"{x['epochs']} epochs, {x['seconds']:.0f}s)")
    if not args.skip_workers:
        space_file = out_dir / "workers-space.json"
        space_file.parent.mkdir(parents=True, exist_ok=True)
        space_file.write_text(json.dumps(WORKER_GRID))  # JSON is YAML
        state["workers"] = {str(n): run_workers(n, args, out_dir / f"workers-{n}", space_file) for n in (1, 2)}
        save()
        for n, w in state["workers"].items():
            console.print(f"{n} worker(s): {w['wall_seconds']:.0f}s, {w['complete']} trials "
                          f"({w['trials_per_worker']}), {w['duplicates']} duplicate grid points")
    meta = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(), "space": args.space, "workers_epochs": args.workers_epochs, "data": args.data}
    if not args.workers_only:
        state["search_meta"] = meta
    if not args.skip_workers:
        state["workers_meta"] = meta
    save()
    md = markdown(state, meta)
    console.print(md)
    if not args.no_write:
        write_between(md, BEGIN, END, HEADING)
    console.print(f"results in {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
