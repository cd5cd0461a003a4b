"""Property tests of the vocabulary: build invariants, encode/decode round trips, save/load, damaged files.

Settings are explicit and deterministic (``derandomize=True``, no example database); ``WORDCONV_FUZZ_SCALE=N``
runs N times as many examples, randomly.  File round trips use a fresh temporary directory per example
(function-scoped fixtures such as ``tmp_path`` are shared by all the examples of one test).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from fuzzing import fuzz_settings

from wordconv.data.vocab import PAD, UNK, Vocab
from wordconv.errors import DataError



# Example counts (RELIABILITY.md lists them as fuzz iterations).
N_BUILD = 200
N_ENCODE = 200
N_SAVE_LOAD = 100
N_LOAD_FUZZ = 200
N_FROM_JSON_FUZZ = 200
N_DECODE_FUZZ = 200

# Tokens as a tokenizer makes them (non-empty), from a small pool (so that counts repeat and tie) and from any
# Unicode, plus the special strings themselves, which are never counted as words.
token = st.one_of(
    st.sampled_from(["the", "a", "cat", "Cat", "’s", "n't", ".", "日", "😀", "e\u0301", "\u2028", '"', "\\"]),
    st.text(min_size=1, max_size=6),
    st.sampled_from([PAD, UNK]),
)
corpus = st.lists(st.lists(token, max_size=12), max_size=12)


@fuzz_settings(N_BUILD)
@given(corpus, st.integers(1, 4), st.none() | st.integers(0, 30))
def test_build_invariants(texts: list[list[str]], min_freq: int, max_size: int | None) -> None:
    vocab = Vocab.build(texts, min_freq=min_freq, max_size=max_size)
    counts = Counter(t for text in texts for t in text if t not in (PAD, UNK))
    words = vocab.itos[2:]
    assert vocab.itos[:2] == [PAD, UNK]
    assert len(set(vocab.itos)) == len(vocab)
    assert vocab.stoi == {t: i for i, t in enumerate(vocab.itos)}
    assert vocab.counts == {w: counts[w] for w in words}
    assert all(counts[w] >= min_freq for w in words)
    assert words == sorted(words, key=lambda w: (-counts[w], w))
    eligible = sorted((w for w in counts if counts[w] >= min_freq), key=lambda w: (-counts[w], w))
    assert words == (eligible if max_size is None else eligible[:max_size])  # the most frequent are kept


@fuzz_settings(N_ENCODE)
@given(corpus, st.lists(token, max_size=20))
def test_encode_decode_round_trip(texts: list[list[str]], query: list[str]) -> None:
    vocab = Vocab.build(texts)
    for text in texts:
        assert vocab.decode(vocab.encode(text)) == text  # every training token is in the vocabulary
    ids = vocab.encode(query)
    assert ids == [vocab.index(t) for t in query]
    for t, i in zip(query, ids, strict=True):
        if t in vocab:
            assert vocab.itos[i] == t
        else:
            assert i == vocab.unk_id
    assert vocab.decode(range(len(vocab))) == vocab.itos
    assert vocab.encode(vocab.decode(ids)) == ids  # ids of known tokens round-trip too


@fuzz_settings(N_SAVE_LOAD)
@given(corpus, st.booleans())
def test_save_load_is_identical(texts: list[list[str]], with_counts: bool) -> None:
    vocab = Vocab.build(texts)
    if not with_counts:
        vocab = Vocab(vocab.itos)
    assert Vocab.from_json(json.loads(json.dumps(vocab.to_json()))) == vocab
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sub" / "vocab.json"
        vocab.save(path)
        loaded = Vocab.load(path)
        assert loaded == vocab
        assert loaded.itos == vocab.itos and loaded.stoi == vocab.stoi and loaded.counts == vocab.counts
        loaded.save(path)  # saving again gives the same bytes
        assert Vocab.load(path) == vocab
        assert sorted(os.listdir(path.parent)) == ["vocab.json"]  # no temporary file left behind


damaged_bytes = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.sampled_from([b'{"itos": [', b'"<pad>", "<unk>"', b'"a"', b", ", b"]", b"}", b'"counts": [', b"0", b"-1",
                         b"1.5", b"true", b"null", b"\xef\xbb\xbf", b"\xff", b"\x00", b"[" * 3000, b"9" * 5000,
                         b'"\\ud800"', b"NaN", b"{}"]),
        max_size=12,
    ).map(b"".join),
)


@fuzz_settings(N_LOAD_FUZZ)
@given(damaged_bytes)
@example(b"[" * 100_000)  # nesting deeper than the JSON parser's recursion limit
@example(b'{"itos": ["<pad>", "<unk>"], "counts": [0, 0]}' + b" " + b"1" * 5000)
@example(b'{"itos": ["<pad>", "<unk>", "a"], "counts": [0, 0, ' + b"1" * 5000 + b"]}")  # int too long to parse
def test_load_damaged_file_raises_only_data_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.json"
        path.write_bytes(data)
        try:
            vocab = Vocab.load(path)
        except DataError:
            return
        assert vocab.itos[:2] == [PAD, UNK]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.sampled_from([PAD, UNK]),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["itos", "counts", "x"]) | st.text(max_size=3), children, max_size=3),
    max_leaves=15,
)


@fuzz_settings(N_FROM_JSON_FUZZ)
@given(json_values | st.fixed_dictionaries({"itos": json_values}, optional={"counts": json_values}))
def test_from_json_raises_only_data_error(data: object) -> None:
    try:
        vocab = Vocab.from_json(data)
    except DataError:
        return
    assert Vocab.from_json(vocab.to_json()) == vocab


@fuzz_settings(N_DECODE_FUZZ)
@given(corpus, st.lists(st.integers() | st.booleans() | st.floats() | st.text(max_size=2) | st.none(), max_size=5))
def test_decode_bad_ids_raises_only_data_error(texts: list[list[str]], ids: list[object]) -> None:
    vocab = Vocab.build(texts)
    try:
        out = vocab.decode(ids)
    except DataError:
        assert any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(vocab) for i in ids)
        return
    assert out == [vocab.itos[i] for i in ids]

