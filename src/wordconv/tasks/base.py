"""The Task seam: the only task-specific code.

A task turns examples into tensors, puts a head on an encoder, says what the loss is, decodes
model outputs into predictions and scores them.  The :class:`~wordconv.training.trainer.Trainer`
knows none of this: it reads ``loss`` from the model output and asks the task to evaluate.

The tasks over one vector per text (``encoder(ids).pooled``): ``textcat`` (one label),
``multilabel`` (a set of labels) and ``regression`` (a number).  Besides the abstract methods a
task can fit its head to the training data before the first step (:meth:`Task.before_training`)
and adjust the trained model on dev (:meth:`Task.after_training`); both do nothing by default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from wordconv.data.batching import bucket_batches, pad_batch
from wordconv.data.readers import Example
from wordconv.data.text import Preprocessor
from wordconv.data.vocab import Vocab
from wordconv.errors import ConfigError


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


class EncodedTexts(TaskData):
    """Token ids per text and one target per text (a class id, a 0/1 row over the labels, or a
    number: whatever ``torch.tensor`` turns into the batch's ``labels``)."""

    def __init__(self, ids: list[list[int]], labels: list | None, min_length: int):
        self.ids, self.labels, self.min_length = ids, labels, min_length
        self.lengths = [len(x) for x in ids]

    def __len__(self) -> int:
        return len(self.ids)

    def num_tokens(self) -> int:
        return sum(self.lengths)

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
                ) -> Iterator[dict[str, torch.Tensor]]:
        for idx in bucket_batches(self.lengths, batch_size, shuffle=shuffle, generator=generator):
            ids, lengths = pad_batch([self.ids[i] for i in idx], min_length=self.min_length)
            batch = {"ids": ids, "lengths": lengths, "index": torch.tensor(idx)}
            if self.labels is not None:
                batch["labels"] = torch.tensor([self.labels[i] for i in idx])
            yield batch


class Task(ABC):
    name: str
    default_metric: str = "accuracy"  # the dev metric picking the best epoch when training.metric is unset

    @abstractmethod
    def build_model(self, encoder: nn.Module) -> nn.Module:
        """Encoder + task head; its ``forward(**batch)`` returns a dict with ``logits`` (and ``loss``)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, data: TaskData, batch_size: int) -> tuple[dict, list]:
        """(metrics incl. ``loss``, predictions in example order)."""


class PooledTask(Task):
    """A task with one target per text, read from the encoder's pooled vector."""

    labels: list[str]

    @abstractmethod
    def targets(self, examples: Sequence[Example], split: str) -> list:
        """The training target of every example; DataError naming ``Example.source`` for a bad label."""

    @abstractmethod
    def predict(self, model: nn.Module, data: TaskData, batch_size: int, top_k: int = 1) -> list:
        """One typed prediction per text (see :mod:`wordconv.inference`), in example order."""

    @abstractmethod
    def example(self, text: str, gold: Any, source: str) -> Example:
        """An :class:`Example` from a gold value given in Python (``Predictor.evaluate``)."""

    def check_encoder(self, encoder: nn.Module) -> None:
        if getattr(encoder, "output_dim", None) is None:
            raise ConfigError(f"task {self.name} needs an encoder with a pooled output (one vector per text)")

    def encode(self, examples: Sequence[Example], preprocessor: Preprocessor, vocab: Vocab, min_length: int,
               split: str, with_labels: bool = True) -> EncodedTexts:
        ids = [vocab.encode(preprocessor(ex.text)) for ex in examples]
        labels = self.targets(examples, split) if with_labels else None
        return EncodedTexts(ids, labels, min_length)

    def before_training(self, model: nn.Module, train: EncodedTexts) -> None:
        """Fit what the head takes from the training targets (e.g. their scale); default: nothing."""

    def after_training(self, model: nn.Module, dev: EncodedTexts | None, batch_size: int) -> dict:
        """Adjust the trained model (best weights restored) on dev, e.g. decision thresholds.

        Returns notes for ``meta.json`` (empty: nothing done, the default)."""
        return {}
