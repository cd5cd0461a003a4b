"""Classification metrics: pure functions over label ids, computed with scikit-learn.

F1 is the harmonic mean of precision and recall, 2PR / (P + R), per class; macro averages the
per-class F1, micro pools all decisions (equal to accuracy for single-label classification),
weighted averages per-class F1 by support.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, per-class and averaged precision/recall/F1, and the confusion matrix.

    ``y_true``/``y_pred`` are ids into ``labels``.  Classes absent from both get zero scores
    (scikit-learn's ``zero_division=0``) rather than a warning.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    ids = list(range(len(labels)))
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    out: dict = {"accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0, "n": int(len(y_true))}
    for avg in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=ids, average=avg, zero_division=0)
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = float(p), float(r), float(f)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, average=None, zero_division=0)
    out["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(labels)
    }
    out["labels"] = list(labels)
    out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=ids).tolist()
    return out




def headline(metrics: dict) -> dict:
    """The scalar metrics worth a line in a log or history file."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "n"}
