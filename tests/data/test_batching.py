"""Length-bucketed batch order and padding."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wordconv.data.batching import bucket_batches, pad_batch
from wordconv.errors import ConfigError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 400) for _ in range(n)]


def flat(batches: list[list[int]]) -> list[int]:
    return [i for b in batches for i in b]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 50), max_size=300),
    st.integers(1, 20),
    st.integers(1, 5),
    st.booleans(),
    st.integers(0, 2**31),
)
def test_every_index_exactly_once(lens, batch_size, factor, shuffle, seed) -> None:
    batches = bucket_batches(lens, batch_size, shuffle=shuffle, generator=gen(seed), bucket_factor=factor)
    assert sorted(flat(batches)) == list(range(len(lens)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert sum(len(b) < batch_size for b in batches) <= 1
    for b in batches:  # each batch comes from one sorted chunk
        assert [lens[i] for i in b] == sorted(lens[i] for i in b)


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    lens = lengths(1000)
    a = bucket_batches(lens, 16, shuffle=True, generator=gen(1), bucket_factor=10)
    b = bucket_batches(lens, 16, shuffle=True, generator=gen(1), bucket_factor=10)
    c = bucket_batches(lens, 16, shuffle=True, generator=gen(2), bucket_factor=10)
    assert a == b
    assert a != c and flat(a) != flat(c)
    g = gen(1)  # a generator advances: two epochs differ
    assert bucket_batches(lens, 16, shuffle=True, generator=g) != bucket_batches(
        lens, 16, shuffle=True, generator=g
    )


def test_batches_are_length_homogeneous() -> None:
    lens = lengths(2000)
    n_pad = lambda batches: sum(max(lens[i] for i in b) * len(b) - sum(lens[i] for i in b) for b in batches)  # noqa: E731
    bucketed = bucket_batches(lens, 32, shuffle=True, generator=gen(0), bucket_factor=50)
    unbucketed = bucket_batches(lens, 32, shuffle=True, generator=gen(0), bucket_factor=1)
    assert n_pad(bucketed) * 10 < n_pad(unbucketed)
    # one chunk (2000 <= 32 * 100): the batches do not interleave in length
    one_chunk = bucket_batches(lens, 32, shuffle=True, generator=gen(0), bucket_factor=100)
    spans = sorted((min(lens[i] for i in b), max(lens[i] for i in b)) for b in one_chunk)
    assert all(hi <= lo_next for (_, hi), (lo_next, _) in zip(spans, spans[1:]))
    # shuffled: batch order is not the length order
    assert [min(lens[i] for i in b) for b in one_chunk] != [lo for lo, _ in spans]


def test_shuffle_mixes_texts_of_equal_length() -> None:
    batches = bucket_batches([5] * 200, 4, shuffle=True, generator=gen(0), bucket_factor=5)
    contiguous = [sorted(b) == list(range(min(b), min(b) + 4)) for b in batches]
    assert sum(contiguous) < 5  # the indices were shuffled before bucketing, not only batches


def test_no_shuffle_sorts_by_length_stably() -> None:
    lens = [3, 1, 2, 1, 3, 2, 1]
    assert bucket_batches(lens, 3, shuffle=False) == [[1, 3, 6], [2, 5, 0], [4]]
    assert bucket_batches([], 3, shuffle=False) == []
    assert bucket_batches([], 3, shuffle=True, generator=gen(0)) == []


def test_no_shuffle_caps_padded_tokens() -> None:
    lens = [3, 1, 2, 1, 3, 2, 1]  # sorted: 1, 3, 6 (one word), 2, 5 (two), 0, 4 (three)
    assert bucket_batches(lens, 3, shuffle=False, max_tokens=6) == [[1, 3, 6], [2, 5], [0, 4]]
    # padded to at least min_length 3: every text costs 3 tokens, two per batch
    assert bucket_batches(lens, 3, shuffle=False, max_tokens=6, min_length=3) == [[1, 3], [6, 2], [5, 0], [4]]
    assert bucket_batches([10, 1], 8, shuffle=False, max_tokens=4) == [[1], [0]]  # too long alone: its own batch
    assert bucket_batches(lens, 3, shuffle=False, max_tokens=10**6) == bucket_batches(lens, 3, shuffle=False)
    with pytest.raises(ConfigError, match="max_tokens"):
        bucket_batches(lens, 3, shuffle=False, max_tokens=0)


def test_evaluation_batches_of_encoded_texts_are_capped(monkeypatch) -> None:
    from wordconv.tasks import base

    monkeypatch.setattr(base, "EVAL_MAX_TOKENS", 40)
    lengths = [2, 30, 5, 12, 7, 1, 25, 3] * 4
    data = base.EncodedTexts([[5] * n for n in lengths], list(range(len(lengths))), min_length=3)
    seen = []
    for batch in data.batches(16, shuffle=False):
        assert batch["ids"].numel() <= 40 or len(batch["index"]) == 1
        assert (batch["labels"] == batch["index"]).all()
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(len(lengths)))
    train = [len(b["index"]) for b in data.batches(16, shuffle=True, generator=gen(0))]
    assert train == [16, 16]  # training batches are not capped: the batch size is a hyperparameter


def test_bad_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        bucket_batches([1, 2], 0, shuffle=False)
    with pytest.raises(ConfigError, match="bucket_factor"):
        bucket_batches([1, 2], 2, shuffle=True, bucket_factor=0)


def test_pad_batch_shapes() -> None:
    ids, lens = pad_batch([[5, 6, 7], [8], []])
    assert ids.dtype == torch.long and lens.dtype == torch.long
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert lens.tolist() == [3, 1, 0]
    # min_length: pad up to the widest filter so a one-word text fits
    ids, lens = pad_batch([[4]], min_length=5, pad_id=9)
    assert ids.tolist() == [[4, 9, 9, 9, 9]] and lens.tolist() == [1]
    ids, lens = pad_batch([[1, 2, 3]], min_length=2)
    assert ids.shape == (1, 3)
    ids, lens = pad_batch([[]])
    assert ids.tolist() == [[0]] and lens.tolist() == [0]
    ids, lens = pad_batch([torch.tensor([1, 2]), (3,)])
    assert ids.tolist() == [[1, 2], [3, 0]]
    ids, lens = pad_batch([], min_length=3)
    assert ids.shape == (0, 3) and lens.shape == (0,)
    with pytest.raises(ConfigError, match="min_length"):
        pad_batch([[1]], min_length=-1)
