"""Predictor: the one prediction path used by the Python API, the CLI and (later) the server.

It loads a model directory once, applies exactly the preprocessing saved with the model,
validates input, batches by length and returns typed results in input order.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from wordconv.data.readers import Example
from wordconv.data.text import Preprocessor
from wordconv.errors import DataError, ModelError
from wordconv.training.trainer import autocast


@dataclass
class Prediction:
    """A text classifier's (task textcat) prediction."""

    label: str
    score: float  # probability of `label`
    probabilities: dict[str, float]  # every label, in the model's label order
    top_k: list[tuple[str, float]]  # the k most probable labels, best first

    def to_dict(self) -> dict:
        d = asdict(self)
        d["top_k"] = [{"label": lab, "score": s} for lab, s in self.top_k]
        return d


@dataclass
class MultiLabelPrediction:
    """A multi-label classifier's prediction: each label decided on its own."""

    labels: list[str]  # the labels whose probability reaches their threshold, most probable first; maybe none
    probabilities: dict[str, float]  # every label's own probability (they need not sum to 1), in label order

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RegressionPrediction:
    """A regression model's prediction."""

    value: float  # on the scale of the training targets

    def to_dict(self) -> dict:
        return asdict(self)


AnyPrediction = Prediction | MultiLabelPrediction | RegressionPrediction


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: tagging a corpus builds a few objects per word (tags,
    offsets, entities), none in a reference cycle, and the collector's passes over the whole heap
    that so many new objects trigger cost up to a fifth of the tagging time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Predictor:
    """A trained model ready to predict: ``wordconv.load(dir)`` and ``wordconv.train(...)`` return one."""

    def __init__(self, artifact, path: Path | None = None):
        from wordconv.pipeline import make_task, model_device
        from wordconv.tasks.base import text_ids

        self.artifact = artifact
        self.path = path
        self.config = artifact.config
        self.labels: list[str] = list(artifact.labels)
        self.model = artifact.model.eval()
        self._pre = Preprocessor(artifact.config.preprocessing)
        self._task = make_task(artifact.config, self.labels)
        self._to_ids = text_ids(self.model.encoder, self._pre, artifact.vocab)
        self._device, self._bf16 = model_device(artifact)
        fold = getattr(self.model.encoder, "fold_first_layer", None)
        if fold is not None:  # a TextCNN: its first layer as one lookup table (built on first use)
            fold()

    @classmethod
    def load(cls, path: str | Path) -> "Predictor":
        """Load a model directory (as ``wordconv.load``): weights strictly, the model rebuilt from its config."""
        from wordconv.modeldir import load_artifact

        return cls(load_artifact(path), Path(path))

    @property
    def metrics(self) -> dict | None:
        """The evaluation saved with the model (``metrics.json``: test split or CV fold), or None."""
        return self.artifact.metrics

    @property
    def meta(self) -> dict:
        """``meta.json``: wordconv/torch versions, git commit, seed, data file hashes, timings."""
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

    @property
    def task(self) -> str:
        """``textcat``, ``multilabel``, ``regression``, ``ner`` or ``qa``."""
        return self.config.task

    def _not_qa(self, method: str) -> None:
        if self.task == "qa":
            raise ModelError(f"a question-answering model (task qa) reads a question and a context: use "
                             f"answer(question, context), not {method}()")

    def _encode(self, texts: list[str]):
        data = self._task.encode([Example(t) for t in texts], self._to_ids, self.model.encoder.min_length, "input",
                                 with_labels=False)
        data.device = self._device
        return data

    def _autocast(self):
        """bf16 autocast when the model was trained under it (hardware allowing), as in evaluation."""
        return autocast(self._device, self._bf16)

    def predict_proba(self, texts: Sequence[str] | str, batch_size: int = 256) -> torch.Tensor:
        """Probabilities ``(N, C)`` in input order; columns follow ``self.labels``.

        A text classifier's rows sum to 1; a multi-label classifier gives each label's own probability."""
        self._not_qa("predict_proba")
        if self.task == "regression":
            raise ModelError("a regression model predicts values, not probabilities: use predict() or predict_values()")
        if self.task == "ner":
            raise ModelError("a tagger (task ner) gives tags per word, not one probability row per text: use predict()")
        texts = self._validate(texts)
        if not texts:
            return torch.empty(0, len(self.labels))
        with self._autocast():
            probs, _ = self._task.predict_proba(self.model, self._encode(texts), batch_size)
        return probs

    def predict_values(self, texts: Sequence[str] | str, batch_size: int = 256) -> torch.Tensor:
        """A regression model's predicted values ``(N,)`` in input order."""
        if self.task != "regression":
            raise ModelError(f"predict_values() is for regression models; this one is {self.task}: use predict() "
                             "or predict_proba()")
        texts = self._validate(texts)
        if not texts:
            return torch.empty(0)
        with self._autocast():
            values, _ = self._task.predict_values(self.model, self._encode(texts), batch_size)
        return values

    @torch.no_grad()
    def embed(self, texts: Sequence[str] | str, batch_size: int = 256) -> torch.Tensor:
        """The model's pooled representation of each text, ``(N, H)`` in input order: the vector
        its output layer reads (for search, clustering, or as features for another model)."""
        self._not_qa("embed")
        if self.task == "ner":
            raise ModelError("a tagger (task ner) has no pooled text vector: use predict()")
        texts = self._validate(texts)
        encoder = self.model.encoder
        if not texts:
            return torch.empty(0, encoder.output_dim)
        data = self._encode(texts)
        out = torch.empty(len(data), encoder.output_dim)
        with self._autocast():
            for batch in data.batches(batch_size, shuffle=False):
                out[batch["index"]] = encoder(batch["ids"]).pooled.float().cpu()
        return out

    def predict(self, texts: Sequence[str] | str, top_k: int = 1, batch_size: int = 256) -> list[AnyPrediction]:
        """One prediction per text, in input order: a :class:`Prediction` (textcat), a
        :class:`MultiLabelPrediction`, a :class:`RegressionPrediction` or, for a tagger (task ner), a
        :class:`~wordconv.tasks.ner.NERPrediction` (entities with type, score and character offsets).
        ``top_k``: textcat only."""
        self._not_qa("predict")
        texts = self._validate(texts)
        if not texts:
            return []
        if self.task == "ner":
            from wordconv.data.text import tokenize

            tokens = [tokenize(t, self.config.preprocessing.tokenizer) for t in texts]
            return self._tag([[tok.text for tok in ts] for ts in tokens], texts,
                             [[(tok.start, tok.end) for tok in ts] for ts in tokens], batch_size)
        with self._autocast():
            return self._task.predict(self.model, self._encode(texts), batch_size, top_k=top_k)

    def answer(self, questions: Sequence[str] | str, contexts: Sequence[str] | str, batch_size: int = 64) -> list:
        """A reader's (task qa) answers: one :class:`~wordconv.tasks.qa.QAPrediction` per question (answer
        text, score, character span of its context), in input order.  One context may serve every question.

        >>> reader.answer("Who wrote it?", "The book was written by Ann Lee in 1990.")  # doctest: +SKIP
        [QAPrediction(answer='Ann Lee', score=0.93, start=24, end=31, span_score=14.2)]"""
        if self.task != "qa":
            raise ModelError(f"answer() is for question-answering models (task qa); this one is {self.task}: "
                             "use predict()")
        questions = self._validate([questions] if isinstance(questions, str) else questions)
        contexts = self._validate([contexts] if isinstance(contexts, str) else contexts)
        if len(contexts) == 1 and len(questions) > 1:
            contexts = contexts * len(questions)
        if len(contexts) != len(questions):
            raise DataError(f"{len(questions)} questions but {len(contexts)} contexts: give one context per "
                            "question, or one for all")
        if not questions:
            return []
        examples = [Example(c, None, f"question {i}", question=q) for i, (q, c) in enumerate(zip(questions, contexts))]
        data = self._task.encode(examples, self._to_ids, self.model.encoder.min_length, "input", with_labels=False)
        data.device = self._device
        with self._autocast():
            preds, _ = self._task.decode_all(self.model, data, batch_size)
        return preds

    def explain(self, texts: Sequence[str] | str, **options) -> list:
        """Which words and n-grams made a text classifier decide: one
        :class:`~wordconv.explain.Explanation` per text (exact per-filter attribution for the TextCNN,
        integrated gradients otherwise).  ``options``: ``label``, ``top_k``, ``method``, ``steps``
        (see :func:`wordconv.explain.explain`)."""
        from wordconv.explain import explain

        return explain(self, texts, **options)

    def predict_tokens(self, sentences: Sequence[Sequence[str]], batch_size: int = 256) -> list:
        """A tagger's predictions for already tokenized sentences (lists of words), as in a CoNLL file;
        entity offsets index the words joined by single spaces."""
        if self.task != "ner":
            raise ModelError(f"predict_tokens() is for taggers (task ner); this model is {self.task}: use predict()")
        words = []
        for i, s in enumerate(sentences):
            ok = False
            if not isinstance(s, str):
                try:  # every word a str with something besides whitespace (str.strip: TypeError otherwise)
                    s = list(s)
                    ok = all(map(str.strip, s))
                except TypeError:
                    pass
            if not ok:
                raise DataError(f"sentence {i}: expected a list of non-empty words, got {s!r}")
            if not s:
                raise DataError(f"sentence {i} has no words")
            words.append(s)
        return self._tag(words, None, None, batch_size)

    def _tag(self, words: list[list[str]], texts, offsets, batch_size: int) -> list:
        with _gc_paused():
            examples = [Example(" ".join(w), None, f"text {i}", tokens=tuple(w)) for i, w in enumerate(words)]
            data = self._task.encode(examples, self._to_ids, 1, "input", with_labels=False)
            data.device = self._device
            with self._autocast():
                return self._task.predict_tokens(self.model, data, batch_size, words, texts, offsets)

    def evaluate(self, texts: Sequence[str], labels: Sequence) -> dict:
        """Metrics of this model on labelled texts: one gold value per text, i.e. a label name
        (textcat), a list of label names or one string of them joined by ``data.label_separator``
        (multilabel), or a number (regression)."""
        from wordconv.pipeline import evaluate_examples

        if len(texts) != len(labels):
            raise DataError(f"{len(texts)} texts but {len(labels)} labels: give one label per text")
        examples = [self._task.example(t, lab, f"item {i}")
                    for i, (t, lab) in enumerate(zip(self._validate(texts), labels))]
        metrics, _ = evaluate_examples(self.artifact, examples, "input")
        return metrics

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the model directory to ``path`` (atomically; an existing one only with ``overwrite``)."""
        from wordconv.modeldir import save_artifact

        out = save_artifact(path, self.artifact, overwrite=overwrite)
        self.path = Path(out)
        return out

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"<wordconv Predictor {self.config.model.type} [{', '.join(self.labels)}]{where}>"
