"""Inference speed (issue "ONNX export"): a TextCNN in PyTorch eager vs ONNX Runtime fp32 and int8, and the MiniLM peer.

    python bench/inference_speed.py                                  # train TextCNN on MR fold 0, export, measure
    python bench/inference_speed.py --model-dir runs/mr0             # an already trained TextCNN
    python bench/inference_speed.py --minilm-dir runs/minilm-mr      # a fine-tuned MiniLM directory as the peer
    python bench/inference_speed.py --limit 200 --no-write           # smoke run (1 epoch on a slice)

Sentences are the MR fold-0 test texts (1,067 movie-review sentences, ~21 words), repeated until a
measurement covers ``--min-sentences``; every figure is the best of ``--repeats`` runs, after a warm-up,
with ``--threads`` threads (torch and ONNX Runtime alike; one ONNX row also with 1 thread), one row after
the other in one process.

Rows (sentences/s):
    end to end   ``predict_proba(texts)``: validation, preprocessing and vocabulary lookup (or the subword
                 tokenizer), batching by length, the model, softmax, back to input order
    model only   the model on id batches made beforehand (the same batches for every row of a model)
    batch 1      end to end, one text per call (a server answering single requests)
    prep only    texts -> id lists alone: the ceiling of any end-to-end row

The TextCNN is exported with ``wordconv.export`` into ``--out-dir/onnx`` (its own directory, the model
directory is not touched), with and without the embedding fold.  Accuracy of PyTorch, ONNX fp32 and
ONNX int8 on the MR fold-0 test texts (and SST-2 test with ``--sst2-dir``, a TextCNN trained on SST-2).

The MiniLM peer: ``--minilm-dir`` (a fine-tuned directory); without it, the packaged MiniLM-L6 with a
fresh, untrained text-classification head: fine-tuning takes ~16 min on this CPU, and speed does not
depend on the head's weights.  Its rows run on ``--minilm-sentences`` sentences (it is ~100x slower).

Results go to ``--results`` (bench/results/inference_speed.json) and a table between
``<!-- inference:begin -->`` / ``<!-- inference:end -->`` in BENCHMARKS.md (not with --limit or --no-write).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch
from rich.console import Console

from benchlib import machine, write_between  # bench/ is on sys.path

import wordconv
from wordconv.export import OnnxPredictor, export_onnx_detailed
from wordconv.inference import Predictor
from wordconv.pipeline import load_splits, resolve_config

BEGIN, END, HEADING = "<!-- inference:begin -->", "<!-- inference:end -->", "## Inference speed (ONNX export)"
GOAL_RATE = 20_000  # sentences/s on this 2-core machine, MR-length sentences
GOAL_RATIO = 50.0  # TextCNN / fine-tuned MiniLM


def best_rate(run: Callable[[], object], n: int, repeats: int) -> float:
    """Sentences per second of ``run`` (which handles ``n`` sentences): best of ``repeats`` after a warm-up."""
    run()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t)
    return n / best


def id_batches(encoded, batch_size: int) -> list[torch.Tensor]:
    return [b["ids"] for b in encoded.batches(batch_size, shuffle=False)]


def measure(name: str, model, texts: list[str], one: list[str], args, torch_model: torch.nn.Module | None = None
            ) -> dict:
    """End to end (batch 256), model only (the same id batches), batch 1 and preprocessing alone."""
    encode = model.encode if isinstance(model, OnnxPredictor) else (lambda ts: model._encode(list(ts)))
    batches = id_batches(encode(texts), 256)
    if torch_model is not None:
        def model_only():
            with torch.no_grad():
                for ids in batches:
                    torch_model(ids=ids)
    else:
        def model_only():
            for ids in batches:
                model.logits(ids)
    row = {
        "row": name,
        "end_to_end": best_rate(lambda: model.predict_proba(texts, batch_size=256), len(texts), args.repeats),
        "model_only": best_rate(model_only, len(texts), args.repeats),
        "batch_1": best_rate(lambda: [model.predict_proba([t], batch_size=1) for t in one], len(one), 1),
        "prep_only": best_rate(lambda: encode(texts), len(texts), args.repeats),
        "sentences": len(texts),
    }
    Console(stderr=True).print(f"{name}: {row['end_to_end']:,.0f} sent/s end to end, {row['model_only']:,.0f} "
                               f"model only, {row['batch_1']:,.0f} at batch 1, prep only {row['prep_only']:,.0f}")
    return row


def train_textcnn(args, console: Console) -> Path:
    """A default TextCNN on MR fold 0 (the smoke run: 1 epoch on ``--limit`` x 4 training texts)."""
    out = Path(args.out_dir) / "textcnn"
    cfg = resolve_config(None, list(args.sets), data="mr", model="textcnn", fold=0, data_dir=args.data_dir,
                         seed=args.seed, progress=not args.quiet)
    if args.limit:
        splits = load_splits(cfg)
        tmp = Path(args.out_dir) / "slices"
        tmp.mkdir(parents=True, exist_ok=True)
        rng = random.Random(args.seed)  # a sample: the files list one class after the other
        for name, exs in (("train", rng.sample(splits.train, min(len(splits.train), args.limit * 4))),
                          ("dev", rng.sample(splits.dev, min(len(splits.dev), args.limit))),
                          ("test", rng.sample(splits.test, min(len(splits.test), args.limit)))):
            (tmp / f"{name}.txt").write_text("".join(f"{ex.label} {' '.join(ex.text.split())}\n" for ex in exs),
                                             encoding="utf-8")
        cfg = resolve_config(cfg, [f"data.name={tmp / 'train.txt'}", f"data.dev_path={tmp / 'dev.txt'}",
                                   f"data.test_path={tmp / 'test.txt'}", "data.fold=null", "training.epochs=1"])
    wordconv.train(config=cfg, output=out, overwrite=True, console=console)
    return out


def minilm_peer(args) -> tuple[Predictor, str]:
    """The fine-tuned MiniLM of ``--minilm-dir``, or the packaged one with a fresh head (speed only)."""
    if args.minilm_dir:
        return wordconv.load(args.minilm_dir), f"fine-tuned ({args.minilm_dir})"
    from wordconv.data.vocab import PAD, UNK, Vocab
    from wordconv.modeldir import Artifact
    from wordconv.pipeline import build_model

    cfg = resolve_config(None, [], data="mr", model="pretrained", data_dir=args.data_dir)
    labels = ["negative", "positive"]
    torch.manual_seed(args.seed)
    model = build_model(cfg, 2, labels).eval()
    return Predictor(Artifact(cfg, model, Vocab([PAD, UNK]), labels, {})), "packaged weights, untrained head"


def profile_onnx(model: OnnxPredictor, texts: list[str], top: int = 12) -> str:
    """cProfile of one end-to-end ONNX pass: the functions with the most own time."""
    prof = cProfile.Profile()
    prof.runcall(model.predict_proba, texts)
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def table(r: dict) -> str:
    lines = ["| row | end to end (batch 256) | model only | batch 1 | prep only | accuracy (MR fold 0) |",
             "|---|---|---|---|---|---|"]
    for row in r["rows"]:
        acc = row.get("accuracy")
        lines.append(f"| {row['row']} | **{row['end_to_end']:,.0f}** | {row['model_only']:,.0f} | "
                     f"{row['batch_1']:,.0f} | {row['prep_only']:,.0f} | "
                     + (f"{acc * 100:.2f}" if acc is not None else "-") + " |")
    q = r["ratios"]
    md = "\n".join(lines) + "\n\n"
    md += (f"Sentences/s, MR fold-0 test sentences ({r['texts']:,} distinct, ~{r['words_per_text']:.0f} words; "
           f"end to end = predict_proba incl. preprocessing), best of {r['repeats']}, {r['threads']} threads. "
           f"ONNX fp32 / eager **{q['onnx_vs_eager']:.1f}x**, int8 / eager **{q['int8_vs_eager']:.1f}x**, "
           f"TextCNN best / MiniLM **{q['textcnn_vs_minilm']:.0f}x** (goal >= {GOAL_RATIO:.0f}x); best TextCNN "
           f"{q['textcnn_best']:,.0f} sentences/s (goal >= {GOAL_RATE:,}). int8 accuracy change on MR fold 0: "
           f"{r['int8_accuracy_change'] * 100:+.2f} points"
           + (f", SST-2 test: {r['sst2']['int8_accuracy_change'] * 100:+.2f}" if r.get("sst2") else "")
           + f". MiniLM: {r['minilm']}.\n\n")
    md += f"Command: `python bench/inference_speed.py`, {r['date']}, {r['machine']}.\n"
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=None, help="a trained TextCNN directory (default: train one)")
    ap.add_argument("--minilm-dir", default=None, help="a fine-tuned MiniLM directory (default: packaged, fresh head)")
    ap.add_argument("--sst2-dir", default=None, help="a TextCNN trained on SST-2: int8 accuracy change on its test")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--out-dir", default="runs/bench-inference")
    ap.add_argument("--results", default="bench/results/inference_speed.json")
    ap.add_argument("--limit", type=int, default=None, help="test sentences (smoke runs: also a 1-epoch TextCNN)")
    ap.add_argument("--min-sentences", type=int, default=10_000, help="texts repeated up to this many per measurement")
    ap.add_argument("--batch1-sentences", type=int, default=500, help="texts for the batch-1 rows")
    ap.add_argument("--minilm-sentences", type=int, default=1_067, help="texts for the MiniLM rows")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: all cores)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the ONNX end-to-end path")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    console = Console(stderr=True)

    cfg = resolve_config(None, [], data="mr", fold=0, data_dir=args.data_dir)
    test = load_splits(cfg).test
    if args.limit:
        test = random.Random(args.seed).sample(test, min(len(test), args.limit))
    distinct, gold = [ex.text for ex in test], [ex.label for ex in test]
    texts = distinct * max(1, -(-args.min_sentences // len(distinct)))  # ceil
    if args.limit:
        texts = texts[: max(args.limit, len(distinct))]
    one = distinct[: args.batch1_sentences]

    model_dir = Path(args.model_dir) if args.model_dir else train_textcnn(args, console)
    onnx_dir, plain_dir = Path(args.out_dir) / "onnx", Path(args.out_dir) / "onnx-unfolded"
    exported = export_onnx_detailed(model_dir, onnx_dir, quantize="int8")
    console.print(exported.parity.summary())
    export_onnx_detailed(model_dir, plain_dir, fold_embeddings=False)

    eager = wordconv.load(model_dir)
    fp32 = OnnxPredictor.load(onnx_dir, threads=threads)
    int8 = OnnxPredictor.load(onnx_dir, quantized=True, threads=threads)
    plain = OnnxPredictor.load(plain_dir, threads=threads)
    rows = [measure("TextCNN, PyTorch eager", eager, texts, one, args, torch_model=eager.model),
            measure("TextCNN, ONNX fp32", fp32, texts, one, args),
            measure("TextCNN, ONNX int8", int8, texts, one, args),
            measure("TextCNN, ONNX fp32 without the embedding fold", plain, texts, one, args)]
    if threads > 1:  # ONNX Runtime's spinning thread pool can lose to one thread on a busy machine
        torch.set_num_threads(1)
        rows.append(measure("TextCNN, ONNX fp32, 1 thread", OnnxPredictor.load(onnx_dir, threads=1), texts, one, args))
        torch.set_num_threads(threads)
    accuracy = {"TextCNN, PyTorch eager": eager.evaluate(distinct, gold)["accuracy"],
                "TextCNN, ONNX fp32": fp32.evaluate(distinct, gold)["accuracy"],
                "TextCNN, ONNX int8": int8.evaluate(distinct, gold)["accuracy"],
                "TextCNN, ONNX fp32 without the embedding fold": plain.evaluate(distinct, gold)["accuracy"],
                "TextCNN, ONNX fp32, 1 thread": fp32.evaluate(distinct, gold)["accuracy"]}
    for row in rows:
        row["accuracy"] = accuracy.get(row["row"])

    sst2 = None
    if args.sst2_dir:
        scfg = resolve_config(None, [], data="sst2", data_dir=args.data_dir)
        stest = load_splits(scfg).test
        s_texts, s_gold = [ex.text for ex in stest], [ex.label for ex in stest]
        s_out = Path(args.out_dir) / "onnx-sst2"
        export_onnx_detailed(args.sst2_dir, s_out, quantize="int8")
        s_fp32 = wordconv.load(args.sst2_dir).evaluate(s_texts, s_gold)["accuracy"]
        s_int8 = OnnxPredictor.load(s_out, quantized=True).evaluate(s_texts, s_gold)["accuracy"]
        sst2 = {"accuracy": s_fp32, "int8_accuracy": s_int8, "int8_accuracy_change": s_int8 - s_fp32}

    minilm, minilm_kind = minilm_peer(args)
    m_texts = distinct[: args.minilm_sentences]
    m_row = measure(f"MiniLM-L6 ({minilm_kind}), PyTorch eager", minilm, m_texts, one[:50], args,
                    torch_model=minilm.model)
    m_row["accuracy"] = minilm.evaluate(distinct, gold)["accuracy"] if args.minilm_dir else None
    rows.append(m_row)

    by = {r["row"]: r for r in rows}
    textcnn_best = max(r["end_to_end"] for r in rows if r["row"].startswith("TextCNN"))
    result = {
        "rows": rows, "texts": len(distinct), "sentences_per_measurement": len(texts),
        "words_per_text": sum(len(t.split()) for t in distinct) / len(distinct),
        "ratios": {"onnx_vs_eager": by["TextCNN, ONNX fp32"]["end_to_end"] / by["TextCNN, PyTorch eager"]["end_to_end"],
                   "int8_vs_eager": by["TextCNN, ONNX int8"]["end_to_end"] / by["TextCNN, PyTorch eager"]["end_to_end"],
                   "textcnn_vs_minilm": textcnn_best / m_row["end_to_end"], "textcnn_best": textcnn_best},
        "int8_accuracy_change": accuracy["TextCNN, ONNX int8"] - accuracy["TextCNN, PyTorch eager"],
        "sst2": sst2, "minilm": minilm_kind, "parity": exported.parity.to_dict(),
        "int8_parity": exported.int8_parity.to_dict() if exported.int8_parity else None,
        "model_dir": str(model_dir), "limit": args.limit, "repeats": args.repeats, "threads": threads,
        "date": str(date.today()), "machine": machine(),
    }
    q = result["ratios"]
    console.print(f"ONNX fp32 / eager {q['onnx_vs_eager']:.2f}x, int8 / eager {q['int8_vs_eager']:.2f}x, TextCNN best "
                  f"/ MiniLM {q['textcnn_vs_minilm']:.1f}x; best TextCNN {textcnn_best:,.0f} sentences/s "
                  f"(goals: >= {GOAL_RATE:,} and >= {GOAL_RATIO:.0f}x)")
    if args.profile:
        console.print(profile_onnx(fp32, distinct))
    print(table(result))
    if not args.limit:
        path = Path(args.results)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        if not args.no_write:
            write_between(table(result), BEGIN, END, HEADING)


if __name__ == "__main__":
    main()
