"""Chapter 4: metrics done right — accuracy, precision, recall and F1 on a real confusion matrix.

F1 is the harmonic mean of precision and recall, per class: F1 = 2PR / (P + R).  The tutorial's
formula put accuracy where precision belongs; this example computes both from the confusion matrix
of a TextCNN trained on TREC (6 question types, unequal sizes) and shows how far they are apart.
It also checks the hand-computed numbers against wordconv's metrics (scikit-learn underneath) and
that micro-averaged F1 equals accuracy for single-label data (so "F1" without "macro" can hide
a weak small class).  Plots: ``confusion_matrix.png`` (from training) and ``per_class_f1.png``.

    python examples/ch04_metrics.py [--small] [--out DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

import wordconv
from _common import check_png, out_dir, parse_args, pyplot


def main() -> None:
    args = parse_args(__doc__)
    out = out_dir(args, "ch04")
    overrides = {"embeddings.dim": 32, "model.num_filters": 16} if args.small else {}
    model = wordconv.train("trec", "textcnn", out / "model", epochs=3 if args.small else None, seed=13,
                           overrides=overrides, overwrite=True, progress=False)
    m = model.metrics
    labels, cm = m["labels"], np.asarray(m["confusion_matrix"], dtype=float)  # rows: gold, columns: predicted
    print("confusion matrix (rows gold, columns predicted):", labels)
    print(cm.astype(int))

    tp = np.diag(cm)
    accuracy = tp.sum() / cm.sum()
    precision = np.divide(tp, cm.sum(axis=0), out=np.zeros_like(tp), where=cm.sum(axis=0) > 0)  # of predicted c
    recall = tp / cm.sum(axis=1)  # of gold c
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    wrong = 2 * accuracy * recall / (accuracy + recall)  # the tutorial's formula: accuracy in place of precision
    print(f"{'class':>6} {'support':>7} {'P':>6} {'R':>6} {'F1':>6} {'F1 with accuracy':>17}")
    for i, name in enumerate(labels):
        print(f"{name:>6} {int(cm[i].sum()):7d} {precision[i]:6.3f} {recall[i]:6.3f} {f1[i]:6.3f} {wrong[i]:17.3f}")
    print(f"accuracy {accuracy:.4f}; macro F1 {f1.mean():.4f}; macro 'F1' with accuracy {wrong.mean():.4f}")

    # the hand-made numbers are wordconv's (scikit-learn's) numbers
    assert abs(accuracy - m["accuracy"]) < 1e-9
    assert abs(f1.mean() - m["f1_macro"]) < 1e-9
    for i, name in enumerate(labels):
        assert abs(f1[i] - m["per_class"][name]["f1"]) < 1e-9
    assert abs(m["f1_micro"] - m["accuracy"]) < 1e-9  # single-label: micro P = micro R = micro F1 = accuracy
    # the point of the chapter: F1 is not accuracy, and the accuracy-based formula is not F1
    assert abs(m["f1_macro"] - m["accuracy"]) > 0.005, (m["f1_macro"], m["accuracy"])
    assert np.abs(wrong - f1).max() > 0.01
    assert accuracy > (0.5 if args.small else 0.85)  # the majority class alone is 0.276 of TREC's test set

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 3.8))
    x = np.arange(len(labels))
    ax.bar(x - 0.3, precision, 0.2, label="precision")
    ax.bar(x - 0.1, recall, 0.2, label="recall")
    ax.bar(x + 0.1, f1, 0.2, label="F1 = 2PR/(P+R)")
    ax.bar(x + 0.3, wrong, 0.2, label="2·acc·R/(acc+R) (wrong)", hatch="//", color="lightgray", edgecolor="gray")
    ax.axhline(accuracy, color="black", lw=1, ls="--", label=f"accuracy {accuracy:.3f}")
    ax.set_xticks(x, [f"{n}\n(n={int(cm[i].sum())})" for i, n in enumerate(labels)])
    ax.set_ylim(0, 1.05)
    ax.set_title(f"TREC test: macro F1 {f1.mean():.3f} vs accuracy {accuracy:.3f}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out / "per_class_f1.png", dpi=90)
    plt.close(fig)
    check_png(out / "per_class_f1.png")
    check_png(out / "model" / "confusion_matrix.png")
    print(f"plots: {out / 'per_class_f1.png'}, {out / 'model' / 'confusion_matrix.png'}")


if __name__ == "__main__":
    main()
