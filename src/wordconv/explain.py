"""Explanations: which words made a text classifier decide?

Exact attribution, for Kim's CNN (``textcnn``: 1-max, k-max or average pooling).  At prediction
time dropout is off and the output layer is linear, so every class logit splits into one term per
pooled value, and with 1-max pooling each pooled value comes from ONE window (n-gram):

    logit_c  = b_c + sum_j W[c, j] * pooled_j                    j: the pooled features (filters)
    pooled_j = act(conv_f(window_j) + bias_f)                     window_j = argmax over the text's windows
             = 0 for a ReLU filter that nothing excites           -> contributes 0, names no n-gram
    logit_c  = b_c + sum_j contrib_cj,   contrib_cj = W[c, j] * pooled_j  tied to window_j

    k-max: j runs over (filter, slot), each slot one window; filler slots are 0.
    avg:   pooled_f = (1/n) sum_t act(conv_f(window_t) + bias_f): each window t carries W[c, f] * act(...) / n.

A window of a "wide" convolution may hang over the text's ends (Kim's zero padding): it is tied
to the real words it covers only.  Each contribution is spread evenly over those words, so

    sum_tokens score_c(token) + b_c = logit_c                     (exactly, up to float rounding)

and an explanation's ``bias`` is the output layer's bias.  The ``stacked`` CNN has a Dense + ReLU
after its global max, and ``dpcnn`` / ``cnn-attention`` mix windows before the output layer: no
such split exists for them.

Integrated gradients (Sundararajan et al. 2017), for every other classifier encoder: the input
embeddings x (one vector per token) are moved from a baseline x' (zero vectors = the padding
word's vector; a fine-tuned encoder's [PAD] embedding) to x, and the gradients along the path
are integrated:

    IG_i = (x_i - x'_i) . integral_0^1 d logit_c(x' + a (x - x')) / d x_i  da       a per token i
    sum_i IG_i = logit_c(x) - logit_c(x')                                          (completeness)

The integral is a Gauss-Legendre sum over ``steps`` values of a (all of them, for every class, in
a few batched forward/backward passes).  Here ``bias`` = logit_c(x'), so tokens + bias ~= logit,
short of the quadrature's error.  fastText's hashed bigram vectors move with the words (half of a
bigram's share to each word); a fine-tuned encoder's sub-tokens are summed into the words of its
tokenizer (``word_ids``), and a word's offsets span its sub-tokens' offsets.

Offsets: tokens come from the model's saved :class:`~wordconv.data.text.Preprocessor`
(``tokens()``: the same tokens ``__call__`` gives, with offsets into the original, uncleaned text;
then the same truncation), so lowercasing, HTML stripping and dropped stop words never shift a
span: ``text[start:end]`` is what the user wrote.

    explanations = explain(predictor, ["a <b>superb</b> film!"])
    explanations[0].to_dict()["ngrams"][0]  # {"text": "a <b>superb", "start": 0, "end": 11, "score": 1.3, ...}
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import numpy as np
import torch
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table
from torch import nn

from wordconv.data.batching import pad_batch
from wordconv.data.text import Token
from wordconv.errors import ConfigError, DataError, ModelError, WordconvError
from wordconv.userio import user_errors

__all__ = ["ClassView", "Decomposition", "Explanation", "NGram", "TokenScore", "decompose", "explain",
           "explain_command", "top_filter_ngrams"]

Method = Literal["auto", "exact", "integrated_gradients"]
EXPLAINED_TASKS = ("textcat", "multilabel")  # one probability per label; regression has none, ner/qa no text label
_IG_TOKENS = 8192  # token positions per integrated-gradients pass (copies x length): bounds memory, not results
_EXACT_BATCH = 64  # texts per exact-decomposition pass


# --------------------------------------------------------------------------------------------
# results


@dataclass
class TokenScore:
    """One token the model read: the original text's slice ``text == original[start:end]`` and its score."""

    text: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end, "score": self.score}


@dataclass
class NGram:
    """A contiguous span of the original text and its contribution to a logit.

    ``filter``: exact method, the filter (global index: width index x num_filters + filter) that
    contributes most to this span (several filters may pick the same window; their contributions are
    summed in ``score``); None for integrated gradients.  A window that straddles the cut of a truncated
    text (``truncation: head+tail``) spans the cut-out middle too."""

    text: str
    start: int
    end: int
    score: float
    filter: int | None = None

    def to_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end, "score": self.score, "filter": self.filter}


@dataclass
class ClassView:
    """One class's logit and the n-grams that contribute most to it."""

    logit: float
    ngrams: list[NGram]

    def to_dict(self) -> dict:
        return {"logit": self.logit, "ngrams": [g.to_dict() for g in self.ngrams]}


@dataclass
class Explanation:
    """Why a text got a label: per-token scores and the best n-grams for it, and the n-grams of every class.

    ``bias``: the part of ``logit`` no token carries (exact: the output layer's bias; integrated
    gradients: the logit of the baseline, an all-padding text), so ``sum(token scores) + bias`` is
    ``logit`` (exactly, resp. up to ``delta``, the quadrature's error)."""

    label: str
    probability: float
    method: Literal["exact", "integrated_gradients"]
    logit: float
    bias: float
    tokens: list[TokenScore]
    ngrams: list[NGram]
    attention: list[float] | None
    per_class: dict[str, ClassView]
    text: str = field(default="", repr=False)
    delta: float = field(default=0.0, repr=False)  # logit - bias - sum(token scores)

    def to_dict(self) -> dict:
        """The JSON shape served to the web page and the HTTP API."""
        return {
            "label": self.label,
            "probability": self.probability,
            "method": self.method,
            "logit": self.logit,
            "bias": self.bias,
            "tokens": [t.to_dict() for t in self.tokens],
            "ngrams": [g.to_dict() for g in self.ngrams],
            "attention": self.attention,
            "per_class": {name: view.to_dict() for name, view in self.per_class.items()},
        }


@dataclass
class Decomposition:
    """A textcnn's logits for one text split into exact per-unit contributions (see the module docstring).

    A unit is one pooled value (1-max: a filter; k-max: a filter's slot) or, with average pooling,
    one (filter, window) pair; units worth exactly 0 (dead ReLU filters, k-max fillers) are left out.
    ``contributions.sum(1) + bias == logits`` and ``token_scores.sum(1) + bias == logits``."""

    text: str
    labels: list[str]
    tokens: list[Token]  # the tokens the model read; offsets into ``text``
    logits: torch.Tensor  # (C,) float64, the model's own logits
    bias: torch.Tensor  # (C,) the output layer's bias
    contributions: torch.Tensor  # (C, U) W[c, column(u)] * value(u)
    filters: torch.Tensor  # (U,) each unit's filter (global index)
    spans: torch.Tensor  # (U, 2) each unit's window as a token range [start, end) over real tokens
    token_scores: torch.Tensor  # (C, n) each contribution spread evenly over its window's tokens


# --------------------------------------------------------------------------------------------
# checks and input


def _check_model(predictor) -> None:
    if predictor.task not in EXPLAINED_TASKS:
        what = {"ner": "a tagger (task ner) labels words, not texts",
                "qa": "a question-answering reader (task qa) points at answer spans",
                "regression": "a regression model predicts a number, with no label probability to explain"
                }.get(predictor.task, f"task {predictor.task}")
        raise ModelError(f"explanations cover text classifiers (tasks {', '.join(EXPLAINED_TASKS)}); {what}: "
                         "train a textcat model to ask which words decided")


def _is_exact(encoder: nn.Module) -> bool:
    from wordconv.models.textcnn import TextCNN

    return isinstance(encoder, TextCNN)


def _resolve_method(predictor, method: str) -> Literal["exact", "integrated_gradients"]:
    exact = _is_exact(predictor.model.encoder)
    if method == "auto":
        return "exact" if exact else "integrated_gradients"
    if method == "exact" and not exact:
        raise ModelError(f"method 'exact' needs a textcnn model (pooled filters feeding the linear output layer); "
                         f"this one is {predictor.config.model.type}: use method 'integrated_gradients' or 'auto'")
    if method not in ("exact", "integrated_gradients"):
        raise ConfigError(f"unknown explanation method {method!r}: use 'auto', 'exact' (textcnn) or "
                          "'integrated_gradients'")
    return method  # type: ignore[return-value]


def _word_tokens(predictor, text: str) -> list[Token]:
    """The tokens a word-level model reads, with offsets into ``text``: the saved preprocessing's
    :meth:`~wordconv.data.text.Preprocessor.tokens` (the tokens of ``__call__``, offsets kept), truncated the
    same way."""
    pre = predictor._pre
    return pre.truncate(pre.tokens(text))


def _no_tokens(i: int) -> DataError:
    return DataError(f"text {i} has no words left after the model's preprocessing (stop words, punctuation or "
                     "HTML removed): nothing to explain; give a text with at least one word the model reads")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was = model.training
    model.eval()  # dropout off: the output layer then sees the pooled vector itself
    try:
        yield
    finally:
        model.train(was)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _probability(predictor, logits: torch.Tensor, c: int) -> float:
    if predictor.task == "multilabel":
        return float(torch.sigmoid(logits[c]))
    return float(torch.softmax(logits, dim=0)[c])


# --------------------------------------------------------------------------------------------
# exact: textcnn


@dataclass
class _WidthUnits:
    """One filter width's pooled values as units, for a batch: each is (column, value, window)."""

    width: int
    column: torch.Tensor  # (F, S) output-layer column each unit feeds
    value: torch.Tensor  # (B, F, S) its share of pooled[column]
    window: torch.Tensor  # (B, F, S) its window's first position in the padded sequence
    first_filter: int  # global index of this width's filter 0


def _textcnn_units(encoder, ids: torch.Tensor) -> tuple[list[_WidthUnits], torch.Tensor]:
    """The textcnn forward again, keeping which window each pooled value came from.

    Mirrors :meth:`wordconv.models.textcnn.TextCNN.forward` (masking, bias after the max, activation);
    returns the units and the pooled vector they add up to (checked against the encoder's)."""
    from wordconv.models.base import window_mask
    from wordconv.models.ops import multi_width_conv

    b = ids.shape[0]
    lengths = (ids != encoder.pad_id).sum(dim=1)  # (B,)
    x = encoder.embedding(ids)  # (B, T, E)
    maps = multi_width_conv(x, [conv.weight for conv in encoder.convs], encoder.pad)  # each (B, L, F)
    units, pooled, offset = [], [], 0
    for i, (conv, c) in enumerate(zip(encoder.convs, maps)):
        w, n_filters, steps = conv.kernel_size[0], c.shape[2], c.shape[1]
        filt = torch.arange(n_filters, device=ids.device)
        keep = window_mask(lengths, steps, w, encoder.pad)  # (B, L) windows over words
        if encoder.pooling == "max":
            masked = c.masked_fill(~keep[:, :, None], float("-inf"))
            win = masked.argmax(dim=1)  # (B, F) the winning window of each filter
            value = encoder.act(masked.gather(1, win[:, None, :]).squeeze(1) + conv.bias)  # (B, F)
            column = (offset + filt)[:, None]  # (F, 1)
            win, value = win[:, :, None], value[:, :, None]  # (B, F, 1)
            pooled.append(value[:, :, 0])
            offset += n_filters
        elif encoder.pooling == "kmax":  # as kmax_pool: stable sort, the k best, back in text order
            k = encoder.k
            masked = c.masked_fill(~keep[:, :, None], float("-inf"))
            if steps < k:
                masked = nn.functional.pad(masked, (0, 0, 0, k - steps), value=float("-inf"))
            top, idx = masked.sort(dim=1, descending=True, stable=True)
            top, idx = top[:, :k], idx[:, :k]  # (B, k, F)
            filler = torch.isinf(top)
            order = torch.where(filler, idx + masked.shape[1], idx).argsort(dim=1)
            top, idx, real = top.gather(1, order), idx.gather(1, order), ~filler.gather(1, order)
            h = encoder.act(top.masked_fill(~real, 0.0) + conv.bias).masked_fill(~real, 0.0)  # (B, k, F)
            value, win = h.transpose(1, 2), idx.clamp(max=steps - 1).transpose(1, 2)  # (B, F, k)
            column = offset + filt[:, None] * k + torch.arange(k, device=ids.device)[None, :]  # (F, k)
            pooled.append(value.flatten(1))
            offset += n_filters * k
        else:  # avg: every real window carries act(...) / (number of real windows)
            h = encoder.act(c + conv.bias) * keep[:, :, None]  # (B, L, F)
            value = (h / keep.sum(dim=1)[:, None, None]).transpose(1, 2)  # (B, F, L)
            win = torch.arange(steps, device=ids.device)[None, None, :].expand(b, n_filters, steps)
            column = (offset + filt)[:, None].expand(n_filters, steps)
            pooled.append(value.sum(dim=2))
            offset += n_filters
        units.append(_WidthUnits(w, column, value, win, i * n_filters))
    return units, torch.cat(pooled, dim=1)


def _decompose_batch(predictor, texts: list[str], tokens: list[list[Token]]) -> list[Decomposition]:
    model, encoder = predictor.model, predictor.model.encoder
    vocab = predictor.artifact.vocab
    device = _device(model)
    seqs = [vocab.encode([t.text for t in toks]) for toks in tokens]
    ids, _ = pad_batch(seqs, pad_id=encoder.pad_id, min_length=encoder.min_length)
    ids = ids.to(device)
    with torch.no_grad():
        logits = model(ids=ids)["logits"].double()  # (B, C) the model's own answer
        reference = encoder(ids).pooled  # (B, D)
        units, pooled = _textcnn_units(encoder, ids)
    if not torch.allclose(pooled, reference, rtol=1e-4, atol=1e-5):
        raise ModelError("the exact decomposition does not reproduce this textcnn's pooled features (the model code "
                         "changed?): use method='integrated_gradients' and report the problem")
    weight = model.output.weight.detach().double()  # (C, D)
    bias = model.output.bias.detach().double()  # (C,)
    out = []
    for r, (text, toks) in enumerate(zip(texts, tokens)):
        n = len(toks)
        cols, vals, filters, starts, ends = [], [], [], [], []
        for u in units:
            value = u.value[r].double()  # (F, S)
            live = value != 0  # dead ReLU filters and k-max fillers carry nothing
            f_idx, s_idx = live.nonzero(as_tuple=True)
            win = u.window[r][f_idx, s_idx]
            cols.append(u.column.to(device)[f_idx, s_idx])
            vals.append(value[f_idx, s_idx])
            filters.append(u.first_filter + f_idx)
            # the window's real tokens: wide padding puts `pad` zero vectors before the text
            starts.append((win - encoder.pad).clamp(min=0))
            ends.append((win - encoder.pad + u.width).clamp(max=n))
        col, val = torch.cat(cols), torch.cat(vals)
        start, end = torch.cat(starts), torch.cat(ends)
        contrib = weight[:, col] * val[None, :]  # (C, U)
        share = contrib / (end - start).clamp(min=1).to(contrib.dtype)[None, :]
        acc = torch.zeros(contrib.shape[0], n + 1, dtype=contrib.dtype, device=contrib.device)
        acc.index_add_(1, start, share).index_add_(1, end, -share)  # +share from start, -share from end on
        out.append(Decomposition(text=text, labels=list(predictor.labels), tokens=toks, logits=logits[r].cpu(),
                                 bias=bias.cpu(), contributions=contrib.cpu(), filters=torch.cat(filters).cpu(),
                                 spans=torch.stack([start, end], dim=1).cpu(), token_scores=acc.cumsum(1)[:, :n].cpu()))
    return out


def decompose(predictor, texts: Sequence[str] | str) -> list[Decomposition]:
    """The exact split of a textcnn's logits (every class) into per-filter and per-token contributions."""
    _check_model(predictor)
    if not _is_exact(predictor.model.encoder):
        raise ModelError(f"an exact decomposition needs a textcnn model; this one is {predictor.config.model.type}: "
                         "use explain(..., method='integrated_gradients')")
    texts = predictor._validate(texts)
    tokens = []
    for i, text in enumerate(texts):
        tokens.append(_word_tokens(predictor, text))
        if not tokens[-1]:
            raise _no_tokens(i)
    out: list[Decomposition] = []
    with _eval_mode(predictor.model):
        for lo in range(0, len(texts), _EXACT_BATCH):
            out += _decompose_batch(predictor, texts[lo:lo + _EXACT_BATCH], tokens[lo:lo + _EXACT_BATCH])
    return out


def _ranked(scores: torch.Tensor, top_k: int | None) -> list[int]:
    """Indices of the nonzero ``scores``: positive ones best first, then negative ones most negative first."""
    s = scores.tolist()
    pos = sorted((i for i, v in enumerate(s) if v > 0), key=lambda i: -s[i])
    neg = sorted((i for i, v in enumerate(s) if v < 0), key=lambda i: s[i])
    ranked = pos + neg
    return ranked if top_k is None else ranked[:top_k]


def _exact_ngrams(d: Decomposition, c: int, top_k: int | None) -> list[NGram]:
    """Class ``c``'s n-grams: units with the same token span summed, best first."""
    n = len(d.tokens)
    keys = d.spans[:, 0] * (n + 1) + d.spans[:, 1]
    uniq, inverse = torch.unique(keys, return_inverse=True)
    scores = torch.zeros(len(uniq), dtype=d.contributions.dtype).index_add_(0, inverse, d.contributions[c])
    out = []
    for g in _ranked(scores, top_k):
        members = (inverse == g).nonzero(as_tuple=True)[0]
        strongest = members[d.contributions[c, members].abs().argmax()]
        a, b = int(d.spans[strongest, 0]), int(d.spans[strongest, 1])
        start, end = d.tokens[a].start, d.tokens[b - 1].end
        out.append(NGram(d.text[start:end], start, end, float(scores[g]), int(d.filters[strongest])))
    return out


def _explain_exact(predictor, d: Decomposition, c: int, top_k: int | None) -> Explanation:
    labels = d.labels
    scores = d.token_scores[c]
    tokens = [TokenScore(d.text[t.start:t.end], t.start, t.end, float(s)) for t, s in zip(d.tokens, scores.tolist())]
    per_class = {name: ClassView(float(d.logits[k]), _exact_ngrams(d, k, top_k)) for k, name in enumerate(labels)}
    logit, bias = float(d.logits[c]), float(d.bias[c])
    return Explanation(label=labels[c], probability=_probability(predictor, d.logits, c), method="exact",
                       logit=logit, bias=bias, tokens=tokens, ngrams=per_class[labels[c]].ngrams, attention=None,
                       per_class=per_class, text=d.text, delta=logit - bias - float(scores.sum()))


# --------------------------------------------------------------------------------------------
# integrated gradients: every other encoder


@dataclass
class _Site:
    """An embedding module whose output IG moves from the baseline to the input.

    For one copy of the text the module outputs ``rows`` rows (a fine-tuned encoder's windows, else 1);
    entry e sits at (``row[e]``, ``pos[e]``) of that output and credits ``share[e]`` of its
    attribution to token ``token[e]``."""

    module: nn.Module
    baseline: torch.Tensor | None  # (H,) or None: zero vectors
    rows: int
    row: torch.Tensor  # (E,)
    pos: torch.Tensor  # (E,)
    token: torch.Tensor  # (E,)
    share: torch.Tensor  # (E,)
    expect: torch.Tensor | None = None  # (E,) the input id each entry must hold: a check that the mapping is right


@dataclass
class _Record:
    z: torch.Tensor | None = None  # the interpolated module output (a leaf that collects the gradient)
    diff: torch.Tensor | None = None  # output - baseline


@contextlib.contextmanager
def _interpolated(sites: list[_Site], alpha: torch.Tensor) -> Iterator[list[_Record]]:
    """While active, each site's module returns baseline + alpha (output - baseline) at its entries,
    copy k of the batch at ``alpha[k]``."""
    records = [_Record() for _ in sites]

    def make_hook(site: _Site, record: _Record):
        def hook(module: nn.Module, inputs: Any, out: torch.Tensor) -> torch.Tensor:
            if record.z is not None:
                raise ModelError(f"{type(module).__name__} ran twice in one forward pass: integrated gradients "
                                 "cannot follow this model's embeddings")
            copies = out.shape[0] // site.rows
            rows = (torch.arange(copies, device=out.device)[:, None] * site.rows + site.row[None, :]).flatten()
            pos = site.pos.repeat(copies)
            if site.expect is not None and not torch.equal(inputs[0][rows, pos], site.expect.repeat(copies)):
                raise ModelError(f"the positions integrated gradients moves in {type(module).__name__} do not hold the "
                                 "text's tokens (the encoder's input layout changed?); report the problem")
            mask = torch.zeros(out.shape[:2], dtype=torch.bool, device=out.device)
            mask[rows, pos] = True
            base = site.baseline if site.baseline is not None else torch.zeros((), device=out.device)
            a = alpha.to(out.dtype).repeat_interleave(site.rows)[:, None, None]  # (R, 1, 1)
            z = torch.where(mask[:, :, None], base + a * (out - base), out).detach().requires_grad_(True)
            record.z, record.diff = z, (out - base).detach()
            return z

        return hook

    handles = [s.module.register_forward_hook(make_hook(s, r)) for s, r in zip(sites, records)]
    try:
        yield records
    finally:
        for h in handles:
            h.remove()


def _word_sites(encoder, ids: torch.Tensor, n: int) -> list[_Site]:
    """A word-level encoder: its word vectors (and fastText's bigram vectors), one row per copy."""
    from wordconv.models.base import WordEmbedding

    embedding = getattr(encoder, "embedding", None)
    if not isinstance(embedding, WordEmbedding):
        raise ModelError(f"cannot explain a {type(encoder).__name__}: integrated gradients needs the word "
                         "embeddings (encoder.embedding) of a wordconv model or a fine-tuned Hugging Face encoder")
    device = ids.device
    t = torch.arange(n, device=device)
    zero = torch.zeros(n, dtype=torch.long, device=device)
    sites = [_Site(embedding, None, 1, zero, t, t, torch.ones(n, dtype=torch.float64, device=device), ids[0, :n])]
    bigrams = getattr(encoder, "bigrams", None)
    if isinstance(bigrams, nn.Embedding) and n > 1:  # bigram t = (word t, word t+1): half to each
        p = torch.arange(n - 1, device=device)
        sites.append(_Site(bigrams, None, 1, torch.zeros(2 * (n - 1), dtype=torch.long, device=device),
                           torch.cat([p, p]), torch.cat([p, p + 1]),
                           torch.full((2 * (n - 1),), 0.5, dtype=torch.float64, device=device)))
    return sites


def _subword_windows(encoder, n: int) -> list[tuple[int, int]]:
    """(first sub-token, count) of each window a fine-tuned encoder reads for ``n`` sub-tokens, in the
    order of :meth:`~wordconv.models.pretrained.PretrainedEncoder.forward`."""
    if encoder.params.truncation != "window" or n <= encoder.content:
        return [(0, n)]
    w, step = encoder.content, encoder.stride
    out = []
    for k in range(math.ceil((n - w) / step) + 1):
        real = max(0, min(w, n - k * step))
        if real > 0 or k == 0:
            out.append((k * step, real))
    return out


def _subword_sites(encoder, ids: torch.Tensor, n: int) -> list[_Site]:
    """A fine-tuned Hugging Face encoder: its input (word-piece) embeddings at the text's positions; the
    special tokens ([CLS], [SEP]) stay as they are, the text moves from [PAD] embeddings."""
    device = ids.device
    module = encoder.model.get_input_embeddings()
    baseline = module.weight[encoder.token_pad].detach()
    p = len(encoder.prefix)
    windows = _subword_windows(encoder, n)
    row, pos, token = [], [], []
    for k, (first, count) in enumerate(windows):
        row += [k] * count
        pos += range(p, p + count)
        token += range(first, first + count)
    row_t, pos_t, token_t = (torch.tensor(v, dtype=torch.long, device=device) for v in (row, pos, token))
    return [_Site(module, baseline, len(windows), row_t, pos_t, token_t,
                  torch.ones(len(row), dtype=torch.float64, device=device), ids[0][token_t])]


def _integrated_gradients(model: nn.Module, ids: torch.Tensor, sites: list[_Site], n: int, classes: int,
                          steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, n) attributions of every class to the n tokens, and the baseline's logits (C,)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)  # on [-1, 1]
    alphas = torch.tensor((nodes + 1) / 2, dtype=torch.float32)
    weights = torch.tensor(weights / 2, dtype=torch.float64)
    device = ids.device
    jobs = [(c, s) for c in range(classes) for s in range(steps)]
    rows = max(site.rows for site in sites)
    per_pass = max(1, _IG_TOKENS // (ids.shape[1] * rows))
    out = torch.zeros(classes, n, dtype=torch.float64, device=device)
    for lo in range(0, len(jobs), per_pass):
        chunk = jobs[lo:lo + per_pass]
        cls = torch.tensor([c for c, _ in chunk], device=device)
        alpha = alphas[[s for _, s in chunk]].to(device)
        weight = weights[[s for _, s in chunk]].to(device)
        with torch.enable_grad(), _interpolated(sites, alpha) as records:
            logits = model(ids=ids.repeat(len(chunk), 1))["logits"]  # (K, C)
            objective = logits.float().gather(1, cls[:, None]).sum()  # each copy's own class; copies are independent
            grads = torch.autograd.grad(objective, [r.z for r in records])
        for site, record, g in zip(sites, records, grads):
            a = (record.diff.double() * g.double()).sum(-1)  # (R, L) gradient x input per position
            k = len(chunk)
            rows_all = (torch.arange(k, device=device)[:, None] * site.rows + site.row[None, :]).flatten()
            vals = a[rows_all, site.pos.repeat(k)].view(k, -1) * site.share[None, :]  # (K, E)
            per_token = torch.zeros(k, n, dtype=torch.float64, device=device).index_add_(1, site.token, vals)
            out.index_add_(0, cls, per_token * weight[:, None])
    with torch.no_grad(), _interpolated(sites, torch.zeros(1, device=device)):
        baseline = model(ids=ids)["logits"][0].double()  # (C,)
    return out, baseline


@dataclass
class _Words:
    """What a text's model positions are, for reporting: each reported token's offsets and positions."""

    ids: list[int]
    spans: list[tuple[int, int]]  # (start, end) per reported token
    groups: list[list[int]]  # model positions per reported token


def _word_inputs(predictor, text: str, i: int) -> _Words:
    tokens = _word_tokens(predictor, text)
    if not tokens:
        raise _no_tokens(i)
    ids = predictor.artifact.vocab.encode([t.text for t in tokens])
    return _Words(ids, [(t.start, t.end) for t in tokens], [[j] for j in range(len(tokens))])


def _kept_subwords(encoder, n: int) -> list[int]:
    """Which of a text's ``n`` sub-tokens :meth:`PretrainedEncoder.encode_many` keeps (its truncation)."""
    p = encoder.params
    cap = encoder.content + (p.max_windows - 1) * encoder.stride if p.truncation == "window" else encoder.content
    head = min(p.head_tokens if p.head_tokens is not None else cap // 4, cap)
    if n <= cap:
        return list(range(n))
    if p.truncation == "tail":
        return list(range(n - cap, n))
    if p.truncation == "head+tail":
        return list(range(head)) + list(range(n - (cap - head), n))
    return list(range(cap))


def _subword_inputs(predictor, text: str, i: int) -> _Words:
    """A fine-tuned encoder's sub-tokens, grouped into the tokenizer's words; offsets from the fast tokenizer."""
    from wordconv.models.pretrained import _quiet_transformers

    encoder = predictor.model.encoder
    with _quiet_transformers():
        enc = encoder.tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True)
    kept = _kept_subwords(encoder, len(enc["input_ids"]))
    ids = [enc["input_ids"][j] for j in kept]
    if not ids:
        raise DataError(f"text {i} gives the model's tokenizer no tokens: nothing to explain")
    counted = encoder.truncated
    reference = encoder.encode_many([text])[0]
    encoder.truncated = counted  # encode_many counts truncated texts: this check is not one
    if reference != ids:
        raise ModelError("the sub-tokens rebuilt for the explanation differ from the encoder's own (its truncation "
                         "changed?): cannot map scores to the text; report the problem")
    word_ids = enc.word_ids()
    offsets = enc["offset_mapping"]
    spans: list[tuple[int, int]] = []
    groups: list[list[int]] = []
    for pos, j in enumerate(kept):
        same_word = (groups and word_ids[j] is not None and word_ids[j] == word_ids[kept[groups[-1][-1]]]
                     and kept[groups[-1][-1]] == j - 1)
        start, end = offsets[j]
        if same_word:
            groups[-1].append(pos)
            spans[-1] = (min(spans[-1][0], start), max(spans[-1][1], end))
        else:
            groups.append([pos])
            spans.append((start, end))
    trimmed = []
    for start, end in spans:  # byte-level BPE (GPT-2) counts the space before a word in its offsets
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        trimmed.append((start, end))
    return _Words(ids, trimmed, groups)


def _explain_ig(predictor, text: str, i: int, label: str | None, top_k: int | None, steps: int) -> Explanation:
    from wordconv.models.pretrained import PretrainedEncoder

    model, encoder = predictor.model, predictor.model.encoder
    device = _device(model)
    subword = isinstance(encoder, PretrainedEncoder)
    words = _subword_inputs(predictor, text, i) if subword else _word_inputs(predictor, text, i)
    n = len(words.ids)
    ids, _ = pad_batch([words.ids], pad_id=encoder.pad_id, min_length=encoder.min_length)
    ids = ids.to(device)
    with torch.no_grad():
        logits = model(ids=ids)["logits"][0].double()  # (C,)
        attention = encoder(ids).attention if not subword else None
    c = _label_index(predictor, logits, label)
    sites = _subword_sites(encoder, ids, n) if subword else _word_sites(encoder, ids, n)
    attributions, baseline = _integrated_gradients(model, ids, sites, n, len(predictor.labels), steps)
    # positions -> reported tokens (a word's sub-tokens summed)
    owner = torch.tensor([g for g, members in enumerate(words.groups) for _ in members], device=device)
    scores = torch.zeros(len(predictor.labels), len(words.groups), dtype=torch.float64, device=device)
    scores = scores.index_add_(1, owner, attributions).cpu()
    spans = words.spans

    def ngrams(k: int) -> list[NGram]:
        return [NGram(text[spans[j][0]:spans[j][1]], spans[j][0], spans[j][1], float(scores[k, j]))
                for j in _ranked(scores[k], top_k)]

    per_class = {name: ClassView(float(logits[k]), ngrams(k)) for k, name in enumerate(predictor.labels)}
    tokens = [TokenScore(text[a:b], a, b, float(s)) for (a, b), s in zip(spans, scores[c].tolist())]
    weights = None
    if attention is not None:  # one weight per word position (padding has exactly 0)
        att = attention[0, :n].double().cpu()
        weights = [float(att[members].sum()) for members in words.groups]
    logit, bias = float(logits[c]), float(baseline[c])
    return Explanation(label=predictor.labels[c], probability=_probability(predictor, logits.cpu(), c),
                       method="integrated_gradients", logit=logit, bias=bias, tokens=tokens,
                       ngrams=per_class[predictor.labels[c]].ngrams, attention=weights, per_class=per_class,
                       text=text, delta=logit - bias - float(scores[c].sum()))


# --------------------------------------------------------------------------------------------
# the API


def _label_index(predictor, logits: torch.Tensor, label: str | None) -> int:
    if label is None:
        return int(logits.argmax())  # the predicted label (multilabel: the most probable one)
    return predictor.labels.index(label)


def explain(predictor, texts: Sequence[str] | str, *, label: str | None = None, top_k: int | None = 5,
            method: Method = "auto", steps: int = 32) -> list[Explanation]:
    """Why ``predictor`` (a text classifier) labels each text as it does: one :class:`Explanation` per text.

    ``label``: the label to explain (default: each text's predicted label); ``per_class`` always covers
    every label.  ``top_k``: n-grams per class (None: all).  ``method``: "auto" (exact for textcnn,
    else integrated gradients), "exact" or "integrated_gradients"; ``steps``: integration points."""
    _check_model(predictor)
    how = _resolve_method(predictor, method)
    if label is not None and label not in predictor.labels:
        raise DataError(f"label {label!r} is not one of the model's labels ({', '.join(predictor.labels)})")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"top_k={top_k!r}: give a positive number of n-grams, or None for all of them")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps={steps!r}: integrated gradients needs a positive number of integration steps "
                          "(32 is usually within a few percent)")
    texts = predictor._validate(texts)
    with _eval_mode(predictor.model):
        if how == "exact":
            return [_explain_exact(predictor, d, _label_index(predictor, d.logits, label), top_k)
                    for d in decompose(predictor, texts)]
        return [_explain_ig(predictor, t, i, label, top_k, steps) for i, t in enumerate(texts)]


# --------------------------------------------------------------------------------------------
# the global view: what each textcnn filter looks for


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled, transient=True)


def _rank_key(entry: tuple[float, int, int, int]) -> tuple[float, int, int]:
    """Highest activation first; among equal ones the earliest text and position (whatever the batching)."""
    return -entry[0], entry[1], entry[2]


def _filter_columns(encoder, width_index: int, f: int) -> list[int]:
    """The output-layer columns fed by filter ``f`` of width ``width_index`` (k-max: one per slot)."""
    per = encoder.k if encoder.pooling == "kmax" else 1
    n_filters = encoder.convs[0].out_channels
    first = (width_index * n_filters + f) * per
    return list(range(first, first + per))


def top_filter_ngrams(predictor, texts: Sequence[str], top: int = 10, *, batch_size: int = 256,
                      progress: bool | None = None) -> list[dict]:
    """For each filter of a textcnn, the ``top`` n-grams of ``texts`` that excite it most (a dataset's view of
    what the filters detect), with the filter's strongest output weight.

    One dict per filter, in filter order: ``{"filter", "width", "label", "weight", "ngrams": [{"text", "activation",
    "index", "start", "end"}]}``; ``text`` is ``texts[index][start:end]`` as written, each distinct n-gram (as the
    model reads it) once at its highest activation (windows over the text's edge included).  A ReLU filter's
    windows that stay at 0 are not listed; texts with no word left after preprocessing have none.  ``progress``:
    a progress bar on stderr (default: from 2,000 texts)."""
    _check_model(predictor)
    encoder = predictor.model.encoder
    if not _is_exact(encoder):
        raise ModelError(f"the filter view needs a textcnn model (one activation per filter and window); this one is "
                         f"{predictor.config.model.type}: use explain() for per-text explanations")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"top={top!r}: give a positive number of n-grams per filter")
    texts = predictor._validate(texts)
    from wordconv.models.base import window_mask
    from wordconv.models.ops import multi_width_conv

    device = _device(predictor.model)
    vocab = predictor.artifact.vocab
    relu = isinstance(encoder.act, nn.ReLU)
    n_filters = encoder.convs[0].out_channels
    widths = [conv.kernel_size[0] for conv in encoder.convs]
    # per filter: model tokens -> (activation, text index, start, end); pruned to `keep` after every batch
    best: list[dict[tuple[str, ...], tuple[float, int, int, int]]] = [{} for _ in range(n_filters * len(widths))]
    keep = 8 * top + 16  # candidates per filter and batch: room for repeats of one n-gram
    tokens = [(i, _word_tokens(predictor, t)) for i, t in enumerate(texts)]
    tokens = [(i, toks) for i, toks in tokens if toks]
    show = progress if progress is not None else len(texts) >= 2000
    with _eval_mode(predictor.model), torch.no_grad(), _progress(show) as bar:
        job = bar.add_task("filters", total=len(tokens))
        for lo in range(0, len(tokens), batch_size):
            batch = tokens[lo:lo + batch_size]
            ids, lengths = pad_batch([vocab.encode([t.text for t in toks]) for _, toks in batch],
                                     pad_id=encoder.pad_id, min_length=encoder.min_length)
            ids, lengths = ids.to(device), lengths.to(device)
            maps = multi_width_conv(encoder.embedding(ids), [conv.weight for conv in encoder.convs], encoder.pad)
            for wi, (conv, c) in enumerate(zip(encoder.convs, maps)):
                steps = c.shape[1]
                mask = window_mask(lengths, steps, widths[wi], encoder.pad)
                act = encoder.act(c + conv.bias).masked_fill(~mask[:, :, None], float("-inf"))  # (B, L, F)
                vals, idx = act.reshape(-1, n_filters).topk(min(keep, act.shape[0] * steps), dim=0)  # (m, F)
                for f, (fv, fi) in enumerate(zip(vals.t().tolist(), idx.t().tolist())):
                    found = best[wi * n_filters + f]
                    for v, j in zip(fv, fi):
                        if v == float("-inf") or (relu and v <= 0):
                            break
                        r, win = divmod(j, steps)
                        i, toks = batch[r]
                        a = max(0, win - encoder.pad)
                        b = min(len(toks), win - encoder.pad + widths[wi])
                        key = tuple(t.text for t in toks[a:b])
                        entry = (v, i, toks[a].start, toks[b - 1].end)
                        if key not in found or _rank_key(entry) < _rank_key(found[key]):
                            found[key] = entry
                    if len(found) > keep:
                        best[wi * n_filters + f] = dict(sorted(found.items(), key=lambda kv: _rank_key(kv[1]))[:keep])
            bar.advance(job, len(batch))
    weight = predictor.model.output.weight.detach().cpu()
    out = []
    for g, found in enumerate(best):
        wi, f = divmod(g, n_filters)
        w = weight[:, _filter_columns(encoder, wi, f)]  # (C, per)
        flat = int(w.abs().flatten().argmax())
        c = flat // w.shape[1]
        ranked = sorted(found.values(), key=_rank_key)[:top]
        out.append({"filter": g, "width": widths[wi], "label": predictor.labels[c], "weight": float(w.flatten()[flat]),
                    "ngrams": [{"text": texts[i][s:e], "activation": v, "index": i, "start": s, "end": e}
                               for v, i, s, e in ranked]})
    return out


# --------------------------------------------------------------------------------------------
# the command (mounted by wordconv.cli as `wordconv explain`)

_err = Console(stderr=True)
_out = Console()


def _dataset_texts(predictor, data: str, split: str, data_dir: str | None, format: str | None,
                   text_field: str | None) -> list[str]:
    """The texts of a registry dataset's split (split as at training time), or of a data file."""
    from wordconv.data.readers import detect_format, read_examples

    d = predictor.config.data
    if Path(data).exists():
        fmt = format or d.format or detect_format(data)
        if fmt == "lines":  # one text per line, no labels
            examples = read_examples(data, "labelfirst", require_labels=False)
        else:  # a labelled file as for training (labels read and ignored); CSV/JSONL labels may be absent
            examples = read_examples(data, fmt, text_field=text_field or d.text_field, label_field=d.label_field,
                                     require_labels=fmt == "labelfirst")
        return [ex.text for ex in examples]
    from wordconv.pipeline import load_splits

    if split not in ("train", "dev", "test"):
        raise DataError(f"unknown split {split!r}: use train, dev or test")
    dcfg = d.model_copy(update={"name": data, **({"data_dir": data_dir} if data_dir else {})})
    if data != d.name:  # another registry set: its own standard split
        dcfg = dcfg.model_copy(update={"fold": None, "test_path": None, "dev_path": None})
    splits = load_splits(predictor.config.model_copy(update={"data": dcfg}))
    return [ex.text for ex in getattr(splits, split)]


def _filter_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for col, kw in (("filter", {"justify": "right"}), ("width", {"justify": "right"}), ("label", {}),
                    ("weight", {"justify": "right"}), ("top n-grams (activation)", {"overflow": "fold"})):
        table.add_column(col, **kw)
    for r in rows:
        grams = ", ".join(f"{escape(g['text'])} ({g['activation']:.2f})" for g in r["ngrams"]) or "-"
        table.add_row(str(r["filter"]), str(r["width"]), escape(r["label"]), f"{r['weight']:+.3f}", grams)
    return table


def _write(output: Path, content: str) -> None:
    from wordconv.modeldir import atomic_path

    with atomic_path(output) as tmp:
        tmp.write_text(content, encoding="utf-8")


def explain_command(
    model_dir: Annotated[Path, typer.Argument(help="a trained text classifier's model directory")],
    data: Annotated[Optional[str], typer.Option(
        "--data", help="textcnn: a registry dataset or data file; prints the n-grams that most excite each "
                       "filter")] = None,
    texts: Annotated[Optional[list[str]], typer.Argument(help="texts to explain: one JSON line each")] = None,
    top: Annotated[int, typer.Option("--top", help="--data: n-grams per filter")] = 10,
    top_k: Annotated[int, typer.Option("--top-k", help="texts: n-grams per class")] = 5,
    label: Annotated[Optional[str], typer.Option("--label", help="texts: the label to explain (default: the "
                                                                 "predicted one)")] = None,
    method: Annotated[str, typer.Option("--method", help="auto, exact (textcnn) or integrated_gradients")] = "auto",
    steps: Annotated[int, typer.Option("--steps", help="integrated gradients: integration points")] = 32,
    split: Annotated[str, typer.Option("--split", help="--data NAME: train, dev or test")] = "train",
    filters: Annotated[Optional[int], typer.Option(
        "--filters", help="--data: show only the N filters with the largest output weight")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="local mirror of the datasets "
                                                                       "[env WORDCONV_DATA]")] = None,
    format: Annotated[Optional[str], typer.Option(
        "--format", help="--data PATH: a reader format, or 'lines' for one unlabelled text per line")] = None,
    text_field: Annotated[Optional[str], typer.Option("--text-field",
                                                      help="--data PATH: the CSV/JSONL text field")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="write the JSON there (--data: a list, one entry per filter; texts: JSON "
                               "lines)")] = None,
) -> None:
    """Which words made the model decide: per text, token scores and the top n-grams of every class (exact for
    textcnn, integrated gradients otherwise); with --data, the n-grams each textcnn filter responds to most."""
    from wordconv.inference import Predictor

    with user_errors(_err):
        if data is not None and texts:
            raise WordconvError("give texts to explain, or --data for the filter view, not both")
        if data is None and not texts:
            raise WordconvError("nothing to explain: give texts as arguments, or --data NAME|PATH for the filter view")
        predictor = Predictor.load(model_dir)
        if texts:
            lines = "".join(json.dumps({"text": t, **e.to_dict()}, ensure_ascii=False) + "\n" for t, e in
                            zip(texts, explain(predictor, texts, label=label, top_k=top_k, method=method, steps=steps)))
            if output is None:
                sys.stdout.write(lines)
            else:
                _write(output, lines)
                _err.print(f"{len(texts)} explanations written to {output}")
            return
        items = _dataset_texts(predictor, data, split, data_dir, format, text_field)
        if not items:
            raise DataError(f"{data}: no texts in the {split} split")
        rows = top_filter_ngrams(predictor, items, top=top)
        shown = rows if filters is None else sorted(rows, key=lambda r: -abs(r["weight"]))[:max(filters, 0)]
        _out.print(_filter_table(shown, f"{model_dir}: top n-grams per filter ({len(items):,} texts of {data})"))
        if output is not None:
            _write(output, json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
            _err.print(f"{len(rows)} filters written to {output}")
