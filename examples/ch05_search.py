"""Chapter 5: grid search and random search over a TextCNN's hyperparameters (``wordconv.tune``).

Both searches train every trial through the same ``fit()`` as ``wordconv train`` and score it on
dev.  The grid tries every combination once; random search draws from ranges (a continuous learning
rate, a dropout), which covers each dimension more finely for the same number of trials (Bergstra &
Bengio 2012).  Each study writes ``trials.csv``, ``best_config.yaml`` and ``optimization_history.png``.
With ``--small`` the data is a 600-sentence MR sample (written under the output folder) and each
trial trains a tiny model for 1 epoch; BENCHMARKS.md has the 25-trial search on the whole of MR.

    python examples/ch05_search.py [--small] [--out DIR]
"""

import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wordconv
from wordconv.data.registry import load_data
from _common import check_png, out_dir, parse_args, sample


def write_jsonl(path: Path, examples) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps({"text": e.text, "label": e.label}) + "\n")
    return str(path)


def main() -> None:
    args = parse_args(__doc__)
    out = out_dir(args, "ch05")
    mr = load_data("mr", fold=0)
    if args.small:  # a sample of MR as files (the registry set itself is used without --small)
        data = write_jsonl(out / "mr-train.jsonl", sample(mr.train, 600))
        fixed = {"data.dev_path": write_jsonl(out / "mr-dev.jsonl", sample(mr.dev, 300)),
                 "data.test_path": write_jsonl(out / "mr-test.jsonl", sample(mr.test, 100)),
                 "embeddings.dim": 32, "training.threads": 1}
        epochs, trials = 1, 3
    else:
        data, fixed, epochs, trials = "mr", {}, None, 12

    grid = {"model.num_filters": {"type": "choice", "values": [8, 16] if args.small else [50, 100]},
            "training.lr": {"type": "choice", "values": [3.0e-3, 1.0e-2]}}
    g = wordconv.tune(data, "textcnn", grid, trials=4, sampler="grid", output=out / "grid", epochs=epochs,
                      overrides=fixed, pruner="none", seed=13, progress=False)
    tried = sorted((row["params"]["model.num_filters"], row["params"]["training.lr"]) for row in g.table)
    print("grid trials:", [(r["number"], r["params"], round(r["value"], 4)) for r in g.table])
    assert tried == sorted(itertools.product(grid["model.num_filters"]["values"], grid["training.lr"]["values"]))

    space = {"model.num_filters": {"type": "int", "low": 8 if args.small else 50, "high": 32 if args.small else 300},
             "training.lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-2},
             "model.dropout": {"type": "uniform", "low": 0.3, "high": 0.7}}
    r = wordconv.tune(data, "textcnn", space, trials=trials, sampler="random", output=out / "random",
                      epochs=epochs, overrides=fixed, pruner="none", seed=13, progress=False)
    print("random trials:", [(t["number"], {k: round(v, 5) for k, v in t["params"].items()}, round(t["value"], 4))
                             for t in r.table])
    for t in r.table:
        assert 1.0e-3 <= t["params"]["training.lr"] <= 1.0e-2 and 0.3 <= t["params"]["model.dropout"] <= 0.7
    assert len({t["params"]["training.lr"] for t in r.table}) == len(r.table)  # continuous: no two alike

    for study in (g, r):
        values = [t["value"] for t in study.table if t["state"] == "complete"]
        assert study.best_value == max(values), (study.best_value, values)
        assert all(0.0 <= v <= 1.0 for v in values)
        assert (study.output / "best_config.yaml").is_file()
        check_png(study.output / "optimization_history.png")
        print(f"{study.output.name}: best dev {study.metric} {study.best_value:.4f} with {study.best_params}")
    print(f"plots: {g.output / 'optimization_history.png'}, {r.output / 'optimization_history.png'}")


if __name__ == "__main__":
    main()
