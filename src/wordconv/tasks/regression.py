"""Regression: one number per text (sentiment intensity, a rating, a readability score ...).

The head predicts the target standardised with the training targets' mean and standard deviation,
so it learns a unit-scale number whatever the user's scale (ratings 1..10 or 0..1 alike), and
maps its output back.  Mean and std are buffers of the model, saved in ``model.safetensors``.
Rating levels (SST-1's 0..4) can be scored as classes too: the prediction rounded and clipped to
the training range (``accuracy``, ``f1_macro``), comparable with a 5-class classifier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wordconv.config import DEFAULT_METRIC
from wordconv.data.readers import Example
from wordconv.errors import DataError
from wordconv.evaluation.metrics import regression_metrics
from wordconv.inference import RegressionPrediction
from wordconv.models.base import Encoder
from wordconv.tasks.base import EncodedTexts, PooledTask

# metrics that compare rounded predictions with integer gold levels
LEVEL_METRICS = ("accuracy",)


class Regressor(nn.Module):
    """encoder -> pooled (B, H) -> dropout -> linear (B, 1) -> a standardised score, mapped back with the
    training targets' mean and std; Kim's max-norm on the output weights."""

    def __init__(self, encoder: Encoder, dropout: float, max_norm: float | None):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(encoder.output_dim, 1)
        self.max_norm = max_norm
        # statistics of the training targets, set before training and saved with the weights:
        # mean and std standardise the target; min and max bound the rounded level predictions
        self.register_buffer("target_mean", torch.tensor(0.0))
        self.register_buffer("target_std", torch.tensor(1.0))
        self.register_buffer("target_min", torch.tensor(0.0))
        self.register_buffer("target_max", torch.tensor(0.0))

    def forward(self, ids: torch.Tensor, labels: torch.Tensor | None = None, **_) -> dict[str, torch.Tensor]:
        pooled = self.encoder(ids).pooled  # (B, H)
        z = self.output(self.dropout(pooled)).squeeze(-1)  # (B,) standardised score
        out = {"logits": z, "value": z * self.target_std + self.target_mean}  # value: (B,) on the user's scale
        if labels is not None:  # (B,) on the user's scale
            out["loss"] = F.mse_loss(z, ((labels - self.target_mean) / self.target_std).to(z.dtype))
        return out

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Kim (2014): rescale the output weight vector to l2 norm <= max_norm after a step."""
        if self.max_norm is not None:
            self.output.weight.copy_(torch.renorm(self.output.weight, p=2, dim=0, maxnorm=self.max_norm))


class Regression(PooledTask):
    name = "regression"
    default_metric = DEFAULT_METRIC["regression"]

    def __init__(self, labels: Sequence[str] = ("score",), *, dropout: float = 0.5, max_norm: float | None = None,
                 metric: str | None = None):
        self.labels = list(labels)  # one output, named in labels.json
        if len(self.labels) != 1:
            raise DataError(f"a regression model has one output, but {len(self.labels)} labels were given "
                            f"({self.labels}); labels.json of a regression model holds one name")
        self.dropout, self.max_norm = dropout, max_norm
        self.metric = metric or self.default_metric

    def build_model(self, encoder: Encoder) -> Regressor:
        self.check_encoder(encoder)
        return Regressor(encoder, self.dropout, self.max_norm)

    def targets(self, examples: Sequence[Example], split: str) -> list[float]:
        """Each label parsed as a number; in the splits used for training (train, dev), integers
        when the selection metric compares levels."""
        out = []
        for ex in examples:
            where = ex.source or split
            try:
                value = float(ex.label) if ex.label is not None else None
            except ValueError:
                value = None
            if value is None or not math.isfinite(value):
                raise DataError(f"{where}: label {ex.label!r} is not a number, but task regression needs a numeric "
                                "score per text (e.g. 3 or 0.75); fix the label, or train with --task textcat to "
                                "treat the labels as classes")
            if self.metric in LEVEL_METRICS and split in ("train", "dev") and not value.is_integer():
                raise DataError(f"{where}: score {ex.label!r} is not an integer level, but training.metric="
                                f"{self.metric} compares rounded predictions with integer levels; use mse, mae, "
                                "rmse, pearson, spearman or loss")
            out.append(value)
        return out

    def example(self, text: str, gold: Any, source: str) -> Example:
        return Example(text, str(gold), source)

    def before_training(self, model: Regressor, train: EncodedTexts) -> None:
        """Standardise with the training targets: population mean and std (1 if they are all equal)."""
        y = torch.tensor(train.labels, dtype=torch.float64)
        std = float(y.std(correction=0)) if len(y) > 1 else 0.0
        with torch.no_grad():
            model.target_mean.fill_(float(y.mean()))
            model.target_std.fill_(std if std > 0 else 1.0)
            model.target_min.fill_(float(y.min()))
            model.target_max.fill_(float(y.max()))

    @torch.no_grad()
    def predict_values(self, model: Regressor, data: EncodedTexts, batch_size: int) -> tuple[torch.Tensor, float]:
        """Predicted values (N,) on the user's scale in example order, and the mean (standardised)
        squared-error loss when targets are known."""
        model.eval()
        values = torch.empty(len(data))
        total_loss, n = 0.0, 0
        for batch in data.batches(batch_size, shuffle=False):
            out = model(**batch)
            values[batch["index"]] = out["value"].float().cpu()
            if "loss" in out:
                total_loss += float(out["loss"]) * len(batch["index"])
                n += len(batch["index"])
        return values, (total_loss / n if n else float("nan"))

    def levels(self, model: Regressor) -> tuple[int, int] | None:
        """The (lowest, highest) training level when the training targets are integers, else None."""
        lo, hi = float(model.target_min), float(model.target_max)
        return (int(lo), int(hi)) if lo.is_integer() and hi.is_integer() and lo < hi else None

    def evaluate(self, model: Regressor, data: EncodedTexts, batch_size: int) -> tuple[dict, list[float]]:
        values, loss = self.predict_values(model, data, batch_size)
        metrics = regression_metrics(data.labels, values.numpy(), self.levels(model))
        metrics["loss"] = loss
        return metrics, values.tolist()

    def predict(self, model: Regressor, data: EncodedTexts, batch_size: int, top_k: int = 1
                ) -> list[RegressionPrediction]:
        """The predicted value of each text (``top_k`` does not apply)."""
        values, _ = self.predict_values(model, data, batch_size)
        return [RegressionPrediction(value=v) for v in values.tolist()]
