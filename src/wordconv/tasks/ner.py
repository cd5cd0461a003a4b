"""Named-entity recognition: one tag per word, entities scored as conlleval scores them.

    sentence (words) -> encoder token states (B, T, H)
                        (the convolutional tagger: one state per word; a pretrained encoder: the
                         state of each word's first sub-token)
                     -> dropout -> linear -> tag scores (B, T, C)
                     -> a linear-chain CRF (Viterbi decoding) or an independent softmax per word

Gold tags are read as IOB2 (see :mod:`wordconv.data.conll`); the model learns them in its
``tag_scheme`` (BIOES by default for the CNN tagger: Lample et al. 2016 found it slightly better;
IOB2 for encoders, as BERT did) and its predictions are converted back to IOB2 for scoring and
for entity spans.  The labels a model keeps (``labels.json``) are the entity types; the tag set
follows from them and the scheme.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wordconv.data.batching import bucket_batches
from wordconv.data.conll import _spans, convert_tags, spans_to_tags
from wordconv.data.readers import Example
from wordconv.errors import ConfigError, DataError
from wordconv.evaluation.entity import entity_metrics
from wordconv.models.crf import CRF, allowed_transitions
from wordconv.models.tagger import CASES, ConvTagger, casing, char_ids
from wordconv.tasks.base import Task, TaskData

def tag_names(types: Sequence[str], scheme: str) -> list[str]:
    """The tag set of ``types`` under ``scheme``: O first, then each type's prefixes."""
    prefixes = ("B", "I") if scheme == "iob2" else ("B", "I", "E", "S")
    return ["O"] + [f"{p}-{t}" for t in types for p in prefixes]


@dataclass
class Entity:
    type: str
    text: str
    start: int  # character offsets into the input text: text[start:end]
    end: int
    score: float  # mean probability of the entity's tags (CRF: posterior marginals)
    tokens: tuple[int, int] = (0, 0)  # word span [first, last + 1)


@dataclass
class NERPrediction:
    """A tagger's prediction for one text."""

    entities: list[Entity]
    tokens: list[str]
    tags: list[str]  # IOB2, one per token
    offsets: list[tuple[int, int]] = field(default_factory=list)  # each token's character span

    def to_dict(self) -> dict:
        d = asdict(self)
        for e in d["entities"]:
            e["tokens"] = list(e["tokens"])
        d["offsets"] = [list(o) for o in self.offsets]
        return d


class TaggedSentences(TaskData):
    """Per sentence: word ids (or sub-token ids + first-piece positions), character and casing ids, tag ids.

    Each sentence's arrays are numpy arrays built once; a batch is a few slice copies into padded arrays."""

    def __init__(self, ids: list[list[int]], n_words: list[int], tags: list[list[int]] | None, *,
                 chars: list[list[list[int]]] | None = None, case: list[list[int]] | None = None,
                 first: list[list[int]] | None = None, pad_id: int = 0):
        self.ids = [np.asarray(x, dtype=np.int64) for x in ids]
        self.n_words = n_words
        self.tags = [np.asarray(x, dtype=np.int64) for x in tags] if tags is not None else None
        self.chars = None
        if chars is not None:  # (words, longest word) per sentence, 0-padded
            self.chars = []
            for sent in chars:
                a = np.zeros((len(sent), max((len(c) for c in sent), default=1)), dtype=np.int64)
                for j, c in enumerate(sent):
                    a[j, :len(c)] = c
                self.chars.append(a)
        self.case = [np.asarray(x, dtype=np.int64) for x in case] if case is not None else None
        self.first = [np.asarray(x, dtype=np.int64) for x in first] if first is not None else None
        self.pad_id = pad_id
        self.device: torch.device | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def num_tokens(self) -> int:
        return sum(self.n_words)

    @staticmethod
    def _stack(rows: list[np.ndarray], width: int, fill: int) -> torch.Tensor:
        out = np.full((len(rows), max(width, 1)), fill, dtype=np.int64)
        for r, a in enumerate(rows):
            out[r, :len(a)] = a
        return torch.from_numpy(out)

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
                ) -> Iterator[dict[str, torch.Tensor]]:
        lengths = [len(x) for x in self.ids]
        for idx in bucket_batches(lengths, batch_size, shuffle=shuffle, generator=generator):
            w = max(self.n_words[i] for i in idx)
            batch = {"ids": self._stack([self.ids[i] for i in idx], max(lengths[i] for i in idx), self.pad_id),
                     "lengths": torch.tensor([self.n_words[i] for i in idx])}
            if self.chars is not None:
                c = max(self.chars[i].shape[1] for i in idx)
                chars = np.zeros((len(idx), max(w, 1), c), dtype=np.int64)
                for r, i in enumerate(idx):
                    a = self.chars[i]
                    chars[r, :a.shape[0], :a.shape[1]] = a
                batch["chars"] = torch.from_numpy(chars)
            if self.case is not None:
                batch["case"] = self._stack([self.case[i] for i in idx], w, 0)
            if self.first is not None:
                batch["first"] = self._stack([self.first[i] for i in idx], w, -1)
            if self.tags is not None:
                batch["tags"] = self._stack([self.tags[i] for i in idx], w, 0)
            if self.device is not None and self.device.type != "cpu":
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            batch["index"] = torch.tensor(idx)
            yield batch


class TokenTagger(nn.Module):
    """encoder token states -> dropout -> linear tag scores -> CRF or softmax."""

    def __init__(self, encoder: nn.Module, tags: list[str], scheme: str, dropout: float, crf: bool):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.subword = hasattr(encoder, "word_states")
        case_dim = getattr(encoder.params, "case_dim", 0) if self.subword else 0
        # a pretrained encoder's words can also carry their casing (the tagger has its own)
        self.case = nn.Embedding(len(CASES), case_dim, padding_idx=0) if case_dim else None
        self.output = nn.Linear(encoder.output_dim + case_dim, len(tags))
        self.crf = CRF(len(tags), *allowed_transitions(tags, scheme)) if crf else None

    def emissions(self, ids: torch.Tensor, lengths: torch.Tensor, chars=None, case=None, first=None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tag scores (B, W, C) and the (B, W) mask of the words that are scored."""
        if self.subword:
            states, scored = self.encoder.word_states(ids, first)
            if self.case is not None:
                states = torch.cat([states, self.case(case).to(states.dtype)], dim=-1)
        else:
            states = self.encoder(ids, chars=chars, case=case).states
            scored = torch.arange(states.shape[1], device=ids.device)[None, :] < lengths[:, None]
        return self.output(self.dropout(states)).float(), scored

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, tags: torch.Tensor | None = None,
                chars=None, case=None, first=None, **_) -> dict[str, torch.Tensor]:
        logits, mask = self.emissions(ids, lengths, chars, case, first)
        out = {"logits": logits, "mask": mask}
        if tags is not None:
            if self.crf is not None:
                out["loss"] = self.crf(logits, tags, _crf_mask(mask))
            else:
                out["loss"] = F.cross_entropy(logits[mask], tags[mask])
        return out

    def decode(self, logits: torch.Tensor, mask: torch.Tensor, scores: bool = True
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Best tags (B, W) and each tag's probability (B, W): CRF posterior marginals, or softmax
        (without ``scores`` the CRF's probabilities are left at 0: Viterbi alone is cheaper)."""
        if self.crf is not None:
            m = _crf_mask(mask)
            best, _ = self.crf.decode(logits, m)
            if not scores:
                return best, torch.zeros(best.shape)
            probs = self.crf.marginals(logits, m)
        else:
            probs = torch.softmax(logits, dim=-1)
            best = probs.argmax(-1)
        return best, probs.gather(2, best[:, :, None]).squeeze(2)


def _crf_mask(mask: torch.Tensor) -> torch.Tensor:
    """The CRF wants a left-aligned mask with at least one position per row: words cut off by a
    sub-token limit are the last ones, so the mask stays a prefix; an empty row keeps position 0."""
    m = mask.clone()
    m[:, 0] = True
    return m


class NamedEntityRecognition(Task):
    name = "ner"
    default_metric = "f1"

    def __init__(self, types: Sequence[str], *, scheme: str = "iob2", crf: bool = False, dropout: float = 0.5,
                 lowercase: bool = True, char_buckets: int = 512, max_word_chars: int = 20):
        if not types:
            raise DataError("named-entity recognition needs at least one entity type in the training tags; "
                            "the training data has only O tags")
        self.labels = list(types)
        self.scheme, self.crf, self.dropout = scheme, crf, dropout
        self.tags = tag_names(self.labels, scheme)
        self.tag_index = {t: i for i, t in enumerate(self.tags)}
        self.lowercase = lowercase
        self.char_buckets, self.max_word_chars = char_buckets, max_word_chars

    def check_encoder(self, encoder: nn.Module) -> None:
        if not isinstance(encoder, ConvTagger) and not hasattr(encoder, "word_states"):
            raise ConfigError(f"task ner needs one state per word; {type(encoder).__name__} pools the text: use "
                              "model.type tagger or pretrained")

    def build_model(self, encoder: nn.Module) -> TokenTagger:
        self.check_encoder(encoder)
        return TokenTagger(encoder, self.tags, self.scheme, self.dropout, self.crf)

    # ---- data ----------------------------------------------------------------------------------
    def word_key(self, word: str) -> str:
        return word.lower() if self.lowercase else word

    def tag_ids(self, example: Example, split: str) -> list[int]:
        tags = convert_tags(example.tags, "iob2", self.scheme) if self.scheme != "iob2" else list(example.tags)
        out = []
        for i, t in enumerate(tags):
            j = self.tag_index.get(t)
            if j is None:
                where = example.source or split
                raise DataError(f"{where}: word {i + 1} ({example.tokens[i]!r}) has tag {example.tags[i]!r}, whose "
                                f"type was not seen in training (known types: {', '.join(self.labels)}); fix the tag "
                                "or retrain with that type in the training data")
            out.append(j)
        return out

    def encode(self, examples: Sequence[Example], to_ids, min_length: int, split: str,
               with_labels: bool = True) -> TaggedSentences:
        """``to_ids``: the pretrained encoder (sub-token ids) or :class:`~wordconv.tasks.base.WordIds`."""
        for ex in examples:
            if ex.tokens is None:
                raise DataError(f"{ex.source or split}: task ner needs tokenized sentences (a CoNLL file: one word "
                                "and its tag per line), not plain text")
        words = [list(ex.tokens) for ex in examples]
        tags = [self.tag_ids(ex, split) for ex in examples] if with_labels else None
        n_words = [len(w) for w in words]
        if hasattr(to_ids, "word_states"):  # a pretrained encoder: sub-tokens, each word's first piece
            ids, first = subword_ids(to_ids, words)
            case = [[casing(w) for w in s] for s in words] if getattr(to_ids.params, "case_dim", 0) else None
            return TaggedSentences(ids, n_words, tags, first=first, case=case, pad_id=to_ids.pad_id)
        vocab = to_ids.vocab
        ids = [vocab.encode([self.word_key(w) for w in s]) for s in words]
        chars = [[char_ids(w, self.char_buckets, self.max_word_chars) for w in s] for s in words]
        case = [[casing(w) for w in s] for s in words]
        return TaggedSentences(ids, n_words, tags, chars=chars, case=case, pad_id=to_ids.pad_id)

    # ---- decoding and scoring ------------------------------------------------------------------
    @torch.no_grad()
    def decode_all(self, model: TokenTagger, data: TaggedSentences, batch_size: int, scores: bool = True
                   ) -> tuple[list[list[str]], list[list[float]], float]:
        """IOB2 tags and (with ``scores``) tag probabilities per sentence (example order), and the mean
        loss when tagged."""
        model.eval()
        tags: list[list[str]] = [[] for _ in range(len(data))]
        probs: list[list[float]] = [[] for _ in range(len(data))]
        total, n = 0.0, 0
        for batch in data.batches(batch_size, shuffle=False):
            out = model(**batch)
            best, p = model.decode(out["logits"], out["mask"], scores)
            best, p, mask = best.cpu().tolist(), p.cpu().tolist(), out["mask"].cpu().tolist()
            for r, i in enumerate(batch["index"].tolist()):
                k = data.n_words[i]
                row = [self.tags[best[r][j]] if mask[r][j] else "O" for j in range(k)]
                # conlleval's reading of the predicted tags (valid or not), written as IOB2
                tags[i] = spans_to_tags(_spans(row), k, "iob2")
                probs[i] = [p[r][j] if mask[r][j] else 0.0 for j in range(k)]
            if "loss" in out:
                total += float(out["loss"]) * len(batch["index"])
                n += len(batch["index"])
        return tags, probs, (total / n if n else float("nan"))

    def evaluate(self, model: TokenTagger, data: TaggedSentences, batch_size: int) -> tuple[dict, list]:
        pred, _, loss = self.decode_all(model, data, batch_size, scores=False)
        gold = [[self.tags[j] for j in row] for row in data.tags]
        if self.scheme != "iob2":
            gold = [convert_tags(row, self.scheme, "iob2") for row in gold]
        metrics = entity_metrics(gold, pred)
        metrics["loss"] = loss
        return metrics, pred

    def predict_tokens(self, model: TokenTagger, data: TaggedSentences, batch_size: int, words: list[list[str]],
                       texts: list[str] | None = None, offsets: list[list[tuple[int, int]]] | None = None
                       ) -> list[NERPrediction]:
        tags, probs, _ = self.decode_all(model, data, batch_size)
        out = []
        for i, (ws, ts, ps) in enumerate(zip(words, tags, probs)):
            offs = offsets[i] if offsets is not None else _joined_offsets(ws)
            text = texts[i] if texts is not None else " ".join(ws)
            ents = []
            for typ, s, e in _spans(ts):
                a, b = offs[s][0], offs[e - 1][1]
                ents.append(Entity(typ, text[a:b], a, b, round(sum(ps[s:e]) / (e - s), 6), (s, e)))
            out.append(NERPrediction(ents, list(ws), ts, list(offs)))
        return out

    def example(self, text: str, gold: Any, source: str) -> Example:
        """``gold``: (tokens, IOB2 tags) for ``Predictor.evaluate``."""
        tokens, tags = gold
        if len(tokens) != len(tags):
            raise DataError(f"{source}: {len(tokens)} tokens but {len(tags)} tags")
        return Example(" ".join(tokens), None, source, tokens=tuple(tokens), tags=tuple(tags))


def _joined_offsets(words: Sequence[str]) -> list[tuple[int, int]]:
    out, pos = [], 0
    for w in words:
        out.append((pos, pos + len(w)))
        pos += len(w) + 1
    return out


def subword_ids(encoder, words: list[list[str]]) -> tuple[list[list[int]], list[list[int]]]:
    """Sub-token ids of each sentence (no specials) and the position of each word's first piece.

    Words past the encoder's window (``max_length`` minus its special tokens) get position -1: they
    are not scored and are predicted O.  A word the tokenizer turns into nothing gets its unknown id."""
    from wordconv.models.pretrained import _quiet_transformers

    cap = encoder.content
    ids_out, first_out = [], []
    if not words:
        return ids_out, first_out
    with _quiet_transformers():
        pieces = encoder.tokenizer([w for s in words for w in s], add_special_tokens=False)["input_ids"]
    k = 0
    for s in words:
        ids, first = [], []
        for _ in s:
            p = pieces[k] or [encoder.filler]
            k += 1
            if len(ids) < cap:
                first.append(len(ids))
                ids.extend(p)
            else:
                first.append(-1)
        if len(ids) > cap:
            encoder.truncated += 1
            ids = ids[:cap]
        ids_out.append(ids or [encoder.filler])
        first_out.append(first)
    return ids_out, first_out
