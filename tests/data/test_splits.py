"""Tests of wordconv.data.splits: stratified, seeded k-fold and dev carving."""

from __future__ import annotations

from collections import Counter

import pytest

from wordconv.data.readers import Example
from wordconv.data.splits import carve_dev, kfold_indices, split_fold
from wordconv.errors import ConfigError, DataError

# 3 unbalanced classes: 60 / 30 / 13 examples.
LABELS = ["a"] * 60 + ["b"] * 30 + ["c"] * 13
EXAMPLES = [Example(f"text {i}", label, f"f:{i + 1}") for i, label in enumerate(LABELS)]


def test_kfold_is_stratified() -> None:
    k = 10
    folds = kfold_indices(LABELS, k=k, seed=13)
    totals = Counter(LABELS)
    for fold in range(k):
        in_fold = Counter(label for label, f in zip(LABELS, folds) if f == fold)
        for label, total in totals.items():
            assert abs(in_fold[label] - total / k) <= 1, (fold, label, in_fold)


def test_kfold_is_deterministic_and_seeded() -> None:
    first = kfold_indices(LABELS, 10, 13)
    assert first == kfold_indices(list(LABELS), 10, 13)
    assert first != kfold_indices(LABELS, 10, 14)


def test_kfold_ids_cover_every_fold() -> None:
    folds = kfold_indices(LABELS, k=5, seed=1)
    assert len(folds) == len(LABELS)
    assert set(folds) == set(range(5))


def test_folds_partition_the_data() -> None:
    k = 10
    tests = []
    for fold in range(k):
        train, test = split_fold(EXAMPLES, k, fold, seed=13)
        assert len(train) + len(test) == len(EXAMPLES)
        assert not set(train) & set(test)
        assert train == [e for e in EXAMPLES if e in set(train)]  # input order kept
        tests.extend(test)
    assert sorted(tests, key=EXAMPLES.index) == EXAMPLES


@pytest.mark.parametrize("fold", [-1, 10, 11])
def test_split_fold_out_of_range(fold: int) -> None:
    with pytest.raises(ConfigError, match=r"fold .* out of range.*from 0 to 9"):
        split_fold(EXAMPLES, 10, fold, 13)


def test_kfold_needs_two_folds_and_enough_examples() -> None:
    with pytest.raises(ConfigError, match="at least 2 folds"):
        kfold_indices(LABELS, k=1)
    with pytest.raises(DataError, match="needs at least 10 examples, got 3"):
        kfold_indices(["a", "b", "a"], k=10)


def test_split_fold_needs_labels() -> None:
    unlabelled = [*EXAMPLES[:20], Example("no label", None, "u.txt:7")]
    with pytest.raises(DataError, match=r"u\.txt:7: cross-validation needs labelled examples"):
        split_fold(unlabelled, 10, 0, 13)


def test_carve_dev_is_stratified_seeded_and_disjoint() -> None:
    train, dev = carve_dev(EXAMPLES, 0.2, seed=13)
    assert len(dev) == 21 and len(train) == len(EXAMPLES) - 21
    assert not set(train) & set(dev)
    dev_counts = Counter(e.label for e in dev)
    for label, total in Counter(LABELS).items():
        assert abs(dev_counts[label] - total * 0.2) <= 1
    assert (train, dev) == carve_dev(EXAMPLES, 0.2, seed=13)
    assert dev != carve_dev(EXAMPLES, 0.2, seed=14)[1]


def test_carve_dev_falls_back_to_shuffle_for_singleton_class() -> None:
    examples = [*EXAMPLES, Example("lonely", "z", "f:999")]
    train, dev = carve_dev(examples, 0.1, seed=3)
    assert len(dev) == 11 and sorted(train + dev, key=examples.index) == examples
    assert dev == carve_dev(examples, 0.1, seed=3)[1]


def test_carve_dev_edges() -> None:
    assert carve_dev(EXAMPLES, 0.0) == (EXAMPLES, [])
    with pytest.raises(ConfigError, match="dev fraction"):
        carve_dev(EXAMPLES, 1.0)
    with pytest.raises(DataError, match="too few examples"):
        carve_dev(EXAMPLES[:1], 0.1)


def test_stratify_flag_switches_between_stratified_and_plain_splits() -> None:
    import numpy as np
    from sklearn.model_selection import train_test_split

    index = np.arange(len(EXAMPLES))
    _, by_label = train_test_split(index, test_size=21, random_state=13, shuffle=True, stratify=LABELS)
    _, plain = train_test_split(index, test_size=21, random_state=13, shuffle=True)
    assert sorted(by_label.tolist()) != sorted(plain.tolist())
    assert carve_dev(EXAMPLES, 0.2, 13)[1] == [EXAMPLES[i] for i in sorted(by_label.tolist())]
    assert carve_dev(EXAMPLES, 0.2, 13, stratify=False)[1] == [EXAMPLES[i] for i in sorted(plain.tolist())]
    # label sets and real-valued scores have no classes to balance: plain k-fold, even with all labels unique
    folds = kfold_indices([f"{i / 7:.3f}" for i in range(30)], 10, 13, stratify=False)
    assert sorted(Counter(folds).values()) == [3] * 10
    scored = [Example(f"t{i}", f"{i / 7:.3f}", f"f:{i + 1}") for i in range(30)]
    train, test = split_fold(scored, 10, 4, 13, stratify=False)
    assert len(test) == 3 and len(train) == 27


def test_kfold_with_every_class_smaller_than_k_is_a_clear_error():
    with pytest.raises(DataError, match="class with at least 10 examples; the largest has 5"):
        kfold_indices(["a", "b", "c"] * 5, k=10)
