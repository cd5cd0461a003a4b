import math

import pytest

from wordconv.evaluation.metrics import (
    best_f1_threshold,
    classification_metrics,
    lower_is_better,
    multilabel_metrics,
    regression_metrics,
)


def test_three_class_hand_computed():
    # gold: a a b b c c ; predicted: a b b b c a
    m = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    pc = m["per_class"]
    # a: TP 1, FP 1 (a c predicted a), FN 1 -> P = R = F1 = 1/2
    assert (pc["a"]["precision"], pc["a"]["recall"], pc["a"]["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    # b: TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 = 2PR/(P+R) = 0.8
    assert (pc["b"]["precision"], pc["b"]["recall"], pc["b"]["f1"]) == pytest.approx((2 / 3, 1.0, 0.8))
    # c: TP 1, FP 0, FN 1 -> P 1, R 1/2, F1 2/3
    assert (pc["c"]["precision"], pc["c"]["recall"], pc["c"]["f1"]) == pytest.approx((1.0, 0.5, 2 / 3))
    assert m["precision_macro"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert m["recall_macro"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["f1_micro"] == pytest.approx(4 / 6)  # single-label: micro F1 == accuracy
    assert m["f1_weighted"] == pytest.approx(m["f1_macro"])  # equal supports
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert [pc[k]["support"] for k in "abc"] == [2, 2, 2]


def test_f1_is_harmonic_not_arithmetic_mean():
    # positive class: P = 1, R = 1/2 -> F1 = 2/3 (the arithmetic mean would say 0.75)
    m = classification_metrics([1, 1, 0, 0], [1, 0, 0, 0], ["neg", "pos"])
    pos = m["per_class"]["pos"]
    assert pos["precision"] == 1.0 and pos["recall"] == 0.5
    assert pos["f1"] == pytest.approx(2 / 3)
    assert not math.isclose(pos["f1"], 0.75)


def test_absent_class_scores_zero_and_weighted_uses_support():
    m = classification_metrics([0, 0, 0, 1], [0, 0, 0, 0], ["x", "y", "z"])
    assert m["per_class"]["z"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # x: P 3/4, R 1, F1 6/7 ; y: 0 ; weighted by support 3:1
    assert m["f1_weighted"] == pytest.approx((3 * 6 / 7 + 0) / 4)


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="3 items but y_pred has 2"):
        classification_metrics([0, 1, 0], [0, 1], ["a", "b"])


def test_multilabel_hand_computed():
    # labels x y z; texts: gold {x,z} pred {x} | gold {y} pred {x,y} | gold {x,y} pred {x,y} | gold {} pred {}
    gold = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]]
    pred = [[1, 0, 0], [1, 1, 0], [1, 1, 0], [0, 0, 0]]
    m = multilabel_metrics(gold, pred, ["x", "y", "z"], thresholds=[0.5, 0.25, 0.75])
    assert m["accuracy"] == pytest.approx(2 / 4)  # subset accuracy: texts 3 and 4 wholly right
    assert m["hamming_loss"] == pytest.approx(2 / 12)  # 2 wrong decisions of 12
    # micro: TP 4, FP 1, FN 1 -> P = R = F1 = 4/5
    assert (m["precision_micro"], m["recall_micro"], m["f1_micro"]) == pytest.approx((0.8, 0.8, 0.8))
    # per label: x TP 2 FP 1 -> F1 4/5; y F1 1; z never predicted -> 0
    assert [m["per_class"][k]["f1"] for k in "xyz"] == pytest.approx([0.8, 1.0, 0.0])
    assert m["f1_macro"] == pytest.approx(1.8 / 3)
    # per text: 2/3, 2/3, 1, and 1 for "nothing to find, nothing claimed"
    assert m["f1_samples"] == pytest.approx((2 / 3 + 2 / 3 + 1 + 1) / 4)
    assert m["per_class"]["z"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "threshold": 0.75}
    assert m["n"] == 4 and m["labels"] == ["x", "y", "z"]


def test_best_f1_threshold_hand_computed():
    # sorted by probability; calling the top k positive gives F1 = 2TP / (k + P), P = 3:
    # k=1: 2/4, k=2: 2/5, k=3: 4/6, k=4: 6/7 (best), k=5: 6/8, k=6: 6/9
    probs = [0.3, 0.9, 0.1, 0.6, 0.4, 0.8]
    gold = [0, 1, 0, 1, 1, 0]
    threshold, f1 = best_f1_threshold(probs, gold)
    assert f1 == pytest.approx(6 / 7)
    assert threshold == pytest.approx((0.4 + 0.3) / 2)  # halfway to the next lower probability
    # never cut between equal probabilities: both 0.7s are in (F1 2/3), not one of them (F1 1 would be a lie)
    assert best_f1_threshold([0.7, 0.7, 0.2], [1, 0, 0]) == pytest.approx(((0.7 + 0.2) / 2, 2 / 3))
    # a tie (top 1 and top 4 both give F1 2/3): the threshold nearer 0.5 wins (0.8, not 0.05)
    assert best_f1_threshold([0.9, 0.7, 0.3, 0.1], [1, 0, 0, 1])[0] == pytest.approx(0.8)
    # every example positive: call them all positive, below the lowest probability
    assert best_f1_threshold([0.2, 0.6], [1, 1]) == pytest.approx((0.1, 1.0))
    threshold, f1 = best_f1_threshold([0.9, 0.1], [0, 0])  # nothing to find: keep the default
    assert threshold == 0.5 and math.isnan(f1)


def test_regression_hand_computed():
    gold = [0, 1, 2, 3]
    pred = [0.4, 1.6, 1.4, 3.0]  # errors .4, .6, -.6, 0
    m = regression_metrics(gold, pred)
    assert m["mse"] == pytest.approx((0.16 + 0.36 + 0.36) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt(0.22))
    assert m["mae"] == pytest.approx(1.6 / 4)
    # deviations from the means (1.5, 1.6): x -1.5 -.5 .5 1.5, y -1.2 0 -.2 1.4 -> r = 3.8 / sqrt(5 * 3.44)
    assert m["pearson"] == pytest.approx(3.8 / math.sqrt(5 * 3.44))
    assert m["spearman"] == pytest.approx(0.8)  # ranks of pred 1 3 2 4: 1 - 6 * 2 / (4 * 15)
    # rounded half up: 0, 2, 1, 3 -> levels 0 and 3 right
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["confusion_matrix"] == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]
    # clipped to the training levels: 7.2 counts as 4, -3 as 0
    assert regression_metrics([4, 0], [7.2, -3.0], levels=(0, 4))["accuracy"] == 1.0
    real = regression_metrics([0.5, 1.25, 2.0], [0.5, 1.0, 2.5])
    assert "accuracy" not in real and real["mae"] == pytest.approx(0.75 / 3)  # no levels: no accuracy
    assert math.isnan(regression_metrics([1, 2, 3], [2.0, 2.0, 2.0])["pearson"])  # constant prediction


def test_lower_is_better():
    assert all(lower_is_better(m) for m in ("loss", "mse", "mae", "rmse", "hamming_loss"))
    assert not any(lower_is_better(m) for m in ("accuracy", "f1_micro", "pearson", "spearman"))
