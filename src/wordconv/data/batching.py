"""Batches of token ids: length-bucketed batch order and padding."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from wordconv.errors import ConfigError

__all__ = ["bucket_batches", "pad_batch"]


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} is {value!r}; it must be an integer >= 1")


def bucket_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    bucket_factor: int = 50,
    max_tokens: int | None = None,
    min_length: int = 1,
) -> list[list[int]]:
    """Batches of indices into ``lengths``, texts of similar length together (less padding).

    ``shuffle=True`` (training): shuffle the indices with ``generator``, cut them into chunks of
    ``batch_size * bucket_factor``, sort each chunk by length, cut it into batches, shuffle the
    order of all batches.  Deterministic given the generator's state (``None``: torch's global
    generator).

    ``shuffle=False`` (evaluation): sort all indices by length (stable) and cut; the caller maps
    results back by index.  With ``max_tokens``, a batch also ends before its padded size (texts x
    the longest one's length, at least ``min_length``) would pass ``max_tokens``, so a batch of long
    texts is smaller than one of short texts and memory stays bounded; a single text longer than
    ``max_tokens`` is a batch of its own.

    Every index appears exactly once; only the last batch of the last chunk may be short.
    """
    _check_positive("batch_size", batch_size)
    _check_positive("bucket_factor", bucket_factor)
    lens = [int(n) for n in lengths]
    n = len(lens)
    if n == 0:
        return []
    key = lens.__getitem__
    if not shuffle:
        order = sorted(range(n), key=key)
        if max_tokens is None:
            return [order[i : i + batch_size] for i in range(0, n, batch_size)]
        _check_positive("max_tokens", max_tokens)
        out: list[list[int]] = [[]]
        for i in order:  # ascending lengths: the text added is the batch's longest
            if out[-1] and (len(out[-1]) == batch_size or (len(out[-1]) + 1) * max(lens[i], min_length) > max_tokens):
                out.append([])
            out[-1].append(i)
        return out
    perm = torch.randperm(n, generator=generator).tolist()
    chunk = batch_size * bucket_factor
    batches: list[list[int]] = []
    for c in range(0, n, chunk):
        part = sorted(perm[c : c + chunk], key=key)  # stable: equal lengths stay shuffled
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def pad_batch(
    seqs: Sequence[Sequence[int]], *, pad_id: int = 0, min_length: int = 1
) -> tuple[torch.LongTensor, torch.LongTensor]:
    """``(ids [B, T], lengths [B])``: ``seqs`` right-padded with ``pad_id`` to
    ``T = max(longest, min_length)``.

    ``min_length`` is the widest convolution filter, so that a one-word text still fits it.  An
    empty sequence is all padding and keeps length 0.
    """
    if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 0:
        raise ConfigError(f"min_length is {min_length!r}; it must be an integer >= 0")
    rows = [s.tolist() if isinstance(s, torch.Tensor) else list(s) for s in seqs]
    lengths = [len(r) for r in rows]
    width = max(max(lengths, default=0), min_length)
    padded = [r + [pad_id] * (width - len(r)) for r in rows]
    if padded:
        ids = torch.tensor(padded, dtype=torch.long)
    else:
        ids = torch.empty((0, width), dtype=torch.long)
    return ids, torch.tensor(lengths, dtype=torch.long)  # type: ignore[return-value]
