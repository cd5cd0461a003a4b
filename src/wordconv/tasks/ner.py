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
from itertools import accumulate, chain
from operator import add
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wordconv.data.batching import bucket_batches
from wordconv.data.conll import _end_of_chunk, _start_of_chunk, convert_tags, spans_to_tags
from wordconv.data.readers import Example
from wordconv.errors import ConfigError, DataError
from wordconv.evaluation.entity import entity_metrics
from wordconv.models.crf import CRF, allowed_transitions
from wordconv.models.tagger import CASES, ConvTagger, casing, char_ids
from wordconv.tasks.base import Task, TaskData

EVAL_WORDS_PER_SENTENCE = 16  # evaluation / prediction batches: at most batch_size x 16 padded positions
DECODE_POSITIONS = 1 << 17  # consecutive batches (similar lengths) decoded together: at most 131,072 padded words


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

    The convolutional tagger's words are kept as indices into a table of the distinct words (``types``):
    each distinct word's vocabulary id, casing class and characters are computed once, and a batch is a
    padded matrix of word indices looked up in those tables (a corpus repeats its words many times)."""

    def __init__(self, ids: list[list[int]] | None, n_words: list[int], tags: list[list[int]] | None, *,
                 types: list[np.ndarray] | None = None, type_ids: np.ndarray | None = None,
                 type_chars: np.ndarray | None = None, type_case: np.ndarray | None = None,
                 first: list[list[int]] | None = None, case: list[list[int]] | None = None, pad_id: int = 0):
        # ids: sub-token ids per sentence (pretrained encoders); or types (1-based word indices per
        # sentence) with the tables type_ids / type_chars / type_case, whose row 0 is the padding word
        self.ids = [np.asarray(x, dtype=np.int64) for x in ids] if ids is not None else None
        self.types = types
        self.type_ids, self.type_chars, self.type_case = type_ids, type_chars, type_case
        if type_chars is not None:
            self.type_chars_len = (type_chars != 0).sum(1)
        self.n_words = n_words
        self.tags = [np.asarray(x, dtype=np.int64) for x in tags] if tags is not None else None
        self.case = [np.asarray(x, dtype=np.int64) for x in case] if case is not None else None
        self.first = [np.asarray(x, dtype=np.int64) for x in first] if first is not None else None
        self.pad_id = pad_id
        self.device: torch.device | None = None

    def __len__(self) -> int:
        return len(self.n_words)

    def num_tokens(self) -> int:
        return sum(self.n_words)

    @staticmethod
    def _stack(rows: list[np.ndarray], width: int, fill: int) -> np.ndarray:
        out = np.full((len(rows), max(width, 1)), fill, dtype=np.int64)
        for r, a in enumerate(rows):
            out[r, :len(a)] = a
        return out

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
                max_tokens: int | None = None, chars: bool = True) -> Iterator[dict[str, torch.Tensor]]:
        """Padded batches; the tagger's also carry ``types`` (B, T), each word's row in the tables, and
        (unless ``chars=False``: the caller has each distinct word's character features) ``chars``."""
        lengths = [len(x) for x in self.ids] if self.ids is not None else self.n_words
        for idx in bucket_batches(lengths, batch_size, shuffle=shuffle, generator=generator, max_tokens=max_tokens):
            w = max(self.n_words[i] for i in idx)
            batch = {"lengths": torch.tensor([self.n_words[i] for i in idx])}
            if self.ids is not None:
                ids = self._stack([self.ids[i] for i in idx], max(lengths[i] for i in idx), self.pad_id)
                batch["ids"] = torch.from_numpy(ids)
            else:  # word indices -> the distinct words' ids, casing classes and characters
                types = self._stack([self.types[i] for i in idx], w, 0)
                batch["types"] = torch.from_numpy(types)
                batch["ids"] = torch.from_numpy(self.type_ids[types])
                if self.type_case is not None:
                    batch["case"] = torch.from_numpy(self.type_case[types])
                if self.type_chars is not None and chars:
                    c = max(int(self.type_chars_len[types].max()), 1)
                    batch["chars"] = torch.from_numpy(np.ascontiguousarray(self.type_chars[types][:, :, :c]))
            if self.case is not None:
                batch["case"] = torch.from_numpy(self._stack([self.case[i] for i in idx], w, 0))
            if self.first is not None:
                batch["first"] = torch.from_numpy(self._stack([self.first[i] for i in idx], w, -1))
            if self.tags is not None:
                batch["tags"] = torch.from_numpy(self._stack([self.tags[i] for i in idx], w, 0))
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

    def emissions(self, ids: torch.Tensor, lengths: torch.Tensor, chars=None, case=None, first=None,
                  char_states=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tag scores (B, W, C) and the (B, W) mask of the words that are scored."""
        if self.subword:
            states, scored = self.encoder.word_states(ids, first)
            if self.case is not None:
                states = torch.cat([states, self.case(case).to(states.dtype)], dim=-1)
        else:
            states = self.encoder(ids, chars=chars, case=case, char_states=char_states).states
            scored = torch.arange(states.shape[1], device=ids.device)[None, :] < lengths[:, None]
        return self.output(self.dropout(states)).float(), scored

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, tags: torch.Tensor | None = None,
                chars=None, case=None, first=None, char_states=None, **_) -> dict[str, torch.Tensor]:
        logits, mask = self.emissions(ids, lengths, chars, case, first, char_states)
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
            if not scores:
                best, _ = self.crf.decode(logits, m)
                return best, torch.zeros(best.shape)
            best, _, probs = self.crf.decode_with_marginals(logits, m)
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
        # each distinct word once: its vocabulary id, casing class and characters
        index: dict[str | None, int] = {None: 0}  # row 0: the padding word
        types = [np.fromiter([index.setdefault(w, len(index)) for w in s], dtype=np.int64, count=len(s))
                 for s in words]
        distinct = list(index)[1:]
        type_ids = np.asarray([to_ids.pad_id, *to_ids.vocab.encode([self.word_key(w) for w in distinct])],
                              dtype=np.int64)
        type_case = np.asarray([0, *map(casing, distinct)], dtype=np.int64)
        chars = [char_ids(w, self.char_buckets, self.max_word_chars) for w in distinct]
        lengths = np.fromiter(map(len, chars), dtype=np.int64, count=len(chars))
        type_chars = np.zeros((len(index), int(lengths.max(initial=1))), dtype=np.int64)
        starts = np.cumsum(lengths) - lengths  # each word's first character in the flat list
        rows = np.repeat(np.arange(1, len(index)), lengths)
        type_chars[rows, np.arange(len(rows)) - np.repeat(starts, lengths)] = list(chain.from_iterable(chars))
        return TaggedSentences(None, n_words, tags, types=types, type_ids=type_ids, type_chars=type_chars,
                               type_case=type_case, pad_id=to_ids.pad_id)

    # ---- decoding and scoring ------------------------------------------------------------------
    @staticmethod
    def char_features(model: TokenTagger, data: TaggedSentences, chunk: int = 16384) -> torch.Tensor | None:
        """The convolutional tagger's character features of every distinct word of ``data`` (U + 1, Fc),
        row 0 the padding word's; None for other encoders."""
        if not isinstance(model.encoder, ConvTagger) or model.encoder.chars is None or data.type_chars is None:
            return None
        chars = model.encoder.chars
        device = next(model.parameters()).device
        table = torch.from_numpy(data.type_chars)
        return torch.cat([chars.words(table[i:i + chunk].to(device)) for i in range(0, len(table), chunk)])

    @torch.no_grad()
    def decode_all(self, model: TokenTagger, data: TaggedSentences, batch_size: int, scores: bool = True
                   ) -> tuple[list[list[tuple[str, int, int]]], list[np.ndarray], float]:
        """Per sentence (example order): the entities ``(type, first word, last word + 1)`` as conlleval
        reads the predicted tags (valid or not), and (with ``scores``) each word's tag probability;
        and the mean loss when tagged."""
        model.eval()
        spans: list[list[tuple[str, int, int]]] = [[] for _ in range(len(data))]
        probs: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(data)
        prefixes = [t[0] for t in self.tags]
        types = ["" if t == "O" else t[2:] for t in self.tags]
        total, n = 0.0, 0
        group: list[tuple[torch.Tensor, torch.Tensor, list[int]]] = []

        def flush() -> None:  # decode a group of batches at once (the CRF steps through all of them together)
            width = max(lg.shape[1] for lg, _, _ in group)
            rows = sum(lg.shape[0] for lg, _, _ in group)
            logits = group[0][0].new_zeros(rows, width, group[0][0].shape[2])
            mask = torch.zeros(rows, width, dtype=torch.bool, device=logits.device)
            r0 = 0
            for lg, m, _ in group:
                logits[r0:r0 + lg.shape[0], :lg.shape[1]] = lg
                mask[r0:r0 + lg.shape[0], :lg.shape[1]] = m
                r0 += lg.shape[0]
            best, p = model.decode(logits, mask, scores)
            mask = mask.cpu().numpy()
            best = np.where(mask, best.cpu().numpy(), 0)  # words not scored (past an encoder's window): O
            p = np.where(mask, p.float().cpu().numpy(), 0.0)
            order = [i for _, _, index in group for i in index]
            for r, i in enumerate(order):
                k = data.n_words[i]
                spans[i] = tag_id_spans(best[r, :k], prefixes, types)
                probs[i] = p[r, :k]
            group.clear()

        # the character CNN once per distinct word, not once per batch it appears in
        char_table = self.char_features(model, data)
        # sentences sorted by length; a batch of long ones holds fewer (less padding, bounded memory)
        for batch in data.batches(batch_size, shuffle=False, max_tokens=batch_size * EVAL_WORDS_PER_SENTENCE,
                                  chars=char_table is None):
            if char_table is not None:
                batch["char_states"] = char_table[batch["types"].to(char_table.device)]
            out = model(**batch)
            logits = out["logits"]
            if group:  # the group padded to its longest sentence stays within DECODE_POSITIONS
                rows = sum(lg.shape[0] for lg, _, _ in group) + logits.shape[0]
                if rows * max(logits.shape[1], *(lg.shape[1] for lg, _, _ in group)) > DECODE_POSITIONS:
                    flush()
            group.append((logits, out["mask"], batch["index"].tolist()))
            if "loss" in out:
                total += float(out["loss"]) * len(batch["index"])
                n += len(batch["index"])
        if group:
            flush()
        return spans, probs, (total / n if n else float("nan"))

    def evaluate(self, model: TokenTagger, data: TaggedSentences, batch_size: int) -> tuple[dict, list]:
        spans, _, loss = self.decode_all(model, data, batch_size, scores=False)
        pred = [spans_to_tags(sp, k, "iob2") for sp, k in zip(spans, data.n_words)]
        gold = [[self.tags[j] for j in row] for row in data.tags]
        if self.scheme != "iob2":
            gold = [convert_tags(row, self.scheme, "iob2") for row in gold]
        metrics = entity_metrics(gold, pred)
        metrics["loss"] = loss
        return metrics, pred

    def predict_tokens(self, model: TokenTagger, data: TaggedSentences, batch_size: int, words: list[list[str]],
                       texts: list[str] | None = None, offsets: list[list[tuple[int, int]]] | None = None
                       ) -> list[NERPrediction]:
        spans, probs, _ = self.decode_all(model, data, batch_size)
        out = []
        for i, ws in enumerate(words):
            offs = list(offsets[i]) if offsets is not None else _joined_offsets(ws)
            ents = []
            if spans[i]:
                text = texts[i] if texts is not None else " ".join(ws)
                ps = probs[i].tolist()
                for typ, s, e in spans[i]:
                    a, b = offs[s][0], offs[e - 1][1]
                    score = round(sum(ps[s:e]) / (e - s), 6)
                    ents.append(Entity(typ, text[a:b], a, b, score, (s, e)))
            out.append(NERPrediction(ents, ws, spans_to_tags(spans[i], len(ws), "iob2"), offs))
        return out

    def example(self, text: str, gold: Any, source: str) -> Example:
        """``gold``: (tokens, IOB2 tags) for ``Predictor.evaluate``."""
        tokens, tags = gold
        if len(tokens) != len(tags):
            raise DataError(f"{source}: {len(tokens)} tokens but {len(tags)} tags")
        return Example(" ".join(tokens), None, source, tokens=tuple(tokens), tags=tuple(tags))


def _joined_offsets(words: Sequence[str]) -> list[tuple[int, int]]:
    """Each word's character span in the words joined by single spaces."""
    lengths = list(map(len, words))
    starts = list(map(add, accumulate(lengths, initial=0), range(len(lengths))))  # + one space per word before
    return list(zip(starts, map(add, starts, lengths)))


def tag_id_spans(ids: np.ndarray, prefixes: Sequence[str], types: Sequence[str]) -> list[tuple[str, int, int]]:
    """:func:`wordconv.data.conll.tags_to_spans` (conlleval's reading, valid tags or not) of a sentence
    given as tag ids (0 = O; tag ``j`` has prefix ``prefixes[j]`` and type ``types[j]``), reading only
    the words that are not O: an O between two of them closes any open entity."""
    spans = []
    prev_prefix, prev_type, start, last = "O", "", 0, -2
    where = np.flatnonzero(ids)
    for i, j in zip(where.tolist(), ids[where].tolist()):
        if i != last + 1 and prev_prefix != "O":  # O tags in between end the open entity
            spans.append((prev_type, start, last + 1))
            prev_prefix, prev_type = "O", ""
        prefix, type_ = prefixes[j], types[j]
        if _end_of_chunk(prev_prefix, prefix, prev_type, type_):
            spans.append((prev_type, start, i))
        if _start_of_chunk(prev_prefix, prefix, prev_type, type_):
            start = i
        prev_prefix, prev_type, last = prefix, type_, i
    if prev_prefix != "O":
        spans.append((prev_type, start, last + 1))
    return spans


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
