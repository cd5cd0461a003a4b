"""Choose ``embeddings.lr_scale`` on dev: each config x data x seed is trained once, its best-epoch dev
accuracy and its test accuracy appended as a JSON line (an interrupted sweep continues).

    python bench/lr_scale_sweep.py --data sst2,trec --seeds 13,14,15 \\
        "embeddings.mode=non-static" "embeddings.mode=non-static;embeddings.lr_scale=0.3" \\
        "embeddings.mode=non-static;embeddings.lr_scale=0.1" "embeddings.mode=multichannel" \\
        "embeddings.mode=multichannel;embeddings.lr_scale=0.3" "embeddings.mode=multichannel;embeddings.lr_scale=0.1"

Each config is ``;``-separated overrides on wordconv's defaults with the IMDB word2vec vectors of
``bench/cnn_family.py``.  The choice is made on the dev column; the test column is reported by the
CNN-family table (``bench/cnn_family.py``), which reruns the chosen rows.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rich.console import Console

from cnn_family import w2v_vectors  # bench/ is on sys.path
from wordconv.pipeline import evaluate_examples, fit, load_splits, resolve_config


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+", help='";"-separated overrides, e.g. "embeddings.mode=non-static;embeddings.lr_scale=0.1"')
    ap.add_argument("--data", default="sst2,trec", help="comma-separated; mr0..mr9 for MR folds")
    ap.add_argument("--seeds", default="13,14,15")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--w2v", default=None, help="300-d vectors (default: bench/cnn_family.py's, trained once); "
                    "'none': no pretrained vectors (wordconv's default CNN-rand)")
    ap.add_argument("--out", default="bench/results/lr_scale_sweep.jsonl")
    args = ap.parse_args(argv)
    w2v = args.w2v or str(w2v_vectors(args.data_dir, Console()))
    vectors = [] if w2v == "none" else [f"embeddings.vectors={w2v}"]
    out = Path(args.out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["data"], r["fold"], r["seed"], tuple(r["sets"])))
    for config in args.configs:
        sets = config.split(";") if config else []
        for name in args.data.split(","):
            data, fold = (("mr", int(name[2:] or 0)) if name.startswith("mr") else (name, None))
            for seed in (int(s) for s in args.seeds.split(",")):
                if (data, fold, seed, tuple(sets)) in done:
                    continue
                cfg = resolve_config(None, ["training.progress=false", *vectors, *sets],
                                     data=data, fold=fold, seed=seed, data_dir=args.data_dir)
                t0 = time.perf_counter()
                splits = load_splits(cfg)
                art, res = fit(cfg, splits, Console(stderr=True, quiet=True))
                metrics, _ = evaluate_examples(art, splits.test, "test")
                best = res.history[res.best_epoch - 1]
                r = {"data": data, "fold": fold, "seed": seed, "sets": sets, "test": metrics["accuracy"] * 100,
                     "dev": best["dev_accuracy"] * 100, "best_epoch": res.best_epoch,
                     "epochs": len(res.history), "sec": round(time.perf_counter() - t0, 1)}
                print(json.dumps(r), flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                with out.open("a") as f:
                    f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
