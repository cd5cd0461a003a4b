"""Seeded, stratified data splits: k-fold cross-validation and a dev set carved from training data.

Both use scikit-learn, so a (labels, k, seed) triple always gives the same assignment.  The returned example
lists keep the order of the input.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from wordconv.data.readers import Example
from wordconv.errors import ConfigError, DataError


def kfold_indices(labels: Sequence[str | None], k: int = 10, seed: int = 13, stratify: bool = True) -> list[int]:
    """The fold id (0..k-1) of every example: stratified by label (unless ``stratify`` is False: label sets and
    real-valued targets have no classes to balance), shuffled with ``seed``, deterministic."""
    if k < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got k={k}.")
    if len(labels) < k:
        raise DataError(f"{k}-fold cross-validation needs at least {k} examples, got {len(labels)}; use a smaller k.")
    if stratify and labels:
        from collections import Counter

        largest = max(Counter(labels).values())
        if largest < k:  # scikit-learn cannot stratify: every class is smaller than the number of folds
            raise DataError(f"{k}-fold cross-validation needs a class with at least {k} examples; the largest has "
                            f"{largest} ({len(labels)} examples in all). Pass a test file (--test) or more data.")
    folds = [0] * len(labels)
    splitter = (StratifiedKFold if stratify else KFold)(n_splits=k, shuffle=True, random_state=seed)
    groups = list(labels) if stratify else None
    for fold, (_, test_index) in enumerate(splitter.split(np.zeros(len(labels)), groups)):
        for index in test_index:
            folds[index] = fold
    return folds


def split_fold(
    examples: Sequence[Example], k: int, fold: int, seed: int, stratify: bool = True
) -> tuple[list[Example], list[Example]]:
    """(train, test) for fold ``fold`` of a ``k``-fold split of labelled ``examples`` (stratified by label unless
    ``stratify`` is False)."""
    if not 0 <= fold < k:
        raise ConfigError(f"fold {fold} is out of range for {k}-fold cross-validation; use a fold from 0 to {k - 1}.")
    labels = _labels(examples, "cross-validation") if stratify else [e.label for e in examples]
    folds = kfold_indices(labels, k, seed, stratify)
    train = [example for example, f in zip(examples, folds) if f != fold]
    test = [example for example, f in zip(examples, folds) if f == fold]
    return train, test


def carve_dev(
    examples: Sequence[Example], fraction: float = 0.1, seed: int = 13, stratify: bool = True
) -> tuple[list[Example], list[Example]]:
    """(train, dev) with ``ceil(fraction * n)`` dev examples chosen with ``seed``.

    Stratified by label when every class has at least 2 examples and both parts can hold every class;
    otherwise (for unlabelled examples, or with ``stratify=False``) a plain seeded shuffle.  ``fraction=0``
    gives an empty dev set.
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"the dev fraction must be at least 0 and below 1, got {fraction}.")
    if fraction == 0:
        return list(examples), []
    n_dev = math.ceil(fraction * len(examples))
    if n_dev >= len(examples):
        raise DataError(
            f"too few examples ({len(examples)}) to carve a dev set of {fraction:.0%}; add data or give a dev file."
        )
    labels = [example.label for example in examples]
    counts = Counter(labels)
    by_label = None
    fits = None not in counts and min(counts.values()) >= 2 and min(n_dev, len(examples) - n_dev) >= len(counts)
    if stratify and fits:
        by_label = labels
    _, dev_index = train_test_split(
        np.arange(len(examples)), test_size=n_dev, random_state=seed, shuffle=True, stratify=by_label
    )
    dev_set = set(dev_index.tolist())
    train = [example for index, example in enumerate(examples) if index not in dev_set]
    dev = [example for index, example in enumerate(examples) if index in dev_set]
    return train, dev


def _labels(examples: Sequence[Example], purpose: str) -> list[str]:
    """The labels of ``examples``; DataError naming the first unlabelled example."""
    for example in examples:
        if example.label is None:
            raise DataError(f"{example.source}: {purpose} needs labelled examples, but this one has no label.")
    return [example.label for example in examples]
