"""A scikit-learn-style estimator over in-memory texts: ``TextClassifier().fit(X, y).predict(X)``.

``__init__`` only stores settings; ``fit`` validates and trains through the same pipeline and
Trainer as ``wordconv train``; ``predict`` refuses an unfitted model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from wordconv.data.readers import Example
from wordconv.data.registry import DatasetSplits
from wordconv.data.splits import carve_dev
from wordconv.errors import DataError, ModelError


class TextClassifier:
    """Train a word CNN on lists of texts and labels.

    >>> clf = TextClassifier("textcnn", epochs=5).fit(texts, labels)   # doctest: +SKIP
    >>> clf.predict(["a gripping film"])                              # doctest: +SKIP
    ['positive']

    ``overrides`` are dotted config keys, e.g. ``{"model.num_filters": 200, "training.lr": 5e-4}``.
    """

    def __init__(self, model: str = "textcnn", *, epochs: int | None = None, seed: int | None = None,
                 overrides: dict[str, Any] | None = None, progress: bool = False):
        self.model = model
        self.epochs = epochs
        self.seed = seed
        self.overrides = dict(overrides or {})
        self.progress = progress
        self.predictor_ = None

    @staticmethod
    def _examples(texts: Sequence[str], labels: Sequence[Any], name: str) -> list[Example]:
        if isinstance(texts, str):
            raise DataError(f"{name}: expected a list of texts, got one string")
        if len(texts) != len(labels):
            raise DataError(f"{name}: {len(texts)} texts but {len(labels)} labels; give one label per text")
        out = []
        for i, (text, label) in enumerate(zip(texts, labels)):
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{name} item {i}: text is empty or not a string")
            out.append(Example(text, str(label), f"{name} item {i}"))
        return out

    def fit(self, texts: Sequence[str], labels: Sequence[Any], dev_texts: Sequence[str] | None = None,
            dev_labels: Sequence[Any] | None = None) -> "TextClassifier":
        """Train; without a dev set, 10% of the data is held out (seeded) to pick the best epoch."""
        from wordconv.inference import Predictor
        from wordconv.pipeline import fit, resolve_config

        cfg = resolve_config(None, self.overrides, model=self.model, epochs=self.epochs, seed=self.seed,
                             progress=self.progress)
        train = self._examples(texts, labels, "train")
        if dev_texts is not None:
            dev = self._examples(dev_texts, dev_labels if dev_labels is not None else [], "dev")
        else:
            train, dev = carve_dev(train, cfg.data.dev_fraction, cfg.data.split_seed)
        classes = sorted({ex.label for ex in train})
        unknown = {ex.label for ex in dev} - set(classes)
        if unknown:
            raise DataError(f"dev labels {sorted(unknown)} do not occur in the training labels {classes}")
        splits = DatasetSplits(name="in-memory", train=train, dev=dev, test=[], labels=classes, files={},
                               split_note=f"in-memory data; dev: {len(dev)} examples")
        art, _ = fit(cfg, splits, Console(stderr=True, quiet=not self.progress))
        self.predictor_ = Predictor(art)
        return self

    @property
    def classes_(self) -> list[str]:
        """The labels, in the order of ``predict_proba``'s columns."""
        return self._fitted().labels

    def _fitted(self):
        if self.predictor_ is None:
            raise ModelError("this TextClassifier is not fitted yet: call fit(texts, labels) first")
        return self.predictor_

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label of each text."""
        return [p.label for p in self._fitted().predict(texts)]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, C) probabilities; columns follow ``classes_``."""
        return self._fitted().predict_proba(texts).numpy()

    def score(self, texts: Sequence[str], labels: Sequence[Any]) -> float:
        """Accuracy, as scikit-learn classifiers define ``score``."""
        predicted = self.predict(texts)
        return float(np.mean([p == str(y) for p, y in zip(predicted, labels)]))

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write a model directory that ``wordconv.load`` (and the CLI) reads."""
        return self._fitted().save(path, overwrite=overwrite)
