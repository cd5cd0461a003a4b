"""fastText and TF-IDF + logistic regression vs wordconv's TextCNN: test accuracy and training time.

    WORDCONV_DATA=/work/shared/data python bench/fasttext_peer.py              # MR fold 0, SST-2, IMDB (IMDB: ~10+ min)
    python bench/fasttext_peer.py --datasets mr,sst2                            # the small sets only
    python bench/fasttext_peer.py --rows fasttext,tfidf --datasets imdb         # the linear peers alone
    python bench/fasttext_peer.py --quick --no-write                            # smoke run: MR, CNN 1 epoch

Rows per data set, one process, all from the same labelled texts (MR: 10-fold CV fold 0, its 9/10;
SST-2: its sentence-level train and dev; IMDB: its 25k train) and scored on the same test split:

  * wordconv TextCNN: ``wordconv.pipeline.fit`` with its default config (Kim's CNN-rand, E=300,
    filters 3/4/5 x 100, Adam 1e-3, batch 50, up to 10 epochs, best epoch on dev, patience 2).
    It trains on the training split and picks its epoch on the dev split (wordconv's 10 % carve-out
    where the set has none).  The peers choose nothing on dev, so they train on train + dev (the same
    texts in all; ``--peer-train train`` leaves the dev texts out).
  * fastText (``fasttext-wheel`` 0.9.2, ``train_supervised``): its defaults (dim 100, minCount 1,
    softmax loss, bucket 2M) with word bigrams (wordNgrams 2), lr 0.5 and 5 epochs (MR, SST-2) or
    10 (IMDB), ``thread`` = ``--threads``, ``seed``.  lr and epochs were picked once on the dev
    splits (dim 100, 1 thread, seed 13; dev accuracy for 5 / 10 / 25 epochs at lr 0.5):
    MR 77.5 / 75.9 / 77.4, SST-2 77.3 / 76.8 / 76.5, IMDB 89.3 / 89.8 / 89.7 (lr 0.25 was no
    better; dim 10, Joulin et al. 2016's size, ~0.3 points lower).  Its training file is
    written in a seeded shuffled order: fastText reads it front to back, and label-sorted files (MR
    folds, IMDB) ruin it.  With more than one thread its Hogwild SGD is not bit-reproducible.
    ``predict`` is given a list (``fasttext-wheel`` 0.9.2 under numpy 2 fails on a single string);
    ``fasttext-numpy2`` 0.10.4 is not used: it hits NaN and is non-deterministic without bigrams.
  * TF-IDF 1-2-grams (sublinear tf) + ``LogisticRegression(C=10)`` (scikit-learn): the linear
    baseline, as in bench/kim_table.py.

The peers see the same words as the CNN: wordconv's own preprocessing of the config (lowercase
regex tokens, HTML tags blanked, at most ``preprocessing.max_length`` = 400 tokens, head+tail),
joined by spaces (``--peer-text raw`` gives TF-IDF the raw text and scikit-learn's own tokenizer
instead, how kim_table.py measures it; fastText then gets the untruncated tokens).

Measured: test accuracy; "train s": the training call alone (wordconv: the trainer's loop, its
per-epoch dev scoring included, ``TrainResult.train_seconds``; fastText: ``train_supervised``,
reading its file included; TF-IDF: vectorizer fit + LR fit); "fit wall s": from the examples to a
trained model (tokenizing, the vocabulary / file, training).  Ratios per data set: wordconv train s
/ fastText train s, and accuracy differences in points.  ``--threads`` (default: all cores) for
torch and fastText.  Seed ``--seed`` (13) everywhere (fastText's seed, the file shuffle, the CNN).

Results are appended to ``bench/results/fasttext_peer.json``; full runs (no --quick, no --epochs,
all three rows) without --no-write also put a table in BENCHMARKS.md between
``<!-- fasttext-peer:begin -->`` / ``<!-- fasttext-peer:end -->``.  Needs ``fasttext-wheel==0.9.2``
(``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from benchlib import append_run, machine, write_between  # bench/ is on sys.path

from wordconv.data.text import Preprocessor
from wordconv.pipeline import evaluate_examples, fit, load_splits, resolve_config

BEGIN, END = "<!-- fasttext-peer:begin -->", "<!-- fasttext-peer:end -->"
HEADING = "## Linear peers: fastText and TF-IDF + LR vs wordconv's TextCNN"
DEFAULT_OUT = "bench/results/fasttext_peer.json"
DATASETS = {"mr": 0, "sst2": None, "imdb": None}  # name -> fold
FT_EPOCHS = {"mr": 5, "sst2": 5, "imdb": 10}  # fastText epochs, picked on dev (the docstring)
ROWS = ("textcnn", "fasttext", "tfidf")


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def load(name: str, args):
    sets = ["training.progress=false", f"training.threads={args.threads}", *args.sets]
    if args.epochs:
        sets.append(f"training.epochs={args.epochs}")
    cfg = resolve_config(None, sets, data=name, model="textcnn", fold=DATASETS[name], seed=args.seed,
                         data_dir=args.data_dir)
    return cfg, load_splits(cfg)


def peer_texts(cfg, splits, how: str, with_dev: bool) -> dict:
    """The peers' input: wordconv's tokens joined by spaces ("tokens"), or raw text + untruncated tokens;
    ``with_dev``: the dev texts added to the training texts (the peers select no epoch on dev)."""
    if with_dev:
        splits = replace(splits, train=[*splits.train, *splits.dev])
    pc = cfg.preprocessing if how == "tokens" else cfg.preprocessing.model_copy(update={"max_length": None})
    pre = Preprocessor(pc)
    t = time.perf_counter()
    train = [" ".join(pre(ex.text)) for ex in splits.train]
    test = [" ".join(pre(ex.text)) for ex in splits.test]
    seconds = time.perf_counter() - t
    index = {name: i for i, name in enumerate(splits.labels)}
    return {"train": train, "test": test, "prep_seconds": seconds, "train_size": len(train),
            "train_y": np.array([index[ex.label] for ex in splits.train]),
            "test_y": np.array([index[ex.label] for ex in splits.test]),
            "raw_train": [ex.text for ex in splits.train], "raw_test": [ex.text for ex in splits.test]}


def run_textcnn(cfg, splits) -> dict:
    t0 = time.perf_counter()
    art, result = fit(cfg, splits, Console(stderr=True, quiet=True))
    wall = time.perf_counter() - t0
    metrics, _ = evaluate_examples(art, splits.test, "test")
    return {"row": "wordconv TextCNN", "accuracy": metrics["accuracy"] * 100, "train_seconds": result.train_seconds,
            "fit_wall_seconds": wall, "epochs": len(result.history), "best_epoch": result.best_epoch,
            "epoch_seconds": [h["epoch_seconds"] for h in result.history],
            "settings": (f"defaults: E={cfg.embeddings.dim}, widths {cfg.model.filter_widths} x "
                         f"{cfg.model.num_filters}, {cfg.training.optimizer} {cfg.training.lr}, batch "
                         f"{cfg.training.batch_size}, {len(result.history)}/{cfg.training.epochs} epochs "
                         f"(best {result.best_epoch})")}


def run_fasttext(texts: dict, args, data: str) -> dict:
    import fasttext

    epochs = args.ft_epoch or FT_EPOCHS[data]
    order = list(range(len(texts["train"])))
    random.Random(args.seed).shuffle(order)  # fastText trains in file order: never label-sorted
    params = {"lr": args.ft_lr, "epoch": epochs, "wordNgrams": args.ft_ngrams, "dim": args.ft_dim,
              "minCount": 1, "loss": "softmax", "thread": args.threads, "seed": args.seed, "verbose": 0}
    with tempfile.TemporaryDirectory(prefix="fasttext_peer-") as tmp:
        path = Path(tmp) / "train.txt"
        t0 = time.perf_counter()
        with path.open("w", encoding="utf-8") as f:
            for i in order:
                f.write(f"__label__{texts['train_y'][i]} {texts['train'][i]}\n")
        t1 = time.perf_counter()
        model = fasttext.train_supervised(input=str(path), **params)
        train = time.perf_counter() - t1
        write = t1 - t0
    labels, _ = model.predict(texts["test"], k=1)  # a list: fasttext-wheel 0.9.2 + numpy 2 fails on a str
    pred = np.array([int(ls[0].removeprefix("__label__")) for ls in labels])
    acc = float((pred == texts["test_y"]).mean()) * 100
    return {"row": f"fastText {package_version('fasttext-wheel')}", "accuracy": acc, "train_seconds": train,
            "fit_wall_seconds": texts["prep_seconds"] + write + train, "params": params,
            "settings": (f"wordNgrams {args.ft_ngrams}, dim {args.ft_dim}, epoch {epochs}, lr {args.ft_lr}, "
                         f"{args.threads} threads, shuffled file"),
            "vocab": len(model.words)}


def run_tfidf(texts: dict, args) -> dict:
    if args.peer_text == "raw":
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        train, test, prep = texts["raw_train"], texts["raw_test"], 0.0
    else:  # wordconv's tokens as they are
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, lowercase=False,
                              token_pattern=None, tokenizer=str.split)
        train, test, prep = texts["train"], texts["test"], texts["prep_seconds"]
    t = time.perf_counter()
    x = vec.fit_transform(train)
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(x, texts["train_y"])
    seconds = time.perf_counter() - t
    acc = float((clf.predict(vec.transform(test)) == texts["test_y"]).mean()) * 100
    return {"row": "TF-IDF 1-2-grams + LR", "accuracy": acc, "train_seconds": seconds, "fit_wall_seconds": prep + seconds,
            "settings": f"sublinear tf, C=10, {'raw text' if args.peer_text == 'raw' else 'wordconv tokens'}",
            "features": x.shape[1]}


def compare(rows: dict) -> dict:
    out: dict = {}
    cnn, ft, lr = rows.get("textcnn"), rows.get("fasttext"), rows.get("tfidf")
    if cnn and ft:
        out["textcnn_over_fasttext_train_seconds"] = cnn["train_seconds"] / ft["train_seconds"]
        out["textcnn_over_fasttext_fit_wall"] = cnn["fit_wall_seconds"] / ft["fit_wall_seconds"]
        out["textcnn_minus_fasttext_points"] = cnn["accuracy"] - ft["accuracy"]
    if cnn and lr:
        out["textcnn_over_tfidf_train_seconds"] = cnn["train_seconds"] / lr["train_seconds"]
        out["textcnn_minus_tfidf_points"] = cnn["accuracy"] - lr["accuracy"]
    if ft and lr:
        out["fasttext_minus_tfidf_points"] = ft["accuracy"] - lr["accuracy"]
    return out


def name_of(data: str) -> str:
    return {"mr": "MR fold 0", "sst2": "SST-2", "imdb": "IMDB"}[data]


def rich_table(results: list[dict]) -> Table:
    t = Table(title="accuracy and training time: wordconv TextCNN vs fastText vs TF-IDF + LR")
    for col in ("data", "row", "test acc %", "train s", "fit wall s", "settings"):
        t.add_column(col, justify="left" if col in ("data", "row", "settings") else "right")
    for r in results:
        for key in ROWS:
            if key in r["rows"]:
                x = r["rows"][key]
                t.add_row(name_of(r["data"]), x["row"], f"{x['accuracy']:.2f}", f"{x['train_seconds']:.1f}",
                          f"{x['fit_wall_seconds']:.1f}", x["settings"])
        c = r["compare"]
        if "textcnn_over_fasttext_train_seconds" in c:
            t.add_row(name_of(r["data"]), "TextCNN vs fastText", f"{c['textcnn_minus_fasttext_points']:+.2f} pts",
                      f"{c['textcnn_over_fasttext_train_seconds']:.1f}x", f"{c['textcnn_over_fasttext_fit_wall']:.1f}x",
                      "time ratio: wordconv / fastText")
        if "textcnn_minus_tfidf_points" in c:
            t.add_row(name_of(r["data"]), "TextCNN vs TF-IDF+LR", f"{c['textcnn_minus_tfidf_points']:+.2f} pts",
                      f"{c['textcnn_over_tfidf_train_seconds']:.1f}x", "", "")
    return t


def markdown(runs: list[dict]) -> str:
    latest: dict = {}
    for run in runs:  # the latest full result per data set
        if run.get("full"):
            for r in run["results"]:
                latest[r["data"]] = (run, r)
    lines = ["| data | row | test acc % | train s | fit wall s | vs TextCNN (acc, time) | settings |",
             "| --- | --- | ---: | ---: | ---: | --- | --- |"]
    notes = []
    for data in DATASETS:
        if data not in latest:
            continue
        run, r = latest[data]
        cnn = r["rows"]["textcnn"]
        for key in ROWS:
            x = r["rows"][key]
            vs = "" if key == "textcnn" else (f"{cnn['accuracy'] - x['accuracy']:+.2f} pts, "
                                              f"{cnn['train_seconds'] / x['train_seconds']:.1f}x")
            lines.append(f"| {name_of(data)} | {x['row']} | {x['accuracy']:.2f} | {x['train_seconds']:.1f} | "
                         f"{x['fit_wall_seconds']:.1f} | {vs} | {x['settings']} |")
        notes.append(f"- {name_of(data)}: TextCNN {r['train_size']} train + {r['dev_size']} dev (epoch choice), peers "
                     f"{r.get('peer_train_size', r['train_size'])} ({run.get('peer_train', 'train')}); "
                     f"{r['test_size']} test; run {run['date']}, seed {run['seed']}, {run['threads']} threads, peers on "
                     f"{run['peer_text']}; `{run['command']}`")
    return ("\n".join(lines) + "\n\n\"vs TextCNN\": the TextCNN's accuracy minus the row's, and the TextCNN's train "
            "seconds over the row's.\n\n" + "\n".join(notes) + f"\n- Machine: {runs[-1]['machine']}.\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=None, help="comma-separated: mr, sst2, imdb (default all; --quick: mr)")
    ap.add_argument("--rows", default="textcnn,fasttext,tfidf", help="comma-separated: textcnn, fasttext, tfidf")
    ap.add_argument("--epochs", type=int, default=None, help="TextCNN max epochs (default: wordconv's 10)")
    ap.add_argument("--quick", action="store_true", help="smoke run: MR only, TextCNN 1 epoch (never in BENCHMARKS.md)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=None, help="torch and fastText threads (default: all cores)")
    ap.add_argument("--ft-epoch", type=int, default=None, help="fastText epochs (default: 5 MR/SST-2, 10 IMDB)")
    ap.add_argument("--ft-lr", type=float, default=0.5)
    ap.add_argument("--ft-ngrams", type=int, default=2)
    ap.add_argument("--ft-dim", type=int, default=100)
    ap.add_argument("--peer-text", choices=["tokens", "raw"], default="tokens",
                    help="tokens: wordconv's preprocessing (the CNN's words); raw: TF-IDF on raw text, fastText "
                         "on untruncated tokens")
    ap.add_argument("--peer-train", choices=["train+dev", "train"], default="train+dev",
                    help="the peers' training texts: the CNN's train and dev texts (default), or train alone")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra wordconv config override")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--no-write", action="store_true", help="print only: no results file, no BENCHMARKS.md")
    args = ap.parse_args(argv)
    datasets = [d.strip() for d in (args.datasets or ("mr" if args.quick else "mr,sst2,imdb")).split(",") if d.strip()]
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for d in datasets:
        if d not in DATASETS:
            ap.error(f"--datasets: unknown {d!r}; choose from {', '.join(DATASETS)}")
    for r in rows:
        if r not in ROWS:
            ap.error(f"--rows: unknown {r!r}; choose from {', '.join(ROWS)}")
    if args.quick:
        args.epochs = args.epochs or 1
    args.threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(args.threads)
    console = Console(width=170)
    console.print(f"{', '.join(datasets)}: rows {', '.join(rows)}; seed {args.seed}, {args.threads} threads"
                  + (f", TextCNN epochs {args.epochs}" if args.epochs else ""))
    results = []
    for data in datasets:
        cfg, splits = load(data, args)
        texts = peer_texts(cfg, splits, args.peer_text, args.peer_train == "train+dev")
        out: dict = {}
        for row in ROWS:  # the TextCNN first, the peers after it (they do not depend on order)
            if row not in rows:
                continue
            if row == "textcnn":
                out[row] = run_textcnn(cfg, splits)
            elif row == "fasttext":
                out[row] = run_fasttext(texts, args, data)
            else:
                out[row] = run_tfidf(texts, args)
            x = out[row]
            console.print(f"{name_of(data)}: {x['row']}: acc {x['accuracy']:.2f}, train {x['train_seconds']:.1f}s "
                          f"(fit wall {x['fit_wall_seconds']:.1f}s); {x['settings']}")
        results.append({"data": data, "fold": DATASETS[data], "train_size": len(splits.train),
                        "peer_train_size": texts["train_size"],
                        "dev_size": len(splits.dev), "test_size": len(splits.test), "rows": out,
                        "compare": compare(out)})
    console.print(rich_table(results))
    for r in results:
        c = r["compare"]
        if "textcnn_over_fasttext_train_seconds" in c:
            console.print(f"{name_of(r['data'])}: TextCNN / fastText train time {c['textcnn_over_fasttext_train_seconds']:.1f}x, "
                          f"accuracy {c['textcnn_minus_fasttext_points']:+.2f} points (vs TF-IDF+LR "
                          f"{c.get('textcnn_minus_tfidf_points', float('nan')):+.2f})")
    full = not args.quick and args.epochs is None and set(rows) == set(ROWS) and not args.sets
    run = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": machine(), "seed": args.seed, "threads": args.threads, "epochs": args.epochs,
           "quick": args.quick, "full": full, "peer_text": args.peer_text, "peer_train": args.peer_train, "rows": rows,
           "versions": {"fasttext-wheel": package_version("fasttext-wheel"), "numpy": np.__version__,
                        "torch": torch.__version__, "scikit-learn": package_version("scikit-learn")},
           "fasttext": {"epoch": args.ft_epoch or FT_EPOCHS, "lr": args.ft_lr, "wordNgrams": args.ft_ngrams, "dim": args.ft_dim},
           "results": results}
    if args.no_write:
        return 0
    append_run(Path(args.out), run)
    console.print(f"results appended to {args.out}")
    if full:
        write_between(markdown(json.loads(Path(args.out).read_text())["runs"]), BEGIN, END, HEADING)
        console.print("table written into BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
