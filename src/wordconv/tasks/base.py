"""The Task seam: the only task-specific code.

A task turns examples into tensors, puts a head on an encoder, says what the loss is, decodes
model outputs into predictions and scores them.  The :class:`~wordconv.training.trainer.Trainer`
knows none of this: it reads ``loss`` from the model output and asks the task to evaluate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch import nn


class TaskData(ABC):
    """Encoded examples of one split, able to yield padded batches."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
                ) -> Iterator[dict[str, torch.Tensor]]: ...

    @abstractmethod
    def num_tokens(self) -> int:
        """Real (unpadded) tokens in the split, for throughput reports."""


class Task(ABC):
    name: str

    @abstractmethod
    def build_model(self, encoder: nn.Module) -> nn.Module:
        """Encoder + task head; its ``forward(**batch)`` returns a dict with ``logits`` (and ``loss``)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, data: TaskData, batch_size: int) -> tuple[dict, list]:
        """(metrics incl. ``loss``, predictions in example order)."""
