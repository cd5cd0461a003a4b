"""A linear-chain conditional random field (CRF) output layer for sequence taggers (e.g. NER).

A linear-chain CRF (Lafferty, McCallum & Pereira, 2001) scores a whole tag sequence ``y_1..y_L`` of a
sentence with per-token emission scores ``E[t, y]`` (from any encoder) plus learned tag-to-tag
transition scores, and normalises over all ``C^L`` tag sequences:

    score(y) = start[y_1] + sum_t E[t, y_t] + sum_{t>1} transitions[y_{t-1}, y_t] + end[y_L]
    log p(y | x) = score(y) - log Z,        log Z = logsumexp over all paths y' of score(y')

``log Z`` is computed by the forward algorithm and the best path by Viterbi, both O(L C^2) by
dynamic programming; posterior tag marginals come from forward-backward. Putting a CRF on top of a
neural encoder is the standard NER architecture of Lample et al. (2016), "Neural Architectures for
Named Entity Recognition": the transitions learn that e.g. ``I-PER`` cannot follow ``O``.

Everything is batched over sentences and vectorised over tags, looping only over time steps, in log
space and in float32 (bf16/fp16 emissions are cast up). Batches are padded on the right: ``mask`` is
True at real tokens, real tokens form a prefix, and every sentence has at least one. Padding never
changes a sentence's result, whatever the padded emissions or tags hold.

Hard constraints (e.g. IOB2: ``I-X`` only after ``B-X``/``I-X``) are optional boolean masks; see
:func:`allowed_transitions`. A disallowed transition gets a large negative constant (``-1e4``, not
``-inf``, so that nothing becomes NaN) added to its learned score.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn


def _float32(fn: Callable) -> Callable:
    """Run a CRF computation in float32 also inside a (bf16) autocast region: the recursions add up
    scores and exponentials over every step of the sentence, where bf16's 8 bits of mantissa would lose
    the differences that decide the path."""

    @functools.wraps(fn)
    def wrapper(self, emissions: Tensor, *args, **kwargs):
        with torch.autocast(emissions.device.type, enabled=False):
            return fn(self, emissions, *args, **kwargs)

    return wrapper

__all__ = ["CRF", "DISALLOWED", "allowed_transitions"]

DISALLOWED = -1.0e4
"""Score added to a disallowed transition / start / end tag: exp(-1e4) is 0 in float32, yet finite."""

_REDUCTIONS = ("mean", "sum", "none")


class CRF(nn.Module):
    """Linear-chain CRF over ``num_tags`` tags.

    Parameters: ``transitions`` (C, C) indexed ``[from, to]``, ``start`` (C,) and ``end`` (C,) scores.

    ``allowed`` (C, C) ``[from, to]``, ``allowed_start`` (C,) and ``allowed_end`` (C,) are optional bool
    masks (None: everything allowed). They are kept as *non-persistent* buffers of additive penalties
    (0 or :data:`DISALLOWED`): they move with ``.to(device)`` but are not in the ``state_dict``, so the
    owner must rebuild them from the label list (``allowed_transitions(labels, scheme)``, passed to the
    constructor or to :meth:`set_allowed`) when it recreates the model before loading weights.

    All methods take ``emissions`` (B, T, C) (any float dtype; computed in float32) and ``mask`` (B, T)
    (True at real tokens, left-aligned, at least one per row); ``tags`` (B, T) are tag ids (any value at
    padding).
    """

    def __init__(
        self,
        num_tags: int,
        allowed: Tensor | None = None,
        allowed_start: Tensor | None = None,
        allowed_end: Tensor | None = None,
    ) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be >= 1, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.start = nn.Parameter(torch.empty(num_tags))
        self.end = nn.Parameter(torch.empty(num_tags))
        self.register_buffer("transition_penalty", torch.zeros(num_tags, num_tags), persistent=False)
        self.register_buffer("start_penalty", torch.zeros(num_tags), persistent=False)
        self.register_buffer("end_penalty", torch.zeros(num_tags), persistent=False)
        self.reset_parameters()
        self.set_allowed(allowed, allowed_start, allowed_end)

    @classmethod
    def from_labels(cls, labels: Sequence[str], scheme: str) -> CRF:
        """A CRF over ``labels`` (in that order) constrained by the tagging ``scheme`` ('iob2' or 'bioes')."""
        return cls(len(labels), *allowed_transitions(labels, scheme))

    def reset_parameters(self) -> None:
        for p in (self.transitions, self.start, self.end):
            nn.init.uniform_(p, -0.1, 0.1)

    @torch.no_grad()
    def set_allowed(
        self, allowed: Tensor | None = None, allowed_start: Tensor | None = None, allowed_end: Tensor | None = None
    ) -> None:
        """(Re)build the constraint buffers from bool masks; None means everything allowed."""
        c = self.num_tags
        for buf, m, shape, name in (
            (self.transition_penalty, allowed, (c, c), "allowed"),
            (self.start_penalty, allowed_start, (c,), "allowed_start"),
            (self.end_penalty, allowed_end, (c,), "allowed_end"),
        ):
            if m is None:
                buf.zero_()
                continue
            m = torch.as_tensor(m)
            if m.dtype != torch.bool:
                raise TypeError(f"{name} must be a bool tensor, got {m.dtype}")
            if tuple(m.shape) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(m.shape)}")
            buf.copy_(torch.where(m.to(buf.device), 0.0, DISALLOWED))

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    # ------------------------------------------------------------------ helpers

    def _potentials(self) -> tuple[Tensor, Tensor, Tensor]:
        """float32 (transitions, start, end) with the constraint penalties added."""
        return (
            self.transitions.float() + self.transition_penalty,
            self.start.float() + self.start_penalty,
            self.end.float() + self.end_penalty,
        )

    def _prepare(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Check shapes; float32 emissions with padding zeroed (so NaN/inf there cannot leak) and a bool mask."""
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must be (B, T, {self.num_tags}), got {tuple(emissions.shape)}")
        if emissions.shape[1] < 1:
            raise ValueError("sequences must have at least one time step")
        if tuple(mask.shape) != tuple(emissions.shape[:2]):
            raise ValueError(f"mask must be (B, T) = {tuple(emissions.shape[:2])}, got {tuple(mask.shape)}")
        mask = mask.to(device=emissions.device, dtype=torch.bool)
        emissions = emissions.float().masked_fill(~mask.unsqueeze(2), 0.0)
        return emissions, mask

    def _check_tags(self, tags: Tensor, mask: Tensor) -> Tensor:
        if tuple(tags.shape) != tuple(mask.shape):
            raise ValueError(f"tags must be (B, T) = {tuple(mask.shape)}, got {tuple(tags.shape)}")
        return tags.to(device=mask.device, dtype=torch.long).masked_fill(~mask, 0)

    def _alphas(self, em: Tensor, mask: Tensor, trans: Tensor, start: Tensor) -> Tensor:
        """Forward algorithm (padded, differentiable: :meth:`log_partition` in training): the last real
        step's alpha (B, C).

        ``alpha_t[j]`` = log of the summed scores of all prefixes up to t ending in tag j (incl. E[t, j]);
        at padding the last real alpha is carried along unchanged.
        """
        alpha = start + em[:, 0]
        shift, exp_trans = _exp_potentials(trans)
        for t in range(1, em.shape[1]):
            # logsumexp over "from" of (B, from, 1) + (from, to), as a matmul in shifted exp space
            nxt = _logmatexp(alpha, exp_trans, shift) + em[:, t]
            alpha = torch.where(mask[:, t, None], nxt, alpha)
        return alpha

    # ------------------------------------------------------------------ API

    @_float32
    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z per sentence, (B,) float32."""
        em, mask = self._prepare(emissions, mask)
        trans, start, end = self._potentials()
        alpha = self._alphas(em, mask, trans, start)
        return torch.logsumexp(alpha + end, dim=1)

    @_float32
    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Unnormalised score of the given tag path per sentence, (B,) float32."""
        em, mask = self._prepare(emissions, mask)
        tags = self._check_tags(tags, mask)
        trans, start, end = self._potentials()
        emit = em.gather(2, tags.unsqueeze(2)).squeeze(2).sum(dim=1)  # padding emissions are 0
        step = torch.where(mask[:, 1:], trans[tags[:, :-1], tags[:, 1:]], 0.0).sum(dim=1)
        last = tags.gather(1, (mask.sum(dim=1) - 1).unsqueeze(1)).squeeze(1)
        return start[tags[:, 0]] + emit + step + end[last]

    def log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """log p(tags | emissions) per sentence, (B,) float32."""
        return self.score(emissions, tags, mask) - self.log_partition(emissions, mask)

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor, reduction: str = "mean") -> Tensor:
        """Negative log-likelihood: mean over sentences ("mean"), "sum", or per sentence ("none")."""
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        nll = -self.log_likelihood(emissions, tags, mask)
        if reduction == "mean":
            return nll.mean()
        if reduction == "sum":
            return nll.sum()
        return nll

    def _by_length(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, list[int], Tensor | None]:
        """Emissions sorted by length, shortest first (float32, padding zeroed), their mask, the first row
        that still has a word at each step (the rows from there on do), and the inverse of the sort (None
        when the rows came sorted: an evaluation's batches are)."""
        em, mask = self._prepare(emissions, mask)
        lengths = mask.sum(dim=1)
        steps = em.shape[1]
        if not torch.equal(mask, torch.arange(steps, device=em.device) < lengths[:, None]):
            raise ValueError("mask must be left-aligned: True at each row's words, then False at its padding")
        inverse = None
        if len(lengths) > 1 and bool((lengths[1:] < lengths[:-1]).any()):
            order = torch.argsort(lengths, stable=True)
            inverse = torch.empty_like(order)
            inverse[order] = torch.arange(len(order), device=order.device)
            em, mask, lengths = em[order], mask[order], lengths[order]
        first = torch.searchsorted(lengths, torch.arange(steps, device=em.device), right=True).tolist()
        return em, mask, first, inverse

    def _viterbi(self, em: Tensor, first: list[int]) -> tuple[Tensor, Tensor]:
        """Viterbi over emissions sorted shortest first: step t updates only rows ``first[t]:``."""
        trans, start, end = self._potentials()
        score = start + em[:, 0]  # (B, C), updated in place: row i holds its last real step's scores
        pointers = []
        for t in range(1, em.shape[1]):
            f = first[t]
            best, arg = (score[f:].unsqueeze(2) + trans).max(dim=1)  # over "from": (B - f, to)
            score[f:] = best + em[f:, t]
            pointers.append(arg)
        best_score, cur = (score + end).max(dim=1)
        # backtrack: row i enters at its last word (the last step t with i among the rows updated)
        path = torch.zeros(em.shape[:2], dtype=torch.long, device=em.device)
        for t in range(len(pointers), 0, -1):
            f = first[t]
            path[f:, t] = cur[f:]
            cur[f:] = pointers[t - 1].gather(1, cur[f:].unsqueeze(1)).squeeze(1)
        path[:, 0] = cur
        return path, best_score

    def _forward_backward(self, em: Tensor, mask: Tensor, first: list[int]) -> Tensor:
        """Posterior marginals over emissions sorted shortest first (as :meth:`_viterbi`).

        Scaled forward-backward: each step's alphas and betas are kept relative to their row's largest
        (the log-scores themselves grow by the emissions at every word and reach the thousands, where a
        float32 step is ~1e-4), and each position's marginals are the softmax of alpha + beta over its
        tags: the same as exp(alpha + beta - log Z), since sum_c exp(alpha_t + beta_t) = Z at every t."""
        trans, start, end = self._potentials()
        _, exp_trans = _exp_potentials(trans)
        _, exp_trans_t = _exp_potentials(trans.t())
        alpha = start + em[:, 0]
        alpha = alpha - alpha.max(dim=1, keepdim=True).values
        alphas = torch.zeros_like(em)
        alphas[:, 0] = alpha
        for t in range(1, em.shape[1]):
            f = first[t]
            alpha[f:] = _log_scaled_matexp(alpha[f:], exp_trans) + em[f:, t]
            alphas[f:, t] = alpha[f:]
        # beta_t[i]: the summed scores of all suffixes after t given y_t = i (excl. E[t, i]), up to a
        # factor per row and step; at each row's last word it is ``end``
        beta = end.expand_as(alpha).clone()
        betas = end.expand_as(em).clone()
        for t in range(em.shape[1] - 2, -1, -1):
            f = first[t + 1]
            # (from, to) + (B - f, 1, to) -> logsumexp over to -> (B - f, from)
            beta[f:] = _log_scaled_matexp(em[f:, t + 1] + beta[f:], exp_trans_t)
            betas[f:, t] = beta[f:]
        probs = torch.softmax(alphas + betas, dim=2)
        return probs.masked_fill_(~mask.unsqueeze(2), 0.0)

    @_float32
    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Viterbi: the best tag path (B, T) long (0 at padding) and its score (B,) float32.

        The sentences are sorted by length, so step t updates only the rows that still have a word at t:
        one step per word position for any number of sentences, and no work on padding."""
        em, _, first, inverse = self._by_length(emissions, mask)
        path, score = self._viterbi(em, first)
        return (path, score) if inverse is None else (path[inverse], score[inverse])

    @_float32
    @torch.no_grad()
    def marginals(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Posterior P(y_t = c | x) by forward-backward, (B, T, C) float32; 0 at padding (sentences
        sorted by length as in :meth:`decode`)."""
        em, mask, first, inverse = self._by_length(emissions, mask)
        probs = self._forward_backward(em, mask, first)
        return probs if inverse is None else probs[inverse]

    @_float32
    @torch.no_grad()
    def decode_with_marginals(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`decode` and :meth:`marginals` together (one sort): path (B, T), score (B,), probs (B, T, C)."""
        em, mask, first, inverse = self._by_length(emissions, mask)
        path, score = self._viterbi(em, first)
        probs = self._forward_backward(em, mask, first)
        if inverse is not None:
            path, score, probs = path[inverse], score[inverse], probs[inverse]
        return path, score, probs


def _exp_potentials(trans: Tensor) -> tuple[Tensor, Tensor]:
    """exp(trans - max): logsumexp recursions become matmuls (a disallowed move's -1e4 turns into 0)."""
    shift = trans.max()
    return shift, torch.exp(trans - shift)


def _logmatexp(x: Tensor, exp_trans: Tensor, shift: Tensor) -> Tensor:
    """log(sum_i exp(x[b, i] + trans[i, j])) for (B, C) x: one (B, C) @ (C, C) matmul instead of a
    (B, C, C) logsumexp.  Stable: x is shifted by its row max; an unreachable tag gets log(1e-30)
    (about -69, a finite stand-in for the -1e4 of a disallowed move) so no gradient is NaN."""
    m = x.max(dim=1, keepdim=True).values
    return torch.log((torch.exp(x - m) @ exp_trans).clamp_min(1e-30)) + m + shift


def _log_scaled_matexp(x: Tensor, exp_trans: Tensor) -> Tensor:
    """:func:`_logmatexp` up to a constant per row (its max, and the transitions' shift, left out): for
    recursions renormalised at every step, whose values then stay near 0."""
    m = x.max(dim=1, keepdim=True).values
    return torch.log((torch.exp(x - m) @ exp_trans).clamp_min(1e-30))


def _parse(label: str) -> tuple[str, str | None]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', None)."""
    if label == "O":
        return "O", None
    prefix, sep, kind = label.partition("-")
    if not sep or not kind or prefix not in ("B", "I", "E", "S"):
        raise ValueError(f"cannot parse tag {label!r}: expected 'O' or '<B|I|E|S>-TYPE'")
    return prefix, kind


def allowed_transitions(labels: Sequence[str], scheme: str) -> tuple[Tensor, Tensor, Tensor]:
    """(C,C) allowed[from,to], (C,) start, (C,) end bool masks for tag names like 'O','B-PER','I-PER','E-PER','S-PER'
    under scheme 'iob2' (I-X only after B-X or I-X; cannot start with I-X) or 'bioes' (B-X -> I-X|E-X; I-X -> I-X|E-X;
    E-X/S-X/O -> O|B-*|S-*; start: O,B,S; end: O,E,S). Labels may include any order."""
    scheme = scheme.lower()
    if scheme not in ("iob2", "bioes"):
        raise ValueError(f"scheme must be 'iob2' or 'bioes', got {scheme!r}")
    tags = [_parse(label) for label in labels]
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate labels in {list(labels)}")
    if scheme == "iob2":
        bad = [label for label, (p, _) in zip(labels, tags, strict=True) if p in ("E", "S")]
        if bad:
            raise ValueError(f"tags {bad} are not IOB2 (use scheme='bioes')")

    def ok(a: tuple[str, str | None], b: tuple[str, str | None]) -> bool:
        (pa, ka), (pb, kb) = a, b
        if scheme == "iob2":
            return pb != "I" or (pa in ("B", "I") and ka == kb)
        if pa in ("B", "I"):  # inside an entity: continue or close the same type
            return pb in ("I", "E") and ka == kb
        return pb in ("O", "B", "S")  # after O / E / S: no open entity

    n = len(tags)
    allowed = torch.tensor([[ok(a, b) for b in tags] for a in tags], dtype=torch.bool).reshape(n, n)
    if scheme == "iob2":
        start = torch.tensor([p != "I" for p, _ in tags], dtype=torch.bool)
        end = torch.ones(n, dtype=torch.bool)
    else:
        start = torch.tensor([p in ("O", "B", "S") for p, _ in tags], dtype=torch.bool)
        end = torch.tensor([p in ("O", "E", "S") for p, _ in tags], dtype=torch.bool)
    return allowed, start, end
