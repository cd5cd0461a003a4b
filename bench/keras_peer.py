"""Training the tutorial's stacked Conv1D model: wordconv (``model.type=stacked``) vs Keras 3 (torch backend).

    WORDCONV_DATA=/work/shared/data python bench/keras_peer.py                  # MR fold 0, 5 epochs
    python bench/keras_peer.py --data imdb                                       # IMDB (25k/25k, ~minutes)
    python bench/keras_peer.py --quick --no-write                                # smoke run (1 epoch, 2,000 texts)

The model is the one of the Keras text-classification tutorial wordconv grew from:

    Embedding(V, E) -> Conv1D(128, 5, relu) -> MaxPooling1D(5) -> Conv1D(128, 5, relu)
        -> GlobalMaxPooling1D -> Dense(128, relu) -> Dropout(0.5) -> Dense(classes, softmax)

built twice in one process and trained on the same data with the same hyperparameters:

  * wordconv: ``wordconv.pipeline.fit`` with ``model.type=stacked`` (its defaults are these sizes),
    ``embeddings.dim``, ``training.optimizer=adam``, ``training.lr``, ``training.batch_size``,
    ``training.epochs`` and ``training.patience=null``; its own length-bucketed batches, padded per
    batch (at least 29 positions, what two width-5 convolutions around a pool of 5 need), fused Adam.
  * Keras 3.x, ``KERAS_BACKEND=torch`` (no TensorFlow), ``jit_compile`` left at its default ("auto":
    off on the torch backend), ``Adam(learning_rate)``, sparse categorical cross-entropy, no training
    metrics (wordconv computes none either), ``fit(shuffle=True, verbose=0)``.  It is fed the very
    token ids wordconv trains on: wordconv's preprocessing (lowercase regex tokens, cut at
    ``preprocessing.max_length``, head+tail) and the same training vocabulary (rebuilt with
    ``Vocab.build``, checked equal to the one wordconv's run kept); unknown test words -> UNK (id 1).
    Two Keras rows:
      - "fixed": the tutorial's way, every text padded (at the end, with 0) to one length, the
        longest text of train and test after preprocessing (so nothing is cut beyond what wordconv
        cuts), at least 29.  The headline ratio is against this row.
      - "bucketed": a ``keras.utils.PyDataset`` serving wordconv's own length-bucketed batches
        (``wordconv.data.batching``, re-shuffled every epoch), the model taking ``Input((None,))``:
        the same padding as wordconv, so this row compares the engines alone.
    Keras's Embedding starts from wordconv's U[-0.25, 0.25] (Kim 2014) instead of Keras's U[-0.05,
    0.05]; the other layers keep each library's own default initialisers.  Keras's Adam has
    epsilon 1e-7, torch's 1e-8.  Keras trains the padding row of the table (no ``mask_zero``, as in
    the tutorial); wordconv keeps it at zero and masks padded windows.

Neither side sees the dev split (wordconv's 10 % dev carve-out is dropped, not added to train): both
train all epochs and keep the last weights; test accuracy is measured on the test split (MR: fold 0).
Seeds: ``training.seed`` for wordconv, ``keras.utils.set_random_seed`` for Keras (same value).

Timing: both sides run first a throwaway warm-up fit (1 epoch on the first 2 x batch texts: lazy
imports, first dispatch, Keras building its train function), reported as "warm-up s", then the
timed run.  "train s" is the sum of the epochs' seconds (wordconv: the trainer's
``history[i]["epoch_seconds"]``; Keras: an epoch-begin/end callback), without preprocessing or
evaluation; samples/s = train texts x epochs / train s, and also over epochs 2..N ("steady").  Both
use ``--threads`` torch threads (default: all cores).

Results are appended to ``bench/results/keras_peer.json`` and (full runs without --no-write) a table
goes into BENCHMARKS.md between ``<!-- keras-peer:begin -->`` / ``<!-- keras-peer:end -->``.  With
--no-write nothing is written; --quick is never written to BENCHMARKS.md.  Needs ``keras``
(``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere: no TensorFlow

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from benchlib import append_run, machine, write_between  # bench/ is on sys.path

from wordconv.data.batching import bucket_batches, pad_batch
from wordconv.data.text import Preprocessor
from wordconv.data.vocab import Vocab
from wordconv.pipeline import build_model, evaluate_examples, fit, load_splits, resolve_config

GOAL_SPEEDUP = 1.5  # wordconv training samples/s over Keras's (fixed-length row), at least
BEGIN, END = "<!-- keras-peer:begin -->", "<!-- keras-peer:end -->"
HEADING = "## Training: wordconv vs Keras 3 (the tutorial's stacked Conv1D model)"
DEFAULT_OUT = "bench/results/keras_peer.json"


def import_keras():
    t = time.perf_counter()
    import keras

    if keras.backend.backend() != "torch":
        raise SystemExit(f"keras runs on the {keras.backend.backend()!r} backend; this benchmark needs torch")
    return keras, time.perf_counter() - t


# --------------------------------------------------------------------------------------------
# wordconv


def wordconv_config(args, *, epochs: int):
    sets = ["training.progress=false", f"embeddings.dim={args.dim}", f"training.epochs={epochs}",
            f"training.batch_size={args.batch_size}", f"training.lr={args.lr}", "training.optimizer=adam",
            "training.patience=null", "training.device=cpu", f"training.threads={args.threads}",
            f"model.num_filters={args.filters}", f"model.kernel_size={args.kernel}", f"model.pool_size={args.pool}",
            f"model.hidden_dim={args.hidden}", f"model.dropout={args.dropout}",
            f"preprocessing.max_length={args.max_length}", *args.sets]
    return resolve_config(None, sets, data=args.data, model="stacked", fold=args.fold, seed=args.seed,
                          data_dir=args.data_dir)


def run_wordconv(args, splits, console: Console) -> dict:
    warm = replace(splits, train=splits.train[: 2 * args.batch_size])
    t = time.perf_counter()
    fit(wordconv_config(args, epochs=1), warm, Console(stderr=True, quiet=True))
    warmup = time.perf_counter() - t
    cfg = wordconv_config(args, epochs=args.epochs)
    t0 = time.perf_counter()
    art, result = fit(cfg, splits, Console(stderr=True, quiet=True))
    fit_wall = time.perf_counter() - t0
    metrics, _ = evaluate_examples(art, splits.test, "test")
    epochs = [h["epoch_seconds"] for h in result.history]
    return {"side": "wordconv", "batching": "length-bucketed (its own)", "warmup_seconds": warmup,
            "fit_wall_seconds": fit_wall, "epoch_seconds": epochs, "accuracy": metrics["accuracy"] * 100,
            "train_loss": [h["train_loss"] for h in result.history], "vocab": art.vocab,
            "params": sum(p.numel() for p in art.model.parameters()), "threads": torch.get_num_threads()}


# --------------------------------------------------------------------------------------------
# Keras


def encode(cfg, splits) -> dict:
    """wordconv's token ids for train and test: its preprocessing and its training vocabulary."""
    pre = Preprocessor(cfg.preprocessing)
    train_tokens = [pre(ex.text) for ex in splits.train]
    vocab = Vocab.build(train_tokens, min_freq=cfg.preprocessing.min_freq, max_size=cfg.preprocessing.max_vocab)
    labels = list(splits.labels)
    index = {name: i for i, name in enumerate(labels)}
    return {"vocab": vocab, "labels": labels,
            "train_ids": [vocab.encode(t) for t in train_tokens],
            "train_y": np.array([index[ex.label] for ex in splits.train], dtype=np.int32),
            "test_ids": [vocab.encode(pre(ex.text)) for ex in splits.test],
            "test_y": np.array([index[ex.label] for ex in splits.test], dtype=np.int32)}


def pad_fixed(ids: list[list[int]], length: int) -> np.ndarray:
    out = np.zeros((len(ids), length), dtype=np.int32)  # post-padding with 0 (wordconv's pad id)
    for i, row in enumerate(ids):
        out[i, : len(row)] = row[:length]
    return out


def keras_model(keras, args, vocab_size: int, classes: int, length: int | None):
    from keras import layers

    return keras.Sequential([
        keras.Input(shape=(length,), dtype="int32"),
        layers.Embedding(vocab_size, args.dim,
                         embeddings_initializer=keras.initializers.RandomUniform(-0.25, 0.25)),
        layers.Conv1D(args.filters, args.kernel, activation="relu"),
        layers.MaxPooling1D(args.pool),
        layers.Conv1D(args.filters, args.kernel, activation="relu"),
        layers.GlobalMaxPooling1D(),
        layers.Dense(args.hidden, activation="relu"),
        layers.Dropout(args.dropout),
        layers.Dense(classes, activation="softmax"),
    ])


def run_keras(keras, args, data: dict, batching: str, min_length: int) -> dict:
    """Train the Keras model; ``batching``: "fixed" (one padded length) or "bucketed" (wordconv's batches)."""

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self.loss: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._t)
            self.loss.append(float((logs or {}).get("loss", float("nan"))))

    class Bucketed(keras.utils.PyDataset):
        """wordconv's length-bucketed, shuffled batches (a new order every epoch), padded per batch."""

        def __init__(self, ids, y, batch_size: int, seed: int):
            super().__init__()
            self.ids, self.y, self.batch_size = ids, y, batch_size
            self.lengths = [len(r) for r in ids]
            self.generator = torch.Generator().manual_seed(seed)
            self.on_epoch_end()

        def __len__(self):
            return len(self.order)

        def __getitem__(self, i):
            idx = self.order[i]
            ids, _ = pad_batch([self.ids[j] for j in idx], pad_id=0, min_length=min_length)
            return ids.numpy().astype(np.int32), self.y[idx]

        def on_epoch_end(self):
            self.order = bucket_batches(self.lengths, self.batch_size, shuffle=True, generator=self.generator)

    vocab_size, classes = len(data["vocab"]), len(data["labels"])
    fixed = max(min_length, max(map(len, data["train_ids"] + data["test_ids"])))

    def inputs(n: int | None = None):
        ids, y = data["train_ids"][:n], data["train_y"][:n]
        if batching == "fixed":
            return {"x": pad_fixed(ids, fixed), "y": y, "batch_size": args.batch_size, "shuffle": True}
        return {"x": Bucketed(ids, y, args.batch_size, args.seed)}

    def build():
        model = keras_model(keras, args, vocab_size, classes, fixed if batching == "fixed" else None)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=args.lr), loss="sparse_categorical_crossentropy")
        return model

    keras.utils.set_random_seed(args.seed)
    t = time.perf_counter()
    build().fit(**inputs(2 * args.batch_size), epochs=1, verbose=0)  # throwaway warm-up
    warmup = time.perf_counter() - t
    keras.utils.set_random_seed(args.seed)
    model = build()
    jit = model.jit_compile
    timer = EpochTimer()
    t0 = time.perf_counter()
    model.fit(**inputs(), epochs=args.epochs, verbose=0, callbacks=[timer])
    fit_wall = time.perf_counter() - t0
    if batching == "fixed":
        probs = model.predict(pad_fixed(data["test_ids"], fixed), batch_size=256, verbose=0)
    else:  # by length, in batches of 256, each padded to its longest (at least min_length)
        order = sorted(range(len(data["test_ids"])), key=lambda i: len(data["test_ids"][i]))
        probs = np.zeros((len(order), classes), dtype=np.float32)
        for s in range(0, len(order), 256):
            idx = order[s: s + 256]
            ids, _ = pad_batch([data["test_ids"][j] for j in idx], pad_id=0, min_length=min_length)
            probs[idx] = np.asarray(model.predict_on_batch(ids.numpy().astype(np.int32)))
    acc = float((probs.argmax(-1) == data["test_y"]).mean()) * 100
    return {"side": f"Keras {keras.__version__} (torch)", "batching": "fixed length" if batching == "fixed" else
            "length-bucketed (wordconv's)", "padded_length": fixed if batching == "fixed" else None,
            "jit_compile": jit, "warmup_seconds": warmup, "fit_wall_seconds": fit_wall,
            "epoch_seconds": timer.seconds, "accuracy": acc, "train_loss": timer.loss,
            "params": int(model.count_params()), "threads": torch.get_num_threads()}


# --------------------------------------------------------------------------------------------
# report


def rates(side: dict, n_train: int) -> dict:
    secs = side["epoch_seconds"]
    side["train_seconds"] = sum(secs)
    side["samples_per_second"] = n_train * len(secs) / sum(secs)
    side["steady_samples_per_second"] = (n_train * (len(secs) - 1) / sum(secs[1:])) if len(secs) > 1 else None
    return side


def rich_table(run: dict) -> Table:
    t = Table(title=f"stacked Conv1D on {run['name']}: {run['train_size']} train x {run['epochs']} epochs, "
                    f"batch {run['batch_size']}, E={run['dim']}, Adam lr {run['lr']}, {run['threads']} threads")
    for col in ("side", "batching", "params", "warm-up s", "train s", "epoch 1 s", "samples/s", "steady samples/s",
                "test acc %"):
        t.add_column(col, justify="left" if col in ("side", "batching") else "right")
    for s in run["sides"]:
        steady = s["steady_samples_per_second"]
        t.add_row(s["side"], s["batching"], f"{s['params']:,}", f"{s['warmup_seconds']:.2f}",
                  f"{s['train_seconds']:.1f}", f"{s['epoch_seconds'][0]:.1f}", f"{s['samples_per_second']:,.0f}",
                  "" if steady is None else f"{steady:,.0f}", f"{s['accuracy']:.2f}")
    for c in run["compare"]:
        steady = c["steady_speedup"]
        t.add_row(f"wordconv / {c['peer']}", "", "", "", "", "", f"{c['speedup']:.2f}x",
                  "" if steady is None else f"{steady:.2f}x", f"{c['accuracy_points']:+.2f} pts")
    return t


def markdown(runs: list[dict]) -> str:
    latest: dict = {}
    for r in runs:  # the latest full run per data set / fold
        if not r.get("limit"):
            latest[(r["data"], r["fold"])] = r
    return "\n".join(markdown_run(r) for r in latest.values())


def markdown_run(run: dict) -> str:
    lines = [f"**{run['name']}**", "",
             "| side | batching | warm-up s | train s | samples/s | steady samples/s (epochs 2+) | test acc % |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for s in run["sides"]:
        steady = s["steady_samples_per_second"]
        lines.append(f"| {s['side']} | {s['batching']} | {s['warmup_seconds']:.2f} | {s['train_seconds']:.1f} | "
                     f"{s['samples_per_second']:,.0f} | {'' if steady is None else f'{steady:,.0f}'} | "
                     f"{s['accuracy']:.2f} |")
    for c in run["compare"]:
        steady = c["steady_speedup"]
        lines.append(f"| **wordconv / {c['peer']}** | | | | **{c['speedup']:.2f}x** | "
                     f"{'' if steady is None else f'{steady:.2f}x'} | {c['accuracy_points']:+.2f} pts |")
    head = run["compare"][0]
    notes = [
        "",
        (f"- {run['name']}: {run['train_size']} training texts (dev not used), {run['test_size']} test; "
         f"{run['epochs']} epochs, batch {run['batch_size']}, embedding {run['dim']}, Adam lr {run['lr']}, "
         f"seed {run['seed']}, {run['threads']} threads; Keras fixed length {run['padded_length']}, "
         f"jit_compile {run['keras_jit_compile']}; keras import {run['keras_import_seconds']:.1f} s (not timed)."),
        (f"- Goal (wordconv >= {GOAL_SPEEDUP}x Keras's training samples/s, {head['peer']}): "
         f"{'met' if head['goal_met'] else 'NOT met'} ({head['speedup']:.2f}x)."),
        f"- Run {run['date']} on {run['machine']}; `{run['command']}`.",
    ]
    return "\n".join(lines) + "\n" + "\n".join(notes) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=["mr", "imdb", "sst2"], default="mr")
    ap.add_argument("--fold", type=int, default=None, help="MR's CV fold (default 0)")
    ap.add_argument("--epochs", type=int, default=None, help="default 5 (--quick: 1)")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--dim", type=int, default=100, help="embedding size (the tutorial's 100)")
    ap.add_argument("--filters", type=int, default=128)
    ap.add_argument("--kernel", type=int, default=5)
    ap.add_argument("--pool", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--max-length", type=int, default=400, help="tokens kept per text (wordconv's default)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both sides (default: all cores)")
    ap.add_argument("--keras-batching", choices=["both", "fixed", "bucketed"], default="both")
    ap.add_argument("--order", choices=["wordconv-first", "keras-first"], default="wordconv-first")
    ap.add_argument("--limit", type=int, default=None, help="only the first N train and N test texts")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 epoch, --limit 2000 (never in BENCHMARKS.md)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra wordconv config override")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--no-write", action="store_true", help="print only: no results file, no BENCHMARKS.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.limit = args.limit or 2000
    args.epochs = args.epochs or (1 if args.quick else 5)
    if args.data == "mr" and args.fold is None:
        args.fold = 0
    if args.data != "mr" and args.fold is not None:
        ap.error(f"--fold is for mr; {args.data} has a fixed test split")
    args.threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(args.threads)
    console = Console(width=170)

    keras, keras_import = import_keras()
    cfg = wordconv_config(args, epochs=args.epochs)
    splits = load_splits(cfg)
    splits = replace(splits, dev=[])  # neither side selects an epoch on dev: both keep the last one
    if args.limit:  # MR/IMDB files are label-sorted: take a seeded sample, not the first N
        rng = np.random.default_rng(args.seed)

        def pick(xs: list) -> list:
            return [xs[i] for i in sorted(rng.choice(len(xs), min(args.limit, len(xs)), replace=False))]

        splits = replace(splits, train=pick(splits.train), test=pick(splits.test))
    name = args.data.upper() + ("" if args.fold is None else f" fold {args.fold}")
    data = encode(cfg, splits)
    min_length = build_model(cfg, len(data["vocab"]), data["labels"]).encoder.min_length
    console.print(f"{name}: {len(splits.train)} train, {len(splits.test)} test, vocab {len(data['vocab']):,}; "
                  f"{args.epochs} epochs, batch {args.batch_size}, E={args.dim}, Adam lr {args.lr}; "
                  f"{torch.get_num_threads()} threads; keras {keras.__version__} imported in {keras_import:.1f}s")

    sides: dict[str, dict] = {}
    keras_rows = ["fixed", "bucketed"] if args.keras_batching == "both" else [args.keras_batching]
    plan = ["wordconv", *keras_rows] if args.order == "wordconv-first" else [*keras_rows, "wordconv"]
    for side in plan:
        if side == "wordconv":
            r = run_wordconv(args, splits, console)
            same = r.pop("vocab").itos == data["vocab"].itos
            if not same:
                raise SystemExit("the vocabulary rebuilt for Keras differs from wordconv's: not the same ids")
        else:
            r = run_keras(keras, args, data, side, min_length)
        sides[side] = rates(r, len(splits.train))
        pad = f", padded to {r['padded_length']}" if r.get("padded_length") else ""
        console.print(f"{r['side']} ({r['batching']}{pad}): warm-up {r['warmup_seconds']:.2f}s, epochs "
                      f"{', '.join(f'{s:.1f}' for s in r['epoch_seconds'])}s, acc {r['accuracy']:.2f}")

    w = sides["wordconv"]
    compare = []
    for k in keras_rows:
        s = sides[k]
        speed = w["samples_per_second"] / s["samples_per_second"]
        steady = (w["steady_samples_per_second"] / s["steady_samples_per_second"]
                  if w["steady_samples_per_second"] and s["steady_samples_per_second"] else None)
        compare.append({"peer": f"Keras ({s['batching']})", "batching": k, "speedup": speed, "steady_speedup": steady,
                        "accuracy_points": w["accuracy"] - s["accuracy"], "goal_met": speed >= GOAL_SPEEDUP})
    fixed = sides.get("fixed")
    run = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": machine(), "name": name, "data": args.data, "fold": args.fold, "seed": args.seed,
           "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "dim": args.dim,
           "filters": args.filters, "kernel": args.kernel, "pool": args.pool, "hidden": args.hidden,
           "dropout": args.dropout, "max_length": args.max_length, "threads": args.threads, "limit": args.limit,
           "quick": args.quick, "order": args.order, "train_size": len(splits.train), "test_size": len(splits.test),
           "vocab_size": len(data["vocab"]), "min_length": min_length,
           "padded_length": fixed["padded_length"] if fixed else None,
           "keras_version": keras.__version__, "keras_import_seconds": keras_import,
           "keras_jit_compile": next((s["jit_compile"] for k, s in sides.items() if k != "wordconv"), None),
           "sides": [sides[k] for k in ["wordconv", *keras_rows]], "compare": compare,
           "goal_speedup": GOAL_SPEEDUP}
    console.print(rich_table(run))
    head = compare[0]
    console.print(f"wordconv / {head['peer']}: {head['speedup']:.2f}x training samples/s, accuracy "
                  f"{head['accuracy_points']:+.2f} points; goal (>= {GOAL_SPEEDUP}x): "
                  f"{'met' if head['goal_met'] else 'NOT met'}"
                  + (" (a --quick/--limit check: not a measurement)" if args.limit else ""))
    if args.no_write:
        return 0
    append_run(Path(args.out), run)
    console.print(f"results appended to {args.out}")
    if not args.limit:
        write_between(markdown(json.loads(Path(args.out).read_text())["runs"]), BEGIN, END, HEADING)
        console.print("table written into BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
