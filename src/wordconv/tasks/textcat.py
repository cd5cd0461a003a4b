"""Text classification (sentiment, topic, question type ...): one label per text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wordconv.config import DEFAULT_METRIC
from wordconv.data.readers import Example
from wordconv.errors import ConfigError, DataError
from wordconv.evaluation.metrics import classification_metrics
from wordconv.inference import Prediction
from wordconv.models.base import Encoder
from wordconv.tasks.base import EncodedTexts, PooledTask

__all__ = ["EncodedTexts", "TextClassification", "TextClassifier"]


class TextClassifier(nn.Module):
    """encoder -> pooled (B, H) -> dropout -> linear (B, C); Kim's max-norm on the output weights."""

    def __init__(self, encoder: Encoder, num_classes: int, dropout: float, max_norm: float | None,
                 class_weights: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(encoder.output_dim, num_classes)
        self.max_norm = max_norm
        self.label_smoothing = label_smoothing
        self.register_buffer("class_weights", class_weights, persistent=False)

    # set by ``wordconv distill`` while the model learns from a teacher: {"loss", "temperature", "alpha"}
    distill: dict | None = None

    def forward(self, ids: torch.Tensor, labels: torch.Tensor | None = None, teacher: torch.Tensor | None = None,
                **_) -> dict[str, torch.Tensor]:
        """``teacher``: (B, C) teacher logits (distillation); ``labels`` may then hold -1 for texts
        without a gold label."""
        pooled = self.encoder(ids).pooled  # (B, H)
        logits = self.output(self.dropout(pooled))  # (B, C)
        out = {"logits": logits}
        if teacher is not None and self.distill is not None:
            from wordconv.distillation import distillation_loss

            out["loss"] = distillation_loss(logits, teacher, labels, **self.distill)
        elif labels is not None:
            out["loss"] = F.cross_entropy(logits, labels, weight=self.class_weights,
                                          label_smoothing=self.label_smoothing)
        return out

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Kim (2014): rescale each class's weight vector to l2 norm <= max_norm after a step."""
        if self.max_norm is not None:
            self.output.weight.copy_(torch.renorm(self.output.weight, p=2, dim=0, maxnorm=self.max_norm))


class TextClassification(PooledTask):
    name = "textcat"
    default_metric = DEFAULT_METRIC["textcat"]

    def __init__(self, labels: Sequence[str], *, dropout: float = 0.5, max_norm: float | None = None,
                 class_weights: list[float] | None = None, label_smoothing: float = 0.0):
        if len(labels) < 2:
            raise DataError(f"text classification needs at least 2 labels, found {list(labels)}: "
                            "check the label column/field of the training data")
        self.labels = list(labels)
        self.label_index = {name: i for i, name in enumerate(self.labels)}
        self.dropout, self.max_norm = dropout, max_norm
        self.class_weights = class_weights
        self.label_smoothing = label_smoothing

    def build_model(self, encoder: Encoder) -> TextClassifier:
        self.check_encoder(encoder)
        weights = torch.tensor(self.class_weights, dtype=torch.float32) if self.class_weights else None
        if weights is not None and len(weights) != len(self.labels):
            raise ConfigError(f"training.class_weights has {len(weights)} values for {len(self.labels)} labels "
                              f"({', '.join(self.labels)})")
        return TextClassifier(encoder, len(self.labels), self.dropout, self.max_norm, weights, self.label_smoothing)

    def label_ids(self, examples: Sequence[Example], split: str) -> list[int]:
        out = []
        for ex in examples:
            if ex.label not in self.label_index:
                where = ex.source or split
                raise DataError(f"{where}: label {ex.label!r} was not seen in training (known labels: "
                                f"{', '.join(self.labels)}); fix the label or retrain with it in the training data")
            out.append(self.label_index[ex.label])
        return out

    targets = label_ids

    def example(self, text: str, gold: Any, source: str) -> Example:
        return Example(text, str(gold), source)

    @staticmethod
    def balanced_weights(label_ids: Sequence[int], num_classes: int) -> list[float]:
        """scikit-learn's 'balanced' heuristic: n / (k * count_c)."""
        counts = Counter(label_ids)
        n = len(label_ids)
        return [n / (num_classes * counts[c]) if counts[c] else 0.0 for c in range(num_classes)]

    @torch.no_grad()
    def predict_proba(self, model: TextClassifier, data: EncodedTexts, batch_size: int) -> tuple[torch.Tensor, float]:
        """Class probabilities (N, C) in example order, and the mean loss when labels are known."""
        model.eval()
        probs = torch.empty(len(data), len(self.labels))
        total_loss, n = 0.0, 0
        for batch in data.batches(batch_size, shuffle=False):
            out = model(**batch)
            probs[batch["index"]] = torch.softmax(out["logits"].float(), dim=-1).cpu()
            if "loss" in out:
                total_loss += float(out["loss"]) * len(batch["index"])
                n += len(batch["index"])
        return probs, (total_loss / n if n else float("nan"))

    def evaluate(self, model: TextClassifier, data: EncodedTexts, batch_size: int) -> tuple[dict, list[int]]:
        probs, loss = self.predict_proba(model, data, batch_size)
        preds = probs.argmax(dim=1).tolist()
        metrics = classification_metrics(data.labels, preds, self.labels)
        metrics["loss"] = loss
        return metrics, preds

    def predict(self, model: TextClassifier, data: EncodedTexts, batch_size: int, top_k: int = 1) -> list[Prediction]:
        """The most probable label of each text, its probability, every label's, and the top ``top_k``."""
        probs, _ = self.predict_proba(model, data, batch_size)
        k = max(1, min(top_k, len(self.labels)))
        out = []
        for row in probs.tolist():
            ranked = sorted(range(len(row)), key=lambda j: -row[j])[:k]
            best = ranked[0]
            out.append(Prediction(label=self.labels[best], score=row[best],
                                  probabilities=dict(zip(self.labels, row)),
                                  top_k=[(self.labels[j], row[j]) for j in ranked]))
        return out
