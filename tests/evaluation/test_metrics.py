import math

import pytest

from wordconv.evaluation.metrics import classification_metrics


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
