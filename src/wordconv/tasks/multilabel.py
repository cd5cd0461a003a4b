"""Multi-label classification (topics, tags, emotions ...): any subset of the labels per text, none included.

Each label is its own yes/no decision: a sigmoid over its logit, trained with binary cross-entropy,
and called positive when its probability reaches the label's threshold.  The thresholds start at
0.5 and, once training has restored the best weights, are tuned on dev one label at a time to
maximise that label's F1 (rare labels usually want a threshold well below 0.5).  They live in the
model as the buffer ``thresholds``, so ``model.safetensors`` carries them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wordconv.config import DEFAULT_METRIC
from wordconv.data.readers import Example
from wordconv.errors import DataError
from wordconv.evaluation.metrics import best_f1_threshold, multilabel_metrics
from wordconv.inference import MultiLabelPrediction
from wordconv.models.base import Encoder
from wordconv.tasks.base import EncodedTexts, PooledTask

DEFAULT_THRESHOLD = 0.5  # a calibrated probability's even odds; kept for a label dev cannot tune


class MultiLabelClassifier(nn.Module):
    """encoder -> pooled (B, H) -> dropout -> linear (B, C) -> one sigmoid per label; Kim's max-norm
    on the output weights."""

    def __init__(self, encoder: Encoder, num_labels: int, dropout: float, max_norm: float | None):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(encoder.output_dim, num_labels)
        self.max_norm = max_norm
        # (C,) decision threshold of each label's probability; tuned on dev after training and
        # saved with the weights (a persistent buffer)
        self.register_buffer("thresholds", torch.full((num_labels,), DEFAULT_THRESHOLD))

    def forward(self, ids: torch.Tensor, labels: torch.Tensor | None = None, **_) -> dict[str, torch.Tensor]:
        pooled = self.encoder(ids).pooled  # (B, H)
        logits = self.output(self.dropout(pooled))  # (B, C)
        out = {"logits": logits}
        if labels is not None:  # (B, C) 0/1
            out["loss"] = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return out

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Kim (2014): rescale each label's weight vector to l2 norm <= max_norm after a step."""
        if self.max_norm is not None:
            self.output.weight.copy_(torch.renorm(self.output.weight, p=2, dim=0, maxnorm=self.max_norm))


class MultiLabelClassification(PooledTask):
    name = "multilabel"
    default_metric = DEFAULT_METRIC["multilabel"]

    def __init__(self, labels: Sequence[str], *, dropout: float = 0.5, max_norm: float | None = None,
                 separator: str = ","):
        if not labels:
            raise DataError("multi-label classification found no labels in the training data: check the label "
                            "column/field (labels are split on data.label_separator; a JSONL label may be a list)")
        self.labels = list(labels)
        self.label_index = {name: i for i, name in enumerate(self.labels)}
        self.dropout, self.max_norm = dropout, max_norm
        self.separator = separator

    def build_model(self, encoder: Encoder) -> MultiLabelClassifier:
        self.check_encoder(encoder)
        return MultiLabelClassifier(encoder, len(self.labels), self.dropout, self.max_norm)

    def targets(self, examples: Sequence[Example], split: str) -> list[list[float]]:
        """A 0/1 row over the labels per example."""
        out = []
        for ex in examples:
            where = ex.source or split
            if ex.labels is not None:
                names = ex.labels
            elif ex.label is not None:  # a label string not split by a reader
                names = [n.strip() for n in ex.label.split(self.separator) if n.strip()]
            else:
                raise DataError(f"{where}: the text has no label field; give its labels (or none: an empty label)")
            row = [0.0] * len(self.labels)
            for name in names:
                if name not in self.label_index:
                    raise DataError(f"{where}: label {name!r} was not seen in training (known labels: "
                                    f"{', '.join(self.labels)}); fix the label or retrain with it in the training data")
                row[self.label_index[name]] = 1.0
            out.append(row)
        return out

    def example(self, text: str, gold: Any, source: str) -> Example:
        """``gold``: a list of label names, or one string of names joined by the label separator."""
        if isinstance(gold, str):
            return Example(text, gold, source)
        return Example(text, None, source, tuple(str(g) for g in gold))

    @torch.no_grad()
    def predict_proba(self, model: MultiLabelClassifier, data: EncodedTexts, batch_size: int
                      ) -> tuple[torch.Tensor, float]:
        """Each label's probability (N, C) in example order, and the mean loss when labels are known."""
        model.eval()
        probs = torch.empty(len(data), len(self.labels))
        total_loss, n = 0.0, 0
        for batch in data.batches(batch_size, shuffle=False):
            out = model(**batch)
            probs[batch["index"]] = torch.sigmoid(out["logits"].float()).cpu()
            if "loss" in out:
                total_loss += float(out["loss"]) * len(batch["index"])
                n += len(batch["index"])
        return probs, (total_loss / n if n else float("nan"))

    def evaluate(self, model: MultiLabelClassifier, data: EncodedTexts, batch_size: int
                 ) -> tuple[dict, list[list[int]]]:
        probs, loss = self.predict_proba(model, data, batch_size)
        decided = probs >= model.thresholds.cpu()  # (N, C); probs are on the CPU, the model may be on a GPU
        metrics = multilabel_metrics(data.labels, decided.numpy(), self.labels, model.thresholds.tolist())
        metrics["loss"] = loss
        return metrics, [row.nonzero().flatten().tolist() for row in decided]

    @torch.no_grad()
    def after_training(self, model: MultiLabelClassifier, dev: EncodedTexts | None, batch_size: int) -> dict:
        """Tune each label's threshold on dev to maximise its F1 (:func:`best_f1_threshold`).

        A label without positive dev examples, or every label when there is no dev set, keeps 0.5."""
        if dev is None or not len(dev):
            model.thresholds.fill_(DEFAULT_THRESHOLD)
            return {"thresholds": dict.fromkeys(self.labels, DEFAULT_THRESHOLD),
                    "thresholds_tuned": "no: no dev set, every label at 0.5"}
        probs, _ = self.predict_proba(model, dev, batch_size)
        gold = torch.tensor(dev.labels)
        untuned = []
        for c, name in enumerate(self.labels):
            threshold, _ = best_f1_threshold(probs[:, c].numpy(), gold[:, c].numpy(), DEFAULT_THRESHOLD)
            model.thresholds[c] = threshold
            if not gold[:, c].any():
                untuned.append(name)
        note = "on dev, per label for its best F1"
        if untuned:
            note += f"; 0.5 kept for {', '.join(untuned)} (no positive dev example)"
        return {"thresholds": dict(zip(self.labels, model.thresholds.tolist())), "thresholds_tuned": note}

    def predict(self, model: MultiLabelClassifier, data: EncodedTexts, batch_size: int, top_k: int = 1
                ) -> list[MultiLabelPrediction]:
        """The labels over their thresholds (most probable first, maybe none) and every label's
        probability; ``top_k`` does not apply (each label is decided on its own)."""
        probs, _ = self.predict_proba(model, data, batch_size)
        thresholds = model.thresholds.tolist()
        out = []
        for row in probs.tolist():
            chosen = sorted((j for j, p in enumerate(row) if p >= thresholds[j]), key=lambda j: -row[j])
            out.append(MultiLabelPrediction(labels=[self.labels[j] for j in chosen],
                                            probabilities=dict(zip(self.labels, row))))
        return out
