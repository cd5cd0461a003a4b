"""Predictor: the one prediction path used by the Python API, the CLI and (later) the server.

It loads a model directory once, applies exactly the preprocessing saved with the model,
validates input, batches by length and returns typed results in input order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from wordconv.data.readers import Example
from wordconv.data.text import Preprocessor
from wordconv.errors import DataError


@dataclass
class Prediction:
    label: str
    score: float  # probability of `label`
    probabilities: dict[str, float]  # every label, in the model's label order
    top_k: list[tuple[str, float]]  # the k most probable labels, best first

    def to_dict(self) -> dict:
        d = asdict(self)
        d["top_k"] = [{"label": lab, "score": s} for lab, s in self.top_k]
        return d


class Predictor:
    """A trained model ready to predict: ``wordconv.load(dir)`` and ``wordconv.train(...)`` return one."""

    def __init__(self, artifact, path: Path | None = None):
        from wordconv.pipeline import make_task

        self.artifact = artifact
        self.path = path
        self.config = artifact.config
        self.labels: list[str] = list(artifact.labels)
        self.model = artifact.model.eval()
        self._pre = Preprocessor(artifact.config.preprocessing)
        self._task = make_task(artifact.config, self.labels)

    @classmethod
    def load(cls, path: str | Path) -> "Predictor":
        from wordconv.modeldir import load_artifact

        return cls(load_artifact(path), Path(path))

    @property
    def metrics(self) -> dict | None:
        return self.artifact.metrics

    @property
    def meta(self) -> dict:
        return self.artifact.meta

    def _validate(self, texts: Iterable[str]) -> list[str]:
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise DataError(f"text {i}: expected a string, got {type(t).__name__}")
            if not t.strip():
                raise DataError(f"text {i} is empty: give at least one word")
        return texts

    def predict_proba(self, texts: Sequence[str] | str, batch_size: int = 256) -> torch.Tensor:
        """Probabilities ``(N, C)`` in input order; columns follow ``self.labels``."""
        texts = self._validate(texts)
        if not texts:
            return torch.empty(0, len(self.labels))
        data = self._task.encode([Example(t) for t in texts], self._pre, self.artifact.vocab,
                                 self.model.encoder.min_length, "input", with_labels=False)
        probs, _ = self._task.predict_proba(self.model, data, batch_size)
        return probs

    def predict(self, texts: Sequence[str] | str, top_k: int = 1, batch_size: int = 256) -> list[Prediction]:
        """One :class:`Prediction` per text, in input order."""
        probs = self.predict_proba(texts, batch_size)
        k = max(1, min(top_k, len(self.labels)))
        out = []
        for row in probs.tolist():
            ranked = sorted(range(len(row)), key=lambda j: -row[j])[:k]
            best = ranked[0]
            out.append(Prediction(label=self.labels[best], score=row[best],
                                  probabilities=dict(zip(self.labels, row)),
                                  top_k=[(self.labels[j], row[j]) for j in ranked]))
        return out

    def evaluate(self, texts: Sequence[str], labels: Sequence[str]) -> dict:
        """Metrics of this model on labelled texts (labels by name)."""
        from wordconv.pipeline import evaluate_examples

        if len(texts) != len(labels):
            raise DataError(f"{len(texts)} texts but {len(labels)} labels: give one label per text")
        examples = [Example(t, lab, f"item {i}") for i, (t, lab) in enumerate(zip(self._validate(texts), labels))]
        metrics, _ = evaluate_examples(self.artifact, examples, "input")
        return metrics

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        from wordconv.modeldir import save_artifact

        out = save_artifact(path, self.artifact, overwrite=overwrite)
        self.path = Path(out)
        return out

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"<wordconv Predictor {self.config.model.type} [{', '.join(self.labels)}]{where}>"
