"""A convolutional sequence tagger (named entities): one state per word, no pooling.

    words -> word vectors (B, T, E)                    lowercased words, random or pretrained (Kim's modes)
          ++ character CNN (B, T, Fc)                  Ma & Hovy (2016): char embeddings, conv width 3, max over the word
          ++ casing embedding (B, T, 8)                Collobert et al. (2011): lower / UPPER / Title / mixed / digit / other
          -> dropout -> conv width k, F filters, "same" padding                      (B, T, F)
          -> for each of `iterations`: for each dilation d in `dilations`:           (B, T, F)
                 h = h + dropout(relu(conv_d(h)))         dilated, "same" padding, residual
             (Strubell et al. 2017, iterated dilated CNN: the block's weights are shared across iterations)
          -> [task head: dropout, linear -> tag scores, softmax or a linear-chain CRF]

Casing matters for names and the word vectors here are lowercase (GloVe 6B), so the case of each
word reaches the model through the character CNN (which reads the word as written) and a small
casing embedding.  Characters are hashed into ``char_buckets`` rows (code point modulo the table
size): no character vocabulary to save, and every script gets ids; the Latin-1 range maps one to
one with the default 512 buckets.

Batch padding: states at padding positions are zeroed after every convolution, so a word's tags
never depend on how long its batch neighbours are.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from wordconv.config import EmbeddingConfig, ModelParams
from wordconv.data.vocab import Vocab
from wordconv.models.base import Encoder, EncoderOutput, WordEmbedding
from wordconv.models.registry import register_model

# casing classes (0 = padding)
CASES = ("pad", "lower", "upper", "title", "mixed", "digit", "other")


@lru_cache(maxsize=1 << 16)
def casing(word: str) -> int:
    """The casing class of a word as written (an index into :data:`CASES`)."""
    if any(c.isdigit() for c in word):
        return 5
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 6
    if all(c.islower() for c in letters):
        return 1
    if all(c.isupper() for c in letters):
        return 2 if len(letters) > 1 else 3
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return 3
    return 4


@lru_cache(maxsize=1 << 16)
def char_ids(word: str, buckets: int, max_chars: int) -> tuple[int, ...]:
    """Hashed character ids of a word (1..buckets-1; 0 is padding): the first ``max_chars // 2``
    and last ``max_chars - max_chars // 2`` characters of a longer word."""
    if len(word) > max_chars:
        head = max_chars // 2
        word = word[:head] + word[len(word) - (max_chars - head):]
    return tuple(1 + ord(c) % (buckets - 1) for c in word) or (1,)


class TaggerConfig(ModelParams):
    type: Literal["tagger"] = "tagger"
    char_dim: int = Field(30, ge=0)  # Ma & Hovy (2016): 30-d character embeddings; 0 = no character CNN
    char_filters: int = Field(50, gt=0)  # Ma & Hovy (2016): 30 filters of width 3
    char_width: int = Field(3, gt=0)
    char_buckets: int = Field(512, ge=16)  # hashed character table
    max_word_chars: int = Field(20, gt=0)  # characters read per word (head and tail of longer words)
    case_dim: int = Field(8, ge=0)  # casing embedding; 0 = off
    input_dropout: float = Field(0.5, ge=0.0, lt=1.0)  # on the concatenated word features (Ma & Hovy: 0.5)
    # training only: each word is replaced by UNK with this probability, so the tagger learns to tag
    # unseen words (most test names) from their characters and context (cf. Lample et al. 2016)
    word_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    # Strubell et al. (2017) used 300; 128 with word dropout scored 87.87 / 87.90 F1 on CoNLL-2003 (seeds 13,
    # 14) against 86.97 for 300 without, with 4.8x fewer convolution FLOPs per word (BENCHMARKS.md)
    num_filters: int = Field(128, gt=0)
    kernel_size: int = Field(3, gt=0)
    dilations: list[int] = Field(default_factory=lambda: [1, 2, 4])  # one block; receptive field 1+2*(1+1+2+4)=17
    iterations: int = Field(1, gt=0)  # the block repeated with shared weights (ID-CNN)
    conv_dropout: float = Field(0.15, ge=0.0, lt=1.0)  # inside the block
    dropout: float = Field(0.5, ge=0.0, lt=1.0)  # before the output layer
    max_norm: float | None = Field(None, gt=0.0)
    crf: bool = True  # a linear-chain CRF output (Viterbi decoding); False = independent softmax per word
    tag_scheme: Literal["iob2", "bioes"] = "bioes"  # the tags the model predicts (reported in IOB2)

    @field_validator("kernel_size", "char_width")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"must be odd (3, 5, ...) so each window is centred on its word; got {v}")
        return v

    @field_validator("dilations")
    @classmethod
    def _dilations(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 for d in v):
            raise ValueError(f"dilations must be a non-empty list of positive integers, e.g. [1, 2, 4]; got {v}")
        return v

    @property
    def training_defaults(self) -> dict:
        """Trained from scratch, the tagger needs more than the classifiers' 10 epochs: on CoNLL-2003 its
        best dev epoch came between 20 and 47 (BENCHMARKS.md), with dev F1 jumping +-0.5 between epochs."""
        return {"epochs": 50, "patience": 8}


def _unique_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.unique(rows, dim=0, return_inverse=True)`` up to the order of the unique rows, through a
    64-bit polynomial hash of each row (a 1-d unique: several times faster than sorting whole rows);
    exact: a hash collision is detected and answered by the row-wise unique."""
    n, c = rows.shape
    if n == 0:
        return rows, torch.zeros(0, dtype=torch.long, device=rows.device)
    powers = torch.full((c,), _HASH_BASE, dtype=torch.long, device=rows.device).cumprod(0)  # wraps mod 2^64
    keys = (rows.long() * powers).sum(1)
    distinct, where = torch.unique(keys, return_inverse=True)
    first = torch.empty(len(distinct), dtype=torch.long, device=rows.device)
    first.scatter_(0, where, torch.arange(n, device=rows.device))  # any row of each key
    unique = rows[first]
    if not torch.equal(unique[where], rows):  # two different words with one key
        return torch.unique(rows, dim=0, return_inverse=True)
    return unique, where


_HASH_BASE = 0x9E3779B97F4A7C15 - 2**64  # an odd 64-bit constant (the golden ratio's), as a signed int64


class CharCNN(nn.Module):
    """Ma & Hovy (2016): each word's characters -> embeddings -> conv -> max over the characters."""

    def __init__(self, buckets: int, dim: int, filters: int, width: int):
        super().__init__()
        self.embed = nn.Embedding(buckets, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, filters, width, padding=width // 2)
        self.output_dim = filters

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        b, t, c = chars.shape
        # each distinct word once: a batch of sentences repeats its words ("the", ",", padding) many times
        words, where = _unique_rows(chars.reshape(b * t, c))  # (U, C), (BT,)
        return self.words(words)[where].view(b, t, -1)  # (B, T, F)

    def words(self, words: torch.Tensor) -> torch.Tensor:
        """The features (U, F) of words given as character ids (U, C), 0-padded; 0 for an all-padding row."""
        if not torch.is_grad_enabled():
            return self._words_by_length(words)
        x = self.embed(words).transpose(1, 2)  # (U, D, C)
        h = self.conv(x)  # (U, F, C)
        h = h.masked_fill((words[:, None, :] == 0), float("-inf")).amax(dim=2)
        return torch.nan_to_num(h, neginf=0.0)  # padding words: all -inf -> 0

    def _words_by_length(self, words: torch.Tensor) -> torch.Tensor:
        """:meth:`words` with the words grouped by length: no padding characters to convolve and mask
        (a word's characters never hold the padding id 0, so its length is its count of non-zero ids)."""
        lengths = (words != 0).sum(dim=1)
        parts = []
        for n in torch.unique(lengths).tolist():
            if n:
                rows = (lengths == n).nonzero().squeeze(1)
                parts.append((rows, self.conv(self.embed(words[rows, :n]).transpose(1, 2)).amax(dim=2)))
        if not parts:
            return words.new_zeros(len(words), self.output_dim, dtype=self.conv.weight.dtype)
        out = parts[0][1].new_zeros(len(words), self.output_dim)  # all-padding rows: 0
        for rows, h in parts:
            out[rows] = h
        return out


def _relu_zero_padding(y: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """relu(y) times ``keep`` (1 at words, 0 at padding), in place when no gradient is recorded."""
    if torch.is_grad_enabled() and y.requires_grad:
        return torch.relu(y) * keep
    return y.relu_().mul_(keep)


class ConvTagger(Encoder):
    """Word + character + casing features through a (dilated) convolution stack: states (B, T, F)."""

    def __init__(self, params: TaggerConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0):
        super().__init__()
        self.params = params
        self.embedding = WordEmbedding(vocab_size, emb, pad_id)
        width = self.embedding.dim
        self.chars = None
        if params.char_dim:
            self.chars = CharCNN(params.char_buckets, params.char_dim, params.char_filters, params.char_width)
            width += self.chars.output_dim
        self.case = nn.Embedding(len(CASES), params.case_dim, padding_idx=0) if params.case_dim else None
        width += params.case_dim
        self.input_dropout = nn.Dropout(params.input_dropout)
        k = params.kernel_size
        self.project = nn.Conv1d(width, params.num_filters, k, padding=k // 2)
        self.block = nn.ModuleList(
            nn.Conv1d(params.num_filters, params.num_filters, k, padding=d * (k // 2), dilation=d)
            for d in params.dilations)
        self.conv_dropout = nn.Dropout(params.conv_dropout)
        self.output_dim = params.num_filters
        self.pad_id = pad_id

    def forward(self, ids: torch.Tensor, chars: torch.Tensor | None = None, case: torch.Tensor | None = None,
                char_states: torch.Tensor | None = None, **_) -> EncoderOutput:
        """``chars`` (B, T, C) character ids, or ``char_states`` (B, T, Fc): the character CNN's features
        of each word, computed beforehand (:meth:`CharCNN.words` over the distinct words of a corpus)."""
        mask = ids != self.pad_id  # (B, T)
        words = ids
        if self.training and self.params.word_dropout > 0:
            drop = (torch.rand(ids.shape, device=ids.device) < self.params.word_dropout) & mask
            words = ids.masked_fill(drop, Vocab.unk_id)
        feats = [self.embedding(words)]
        if self.chars is not None:
            if char_states is not None:
                feats.append(char_states)
            elif chars is None:
                raise ValueError("the tagger reads characters: pass chars (B, T, C)")
            else:
                feats.append(self.chars(chars))
        if self.case is not None:
            if case is None:
                raise ValueError("the tagger reads casing classes: pass case (B, T)")
            feats.append(self.case(case))
        x = self.input_dropout(torch.cat(feats, dim=-1)).transpose(1, 2)  # (B, W, T)
        h = self.project(x)
        keep = mask[:, None, :].to(h.dtype)  # the convolutions' dtype (bf16 under autocast): no upcast
        h = _relu_zero_padding(h, keep)
        for _ in range(self.params.iterations):
            for conv in self.block:
                h = h + self.conv_dropout(_relu_zero_padding(conv(h), keep))
        return EncoderOutput(states=h.transpose(1, 2), mask=mask, pooled=None)


@register_model("tagger", TaggerConfig,
                "convolutional NER tagger: words + character CNN + casing, dilated convolutions (ID-CNN), CRF",
                tasks=("ner",))
def build_tagger(params: TaggerConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0) -> ConvTagger:
    return ConvTagger(params, emb, vocab_size, pad_id)
