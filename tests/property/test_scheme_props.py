"""Property tests of the entity tag schemes (IOB1, IOB2, BIOES): conversions round-trip and keep the entities.

Tag sequences are made from random non-overlapping entity spans (valid in every scheme), and also drawn at random
from all prefixes (invalid sequences, which the chunk rules still give a meaning).  Entity reading is checked
against seqeval's ``get_entities`` (whose chunk rules wordconv follows), and the CoNLL reader against the
conversion functions.

Settings are explicit and deterministic (``derandomize=True``, no example database); ``WORDCONV_FUZZ_SCALE=N``
runs N times as many examples, randomly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzzing import fuzz_settings
from seqeval.metrics.sequence_labeling import get_entities

from wordconv.data.conll import (
    SCHEMES,
    check_tags,
    convert_tags,
    read_conll,
    spans_to_tags,
    tags_to_spans,
)
from wordconv.errors import DataError



# Example counts (RELIABILITY.md lists them as fuzz iterations).
N_SPANS = 300
N_ROUND_TRIP = 300
N_ANY_TAGS = 300
N_SEQEVAL = 300
N_CONLL = 100

TYPES = ["PER", "LOC", "ORG", "MISC", "X-Y", "日本"]  # a type may itself hold a dash or non-ASCII letters


@st.composite
def spans_and_length(draw) -> tuple[list[tuple[str, int, int]], int]:
    """Non-overlapping entity spans ``(type, start, end)`` in a sentence of ``n`` tokens, often adjacent and of
    the same type (the case IOB1 marks with ``B-``)."""
    n = draw(st.integers(0, 25))
    spans, position = [], 0
    while position < n:
        gap = draw(st.sampled_from([0, 0, 1, 2]))
        start = position + gap
        if start >= n:
            break
        end = draw(st.integers(start + 1, min(n, start + 4)))
        spans.append((draw(st.sampled_from(TYPES[:3] if draw(st.booleans()) else TYPES)), start, end))
        position = end
    return spans, n


def is_valid(tags: list[str], scheme: str) -> bool:
    """Whether ``tags`` is a well-formed sequence of ``scheme`` (canonical IOB1: ``B-`` only between entities)."""
    previous = "O"
    for index, tag in enumerate([*tags, "O"]):
        prefix, type_ = ("O", "") if tag == "O" else (tag[0], tag[2:])
        p_prefix, p_type = ("O", "") if previous == "O" else (previous[0], previous[2:])
        if scheme == "iob2":
            if prefix in "ES" or (prefix == "I" and (p_prefix == "O" or p_type != type_)):
                return False
        elif scheme == "iob1":
            if prefix in "ES" or (prefix == "B" and (p_prefix == "O" or p_type != type_)):
                return False
        else:  # bioes: B I* E | S
            inside = p_prefix in "BI"
            if inside and not (prefix in "IE" and type_ == p_type):
                return False
            if not inside and prefix in "IE":
                return False
        previous = tag
        if index == len(tags):
            break
    return True


@fuzz_settings(N_SPANS)
@given(spans_and_length())
def test_spans_survive_every_scheme(case) -> None:
    spans, n = case
    for scheme in SCHEMES:
        tags = spans_to_tags(spans, n, scheme)
        assert len(tags) == n and is_valid(tags, scheme), (scheme, tags)
        check_tags(tags, "t", scheme=scheme)
        assert tags_to_spans(tags) == sorted(spans, key=lambda s: s[1])


@fuzz_settings(N_ROUND_TRIP)
@given(spans_and_length())
@example(([("PER", 0, 1), ("PER", 1, 2), ("LOC", 2, 3), ("PER", 4, 6)], 6))
def test_conversions_round_trip(case) -> None:
    spans, n = case
    tags = {scheme: spans_to_tags(spans, n, scheme) for scheme in SCHEMES}
    for source in SCHEMES:
        for target in SCHEMES:
            assert convert_tags(tags[source], source, target) == tags[target], (source, target)
    # the round trips the issue names
    assert convert_tags(convert_tags(tags["iob2"], "iob2", "bioes"), "bioes", "iob2") == tags["iob2"]
    assert convert_tags(convert_tags(tags["iob1"], "iob1", "iob2"), "iob2", "iob1") == tags["iob1"]


def any_tags(schemes: str = "BIES") -> st.SearchStrategy[list[str]]:
    tag = st.just("O") | st.builds(lambda p, t: f"{p}-{t}", st.sampled_from(schemes), st.sampled_from(TYPES[:3]))
    return st.lists(tag, max_size=20)


@fuzz_settings(N_ANY_TAGS)
@given(any_tags(), st.sampled_from(SCHEMES))
@example(["O", "I-PER", "E-PER", "S-LOC", "I-LOC", "B-PER", "I-LOC"], "iob2")
def test_any_sequence_converts_to_a_valid_one_with_the_same_entities(tags: list[str], target: str) -> None:
    """Invalid sequences too: the result is valid in ``target``, holds the entities the chunk rules read, and
    converting it again changes nothing."""
    source = "bioes" if any(t[0] in "ES" for t in tags) else "iob1"
    out = convert_tags(tags, source, target)
    assert len(out) == len(tags) and is_valid(out, target)
    assert tags_to_spans(out) == tags_to_spans(tags)
    assert convert_tags(out, target, target) == out
    for other in SCHEMES:
        assert convert_tags(convert_tags(out, target, other), other, target) == out
    if source == "bioes":
        for scheme in ("iob1", "iob2"):
            with pytest.raises(DataError):
                convert_tags(tags, scheme, target)


@fuzz_settings(N_SEQEVAL)
@given(any_tags())
def test_entities_match_seqeval(tags: list[str]) -> None:
    """tags_to_spans reads entities as seqeval does (seqeval's ends are inclusive)."""
    ours = [(t, start, end - 1) for t, start, end in tags_to_spans(tags)]
    assert ours == get_entities(list(tags))


@fuzz_settings(N_CONLL)
@given(spans_and_length().filter(lambda case: case[1] > 0), st.sampled_from(SCHEMES), st.booleans(),
       st.sampled_from(["\n", "\r\n"]))
def test_conll_reader_gives_iob2(case, scheme: str, declare: bool, newline: str) -> None:
    """A sentence written in any scheme reads back as the IOB2 tags of the same entities (scheme declared or
    detected; detection may read canonical IOB1/IOB2 as IOB1, which reads them right)."""
    spans, n = case
    tags = spans_to_tags(spans, n, scheme)
    words = [f"w{i}" for i in range(n)]
    lines = ["-DOCSTART- -X- O O", ""] + [f"{w} X {t}" for w, t in zip(words, tags, strict=True)] + [""]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.conll"
        path.write_bytes(newline.join(lines).encode())
        (sentence,) = read_conll(path, scheme=scheme if declare else None)
    assert sentence.tokens == tuple(words)
    assert list(sentence.tags) == spans_to_tags(spans, n, "iob2")
