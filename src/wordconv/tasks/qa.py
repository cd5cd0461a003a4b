"""Extractive question answering: the answer is a span of the given paragraph (SQuAD).

Two readers share this task, its loss, its decoding and its metric:

    word reader (model.type qanet)         question + paragraph as words (+ characters)
        -> the reader's own start/end pointer scores over the paragraph's words          (B, Tc) x 2
    encoder reader (model.type pretrained) [CLS] question [SEP] paragraph window [SEP], one row per window
        -> token states (N, L, H) -> linear -> start/end scores; question, specials and padding masked,
           [CLS] kept as "no answer in this window" (BERT's SQuAD recipe; never chosen at decoding)

    loss: mean of the cross-entropies of the gold start and end positions
    decoding: per window, the ``n_best`` best starts and ends among the paragraph's tokens, paired with
              start <= end < start + max_answer_tokens; the best pair over the windows of a question
              (by start + end score) -> its character span of the paragraph -> the answer text

Paragraphs longer than the encoder's window are read in overlapping windows (``qa.doc_stride`` tokens
shared by neighbours); a gold answer that is not wholly inside a window teaches that window [CLS].
Character offsets come from the tokenizers (``wordconv.data.text.tokenize`` for words, the fast
subword tokenizer's offset mapping for the encoder), so answers are exact slices of the paragraph.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wordconv.data.batching import bucket_batches
from wordconv.data.readers import Example
from wordconv.data.text import tokenize
from wordconv.errors import ConfigError, DataError
from wordconv.evaluation.squad import squad_metrics
from wordconv.tasks.base import Task, TaskData

NEG = -1e4  # the score of a position that cannot start or end an answer (finite: safe under bf16)


@dataclass
class QAPrediction:
    """A reader's answer to one question."""

    answer: str  # context[start:end]
    score: float  # probability of the span within its window (start probability x end probability)
    start: int  # character offsets into the context
    end: int
    # start + end score of the span: unlike ``score`` it compares answers read from different paragraphs
    # (open-domain reading takes the best over the passages retrieved)
    span_score: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["span_score"] == float("-inf"):  # no span could be read: not valid JSON as a number
            d["span_score"] = None
        return d


class QAFeatures(TaskData):
    """One row per window (the encoder reader) or per question (the word reader).

    Each row keeps its token arrays, the character span of each token in the paragraph ((-1, -1) for
    tokens that are not paragraph text), which example it belongs to and, for training, the gold
    start and end token positions."""

    def __init__(self, examples: Sequence[Example], rows: dict[str, list[np.ndarray]], offsets: list[np.ndarray],
                 owner: list[int], starts: list[int] | None, ends: list[int] | None, pads: dict[str, int],
                 length_key: str):
        self.examples = list(examples)
        self.rows, self.offsets, self.owner = rows, offsets, owner
        self.starts, self.ends = starts, ends
        self.pads, self.length_key = pads, length_key
        self.device: torch.device | None = None

    def __len__(self) -> int:
        return len(self.owner)

    def num_tokens(self) -> int:
        return int(sum(len(x) for x in self.rows[self.length_key]))

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
                ) -> Iterator[dict[str, torch.Tensor]]:
        lengths = [len(x) for x in self.rows[self.length_key]]
        for idx in bucket_batches(lengths, batch_size, shuffle=shuffle, generator=generator):
            batch = {}
            for key, arrays in self.rows.items():
                picked = [arrays[i] for i in idx]
                shape = (len(idx), *(max(max(a.shape[d] for a in picked), 1) for d in range(picked[0].ndim)))
                out = np.full(shape, self.pads[key], dtype=picked[0].dtype)
                for r, a in enumerate(picked):
                    out[(r, *(slice(0, s) for s in a.shape))] = a
                batch[key] = torch.from_numpy(out)
            if self.starts is not None:
                batch["start"] = torch.tensor([self.starts[i] for i in idx])
                batch["end"] = torch.tensor([self.ends[i] for i in idx])
            if self.device is not None and self.device.type != "cpu":
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            batch["index"] = torch.tensor(idx)
            yield batch


class SpanReader(nn.Module):
    """An encoder that reads question + paragraph, with start/end scores over the paragraph's tokens."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.own_pointers = getattr(encoder, "span_reader", False)
        self.output = None if self.own_pointers else nn.Linear(encoder.output_dim, 2)

    def forward(self, start: torch.Tensor | None = None, end: torch.Tensor | None = None, **inputs
                ) -> dict[str, torch.Tensor]:
        inputs.pop("index", None)
        if self.own_pointers:  # the word reader: its own pointers, padding already masked
            out = self.encoder(**inputs)
            s, e = out["start_logits"].float(), out["end_logits"].float()
            allowed = inputs["c_ids"] != 0
        else:
            states = self.encoder.pair_states(inputs["input_ids"], inputs["attention_mask"],
                                              inputs.get("token_type_ids"))
            logits = self.output(states).float()  # (N, L, 2)
            allowed = inputs["context_mask"].clone()
            allowed[:, 0] = True  # [CLS]: "the answer is not in this window"
            s = logits[..., 0].masked_fill(~allowed, NEG)
            e = logits[..., 1].masked_fill(~allowed, NEG)
        result = {"start_logits": s, "end_logits": e, "logits": torch.stack([s, e], dim=-1)}
        if start is not None:  # -100: a question kept for scoring whose answer was cut off with its paragraph
            if bool((start >= 0).any()):
                result["loss"] = (F.cross_entropy(s, start, ignore_index=-100)
                                  + F.cross_entropy(e, end, ignore_index=-100)) / 2
            else:
                result["loss"] = s.sum() * 0.0
        return result


def best_span(start: np.ndarray, end: np.ndarray, allowed: np.ndarray, n_best: int, max_tokens: int
              ) -> tuple[int, int, float] | None:
    """The best (start, end, start + end score) with start <= end < start + max_tokens, both allowed
    positions, among the ``n_best`` best starts and ends; None when no pair qualifies."""
    positions = np.flatnonzero(allowed)
    if not len(positions):
        return None
    k = min(n_best, len(positions))
    s_pos = positions[np.argsort(-start[positions], kind="stable")[:k]]
    e_pos = positions[np.argsort(-end[positions], kind="stable")[:k]]
    total = start[s_pos][:, None] + end[e_pos][None, :]  # (k, k)
    ok = (e_pos[None, :] >= s_pos[:, None]) & (e_pos[None, :] < s_pos[:, None] + max_tokens)
    if not ok.any():
        return None
    total = np.where(ok, total, -np.inf)
    i, j = np.unravel_index(int(np.argmax(total)), total.shape)
    return int(s_pos[i]), int(e_pos[j]), float(total[i, j])


def _softmax(x: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    z = np.where(allowed, x, -np.inf)
    z = np.exp(z - z.max())
    return z / z.sum()


class QuestionAnswering(Task):
    name = "qa"
    default_metric = "f1"

    def __init__(self, *, max_answer_tokens: int = 30, n_best: int = 20, max_question_tokens: int = 64,
                 doc_stride: int = 128, lowercase: bool = True, tokenizer: str = "regex", char_buckets: int = 512,
                 max_word_chars: int = 16, max_context_tokens: int = 400):
        self.labels = ["answer"]
        self.max_answer_tokens, self.n_best = max_answer_tokens, n_best
        self.max_question_tokens, self.doc_stride = max_question_tokens, doc_stride
        self.lowercase, self.tokenizer = lowercase, tokenizer
        self.char_buckets, self.max_word_chars = char_buckets, max_word_chars
        self.max_context_tokens = max_context_tokens
        self.skipped = 0  # training questions left out by the last encode (answer not readable)

    def check_encoder(self, encoder: nn.Module) -> None:
        if getattr(encoder, "span_reader", False):
            return
        if not hasattr(encoder, "pair_states"):
            raise ConfigError(f"task qa needs a reader: model.type qanet (a convolutional reader) or pretrained; "
                              f"{type(encoder).__name__} pools the text")
        if not encoder.prefix:
            raise ConfigError("task qa with a pretrained model needs an encoder whose tokenizer marks the start of "
                              "a text ([CLS]-like), such as BERT or MiniLM")

    def build_model(self, encoder: nn.Module) -> SpanReader:
        self.check_encoder(encoder)
        return SpanReader(encoder)

    # ---- data ----------------------------------------------------------------------------------
    @staticmethod
    def check_examples(examples: Sequence[Example], split: str) -> None:
        for ex in examples:
            if ex.question is None:
                raise DataError(f"{ex.source or split}: task qa needs a question and a context (SQuAD JSON, or JSON "
                                "lines with question and context fields), not plain text")
            if not ex.question.strip() or not ex.text.strip():
                raise DataError(f"{ex.source or split}: empty {'question' if not ex.question.strip() else 'context'}")

    def word_tokens(self, text: str):
        return tokenize(text, self.tokenizer)

    def word_key(self, word: str) -> str:
        return word.lower() if self.lowercase else word

    def vocabulary_tokens(self, examples: Sequence[Example]) -> list[list[str]]:
        """The words a word reader's vocabulary is built from: each distinct paragraph once, each question."""
        seen, out = set(), []
        for ex in examples:
            if ex.text not in seen:
                seen.add(ex.text)
                out.append([self.word_key(t.text) for t in self.word_tokens(ex.text)])
            out.append([self.word_key(t.text) for t in self.word_tokens(ex.question or "")])
        return out

    def encode(self, examples: Sequence[Example], to_ids, min_length: int, split: str,
               with_labels: bool = True) -> QAFeatures:
        """``to_ids``: the pretrained encoder (windows of sub-tokens) or :class:`~wordconv.tasks.base.WordIds`.

        With labels (training), a question whose first gold answer cannot be read (cut off with a long
        paragraph) is left out and counted in ``self.skipped``; evaluation keeps every question."""
        self.check_examples(examples, split)
        train = with_labels and split == "train"
        if with_labels and not train and not all(ex.answers for ex in examples):
            with_labels = False  # unlabelled questions: scored without a loss
        if hasattr(to_ids, "pair_states"):
            return self._encode_windows(examples, to_ids, train, with_labels)
        return self._encode_words(examples, to_ids.vocab, train, with_labels)

    def _answer_span(self, ex: Example) -> tuple[int, int] | None:
        if not ex.answers:
            return None
        text, start = ex.answers[0]
        return start, start + len(text)

    def _encode_words(self, examples: Sequence[Example], vocab, train: bool, targets: bool) -> QAFeatures:
        from wordconv.models.tagger import char_ids

        rows: dict[str, list[np.ndarray]] = {"c_ids": [], "c_chars": [], "q_ids": [], "q_chars": []}
        offsets, owner, starts, ends = [], [], [], []
        self.skipped = 0
        cache: dict[str, tuple] = {}

        def words(text: str, limit: int):
            if text not in cache:
                toks = self.word_tokens(text)[:limit] or []
                ids = np.asarray(vocab.encode([self.word_key(t.text) for t in toks]) or [vocab.unk_id], dtype=np.int64)
                chars = [char_ids(t.text, self.char_buckets, self.max_word_chars) for t in toks] or [(1,)]
                arr = np.zeros((len(chars), max(len(c) for c in chars)), dtype=np.int64)
                for j, c in enumerate(chars):
                    arr[j, :len(c)] = c
                offs = np.asarray([(t.start, t.end) for t in toks] or [(0, 0)], dtype=np.int64)
                cache[text] = (ids, arr, offs)
            return cache[text]

        for i, ex in enumerate(examples):
            c_ids, c_chars, offs = words(ex.text, self.max_context_tokens)
            q_ids, q_chars, _ = words(ex.question, self.max_question_tokens)
            if targets:
                span = self._answer_span(ex)
                if span is None:
                    raise DataError(f"{ex.source}: a training question needs a gold answer")
                inside = np.flatnonzero((offs[:, 1] > span[0]) & (offs[:, 0] < span[1]))
                if not len(inside):  # the answer lies past the words read
                    if train:
                        self.skipped += 1
                        continue
                    inside = np.asarray([-100])  # kept for scoring, left out of the loss
                starts.append(int(inside[0]))
                ends.append(int(inside[-1]))
            rows["c_ids"].append(c_ids)
            rows["c_chars"].append(c_chars)
            rows["q_ids"].append(q_ids)
            rows["q_chars"].append(q_chars)
            offsets.append(offs)
            owner.append(i)
        pads = {"c_ids": 0, "c_chars": 0, "q_ids": 0, "q_chars": 0}
        return QAFeatures(examples, rows, offsets, owner, starts if targets else None,
                          ends if targets else None, pads, "c_ids")

    def _encode_windows(self, examples: Sequence[Example], encoder, train: bool, targets: bool) -> QAFeatures:
        from wordconv.models.pretrained import _quiet_transformers

        tok = encoder.tokenizer
        specials = tok.num_special_tokens_to_add(pair=True)
        with _quiet_transformers():
            q_enc = tok([ex.question for ex in examples], add_special_tokens=False,
                        return_offsets_mapping=True) if examples else {"input_ids": []}
        questions, longest = [], 0
        for ex, ids, offs in zip(examples, q_enc["input_ids"], q_enc.get("offset_mapping", [])):
            if len(ids) > self.max_question_tokens:  # cut at a token boundary of the text
                questions.append(ex.question[: offs[self.max_question_tokens - 1][1]])
            else:
                questions.append(ex.question)
            longest = max(longest, min(len(ids), self.max_question_tokens))
        room = encoder.max_length - specials - longest
        if examples and room < 8:
            raise ConfigError(f"model.max_length={encoder.max_length} leaves {room} tokens of context next to a "
                              f"question of {longest} tokens: raise model.max_length or lower "
                              "qa.max_question_tokens")
        overlap = min(self.doc_stride, max(room, 2) // 2)
        rows: dict[str, list[np.ndarray]] = {"input_ids": [], "attention_mask": [], "context_mask": []}
        with_types = "token_type_ids" in tok.model_input_names
        if with_types:
            rows["token_type_ids"] = []
        offsets, owner, starts, ends = [], [], [], []
        self.skipped = 0
        if not examples:
            return QAFeatures(examples, rows, offsets, owner, None, None, {}, "input_ids")
        with _quiet_transformers():
            enc = tok(questions, [ex.text for ex in examples], truncation="only_second",
                      max_length=encoder.max_length, stride=overlap, return_overflowing_tokens=True,
                      return_offsets_mapping=True, padding=False)
        answered = set()
        for f, i in enumerate(enc["overflow_to_sample_mapping"]):
            seq = enc.sequence_ids(f)
            ctx = np.asarray([s == 1 for s in seq], dtype=bool)
            offs = np.asarray(enc["offset_mapping"][f], dtype=np.int64)
            offs[~ctx] = -1
            if targets:
                span = self._answer_span(examples[i])
                if span is None:
                    raise DataError(f"{examples[i].source}: a training question needs a gold answer")
                pos = np.flatnonzero(ctx)
                first, last = pos[0], pos[-1]
                if offs[first, 0] <= span[0] and offs[last, 1] >= span[1]:
                    inside = np.flatnonzero(ctx & (offs[:, 1] > span[0]) & (offs[:, 0] < span[1]))
                    s, e = int(inside[0]), int(inside[-1])
                    answered.add(i)
                else:
                    s = e = 0  # [CLS]: not in this window
                starts.append(s)
                ends.append(e)
            rows["input_ids"].append(np.asarray(enc["input_ids"][f], dtype=np.int64))
            rows["attention_mask"].append(np.ones(len(seq), dtype=np.int64))
            rows["context_mask"].append(ctx)
            if with_types:
                rows["token_type_ids"].append(np.asarray(enc["token_type_ids"][f], dtype=np.int64))
            offsets.append(offs)
            owner.append(int(i))
        if train:
            self.skipped = len(examples) - len(answered)
        pads = {"input_ids": encoder.token_pad, "attention_mask": 0, "context_mask": False, "token_type_ids": 0}
        return QAFeatures(examples, rows, offsets, owner, starts if targets else None,
                          ends if targets else None, pads, "input_ids")

    # ---- decoding and scoring ------------------------------------------------------------------
    @torch.no_grad()
    def decode_all(self, model: SpanReader, data: QAFeatures, batch_size: int
                   ) -> tuple[list[QAPrediction], float]:
        """The best answer of every example (example order) and the mean loss when labelled."""
        model.eval()
        best: list[tuple[float, QAPrediction] | None] = [None] * len(data.examples)
        total, n = 0.0, 0
        for batch in data.batches(batch_size, shuffle=False):
            out = model(**batch)
            s_all = out["start_logits"].float().cpu().numpy()
            e_all = out["end_logits"].float().cpu().numpy()
            for r, f in enumerate(batch["index"].tolist()):
                offs = data.offsets[f]
                width = len(offs)
                s, e = s_all[r, :width], e_all[r, :width]
                allowed = offs[:, 0] >= 0
                if not model.own_pointers:
                    allowed = allowed & (offs[:, 1] > offs[:, 0])
                found = best_span(s, e, allowed, self.n_best, self.max_answer_tokens)
                if found is None:
                    continue
                i, j, score = found
                ex_index = data.owner[f]
                prev = best[ex_index]
                if prev is None or score > prev[0]:
                    a, b = int(offs[i, 0]), int(offs[j, 1])
                    prob = float(_softmax(s, allowed)[i] * _softmax(e, allowed)[j])
                    text = data.examples[ex_index].text
                    best[ex_index] = (score, QAPrediction(text[a:b], round(prob, 6), a, b, round(score, 6)))
            if "loss" in out:
                total += float(out["loss"]) * len(batch["index"])
                n += len(batch["index"])
        preds = [b[1] if b is not None else QAPrediction("", 0.0, 0, 0, float("-inf")) for b in best]
        return preds, (total / n if n else float("nan"))

    def evaluate(self, model: SpanReader, data: QAFeatures, batch_size: int) -> tuple[dict, list]:
        missing = next((ex for ex in data.examples if not ex.answers), None)
        if missing is not None:
            raise DataError(f"{missing.source}: evaluation needs gold answers for every question")
        preds, loss = self.decode_all(model, data, batch_size)
        metrics = squad_metrics([p.answer for p in preds], [[a for a, _ in ex.answers] for ex in data.examples])
        metrics["loss"] = loss
        return metrics, preds

    def example(self, text: str, gold: Any, source: str) -> Example:
        """``text``: the context; ``gold``: (question, [answer texts]) for ``Predictor.evaluate``."""
        question, answers = gold
        found = []
        for a in answers:
            start = text.find(a)
            if start < 0:
                raise DataError(f"{source}: the answer {a!r} is not in the context")
            found.append((a, start))
        return Example(text, None, source, question=question, answers=tuple(found))
