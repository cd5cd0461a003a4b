"""Metrics: pure functions over gold and predicted values, computed with scikit-learn and SciPy.

F1 is the harmonic mean of precision and recall, 2PR / (P + R), per class; macro averages the
per-class F1, micro pools all decisions (equal to accuracy for single-label classification),
weighted averages per-class F1 by support.  Multi-label metrics work on indicator matrices
(texts x labels); regression metrics on real values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, hamming_loss, precision_recall_fscore_support

# metrics where a smaller value is better; every other metric is better when larger
LOWER_IS_BETTER = frozenset({"loss", "mse", "mae", "rmse", "hamming_loss"})


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


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


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str],
                       thresholds: Sequence[float] | None = None) -> dict:
    """Subset accuracy, Hamming loss, micro/macro/weighted/samples P/R/F1 and per-label scores.

    ``y_true``/``y_pred`` are 0/1 indicator matrices ``(N, C)``, columns following ``labels``.
    ``accuracy`` is subset accuracy (a text counts only when its whole label set is right);
    ``hamming_loss`` the fraction of wrong (text, label) decisions.  Micro/macro/weighted use
    ``zero_division=0`` as single-label classification does (a label never gold nor predicted
    scores 0).  The samples average (per text, then averaged) scores a text with no gold and no
    predicted labels as 1 (``zero_division=1``): "nothing to find, nothing claimed" is right.
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1, len(labels))
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1, len(labels))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    n = len(y_true)
    out: dict = {"accuracy": float(accuracy_score(y_true, y_pred)) if n else 0.0,
                 "hamming_loss": float(hamming_loss(y_true, y_pred)) if n else 0.0, "n": int(n)}
    if not n:
        return out | {f"{m}_{avg}": 0.0 for m in ("precision", "recall", "f1")
                      for avg in ("macro", "micro", "weighted", "samples")} | {"per_class": {}, "labels": list(labels)}
    for avg in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = float(p), float(r), float(f)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="samples", zero_division=1.0)
    out["precision_samples"], out["recall_samples"], out["f1_samples"] = float(p), float(r), float(f)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    out["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i]),
               **({"threshold": float(thresholds[i])} if thresholds is not None else {})}
        for i, name in enumerate(labels)
    }
    out["labels"] = list(labels)
    out["cardinality"] = {"gold": float(y_true.sum(axis=1).mean()), "predicted": float(y_pred.sum(axis=1).mean())}
    return out


def best_f1_threshold(probs: Sequence[float], gold: Sequence[int], default: float = 0.5) -> tuple[float, float]:
    """The decision threshold (predict positive when ``p >= t``) that maximises F1 on one label.

    F1 changes only where the threshold passes an observed probability, so every distinct cut
    is tried exactly (no grid).  The threshold returned lies halfway between the lowest
    probability called positive and the next lower one (0 below the lowest), so that unseen texts
    near the cut are not decided by a hair.  Among equally good cuts the one closest to
    ``default`` wins.  With no positive example, ``(default, nan)``.  Returns (threshold, F1).
    """
    probs = np.asarray(probs, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.int64)
    positives = int(gold.sum())
    if positives == 0 or len(probs) == 0:
        return default, float("nan")
    order = np.argsort(-probs, kind="stable")
    p_sorted, g_sorted = probs[order], gold[order]
    tp = np.cumsum(g_sorted)  # true positives when the top k+1 are called positive
    k = np.arange(1, len(probs) + 1)
    last = np.r_[p_sorted[1:] != p_sorted[:-1], True]  # a cut only between distinct probabilities
    f1 = (2 * tp / (k + positives))[last]  # 2TP / (2TP + FP + FN) = 2TP / (k + P)
    lows = p_sorted[last]  # lowest probability called positive at each cut
    below = np.r_[lows[1:], 0.0]  # the next lower distinct probability
    cuts = (lows + below) / 2
    best = f1.max()
    candidates = np.flatnonzero(np.isclose(f1, best, rtol=0, atol=1e-12))
    chosen = candidates[np.argmin(np.abs(cuts[candidates] - default))]
    return float(cuts[chosen]), float(best)


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float],
                       levels: tuple[int, int] | None = None) -> dict:
    """MSE, MAE, RMSE, Pearson's r and Spearman's rho of predicted against gold values.

    When every gold value is an integer (rating levels such as SST-1's 0..4), the prediction
    rounded half up and clipped to ``levels`` (lowest, highest; default: the gold range) is also
    scored as a class: ``accuracy``, ``f1_macro`` and ``confusion_matrix`` over the levels,
    comparable with a classifier's.  A correlation is NaN when either side is constant.
    """
    from scipy.stats import pearsonr, spearmanr

    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    n = len(y_true)
    err = y_pred - y_true
    mse = float(np.mean(err ** 2)) if n else float("nan")
    out: dict = {"mse": mse, "rmse": math.sqrt(mse) if n else float("nan"),
                 "mae": float(np.mean(np.abs(err))) if n else float("nan"), "n": int(n)}
    constant = n < 2 or np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["pearson"] = float("nan") if constant else float(pearsonr(y_true, y_pred)[0])
        out["spearman"] = float("nan") if constant else float(spearmanr(y_true, y_pred)[0])
    if n and np.all(y_true == np.round(y_true)):
        lo, hi = levels if levels is not None else (int(y_true.min()), int(y_true.max()))
        gold = y_true.astype(np.int64)
        pred = np.clip(np.floor(y_pred + 0.5), lo, hi).astype(np.int64)
        ids = list(range(min(lo, int(gold.min())), max(hi, int(gold.max())) + 1))
        out["accuracy"] = float(np.mean(gold == pred))
        out["f1_macro"] = float(f1_score(gold, pred, labels=ids, average="macro", zero_division=0))
        out["levels"] = ids
        out["confusion_matrix"] = confusion_matrix(gold, pred, labels=ids).tolist()
    return out


def headline(metrics: dict) -> dict:
    """The scalar metrics worth a line in a log or history file."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "n"}
