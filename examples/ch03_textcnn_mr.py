"""Chapter 3: Kim's TextCNN on MR — training, the learning curve, the confusion matrix.

``wordconv.train`` reads MR from the registry (10-fold CV, fold 0), trains, keeps the best dev
epoch, evaluates on the fold's test part and writes a model directory with ``learning_curve.png``
and ``confusion_matrix.png``.  Without ``--small`` this is exactly ``make demo`` (Kim's defaults;
BENCHMARKS.md: 77.60 on fold 0); with ``--small`` the model is tiny and trains for 2 epochs (batch 100, lr 3e-3).

    python examples/ch03_textcnn_mr.py [--small] [--out DIR]
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wordconv
from _common import check_png, out_dir, parse_args


def main() -> None:
    args = parse_args(__doc__)
    out = out_dir(args, "ch03")
    overrides = {"embeddings.dim": 32, "model.num_filters": 16, "training.batch_size": 100,
                 "training.lr": 3.0e-3} if args.small else {}
    model = wordconv.train("mr", "textcnn", out / "model", fold=0, epochs=2 if args.small else None, seed=13,
                           overrides=overrides, overwrite=True, progress=False)

    history = [json.loads(line) for line in (out / "model" / "history.jsonl").read_text().splitlines()]
    for row in history:
        print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, dev accuracy {row['dev_accuracy']:.4f}, "
              f"dev macro F1 {row['dev_f1_macro']:.4f}")
    m = model.metrics
    print(f"test accuracy {m['accuracy']:.4f}, macro F1 {m['f1_macro']:.4f} on {sum(map(sum, m['confusion_matrix']))} "
          f"test sentences; confusion matrix (rows gold {m['labels']}): {m['confusion_matrix']}")
    assert m["accuracy"] > (0.6 if args.small else 0.75), m["accuracy"]  # chance is 0.5 on MR
    assert len(history) >= 1
    check_png(out / "model" / "learning_curve.png")
    check_png(out / "model" / "confusion_matrix.png")

    again = wordconv.load(out / "model")  # the directory is the model: same predictions after loading
    probe = ["a gripping, funny and moving film", "a dull, lifeless waste of time"]
    assert [p.label for p in again.predict(probe)] == [p.label for p in model.predict(probe)]
    print(f"plots: {out / 'model' / 'learning_curve.png'}, {out / 'model' / 'confusion_matrix.png'}")


if __name__ == "__main__":
    main()
