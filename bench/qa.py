"""Extractive QA on SQuAD v1.1 (issue 7): a convolutional reader vs a fine-tuned MiniLM, and open-domain QA.

    python bench/qa.py                                   # every row, reading speed, open-domain
    python bench/qa.py --rows qanet-glove --no-speed --no-open
    python bench/qa.py --rows qanet-glove --epochs 1 --limit 300 --no-write    # smoke run
    python bench/qa.py --rows qanet-glove --no-open --speed-peer DIR   # time DIR (a MiniLM reader) as the peer

Only SQuAD v1.1 dev is available here: the ``squad11`` registry entry splits its 48 articles by
article (seed 13): 36 train (7,845 questions), 4 dev (1,117; picks the best epoch), 8 test (1,608).
Each row trains on the train articles and reports the official EM / F1 on the test articles.  Models
are saved under ``--out-dir/ROW`` and results cached in ``bench/results/qa.json`` (finished rows are
skipped: an interrupted run continues).

Speed: every saved row answers the test questions (given paragraph) through the same
:class:`wordconv.Predictor` path, one after the other in one process with the same threads:
questions/s and the ratio of the convolutional reader over the fine-tuned encoder.

Open-domain: the test questions against all 2,067 paragraphs of the 48 articles.  Retrieval recall@k
(a hit: the question's own paragraph in the top k) for BM25, dense (the packaged MiniLM sentence
encoder) and their fusion; then each reader reads the top ``--top-k`` passages of the best retriever
and the best-scoring span over them is the answer: end-to-end EM / F1 beside the given-paragraph
numbers.  Table between ``<!-- qa:begin -->`` / ``<!-- qa:end -->``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import date
from pathlib import Path

import torch
from rich.console import Console

from benchlib import machine, write_between  # bench/ is on sys.path

import wordconv
from wordconv.pipeline import load_splits, resolve_config

BEGIN, END, HEADING = "<!-- qa:begin -->", "<!-- qa:end -->", "## Extractive question answering (SQuAD v1.1)"
ROWS: dict[str, tuple[str, list[str]]] = {
    # words (GloVe 6B 50d, top 10k, fine-tuned) + char CNN, QANet-style encoder blocks, trained from scratch
    "qanet-glove": ("qanet", ["embeddings.mode=non-static", "embeddings.vectors=glove-6b-50d-10k"]),
    # the packaged MiniLM (uncased), full fine-tuning, windows of 256 sub-tokens; one epoch (~75 min on one
    # core of the 2-core CPU; the GPU script runs more)
    "minilm": ("pretrained", ["model.strategy=full", "training.lr=1e-4", "training.epochs=1"]),
}
GOAL_QANET, GOAL_MINILM = 45.0, 70.0


def _slice(splits, limit: int, folder: Path) -> list[str]:
    """Smoke runs: the first ``limit`` questions of each split as SQuAD files, through the user-file path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, exs in (("train", splits.train), ("dev", splits.dev), ("test", splits.test)):
        articles: dict[str, dict] = {}
        for ex in exs[:limit]:
            art = articles.setdefault(ex.title, {"title": ex.title, "paragraphs": []})
            paras = art["paragraphs"]
            if not paras or paras[-1]["context"] != ex.text:
                paras.append({"context": ex.text, "qas": []})
            paras[-1]["qas"].append({"id": ex.qid, "question": ex.question,
                                     "answers": [{"text": t, "answer_start": s} for t, s in ex.answers]})
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps({"version": "1.1", "data": list(articles.values())}), encoding="utf-8")
    return [f"data.name={paths['train']}", f"data.dev_path={paths['dev']}", f"data.test_path={paths['test']}"]


def run_row(row: str, args, console: Console) -> dict:
    model, sets = ROWS[row]
    out = Path(args.out_dir) / row
    cfg = resolve_config(None, [*sets, *args.sets], data="squad11", model=model, task="qa", seed=args.seed,
                         data_dir=args.data_dir, epochs=args.epochs, progress=not args.quiet)
    t0 = time.perf_counter()
    if args.limit:
        cfg = resolve_config(cfg, _slice(load_splits(cfg), args.limit, Path(args.out_dir) / "slices"))
    pred = wordconv.train(config=cfg, output=out, overwrite=True, console=console)
    m, t = pred.metrics, pred.meta["training"]
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines() if x.strip()]
    return {"row": row, "model": model, "sets": sets + args.sets, "seed": args.seed, "f1": m["f1"],
            "exact_match": m["exact_match"], "questions": m["count"],
            "dev_f1": [round(h["dev_f1"], 2) for h in history if "dev_f1" in h],
            "best_epoch": t["best_epoch"], "epochs": t["epochs_run"], "train_seconds": t["seconds"],
            "parameters": sum(p.numel() for p in pred.model.parameters()),
            "wall_seconds": round(time.perf_counter() - t0, 1), "limit": args.limit,
            "date": str(date.today()), "machine": machine()}


def test_questions(args) -> list:
    cfg = resolve_config(None, [], data="squad11", model="qanet", task="qa", data_dir=args.data_dir)
    return load_splits(cfg).test


def reading_speed(rows: list[str], args) -> dict:
    exs = test_questions(args)
    questions, contexts = [ex.question for ex in exs], [ex.text for ex in exs]
    speeds = {}
    dirs = {row: Path(args.out_dir) / row for row in rows}
    peer = args.speed_peer and "minilm" not in dirs
    if peer:
        # a reader of the same architecture as the minilm row, trained briefly: its reading cost does not
        # depend on its weights (same windows, same forward pass, same decoding)
        dirs["minilm"] = Path(args.speed_peer)
        rows = [*rows, "minilm"]
    for row in rows:
        pred = wordconv.load(dirs[row])
        pred.answer(questions[:64], contexts[:64])  # warm-up
        best = float("inf")
        for _ in range(args.speed_repeats):
            t = time.perf_counter()
            pred.answer(questions, contexts, batch_size=64)
            best = min(best, time.perf_counter() - t)
        speeds[row] = {"questions_per_second": len(exs) / best, "seconds": best}
    conv = [r for r in rows if ROWS[r][0] == "qanet"]
    enc = [r for r in rows if ROWS[r][0] == "pretrained"]
    ratio = None
    if conv and enc:
        ratio = (max(speeds[r]["questions_per_second"] for r in conv)
                 / max(speeds[r]["questions_per_second"] for r in enc))
    return {"questions": len(exs), "rows": speeds, "ratio": ratio, "threads": torch.get_num_threads(),
            "peer": str(args.speed_peer) if peer else None,
            "date": str(date.today()), "machine": machine()}


def open_domain(rows: list[str], args, console: Console, cached: dict | None = None) -> dict:
    from wordconv.evaluation.squad import squad_metrics
    from wordconv.opendomain import read_open
    from wordconv.retrieval import PassageIndex, read_corpus, recall_at_k

    corpus = Path(args.data_dir) / "squad11" / "dev-v1.1.json"
    passages = read_corpus(corpus)
    by_text = {p.text: p.id for p in passages}
    exs = test_questions(args)
    gold = [[by_text[ex.text]] for ex in exs]
    questions = [ex.question for ex in exs]
    result: dict = {"passages": len(passages), "questions": len(exs), "retrieval": {}, "readers": {}}
    if cached and cached.get("retrieval") and not args.rerun:  # the retrieval figures of an earlier run
        result.update({k: cached[k] for k in ("retrieval", "index_seconds", "readers") if k in cached})
    methods = ("bm25", "dense", "hybrid")
    if all(m in result["retrieval"] for m in methods):
        best = max(methods, key=lambda m: result["retrieval"][m][f"recall@{args.top_k}"])
        indexes = {best: PassageIndex.build(passages, method=best, progress=not args.quiet)}
    else:
        t = time.perf_counter()
        hybrid = PassageIndex.build(passages, method="hybrid", progress=not args.quiet)  # BM25 + MiniLM vectors
        result["index_seconds"] = round(time.perf_counter() - t, 1)
        # the same BM25 statistics and passage vectors searched alone (the passages are encoded once)
        indexes = {"bm25": PassageIndex(hybrid.passages, {**hybrid.params, "method": "bm25"}, bm25=hybrid.bm25),
                   "dense": PassageIndex(hybrid.passages, {**hybrid.params, "method": "dense"},
                                         vectors=hybrid.vectors, encoder=hybrid.encoder),
                   "hybrid": hybrid}
        for method, index in indexes.items():
            t = time.perf_counter()
            rec = recall_at_k(index, questions, gold, ks=(1, 5, 20))
            result["retrieval"][method] = {**{f"recall@{k}": v for k, v in rec.items()},
                                           "search_seconds": round(time.perf_counter() - t, 1)}
            console.print(f"{method}: {result['retrieval'][method]}")
    best = max(result["retrieval"], key=lambda m: result["retrieval"][m][f"recall@{args.top_k}"])
    result["retriever"], result["top_k"] = best, args.top_k
    for row in rows:
        pred = wordconv.load(Path(args.out_dir) / row)
        for w in args.rank_weights:
            t = time.perf_counter()
            answers = read_open(pred, indexes[best], questions, k=args.top_k, rank_weight=w)
            m = squad_metrics([a.answer for a in answers], [[t for t, _ in ex.answers] for ex in exs])
            key = row if not w else f"{row} (rank weight {w:g})"
            result["readers"][key] = {"exact_match": m["exact_match"], "f1": m["f1"],
                                      "seconds": round(time.perf_counter() - t, 1)}
            console.print(f"{key} open-domain: {result['readers'][key]}")
    result.update(date=str(date.today()), machine=machine())
    return result


def table(results: dict) -> str:
    lines = ["| row | model | test EM | test F1 | goal F1 | parameters | best epoch / run | train s | questions/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    speed = results.get("speed", {}).get("rows", {})
    for row, r in results["rows"].items():
        if r.get("limit"):
            continue
        sp = speed.get(row, {}).get("questions_per_second")
        goal = GOAL_QANET if r["model"] == "qanet" else GOAL_MINILM
        lines.append(f"| {row} | {r['model']} | {r['exact_match']:.2f} | **{r['f1']:.2f}** | >= {goal:.0f} | "
                     f"{r['parameters']:,} | {r['best_epoch']} / {r['epochs']} | {r['train_seconds']:.0f} | "
                     + (f"{sp:,.1f}" if sp else "-") + " |")
    md = "\n".join(lines) + "\n\n"
    s = results.get("speed")
    if s and s.get("ratio"):
        md += (f"Reading speed (the {s['questions']:,} test questions with their paragraphs, {s['threads']} threads, "
               f"best of the repeats): convolutional reader / fine-tuned MiniLM = **{s['ratio']:.1f}x**. "
               f"{s['date']}, {s['machine']}.")
        if s.get("peer"):
            md += (" The MiniLM timed is a reader of the minilm row's architecture and windows trained only briefly "
                   "(`--speed-peer`): reading cost does not depend on the weights.")
        md += "\n\n"
    o = results.get("open")
    if o:
        md += (f"Open-domain: the {o['questions']:,} test questions against all {o['passages']:,} paragraphs of the "
               f"48 articles (indexing BM25 + MiniLM vectors: {o['index_seconds']:.0f} s).\n\n"
               "| retriever | recall@1 | recall@5 | recall@20 | search s |\n|---|---|---|---|---|\n")
        for method, r in o["retrieval"].items():
            md += (f"| {method} | {r['recall@1'] * 100:.1f} | {r['recall@5'] * 100:.1f} | {r['recall@20'] * 100:.1f} | "
                   f"{r['search_seconds']:.1f} |\n")
        md += (f"\n| reader | given paragraph EM / F1 | open-domain EM / F1 ({o['retriever']}, top {o['top_k']}) |\n"
               "|---|---|---|\n")
        for row, r in o["readers"].items():
            g = results["rows"].get(row.split(" (")[0], {})
            md += (f"| {row} | {g.get('exact_match', 0):.2f} / {g.get('f1', 0):.2f} | "
                   f"{r['exact_match']:.2f} / {r['f1']:.2f} |\n")
        md += "\n"
    rows = [(name, r) for name, r in results["rows"].items() if not r.get("limit")]
    if rows:
        md += ("Command: `python bench/qa.py`. SQuAD v1.1 dev split by article (36 train / 4 dev / 8 test articles, "
               "seed 13); EM / F1 are the official v1.1 script's, max over the gold answers. Rows:\n")
        for name, r in rows:
            others = "".join(f"; seed {o['seed']}: test F1 {o['f1']:.2f}, EM {o['exact_match']:.2f} (dev {o['dev_f1']})"
                             for o in r.get("other_seeds", []))
            note = f" ({r['note']})" if r.get("note") else ""
            md += (f"- {name}: `{r.get('command', 'python bench/qa.py --rows ' + name)}`{note}, seed {r['seed']}, {r['date']}, "
                   f"{r['machine']}; dev F1 by epoch {r['dev_f1']}{others}.\n")
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="questions per split (smoke runs)")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--out-dir", default="runs/bench-qa")
    ap.add_argument("--results", default="bench/results/qa.json")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-open", action="store_true")
    ap.add_argument("--open-only", action="store_true",
                    help="no training and no speed: retrieval, and open-domain reading with the rows already trained")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--rank-weights", type=float, nargs="+", default=[0.0],
                    help="open-domain: also read with span score - W * ln(rank) for each W (0: span score alone)")
    ap.add_argument("--speed-repeats", type=int, default=2)
    ap.add_argument("--speed-peer", default=None,
                    help="a pretrained-reader model dir timed as the minilm row when that row's model is not here")
    ap.add_argument("--rerun", action="store_true", help="train rows again even if cached")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    random.seed(args.seed)
    console = Console(stderr=True)
    path = Path(args.results)
    results = json.loads(path.read_text()) if path.exists() else {"rows": {}}
    for row in [] if args.open_only else args.rows:
        cached = results["rows"].get(row)
        if cached and not args.rerun and cached.get("limit") == args.limit and (Path(args.out_dir) / row).is_dir():
            console.print(f"{row}: cached, F1 {cached['f1']:.2f}")
            continue
        r = run_row(row, args, console)
        results["rows"][row] = r
        console.print(f"[bold]{row}[/]: test EM {r['exact_match']:.2f} F1 {r['f1']:.2f} (dev {r['dev_f1']}), "
                      f"{r['train_seconds']:.0f}s")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1))
    done = [r for r in args.rows if (Path(args.out_dir) / r).is_dir() and r in results["rows"]]
    if not args.no_speed and done and not args.limit and not args.open_only:
        results["speed"] = reading_speed(done, args)
        console.print(results["speed"])
        path.write_text(json.dumps(results, indent=1))
    if not args.no_open and (done or args.open_only) and not args.limit:
        results["open"] = open_domain(done, args, console, results.get("open"))
        path.write_text(json.dumps(results, indent=1))
    print(table(results))
    if not args.no_write and not args.limit:
        write_between(table(results), BEGIN, END, HEADING)


if __name__ == "__main__":
    main()
