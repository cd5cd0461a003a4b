"""Training memory (peak RSS) on IMDB, and how time and memory grow with the data (1x, 2x, 4x the corpus).

    python bench/memory.py                        # IMDB: the full run + 1x/2x/4x scaling, 1 epoch each (~15 min)
    python bench/memory.py --epochs 2 --threads 2
    python bench/memory.py --quick --no-write     # smoke run on MR (full fold-0 epoch; 500 / 1,000 / 2,000 sentences)
    python bench/memory.py --skip-full            # the scaling runs only (--skip-scaling: the full run only)
    python bench/memory.py --skip-scaling --results F; python bench/memory.py --full-from F --base 5000

Every training runs in its own child process (``python bench/memory.py --child SPEC``), so each peak is that
process's alone: ``ru_maxrss`` from ``os.wait4`` of the child (the kernel's high-water mark of its resident set,
everything: Python objects, torch tensors, the allocator's slack), cross-checked by the child's own
``VmHWM`` from /proc/self/status.  The child also reads VmHWM/VmRSS at three points: data read, training
about to start (tokenized, vocabulary and model built), and the end.

1. **Full run** (goal: peak RSS <= 2 GiB): ``wordconv.train(data="imdb", model="textcnn", output=...)``, the
   user's path end to end: read the archive (25,000 train + 25,000 test reviews), tokenize, vocabulary,
   default Kim TextCNN (300-d random embeddings over the whole training vocabulary), ``--epochs`` epochs
   (no early stop), test evaluation, model directory written.  ``--quick``: MR fold 0 instead.

2. **Scaling**: the same training (``wordconv.pipeline.fit``, no test evaluation) on k x N training texts for
   k in ``--scales`` (1, 2, 4), N = IMDB's training split as wordconv makes it (22,500 reviews after the dev
   carve-out; 4x = 90,000).  The texts are *distinct*: the 22,500 training reviews, then the 25,000 test
   reviews, then the 50,000 unlabelled reviews of ``aclImdb_v1_unsup.tar.gz`` with seeded random labels
   (labels do not change cost) -- 97,500 reviews in all (distinct files; 493 of the unlabelled texts repeat
   another in the source), so the vocabulary grows with the data as it would in real use (Heaps' law: less
   than linearly).  Only if the pool runs short (``--quick`` on MR) are
   texts repeated, and the output says so.  Each set is written once as a label-first file under
   ``--work-dir`` with the same dev file (IMDB's 2,500 dev reviews); the child reads it, tokenizes, builds
   the vocabulary and model and trains.  Reported per k: texts, vocabulary, read / tokenize+vocab / epoch
   seconds, peak RSS; ratios to the 1x run measured in the same invocation (ideal: 2.0 and 4.0 for time),
   and a least-squares line time = a + b texts, RSS = c + d texts.

Results: ``--results`` (bench/results/memory.json, the last run; compare.py reads its ``metrics``) and a
table between ``<!-- memory:begin -->`` / ``<!-- memory:end -->`` in BENCHMARKS.md, unless ``--no-write``
(``--quick`` and ``--skip-scaling`` never write the table; with ``--no-write`` or ``--quick`` the JSON is
written only to a ``--results`` path given explicitly).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import date
from pathlib import Path

BEGIN, END, HEADING = "<!-- memory:begin -->", "<!-- memory:end -->", "## Training memory and data-size scaling"
GOAL_BYTES = 2 * 1024 ** 3  # peak RSS of a default TextCNN trained on IMDB
MARK = "@@memory-result@@ "


# ------------------------------------------------------------------------------------------------ child

def proc_status() -> dict:
    """VmHWM and VmRSS of this process, in bytes (Linux)."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


class Probe:
    """Trainer callback: the memory when training is about to start (data tokenized, model built)."""

    def __init__(self, marks: dict):
        self.marks = marks

    def on_epoch_start(self, epoch: int) -> None:
        if epoch == 1 and "training starts" not in self.marks:
            self.marks["training starts"] = proc_status()


def child(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    import wordconv.pipeline as pl

    marks: dict = {"start": proc_status()}
    overrides = [f"training.epochs={spec['epochs']}", "training.patience=null", f"training.threads={spec['threads']}"]
    t0 = time.perf_counter()
    out: dict = {"kind": spec["kind"]}
    if spec["kind"] == "full":
        # wordconv.train itself (read, tokenize, train, test, model directory with plots); its load_splits and
        # fit are wrapped here, in this process only, to time the read and probe the memory
        load_splits, fit = pl.load_splits, pl.fit
        seen: dict = {}

        def timed_load(cfg):
            splits = load_splits(cfg)
            out["read_seconds"] = time.perf_counter() - t0
            marks["data read"] = proc_status()
            seen["splits"] = splits
            return splits

        def probed_fit(*a, **k):
            k["callbacks"] = [*(k.get("callbacks") or []), Probe(marks)]
            art, result = fit(*a, **k)
            seen["art"], seen["result"], seen["t_fit"] = art, result, time.perf_counter()
            return art, result

        pl.load_splits, pl.fit = timed_load, probed_fit
        try:
            predictor = pl.train(data=spec["data"], model="textcnn", output=spec["output"], overrides=overrides,
                                 fold=0 if spec["data"] == "mr" else None, data_dir=spec["data_dir"],
                                 overwrite=True, progress=False)
        finally:
            pl.load_splits, pl.fit = load_splits, fit
        art, result, splits = seen["art"], seen["result"], seen["splits"]
        out["test_seconds"] = time.perf_counter() - seen["t_fit"]  # test evaluation + writing the model directory
        out["test_accuracy"] = predictor.metrics["accuracy"]
        out["texts"] = {"train": len(splits.train), "dev": len(splits.dev), "test": len(splits.test)}
    else:
        cfg = pl.resolve_config(None, overrides + [f"data.dev_path={spec['dev']}", f"data.test_path={spec['test']}",
                                                   "data.fold=null"],
                                data=spec["train"], model="textcnn", data_dir=spec["data_dir"], progress=False)
        splits = pl.load_splits(cfg)
        out["read_seconds"] = time.perf_counter() - t0
        marks["data read"] = proc_status()
        art, result = pl.fit(cfg, splits, callbacks=[Probe(marks)])
        out["texts"] = {"train": len(splits.train), "dev": len(splits.dev)}
    marks["end"] = proc_status()
    out.update({
        "wall_seconds": time.perf_counter() - t0,
        "preprocess_seconds": art.meta["training"]["preprocess_seconds"],  # tokenize + vocab + encode
        "epoch_seconds": [h["epoch_seconds"] for h in result.history],
        "eval_seconds": [h["eval_seconds"] for h in result.history],
        "vocab": len(art.vocab), "params": sum(p.numel() for p in art.model.parameters()),
        "train_tokens": result.train_tokens // max(len(result.history), 1), "marks": marks,
        "vmhwm": marks["end"].get("VmHWM"),
    })
    return out


def run_child(spec: dict, console) -> dict:
    """Run one child; its peak RSS from the kernel's accounting of that child alone (os.wait4)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {spec['kind']} failed with exit code {proc.returncode}")
    line = next(x for x in stdout.splitlines() if x.startswith(MARK))
    result = json.loads(line[len(MARK):])
    result["peak_rss"] = usage.ru_maxrss * 1024  # KiB on Linux
    return result


# ------------------------------------------------------------------------------------------------ data

def unsup_texts(data_dir: Path) -> list[str]:
    """The 50,000 unlabelled IMDB reviews (aclImdb/train/unsup/*.txt in the unsup archive)."""
    texts = []
    with tarfile.open(data_dir / "imdb" / "aclImdb_v1_unsup.tar.gz", "r:gz") as tar:
        for member in tar:
            if member.isfile() and "/unsup/" in member.name and member.name.endswith(".txt"):
                texts.append(tar.extractfile(member).read().decode("utf-8", errors="replace"))
    return texts


def write_labelfirst(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for label, text in rows:
            f.write(f"{label} {' '.join(text.split())}\n")  # one line per text: newlines become spaces


def scaling_files(args, work: Path, console) -> tuple[list[dict], dict]:
    """Label-first train files of k x N distinct texts (see the module docstring) and a shared dev file."""
    from wordconv.pipeline import load_splits, resolve_config

    cfg = resolve_config(None, [], data=args.data, fold=0 if args.data == "mr" else None, data_dir=args.data_dir)
    splits = load_splits(cfg)
    rng = random.Random(args.seed)
    pool = [(ex.label, ex.text) for ex in splits.train]
    rng.shuffle(pool)  # the files list one class after the other
    base = args.base or len(pool)
    test = [(ex.label, ex.text) for ex in splits.test]
    rng.shuffle(test)
    pool += test
    if args.data == "imdb" and base * max(args.scales) > len(pool):
        labels = sorted({lab for lab, _ in pool})
        extra = unsup_texts(Path(args.data_dir))
        pool += [(rng.choice(labels), t) for t in extra]
        console.print(f"pool: {len(splits.train):,} train + {len(splits.test):,} test + {len(extra):,} unlabelled "
                      f"reviews (random labels) = {len(pool):,} distinct texts")
    note = {"base": base, "pool": len(pool), "replicated": base * max(args.scales) > len(pool)}
    if note["replicated"]:
        console.print(f"[yellow]note:[/] {base * max(args.scales):,} texts wanted, {len(pool):,} distinct: "
                      "texts are repeated to fill the larger sets")
    dev_file = work / "dev.txt"
    write_labelfirst(dev_file, [(ex.label, ex.text) for ex in splits.dev])
    test_file = work / "test.txt"  # not evaluated; given so that the file is not split into CV folds
    write_labelfirst(test_file, test[:50])
    specs = []
    for k in args.scales:
        n = base * k
        rows = [pool[i % len(pool)] for i in range(n)]
        path = work / f"train-{k}x.txt"
        write_labelfirst(path, rows)
        specs.append({"kind": "scale", "scale": k, "train": str(path), "dev": str(dev_file), "test": str(test_file),
                      "data_dir": args.data_dir, "epochs": args.epochs, "threads": args.threads})
    return specs, note


# ------------------------------------------------------------------------------------------------ report

def line_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b x; returns (a, b, r^2)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    ss = sum((y - my) ** 2 for y in ys)
    r2 = 1 - sum((y - a - b * x) ** 2 for x, y in zip(xs, ys)) / ss if ss else 1.0
    return a, b, r2


def gib(b: float) -> str:
    return f"{b / 1024 ** 3:.2f} GiB"


def mib(b: float) -> str:
    return f"{b / 1024 ** 2:,.0f} MiB"


def table(r: dict) -> str:
    md = ""
    f = r.get("full")
    if f:
        m = f["marks"]
        md += (f"Full run ({r['full_data']}, `wordconv.train` path, {len(f['epoch_seconds'])} epoch(s), "
               f"{f.get('threads', r['threads'])} threads{', ' + f['date'] if f.get('date') else ''}): "
               f"**peak RSS {gib(f['peak_rss'])}** (goal <= {gib(GOAL_BYTES)}: "
               f"{'met' if f['peak_rss'] <= GOAL_BYTES else 'NOT met'}, {f['peak_rss'] / GOAL_BYTES * 100:.0f} % of "
               f"it); RSS after reading {mib(m['data read']['VmRSS'])}, at training start "
               f"{mib(m['training starts']['VmRSS'])}; vocabulary {f['vocab']:,}, {f['params']:,} parameters; "
               f"read {f['read_seconds']:.1f} s, tokenize+vocab {f['preprocess_seconds']:.1f} s, epochs "
               f"{', '.join(f'{x:.1f}' for x in f['epoch_seconds'])} s, test {f['test_seconds']:.1f} s "
               f"(accuracy {f['test_accuracy'] * 100:.2f}).\n\n")
    rows = r["scaling"]
    if not rows:
        return md
    md += ("| data | train texts | vocabulary | read s | tokenize+vocab s | epoch s | epoch / 1x | peak RSS | "
           "RSS / 1x |\n|---|---|---|---|---|---|---|---|---|\n")
    for x in rows:
        md += (f"| {x['scale']}x | {x['texts']['train']:,} | {x['vocab']:,} | {x['read_seconds']:.1f} | "
               f"{x['preprocess_seconds']:.1f} | {x['epoch_seconds'][0]:.1f} | {x['epoch_ratio']:.2f} | "
               f"{mib(x['peak_rss'])} | {x['rss_ratio']:.2f} |\n")
    fit_ = r["fits"]
    md += (f"\nLeast squares over the runs: epoch seconds = {fit_['epoch']['a']:.1f} + {fit_['epoch']['b'] * 1000:.2f} "
           f"per 1,000 texts (r^2 {fit_['epoch']['r2']:.3f}); peak RSS = {mib(fit_['rss']['a'])} + "
           f"{mib(fit_['rss']['b'] * 1000)} per 1,000 texts (r^2 {fit_['rss']['r2']:.3f}). "
           f"{'Texts repeated to fill the sets' if r['pool']['replicated'] else 'All texts distinct'} "
           f"({r['pool']['pool']:,} in the pool).\n\n")
    md += f"Command: `{r.get('command', 'python bench/memory.py')}`, {r['date']}, {r['machine']}.\n"
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default="imdb", help="corpus of the scaling runs (imdb, or mr)")
    ap.add_argument("--full-data", default=None, help="dataset of the full run (default: --data)")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--scales", default="1,2,4")
    ap.add_argument("--base", type=int, default=None, help="texts in the 1x set (default: the whole train split)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch threads in the children (default: all cores)")
    ap.add_argument("--skip-full", action="store_true", help="the scaling runs only")
    ap.add_argument("--skip-scaling", action="store_true", help="the full run only")
    ap.add_argument("--full-from", default=None, help="results JSON of an earlier run whose full run to report "
                                                        "instead of running it again (e.g. one of --skip-scaling)")
    ap.add_argument("--quick", action="store_true", help="MR, 1,000-sentence base, smoke test (writes nothing)")
    ap.add_argument("--work-dir", default="runs/bench-memory")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--results", default=None,
                    help="results JSON (default bench/results/memory.json; with --no-write only when given)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(MARK + json.dumps(child(json.loads(args.child))), flush=True)
        return
    from rich.console import Console

    from benchlib import machine, write_between  # bench/ is on sys.path

    console = Console(stderr=True)
    if args.quick:
        args.data, args.base, args.full_data = "mr", args.base or 500, args.full_data or "mr"
    args.full_data = args.full_data or args.data
    args.scales = [int(x) for x in args.scales.split(",")]
    args.threads = args.threads or os.cpu_count() or 1
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()

    full = None
    if args.full_from:
        earlier = json.loads(Path(args.full_from).read_text())
        full = {**earlier["full"], "threads": earlier["threads"], "date": earlier["date"]}
    elif not args.skip_full:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            full = run_child({"kind": "full", "data": args.full_data, "data_dir": args.data_dir, "epochs": args.epochs,
                              "threads": args.threads, "output": str(Path(tmp) / "model")}, console)
        console.print(f"full run ({args.full_data}): peak RSS {gib(full['peak_rss'])} (child VmHWM "
                      f"{gib(full['vmhwm'] or 0)}), goal <= {gib(GOAL_BYTES)}: "
                      f"[bold]{full['peak_rss'] / GOAL_BYTES * 100:.0f} %[/] of it; marks "
                      + ", ".join(f"{k} {mib(v.get('VmRSS', 0))}" for k, v in full["marks"].items())
                      + f"; epochs {full['epoch_seconds']} s, test accuracy {full['test_accuracy'] * 100:.2f}")

    if args.skip_scaling:
        if full:
            r = {"full": full, "full_data": args.full_data, "epochs": args.epochs, "threads": args.threads,
                 "scaling": [], "date": str(date.today()), "machine": machine()}
            print(table(r))
            if args.results:  # for a later --full-from
                Path(args.results).parent.mkdir(parents=True, exist_ok=True)
                Path(args.results).write_text(json.dumps(r, indent=1) + "\n")
        return
    specs, pool = scaling_files(args, work, console)
    rows = []
    for spec in specs:
        x = run_child(spec, console)
        x["scale"] = spec["scale"]
        rows.append(x)
        console.print(f"{spec['scale']}x: {x['texts']['train']:,} texts, vocab {x['vocab']:,}, read "
                      f"{x['read_seconds']:.1f} s, tokenize+vocab {x['preprocess_seconds']:.1f} s, epoch "
                      f"{x['epoch_seconds'][0]:.1f} s, peak RSS {mib(x['peak_rss'])}")
    one = next((x for x in rows if x["scale"] == 1), rows[0])
    for x in rows:
        x["epoch_ratio"] = x["epoch_seconds"][0] / one["epoch_seconds"][0]
        x["prep_ratio"] = x["preprocess_seconds"] / one["preprocess_seconds"]
        x["rss_ratio"] = x["peak_rss"] / one["peak_rss"]
        x["rss_growth"] = x["peak_rss"] - one["peak_rss"]
    n = [x["texts"]["train"] for x in rows]
    fits = {}
    for key, ys in (("epoch", [x["epoch_seconds"][0] for x in rows]), ("prep", [x["preprocess_seconds"] for x in rows]),
                    ("rss", [x["peak_rss"] for x in rows])):
        a, b, r2 = line_fit(n, ys)
        fits[key] = {"a": a, "b": b, "r2": r2}
    for x in rows:
        if x is not one:
            console.print(f"{x['scale']}x / 1x: epoch time {x['epoch_ratio']:.2f} (ideal {x['scale']:.1f}), "
                          f"tokenize+vocab {x['prep_ratio']:.2f}, peak RSS {x['rss_ratio']:.2f} "
                          f"(+{mib(x['rss_growth'])}, vocabulary {x['vocab'] / one['vocab']:.2f}x)")

    r = {"full": full, "full_data": args.full_data, "data": args.data, "scaling": rows, "fits": fits, "pool": pool,
         "epochs": args.epochs, "threads": args.threads, "quick": args.quick, "seconds": time.perf_counter() - t_all,
         "date": str(date.today()), "machine": machine(), "command": " ".join(["python", *sys.argv])}
    r["metrics"] = {"scale_1x_epoch_seconds": one["epoch_seconds"][0], "scale_1x_peak_rss_mib": one["peak_rss"] / 2**20,
                    **{f"scale_{x['scale']}x_epoch_ratio": x["epoch_ratio"] for x in rows if x is not one},
                    **{f"scale_{x['scale']}x_rss_ratio": x["rss_ratio"] for x in rows if x is not one}}
    if full:
        r["metrics"]["full_peak_rss_mib"] = full["peak_rss"] / 2**20
    print(table(r))
    if args.results or not (args.quick or args.no_write):  # an explicit --results is written even by a smoke run
        path = Path(args.results or "bench/results/memory.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r, indent=1) + "\n")
    if not (args.quick or args.no_write):
        write_between(table(r), BEGIN, END, HEADING)


if __name__ == "__main__":
    main()
