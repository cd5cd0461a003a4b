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


# the most padded tokens in one evaluation / prediction batch (batch size x longest text): 256 IMDB reviews
# cut at 400 words made TextCNN's activations the peak of a whole training run
EVAL_MAX_TOKENS = 16384


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
    number: whatever ``torch.tensor`` turns into the batch's ``labels``).

    Batches are padded with ``pad_id`` (the word vocabulary's 0; a pretrained encoder's -1) and
    put on ``device`` (set by the trainer or predictor; None = CPU); ``index`` stays on the CPU."""

    def __init__(self, ids: list[list[int]], labels: list | None, min_length: int, pad_id: int = 0):
        self.ids, self.labels, self.min_length, self.pad_id = ids, labels, min_length, pad_id
        self.lengths = [len(x) for x in ids]
        self.device: torch.device | None = None
        self.teacher: torch.Tensor | None = None  # (N, C) teacher logits, when distilling

    def __len__(self) -> int:
        return len(self.ids)

    def num_tokens(self) -> int:
        return sum(self.lengths)

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
                ) -> Iterator[dict[str, torch.Tensor]]:
        cap = None if shuffle else EVAL_MAX_TOKENS  # evaluation batches of long texts get fewer texts
        for idx in bucket_batches(self.lengths, batch_size, shuffle=shuffle, generator=generator,
                                  max_tokens=cap, min_length=max(self.min_length, 1)):
            ids, lengths = pad_batch([self.ids[i] for i in idx], pad_id=self.pad_id, min_length=self.min_length)
            batch = {"ids": ids, "lengths": lengths}
            if self.labels is not None:
                batch["labels"] = torch.tensor([self.labels[i] for i in idx])
            if self.teacher is not None:
                batch["teacher"] = self.teacher[idx]
            if self.device is not None and self.device.type != "cpu":
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            batch["index"] = torch.tensor(idx)
            yield batch


class WordIds:
    """Texts to word ids: the saved preprocessing, then the vocabulary (every word-level model)."""

    pad_id = Vocab.pad_id

    def __init__(self, preprocessor: Preprocessor, vocab: Vocab):
        self.preprocessor, self.vocab = preprocessor, vocab

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.vocab.encode(self.preprocessor(t)) for t in texts]


def text_ids(encoder: nn.Module, preprocessor: Preprocessor, vocab: Vocab):
    """What turns a model's input texts into ids: the encoder itself when it tokenizes (a pretrained
    encoder's subword tokenizer), else the preprocessing + word vocabulary."""
    return encoder if hasattr(encoder, "encode_many") else WordIds(preprocessor, vocab)


class Task(ABC):
    name: str
    default_metric: str = "accuracy"  # the dev metric picking the best epoch when training.metric is unset

    @abstractmethod
    def build_model(self, encoder: nn.Module) -> nn.Module:
        """Encoder + task head; its ``forward(**batch)`` returns a dict with ``logits`` (and ``loss``)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, data: TaskData, batch_size: int) -> tuple[dict, list]:
        """(metrics incl. ``loss``, predictions in example order)."""

    def before_training(self, model: nn.Module, train: TaskData) -> None:
        """Fit what the head takes from the training targets (e.g. their scale); default: nothing."""

    def after_training(self, model: nn.Module, dev: TaskData | None, batch_size: int) -> dict:
        """Adjust the trained model (best weights restored) on dev, e.g. decision thresholds.

        Returns notes for ``meta.json`` (empty: nothing done, the default)."""
        return {}


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

    def encode(self, examples: Sequence[Example], to_ids, min_length: int, split: str,
               with_labels: bool = True) -> EncodedTexts:
        """``to_ids``: see :func:`text_ids` (``encode_many(texts)`` and ``pad_id``)."""
        ids = to_ids.encode_many([ex.text for ex in examples])
        labels = self.targets(examples, split) if with_labels else None
        return EncodedTexts(ids, labels, min_length, to_ids.pad_id)
