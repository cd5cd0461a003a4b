"""A convolutional extractive-QA reader in the spirit of QANet (Yu et al. 2018): no recurrence.

    context words, question words
          -> word vectors (B, T, E) ++ character CNN (B, T, Fc)      random or pretrained; hashed chars
                                                                      (tagger.char_ids, CharCNN)
             ++ match flags (B, T, 3)                                 DrQA's exact-match features: does the
                                                                      word occur in the other text, as
                                                                      written / ignoring case / as a word
                                                                      of the same stem (first 4 letters)
          -> highway x 2 -> linear                                    (B, T, H)
          -> embedding encoder block (shared by context and question):
                 + sinusoidal positions
                 x = x + conv_i(LN(x))        depthwise-separable, kernel 7, `embed_convs` times
                 x = x + self_attention(LN(x))                        heads over the text's real words
                 x = x + ffn(LN(x))                                   C: (B, Tc, H), Q: (B, Tq, H)
          -> context-query attention (trilinear S = w . [c; q; c*q]):       (B, Tc, Tq)
                 A = softmax_q(S) Q                   context-to-query (C2Q)
                 B = softmax_q(S) softmax_c(S)^T C    query-to-context (Q2C, as in BiDAF/QANet)
                 [c; A; c*A; c*B] -> linear 4H -> H                          (B, Tc, H)
          -> model encoder: `model_blocks` blocks (kernel 5, `model_convs` convs each),
             run 3 times with shared weights:   M0 -> M1 -> M2              (B, Tc, H) each
          -> start logits = w1 . [M0; M1],  end logits = w2 . [M0; M2]       (B, Tc)

The task pairs the start and end logits into a span (end >= start, at most qa.max_answer_tokens).
The defaults are a CPU-sized QANet: hidden 64 instead of 128, 2 heads instead of 8 and 2
model-encoder blocks instead of 7, so that ~8k SQuAD questions train from scratch on two cores in
well under an hour (~1 s per training batch of 32 paragraphs of 150 words on one thread).

Batch padding: every mixing step (convolution, self-attention, both attention softmaxes) sees only
real words - convolution inputs are zeroed at padding positions, attention masks padding keys -
so a context's logits never depend on how long its batch neighbours are.  Padding positions get
:data:`MASKED` logits: finite, so that start + end sums and bf16 softmaxes stay finite too.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import nn

from wordconv.config import EmbeddingConfig, ModelParams
from wordconv.data.vocab import Vocab
from wordconv.models.base import Encoder, WordEmbedding
from wordconv.models.registry import register_model
from wordconv.models.tagger import CharCNN

MASKED = -1e4  # the logit of a padding position: exp() underflows to 0 in fp32, bf16 and fp16


class QANetParams(ModelParams):
    type: Literal["qanet"] = "qanet"
    # QANet: 128; 64 trains a batch of 32 SQuAD paragraphs in ~1 s on one CPU thread (96: ~1.5 s)
    hidden: int = Field(64, gt=0)
    # characters (hashed into char_buckets rows as in the tagger): QANet reads 200-d char features with
    # kernel 5; 32-d embeddings and 64 filters are enough for casing, digits and word endings
    char_dim: int = Field(32, ge=0)  # 0 = no character CNN
    char_filters: int = Field(64, gt=0)
    char_width: int = Field(5, gt=0)  # QANet: kernel 5 over the characters
    char_buckets: int = Field(512, ge=16)  # hashed character table (the Latin-1 range maps one to one)
    max_word_chars: int = Field(16, gt=0)  # QANet: 16 characters per word
    highway_layers: int = Field(2, ge=0)  # QANet (after BiDAF): a 2-layer highway network
    # embedding encoder: QANet uses 1 block of 4 convolutions of kernel 7
    embed_blocks: int = Field(1, gt=0)
    embed_convs: int = Field(4, gt=0)
    embed_kernel: int = Field(7, gt=0)
    # model encoder: QANet stacks 7 blocks of 2 convolutions (kernel 5) and runs them 3 times; 2 blocks
    # here: the 3 passes with shared weights (giving M0, M1, M2) stay
    model_blocks: int = Field(2, gt=0)
    model_convs: int = Field(2, gt=0)
    model_kernel: int = Field(5, gt=0)
    heads: int = Field(2, gt=0)  # QANet: 8 heads of 16; 2 heads of 32 (each head costs time on a CPU)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)  # QANet: 0.1 on word vectors and between layers
    char_dropout: float = Field(0.05, ge=0.0, lt=1.0)  # QANet: 0.05 on character features
    # training only: each word is replaced by UNK with this probability, so the reader learns to read
    # unseen words from their characters and context (cf. Lample et al. 2016)
    word_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    # DrQA (Chen et al. 2017): three 0/1 features per word - it occurs in the other text (question for a
    # context word, context for a question word) exactly as written, ignoring case, and as a word with the
    # same first 4 letters (a crude stem standing in for DrQA's lemma: lives ~ live).  Read from the
    # characters, so they work for words outside the vocabulary too.  Trained from scratch on ~8k
    # questions the reader cannot learn word matching from its embeddings alone (BENCHMARKS.md)
    match_features: bool = True
    # the words of a paragraph the qa task passes to the reader (QANet: 400); the question and answer
    # limits are the qa section's (qa.max_question_tokens, qa.max_answer_tokens).  Positions are
    # sinusoidal, so the model itself takes any length
    max_context_tokens: int = Field(400, gt=0)

    @field_validator("char_width", "embed_kernel", "model_kernel")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"must be odd (3, 5, 7, ...) so each window is centred on its word; got {v}")
        return v

    @model_validator(mode="after")
    def _heads_divide(self) -> QANetParams:
        if self.hidden % self.heads:
            raise ValueError(f"heads={self.heads} must divide hidden={self.hidden} (each head gets an equal share)")
        return self

    @property
    def training_defaults(self) -> dict:
        """QANet trains with Adam at lr 1e-3 after a warm-up, batches of 32, gradients clipped at 5 (its
        code); trained from scratch, it needs more epochs than a fine-tuned encoder.  8 epochs with the
        linear decay: SQuAD test F1 49.19 / 46.21 / 45.28 (seeds 13-15) from ~7.8k questions (BENCHMARKS.md)."""
        return {"epochs": 8, "batch_size": 32, "lr": 1e-3, "optimizer": "adam", "schedule": "linear",
                "warmup": 0.05, "patience": 3, "grad_clip": 5.0}


class Highway(nn.Module):
    """Srivastava et al. (2015): x = g * relu(W x) + (1 - g) * x, g = sigmoid(W_g x), per position."""

    def __init__(self, dim: int, layers: int, dropout: float):
        super().__init__()
        self.transform = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.gate = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for transform, gate in zip(self.transform, self.gate):
            g = torch.sigmoid(gate(x))
            x = g * self.dropout(torch.relu(transform(x))) + (1 - g) * x
        return x


def positions(steps: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Vaswani et al. (2017): sinusoidal position signals (T, dim), sines in the first half."""
    half = dim // 2
    pos = torch.arange(steps, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / max(half - 1, 1))
    signal = torch.cat([torch.sin(pos * freq), torch.cos(pos * freq)], dim=1)  # (T, 2 * half)
    return F.pad(signal, (0, dim - 2 * half)).to(dtype)


class SeparableConv(nn.Module):
    """Depthwise conv (one kernel per channel) then pointwise (1x1) conv, relu: Chollet (2017), as in QANet.

    The depthwise conv is written as ``kernel`` shifted, weighted copies of the input: on a CPU that
    trains 1.7x faster than a grouped Conv1d, and the pointwise conv is a Linear on (B, T, H).
    """

    def __init__(self, dim: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.depthwise = nn.Parameter(torch.empty(kernel, dim).uniform_(-1 / math.sqrt(kernel), 1 / math.sqrt(kernel)))
        self.pointwise = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H), zero at padding
        t, half = x.shape[1], self.kernel // 2
        padded = F.pad(x, (0, 0, half, half))  # (B, T + k - 1, H)
        w = self.depthwise.to(x.dtype)
        h = padded[:, :t] * w[0]
        for j in range(1, self.kernel):
            h = h + padded[:, j:j + t] * w[j]  # window centred on each word: k // 2 words either side
        return torch.relu(self.pointwise(h))  # (B, T, H)


class EncoderBlock(nn.Module):
    """QANet's block: positions, then convs, self-attention and a feed-forward layer, each as
    x + dropout(f(LN(x))) (pre-layer-norm residuals)."""

    def __init__(self, dim: int, convs: int, kernel: int, heads: int, dropout: float):
        super().__init__()
        self.convs = nn.ModuleList(SeparableConv(dim, kernel) for _ in range(convs))
        self.conv_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(convs))
        self.attn_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.heads = heads
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        keep = mask[:, :, None].to(x.dtype)  # (B, T, 1)
        x = (x + positions(t, h, x.device, x.dtype)) * keep
        for i, (conv, norm) in enumerate(zip(self.convs, self.conv_norms)):
            y = norm(x) * keep  # padding enters the conv as zeros
            if i % 2 == 0:
                y = self.dropout(y)  # QANet's code: dropout before every second conv
            x = x + conv(y)
        q, k, v = self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        # padding keys get a large negative score (an additive mask: faster than a boolean one on a CPU);
        # no dropout on the attention weights: on a CPU its random (B, heads, T, T) mask costs more than
        # the attention itself (the sublayer's output dropout stays)
        bias = torch.zeros(b, 1, 1, t, dtype=q.dtype, device=q.device).masked_fill(
            ~mask[:, None, None, :], torch.finfo(q.dtype).min)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, heads, T, H / heads)
        x = x + self.dropout(self.out(attended.transpose(1, 2).reshape(b, t, h)))
        x = x + self.dropout(self.ffn(self.ffn_norm(x)))
        return x * keep  # (B, T, H), zero at padding


def lower_chars(chars: torch.Tensor) -> torch.Tensor:
    """Hashed character ids (:func:`wordconv.models.tagger.char_ids`, id = 1 + ord(c) for Latin-1) with
    A-Z and the Latin-1 capitals (except the multiplication sign) mapped to their lowercase ids."""
    upper = ((chars >= 1 + 65) & (chars <= 1 + 90)) | ((chars >= 1 + 192) & (chars <= 1 + 222) & (chars != 1 + 215))
    return torch.where(upper, chars + 32, chars)


STEM = 4  # letters two words must share for the stem flag (both at least this long): lives ~ live


def match_flags(a_chars: torch.Tensor, a_mask: torch.Tensor, b_chars: torch.Tensor,
                b_mask: torch.Tensor) -> torch.Tensor:
    """(B, Ta, 3) float: whether each real word of ``a`` occurs among the real words of ``b`` character for
    character, ignoring case, and with the same first :data:`STEM` letters ignoring case (or the same
    word, when shorter) - DrQA's exact-match features, the last a crude stand-in for its lemma match.
    Words are compared by their characters as the reader stores them (head and tail of long words)."""
    width = max(a_chars.shape[2], b_chars.shape[2], STEM)
    a_chars = F.pad(a_chars, (0, width - a_chars.shape[2]))  # (B, Ta, C)
    b_chars = F.pad(b_chars, (0, width - b_chars.shape[2]))  # (B, Tb, C)
    a_low, b_low = lower_chars(a_chars), lower_chars(b_chars)
    # the stem: the first STEM letters of a word that long; a shorter word stands for itself
    # (a shorter word's stem is -1 on one side and -2 on the other, so stems never match it: its exact
    # lowercase match stands in below)
    a_stem = torch.where(a_chars[:, :, STEM - 1:STEM] > 0, a_low[:, :, :STEM], -1)
    b_stem = torch.where(b_chars[:, :, STEM - 1:STEM] > 0, b_low[:, :, :STEM], -2)
    flags = []
    for a, b in ((a_chars, b_chars), (a_low, b_low), (a_stem, b_stem)):
        same = (a[:, :, None, :] == b[:, None, :, :]).all(dim=-1) & b_mask[:, None, :]  # (B, Ta, Tb)
        flags.append(same.any(dim=2) & a_mask)  # (B, Ta)
    flags[2] = flags[2] | flags[1]  # a short word matched ignoring case also shares its "stem"
    return torch.stack(flags, dim=-1).float()  # (B, Ta, 3)


def masked_softmax(scores: torch.Tensor, keep: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` giving exactly 0 where ``keep`` is False (every row keeps one entry)."""
    return torch.softmax(scores.masked_fill(~keep, torch.finfo(scores.dtype).min), dim=dim)


class ContextQueryAttention(nn.Module):
    """Trilinear similarity S_ij = w . [c_i; q_j; c_i * q_j] (Seo et al. 2017), then C2Q and Q2C."""

    def __init__(self, dim: int):
        super().__init__()
        self.w_c = nn.Linear(dim, 1, bias=False)
        self.w_q = nn.Linear(dim, 1, bias=False)
        self.w_cq = nn.Parameter(torch.empty(dim).uniform_(-1 / math.sqrt(dim), 1 / math.sqrt(dim)))
        # no bias: a constant added to S leaves both softmaxes unchanged

    def forward(self, c: torch.Tensor, q: torch.Tensor, c_mask: torch.Tensor,
                q_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the [c; q; c*q] product without the (B, Tc, Tq, 3H) tensor
        s = self.w_c(c) + self.w_q(q).transpose(1, 2) + (c * self.w_cq) @ q.transpose(1, 2)  # (B, Tc, Tq)
        c2q = masked_softmax(s, q_mask[:, None, :], dim=2)  # (B, Tc, Tq): each context word over the question
        q2c = masked_softmax(s, c_mask[:, :, None], dim=1)  # (B, Tc, Tq): each question word over the context
        a = c2q @ q  # (B, Tc, H)
        b = c2q @ (q2c.transpose(1, 2) @ c)  # (B, Tc, H)
        return torch.cat([c, a, c * a, c * b], dim=-1), c2q  # (B, Tc, 4H)


class QANetReader(Encoder):
    """Context and question ids (and characters) -> start and end logits over the context words."""

    span_reader = True  # the qa task reads start/end logits from this encoder instead of adding a head

    def __init__(self, params: QANetParams, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0):
        super().__init__()
        self.params = params
        self.pad_id = pad_id
        p = params
        self.embedding = WordEmbedding(vocab_size, emb, pad_id)
        width = self.embedding.dim
        self.chars = None
        if p.char_dim:
            self.chars = CharCNN(p.char_buckets, p.char_dim, p.char_filters, p.char_width)
            width += self.chars.output_dim
        if p.match_features:
            width += 3
        self.word_drop = nn.Dropout(p.dropout)
        self.char_drop = nn.Dropout(p.char_dropout)
        self.highway = Highway(width, p.highway_layers, p.dropout)
        self.project = nn.Linear(width, p.hidden, bias=False)
        self.embed_encoder = nn.ModuleList(
            EncoderBlock(p.hidden, p.embed_convs, p.embed_kernel, p.heads, p.dropout) for _ in range(p.embed_blocks))
        self.attention = ContextQueryAttention(p.hidden)
        self.resize = nn.Linear(4 * p.hidden, p.hidden)
        self.model_encoder = nn.ModuleList(
            EncoderBlock(p.hidden, p.model_convs, p.model_kernel, p.heads, p.dropout) for _ in range(p.model_blocks))
        # no biases: a constant added to every position's logit changes no softmax over the positions
        self.start = nn.Linear(2 * p.hidden, 1, bias=False)
        self.end = nn.Linear(2 * p.hidden, 1, bias=False)
        self.dropout = nn.Dropout(p.dropout)
        self.output_dim = p.hidden
        self.min_length = 1

    def _embed(self, ids: torch.Tensor, chars: torch.Tensor | None, mask: torch.Tensor,
               match: torch.Tensor | None = None) -> torch.Tensor:
        """Word + character (+ match) features -> highway -> H, then the shared embedding encoder: (B, T, H)."""
        if self.training and self.params.word_dropout > 0:
            drop = (torch.rand(ids.shape, device=ids.device) < self.params.word_dropout) & mask
            ids = ids.masked_fill(drop, Vocab.unk_id)
        feats = [self.word_drop(self.embedding(ids))]  # (B, T, E)
        if self.chars is not None:
            if chars is None:
                raise ValueError("the qanet reader reads characters: pass c_chars and q_chars (B, T, C)")
            feats.append(self.char_drop(self.chars(chars)))  # (B, T, Fc)
        if match is not None:
            feats.append(match.to(feats[0].dtype))  # (B, T, 3)
        x = self.project(self.highway(torch.cat(feats, dim=-1)))  # (B, T, H)
        for block in self.embed_encoder:
            x = block(x, mask)
        return x

    def _model_pass(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.model_encoder:
            x = block(x, mask)
        return x

    def forward(self, c_ids: torch.Tensor, c_chars: torch.Tensor | None = None, q_ids: torch.Tensor | None = None,
                q_chars: torch.Tensor | None = None, **_) -> dict[str, torch.Tensor]:
        if q_ids is None:
            raise ValueError("the qanet reader needs the question: pass q_ids (B, Tq)")
        c_mask, q_mask = c_ids != self.pad_id, q_ids != self.pad_id  # (B, Tc), (B, Tq)
        c_match = q_match = None
        if self.params.match_features:
            if c_chars is None or q_chars is None:
                raise ValueError("the qanet reader reads characters: pass c_chars and q_chars (B, T, C)")
            c_match = match_flags(c_chars, c_mask, q_chars, q_mask)  # (B, Tc, 3)
            q_match = match_flags(q_chars, q_mask, c_chars, c_mask)  # (B, Tq, 3)
        c = self._embed(c_ids, c_chars, c_mask, c_match)  # (B, Tc, H)
        q = self._embed(q_ids, q_chars, q_mask, q_match)  # (B, Tq, H)
        x, c2q = self.attention(c, q, c_mask, q_mask)  # (B, Tc, 4H), (B, Tc, Tq)
        x = self.dropout(self.resize(x)) * c_mask[:, :, None].to(x.dtype)  # (B, Tc, H)
        m0 = self._model_pass(x, c_mask)  # the same blocks three times (QANet): (B, Tc, H) each
        m1 = self._model_pass(m0, c_mask)
        m2 = self._model_pass(m1, c_mask)
        start = self.start(torch.cat([m0, m1], dim=-1)).squeeze(-1)  # (B, Tc)
        end = self.end(torch.cat([m0, m2], dim=-1)).squeeze(-1)  # (B, Tc)
        return {"start_logits": start.masked_fill(~c_mask, MASKED), "end_logits": end.masked_fill(~c_mask, MASKED),
                "mask": c_mask, "c2q": c2q}


@register_model("qanet", QANetParams,
                "convolutional QA reader (QANet-style): depthwise-separable convs + self-attention, "
                "context-query attention, start/end pointers",
                tasks=("qa",))
def build_qanet(params: QANetParams, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0) -> QANetReader:
    return QANetReader(params, emb, vocab_size, pad_id)
