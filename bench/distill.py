"""Distillation (issue 11): a fine-tuned MiniLM teaches a word CNN, on SST-2 and MR fold 0.

    python bench/distill.py --teacher sst2=runs/teacher-sst2 --teacher mr=runs/teacher-mr
    python bench/distill.py --datasets sst2 --rows plain distill-aug --augment 4

Rows per dataset:
  teacher          the fine-tuned MiniLM (a model directory; trained here when --teacher is not given:
                   full fine-tuning, 3 epochs, lr 1e-4 on SST-2 and 5e-5 on MR, as in bench/finetune.py)
  plain            the student architecture trained on the gold labels alone (`wordconv train`)
  distill-train    distilled on the labelled training texts only
  distill-aug      + ``--augment`` Tang-style augmented copies of each training text
  distill-aug-unl  + ``--unlabeled-max`` sentences of IMDB's 50,000 unlabelled reviews
  distill-aug-unl60k  the same with 60,000 unlabelled sentences (any ``unl<N>k``: N thousand)
  *-w2v            the same with the student starting from word2vec vectors that wordconv trained on
                   IMDB's unlabelled reviews (``--w2v``; non-static), as in bench/cnn_family.py
  ROW+TAG          a row trained with the ``--set`` overrides of ``--tag TAG`` (e.g. another schedule)

``--teacher sst2=DIR1,DIR2,DIR3`` makes the distilled rows learn from an ensemble (the mean of the
teachers' logits); the table then adds a ``teacher ensemble`` row with the ensemble's measured test
accuracy.  ``--label-only`` fills the teacher cache for each row's transfer set and trains nothing
(label with both cores once, then train students side by side).

With several ``--seeds`` a row's accuracy is the mean ± sd over them (the goal is judged on the mean);
its other columns, and its speed, are its lowest seed's.

Each row records test accuracy, student training time, the teacher's labelling time, model size; then,
in one block on an otherwise idle process, the inference speed of the teacher and of every student on
the same test set (sentences/s through ``Predictor.predict``, best of ``--repeats``) and the ratio.
Resumable: finished (row, dataset, seed) runs in ``--out`` are skipped; teacher outputs are cached.
The table goes into BENCHMARKS.md between the ``distill`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from rich.console import Console

from benchlib import machine, write_between  # bench/ is on sys.path

import wordconv
from wordconv.data.registry import load_data

ROWS = ["teacher", "plain", "distill-train", "distill-aug", "distill-aug-unl", "plain-w2v", "distill-aug-unl-w2v",
        "distill-aug-unl60k-w2v"]
ROW_PATTERN = re.compile(r"(teacher|plain|distill-train|distill-aug|distill-aug-unl(\d+k)?)(-w2v)?")
DATASETS = ["sst2", "mr"]
GOAL = {"sst2": 87.5, "mr": 81.5}
TEACHER_SETS = {"sst2": ["model.strategy=full", "training.lr=1e-4"], "mr": ["model.strategy=full"]}
IMDB_UNSUP = ("imdb/aclImdb_v1_unsup.tar.gz", "aclImdb/train/unsup")


def row_kind(text: str) -> str:
    """argparse type for --rows: a row of ROWS, or any ``distill-aug-unl<N>k[-w2v]``."""
    if not ROW_PATTERN.fullmatch(text) or text == "teacher-w2v":
        raise argparse.ArgumentTypeError(f"unknown row {text!r}: one of {', '.join(ROWS)} or "
                                         "distill-aug-unl<N>k[-w2v] (N thousand unlabelled sentences)")
    return text


def row_order(rows) -> list[str]:
    """ROWS first, in their order, then any other rows (more unlabelled sentences last)."""
    def thousands(row: str) -> int:
        m = re.search(r"(\d+)k", row)
        return int(m.group(1)) if m else 0

    rows = set(rows)
    return [r for r in ROWS if r in rows] + sorted(rows - set(ROWS), key=lambda r: (thousands(r), r))


def model_size(path: Path) -> dict:
    from safetensors.torch import load_file

    params = sum(t.numel() for t in load_file(str(path / "model.safetensors")).values())
    return {"parameters": params, "bytes": (path / "model.safetensors").stat().st_size}


def teacher_dir(data: str, given: dict, root: Path, seed: int, data_dir: str | None) -> Path | list[Path]:
    if data in given:
        paths = [Path(p) for p in given[data].split(",")]
        return paths[0] if len(paths) == 1 else paths
    path = root / f"teacher-{data}"
    if not (path / "model.safetensors").is_file():
        wordconv.train(data, "pretrained", path, overrides=["training.progress=false", *TEACHER_SETS[data]],
                       fold=0 if data == "mr" else None, seed=seed, data_dir=data_dir, resume=True, overwrite=True)
    return path


def run_row(row: str, data: str, seed: int, args, teacher: Path | list[Path], root: Path) -> dict | None:
    name = f"{row}+{args.tag}" if args.tag and row != "teacher" else row  # a recipe's rows: their own names
    out = root / f"{data}-{name}-s{seed}"
    fold = 0 if data == "mr" else None
    sets = ["training.progress=false", *args.sets]
    row_kind, unlabeled_max = row.removesuffix("-w2v"), args.unlabeled_max
    if row.endswith("-w2v"):
        sets += ["embeddings.mode=non-static", f"embeddings.vectors={args.w2v}"]
    if (m := re.fullmatch(r"distill-aug-unl(\d+)k", row_kind)):
        row_kind, unlabeled_max = "distill-aug-unl", int(m.group(1)) * 1000
    if args.label_only and not row_kind.startswith("distill"):
        return None  # nothing to label
    t0 = time.perf_counter()
    if row_kind == "teacher":
        out = teacher[0] if isinstance(teacher, list) else teacher
        pred = wordconv.load(out)
    elif row_kind == "plain":
        pred = wordconv.train(data, args.student, out, overrides=sets, fold=fold, seed=seed,
                              data_dir=args.data_dir, overwrite=True)
    else:
        extra = {"distill-train": {}, "distill-aug": {"augment": args.augment},
                 "distill-aug-unl": {"augment": args.augment, "unlabeled": IMDB_UNSUP[0]}}[row_kind]
        if row_kind == "distill-aug-unl":
            sets += [f"distill.unlabeled_subdir={IMDB_UNSUP[1]}", f"distill.unlabeled_max={unlabeled_max}"]
        pred = wordconv.distill(teacher, args.student, data, out, overrides=sets, fold=fold, seed=seed,
                                data_dir=args.data_dir, overwrite=True, label_only=args.label_only, **extra)
        if args.label_only:
            print(f"{name} {data} seed={seed}: teacher outputs {pred}", file=sys.stderr)
            return None
    meta = pred.meta
    d = meta.get("distillation", {})
    return {"row": name, "data": data, "seed": seed, "dir": str(out),
            "accuracy": pred.metrics["accuracy"] * 100, "f1_macro": pred.metrics["f1_macro"],
            "train_seconds": meta["training"]["seconds"], "epochs": meta["training"]["epochs_run"],
            "best_epoch": meta["training"]["best_epoch"], "wall_seconds": time.perf_counter() - t0,
            "transfer": d.get("transfer"), "teacher_outputs": d.get("teacher_outputs"),
            "size": model_size(out), "sets": sets,
            **({"ensemble": {"teacher_test": d["teacher_test"], "teachers": d["teachers"]}} if "teachers" in d else {})}


def rate(pred, texts: list[str], repeats: int) -> float:
    """Sentences/s of ``pred.predict`` over ``texts``: one warm-up, then the best of ``repeats``."""
    pred.predict(texts[:64])
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        pred.predict(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best


def speed(runs: list[dict], data: str, data_dir: str | None, repeats: int, onnx: bool = True) -> dict[str, float]:
    """Sentences/s of every model of ``data`` on its test set, measured back to back in this process."""
    splits = load_data(data, data_dir=data_dir, fold=0 if data == "mr" else None)
    texts = [ex.text for ex in splits.test]
    mine = [r for r in runs if r["data"] == data]
    gone = [r for r in mine if not (Path(r["dir"]) / "model.safetensors").is_file()]
    if gone:  # e.g. a results file from another machine: those rows keep their accuracy, lose their speed
        print(f"{data}: no model directory for {', '.join(r['row'] for r in gone)}; their speed is not measured",
              file=sys.stderr)
    mine = [r for r in mine if r not in gone]
    first = {}  # one model per row: its lowest seed's
    for r in sorted(mine, key=lambda r: r["seed"]):
        first.setdefault(r["row"], r)
    out = {row: rate(wordconv.load(r["dir"]), texts, repeats) for row, r in first.items()}
    distilled = [r for r in first.values() if r["row"].startswith("distill")]
    if onnx and distilled:  # the best student as it would be shipped: exported to ONNX (wordconv export)
        from wordconv.export import OnnxPredictor, export_onnx

        means = row_means(mine)
        best_run = first[max((r["row"] for r in distilled), key=means.get)]
        export_onnx(best_run["dir"])
        out[f"{best_run['row']} (ONNX)"] = rate(OnnxPredictor.load(best_run["dir"]), texts, repeats)
        teacher = next((r for r in mine if r["row"] == "teacher"), None)
        if teacher is not None:  # the teacher exported the same way, for a like-for-like ratio
            where = Path(best_run["dir"]).parent / f"{data}-teacher-onnx"
            if not (where / "model.onnx").is_file():
                export_onnx(teacher["dir"], where)
            out["teacher (ONNX)"] = rate(OnnxPredictor.load(where), texts, repeats)
    return out


def row_means(runs: list[dict]) -> dict[str, float]:
    """Each row's test accuracy, the mean over its seeds."""
    groups: dict[str, list[float]] = {}
    for r in runs:
        groups.setdefault(r["row"], []).append(r["accuracy"])
    return {row: statistics.fmean(accs) for row, accs in groups.items()}


def accuracy_cell(accs: list[float]) -> str:
    if len(accs) == 1:
        return f"{accs[0]:.2f}"
    return f"{statistics.fmean(accs):.2f} ± {statistics.stdev(accs):.2f} (n={len(accs)})"


def markdown(runs: list[dict], speeds: dict, meta: dict) -> str:
    lines = ["| data | model | test acc | train s | teacher labelling s | transfer texts (labelled + aug + unl) "
             "| inference sent/s | vs teacher | parameters | size MB |", "|" + " --- |" * 10]
    for data in DATASETS:
        rs: dict[str, dict] = {}  # each row's lowest seed, for every column but the accuracy
        accs: dict[str, list[float]] = {}
        for r in sorted((r for r in runs if r["data"] == data), key=lambda r: r["seed"]):
            rs.setdefault(r["row"], r)
            accs.setdefault(r["row"], []).append(r["accuracy"])
        if not rs:
            continue
        sp = speeds.get(data, {})
        ensembles = {}  # the ensembles the rows learnt from, with their measured test accuracy
        for r in rs.values():
            if r.get("ensemble"):
                ensembles.setdefault(tuple(t["teacher_id"] for t in r["ensemble"]["teachers"]), r["ensemble"])
        ensemble_lines = []
        for e in ensembles.values():
            each = ", ".join(f"{t['teacher_test']['accuracy'] * 100:.2f}" for t in e["teachers"])
            ensemble_lines.append(f"| {data} | teacher ensemble ({len(e['teachers'])} fine-tuned MiniLMs; mean logits) "
                                  f"| {e['teacher_test']['accuracy'] * 100:.2f} (its teachers: {each}) "
                                  "| – | – | – | – | – | – | – |")
        if "teacher" not in rs:
            lines += ensemble_lines
        for row in row_order(rs):
            r = rs[row]
            t = r.get("transfer") or {}
            to = r.get("teacher_outputs") or {}
            transfer = (f"{sum(t.values()):,} ({t['labelled']:,} + {t['augmented']:,} + {t['unlabeled']:,})"
                        if t else "–")
            label_s = (f"{to['teacher_seconds']:.0f}" if to.get("computed") else "cached") if to else "–"
            s = sp.get(row)
            ratio = f"{s / sp['teacher']:.0f}x" if s and sp.get("teacher") and row != "teacher" else "–"
            train_s = f"{r['train_seconds']:.0f}"  # the teacher's: its fine-tuning
            lines.append(f"| {data} | {row} | {accuracy_cell(accs[row])} | {train_s} | {label_s} | {transfer} | "
                         f"{f'{s:,.0f}' if s else '–'} | {ratio} | {r['size']['parameters']:,} | "
                         f"{r['size']['bytes'] / 1e6:.1f} |")
            if row == "teacher":
                lines += ensemble_lines  # right below the single teacher
    for data in DATASETS:
        for name, value in speeds.get(data, {}).items():
            if name.endswith("(ONNX)") and speeds[data].get("teacher"):
                vs = f"{value / speeds[data]['teacher']:.0f}x"
                if name != "teacher (ONNX)" and speeds[data].get("teacher (ONNX)"):
                    vs += f" ({value / speeds[data]['teacher (ONNX)']:.0f}x the ONNX teacher)"
                lines.append(f"| {data} | {name} | (same model) | – | – | – | {value:,.0f} | {vs} | – | – |")
    goals = []
    for data, goal in GOAL.items():
        means = {row: m for row, m in row_means([r for r in runs if r["data"] == data]).items()
                 if row.startswith("distill")}  # a row run with several seeds counts by its mean
        if means:
            best_row = max(means, key=means.get)
            best = means[best_row]
            goals.append(f"{data}: best distilled {best:.2f} ({best_row}) vs goal {goal} "
                         f"({'met' if best >= goal else 'NOT met'})")
            sp = speeds.get(data, {})
            if sp.get(best_row) and sp.get("teacher"):
                ratio = sp[best_row] / sp["teacher"]
                goals.append(f"{data}: its inference {ratio:.0f}x the teacher's (PyTorch, goal 50x: "
                             f"{'met' if ratio >= 50 else 'NOT met'})")
            onnx = next((v for k, v in sp.items() if k.endswith("(ONNX)") and k != "teacher (ONNX)"), None)
            if onnx and sp.get("teacher (ONNX)"):
                ratio = onnx / sp["teacher (ONNX)"]
                goals.append(f"{data}: exported to ONNX, {ratio:.0f}x the ONNX teacher (goal 50x: "
                             f"{'met' if ratio >= 50 else 'NOT met'})")
    return ("\n".join(lines) + "\n\n" + "; ".join(goals) + "\n\n"
            + f"_Table written {meta['date']}, {meta['machine']}; last command `{meta['command']}`; seeds "
              f"{meta['seeds']}; inference speed measured back to back in that run (best of {meta['repeats']}). "
              "Teacher labelling seconds are those of the run that filled the cache; `cached` means the "
              "texts' teacher outputs were already there._\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", choices=DATASETS, default=DATASETS)
    ap.add_argument("--rows", nargs="+", type=row_kind, default=ROWS)
    ap.add_argument("--teacher", action="append", default=[], help="DATA=MODEL_DIR of a fine-tuned teacher")
    ap.add_argument("--student", default="textcnn")
    ap.add_argument("--augment", type=int, default=4)
    ap.add_argument("--unlabeled-max", type=int, default=20000)
    ap.add_argument("--w2v", default=None, help="word vectors for the *-w2v rows (default: bench/cnn_family.py's "
                                                "IMDB skip-gram vectors, trained once and cached)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[13])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--set", dest="sets", action="append", default=[], help="student config override")
    ap.add_argument("--tag", default=None,
                    help="a name for the --set recipe: its rows are recorded as ROW+TAG, beside the plain rows")
    ap.add_argument("--root", default="runs/bench-distill")
    ap.add_argument("--out", default="bench/results/distill.json")
    ap.add_argument("--redo", nargs="*", default=[], help="ROW:DATA pairs to run again")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    ap.add_argument("--no-speed", action="store_true",
                    help="train only; measure speed later, with every row done, on an idle machine")
    ap.add_argument("--table-only", action="store_true", help="rewrite the table from --out, run nothing")
    ap.add_argument("--label-only", action="store_true",
                    help="fill the teacher cache for the distilled rows' transfer sets; train nothing")
    args = ap.parse_args(argv)
    if args.table_only:
        state = json.loads(Path(args.out).read_text())
        md = markdown(state["runs"], state["speeds"], state)
        print(md)
        if not args.no_write:
            write_between(md, "<!-- distill:begin -->", "<!-- distill:end -->",
                          "## Distillation: a fine-tuned MiniLM teaches a word CNN")
        return 0
    console = Console(width=170)
    given = dict(t.split("=", 1) for t in args.teacher)
    root = Path(args.root)
    out = Path(args.out)
    state = json.loads(out.read_text()) if out.exists() else {"runs": []}
    redo = {tuple(x.split(":")) for x in args.redo}
    runs: list[dict] = [r for r in state["runs"] if (r["row"], r["data"]) not in redo]
    if args.w2v is None and any(r.endswith("-w2v") for r in args.rows):
        from cnn_family import w2v_vectors

        args.w2v = str(w2v_vectors(args.data_dir, console))
    done = {(r["row"], r["data"], r["seed"]) for r in runs}
    for data in args.datasets:
        for seed in args.seeds:
            teacher = teacher_dir(data, given, root, seed, args.data_dir)
            for row in args.rows:
                name = f"{row}+{args.tag}" if args.tag and row != "teacher" else row
                if (name, data, seed) in done:
                    continue
                r = run_row(row, data, seed, args, teacher, root)
                if r is None:  # --label-only
                    continue
                runs = [x for x in runs if (x["row"], x["data"], x["seed"]) != (name, data, seed)] + [r]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps({**state, "runs": runs}, indent=1))  # after every run: resumable
                console.print(f"{row:16} {data:5} seed={seed}: acc {r['accuracy']:.2f}  train {r['train_seconds']:.0f}s"
                              f"  wall {r['wall_seconds']:.0f}s  transfer {r['transfer']}  teacher {r['teacher_outputs']}")
    if args.label_only:
        return 0
    speeds = dict(state.get("speeds", {}))
    for data in [] if args.no_speed else args.datasets:
        speeds[data] = speed(runs, data, args.data_dir, args.repeats)
        console.print(f"{data} inference sentences/s: " + ", ".join(f"{k} {v:,.0f}" for k, v in speeds[data].items()))
    meta = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(), "seeds": args.seeds, "repeats": args.repeats}
    out.write_text(json.dumps({**meta, "runs": runs, "speeds": speeds}, indent=1))
    md = markdown(runs, speeds, meta)
    console.print(md)
    if not args.no_write:
        write_between(md, "<!-- distill:begin -->", "<!-- distill:end -->",
                      "## Distillation: a fine-tuned MiniLM teaches a word CNN")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(min(2, torch.get_num_threads()))
    raise SystemExit(main())
