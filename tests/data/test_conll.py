"""Tests of wordconv.data.conll: tag schemes, entity spans, and the CoNLL reader on tiny files in tmp_path."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from wordconv.data.conll import (
    SCHEMES,
    check_tags,
    convert_tags,
    detect_scheme,
    read_conll,
    spans_to_tags,
    tags_to_spans,
)
from wordconv.data.readers import Example, detect_format, read_examples
from wordconv.errors import DataError


def write(path: Path, data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to ``path`` and return it."""
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def at(path: Path, line: int) -> str:
    """A regular expression matching ``path:line`` as error messages write it."""
    return re.escape(f"{path}:{line}")


# --------------------------------------------------------------------------------------------
# schemes and spans

# the same entities in each scheme: a 2-token PER, a 1-token LOC, then two adjacent 1-token LOCs,
# then a 3-token ORG directly followed by a 1-token MISC (different types need no B- in IOB1)
SAME = {
    "iob1": ["I-PER", "I-PER", "O", "I-LOC", "O", "I-LOC", "B-LOC", "I-ORG", "I-ORG", "I-ORG", "I-MISC"],
    "iob2": ["B-PER", "I-PER", "O", "B-LOC", "O", "B-LOC", "B-LOC", "B-ORG", "I-ORG", "I-ORG", "B-MISC"],
    "bioes": ["B-PER", "E-PER", "O", "S-LOC", "O", "S-LOC", "S-LOC", "B-ORG", "I-ORG", "E-ORG", "S-MISC"],
}
SAME_SPANS = [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 5, 6), ("LOC", 6, 7), ("ORG", 7, 10), ("MISC", 10, 11)]


@pytest.mark.parametrize("source", SCHEMES)
@pytest.mark.parametrize("target", SCHEMES)
def test_convert_between_every_pair_of_schemes(source: str, target: str) -> None:
    assert convert_tags(SAME[source], source, target) == SAME[target]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_spans_of_each_scheme(scheme: str) -> None:
    assert tags_to_spans(SAME[scheme]) == SAME_SPANS
    assert spans_to_tags(SAME_SPANS, len(SAME[scheme]), scheme) == SAME[scheme]


def test_iob1_i_starts_an_entity_and_b_separates_two_of_the_same_type() -> None:
    # CoNLL-2003 style: I- everywhere, B- only between two adjacent entities of one type
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]
    assert tags_to_spans(iob1) == [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5), ("ORG", 5, 6)]
    assert convert_tags(iob1, "iob1", "iob2") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"]
    assert convert_tags(iob1, "iob1", "bioes") == ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG"]


def test_iob2_to_iob1_writes_b_only_between_adjacent_entities_of_one_type() -> None:
    iob2 = ["B-PER", "B-PER", "I-PER", "O", "B-PER", "B-LOC", "B-PER"]
    assert convert_tags(iob2, "iob2", "iob1") == ["I-PER", "B-PER", "I-PER", "O", "I-PER", "I-LOC", "I-PER"]


def test_iob1_to_iob2_is_the_identity_on_valid_iob2() -> None:
    assert convert_tags(SAME["iob2"], "iob1", "iob2") == SAME["iob2"]
    assert convert_tags(["B-PER", "B-PER", "O", "B-X", "I-X"], "iob1", "iob2") == ["B-PER", "B-PER", "O", "B-X", "I-X"]


def test_iob2_input_with_i_after_o_is_read_leniently() -> None:
    # an I-X after O, or after another type, starts an entity (conlleval's reading)
    tags = ["O", "I-PER", "I-PER", "I-LOC", "B-LOC", "I-PER"]
    assert convert_tags(tags, "iob2", "iob2") == ["O", "B-PER", "I-PER", "B-LOC", "B-LOC", "B-PER"]
    assert convert_tags(tags, "iob2", "bioes") == ["O", "B-PER", "E-PER", "S-LOC", "S-LOC", "S-PER"]


def test_round_trips_on_hand_cases() -> None:
    iob2 = ["B-PER", "I-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O", "B-LOC"]
    assert convert_tags(convert_tags(iob2, "iob2", "bioes"), "bioes", "iob2") == iob2
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "B-ORG", "O"]
    assert convert_tags(convert_tags(iob1, "iob1", "iob2"), "iob2", "iob1") == iob1


def _random_spans(rng: random.Random, n: int) -> list[tuple[str, int, int]]:
    """Random non-overlapping entities in ``n`` tokens, often adjacent and often of the same type."""
    spans, position = [], rng.choice([0, 0, 1])
    while position < n:
        end = min(n, position + rng.choice([1, 1, 2, 3, 4]))
        spans.append((rng.choice(["PER", "LOC", "B-X"]), position, end))  # a type may contain a hyphen
        position = end + rng.choice([0, 0, 1, 2])
    return spans


def test_round_trips_on_random_valid_sequences() -> None:
    rng = random.Random(13)
    for _ in range(500):
        n = rng.randint(0, 15)
        spans = _random_spans(rng, n)
        tags = {scheme: spans_to_tags(spans, n, scheme) for scheme in SCHEMES}
        for scheme in SCHEMES:
            assert tags_to_spans(tags[scheme]) == spans
            for target in SCHEMES:
                assert convert_tags(tags[scheme], scheme, target) == tags[target]
        assert convert_tags(convert_tags(tags["iob2"], "iob2", "bioes"), "bioes", "iob2") == tags["iob2"]
        assert convert_tags(convert_tags(tags["iob1"], "iob1", "iob2"), "iob2", "iob1") == tags["iob1"]
        assert convert_tags(tags["iob2"], "iob1", "iob2") == tags["iob2"]


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        ([], []),
        (["O", "O"], []),
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
        (["O", "I-PER", "I-PER"], [("PER", 1, 3)]),  # I- after O starts a chunk
        (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),  # a type change ends one
        (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
        (["I-PER", "B-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 3)]),
        (["B-PER", "I-PER", "E-PER", "S-PER", "O"], [("PER", 0, 3), ("PER", 3, 4)]),
        (["S-PER", "I-PER", "E-PER"], [("PER", 0, 1), ("PER", 1, 3)]),  # I- after S- starts a chunk
        (["E-PER", "E-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
        (["B-PER", "I-PER"], [("PER", 0, 2)]),  # BIOES without its E-: ends at the sentence end
        (["B-LOC", "E-PER"], [("LOC", 0, 1), ("PER", 1, 2)]),
        (["I-B-X", "I-B-X"], [("B-X", 0, 2)]),  # the type is everything after the first hyphen
    ],
)
def test_tags_to_spans_follows_conlleval(tags: list[str], spans: list[tuple[str, int, int]]) -> None:
    assert tags_to_spans(tags) == spans


def test_spans_to_tags_rejects_overlapping_or_outside_spans() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_tags([("PER", 0, 2), ("LOC", 1, 3)], 4, "iob2")
    with pytest.raises(ValueError, match="outside"):
        spans_to_tags([("PER", 2, 5)], 4, "iob2")
    with pytest.raises(DataError, match="unknown tag scheme 'bilou'"):
        spans_to_tags([], 4, "bilou")


def test_detect_scheme() -> None:
    assert detect_scheme([["O", "I-PER"], ["B-PER", "I-PER"]]) == "iob1"
    assert detect_scheme([["O"], ["B-PER", "E-PER"]]) == "bioes"
    assert detect_scheme([["S-LOC"]]) == "bioes"
    assert detect_scheme([]) == "iob1"


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ("X-PER", "prefix 'X' is not B, I, E or S"),
        ("B-", "no entity type after B-"),
        ("PER", "no B-/I-/E-/S- prefix"),
        ("o", "no B-/I-/E-/S- prefix"),
        ("b-PER", "prefix 'b' is not B, I, E or S"),
        ("", "no B-/I-/E-/S- prefix"),
    ],
)
def test_check_tags_names_the_place_and_the_problem(tag: str, problem: str) -> None:
    with pytest.raises(DataError, match=rf"^file\.txt:12: '{tag}' is not an entity tag \({problem}\);.*Fix the tag"):
        check_tags([tag], "file.txt:12")
    with pytest.raises(DataError, match=r"^sentence 3 \(tag 2\): "):
        check_tags(["O", tag], "sentence 3")


def test_check_tags_accepts_every_form_and_checks_the_scheme() -> None:
    check_tags(["O", "B-PER", "I-PER", "E-PER", "S-LOC", "B-B-X"], "here")
    check_tags(["O", "B-PER", "I-PER"], "here", scheme="iob2")
    with pytest.raises(DataError, match=r"here \(tag 2\): 'E-PER' is a BIOES tag.*IOB2.*'bioes'"):
        check_tags(["B-PER", "E-PER"], "here", scheme="iob2")
    with pytest.raises(DataError, match="'S-PER' is a BIOES tag"):
        convert_tags(["S-PER"], "iob1", "iob2")
    with pytest.raises(DataError, match="unknown tag scheme 'bio'"):
        convert_tags(["O"], "bio", "iob2")


# --------------------------------------------------------------------------------------------
# the reader

IOB1_FILE = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Smith NNP I-NP B-PER

-DOCSTART- -X- O O

BRUSSELS NNP I-NP I-LOC
1996-08-22 CD I-NP O


"""


def test_reads_sentences_skipping_docstart_and_converting_iob1_to_iob2(tmp_path: Path) -> None:
    path = write(tmp_path / "eng.train", IOB1_FILE)
    examples = read_conll(path)
    assert examples == [
        Example("EU rejects German", None, f"{path}:3", tokens=("EU", "rejects", "German"),
                tags=("B-ORG", "O", "B-MISC")),
        Example("Peter Blackburn Smith", None, f"{path}:7", tokens=("Peter", "Blackburn", "Smith"),
                tags=("B-PER", "I-PER", "B-PER")),
        Example("BRUSSELS 1996-08-22", None, f"{path}:13", tokens=("BRUSSELS", "1996-08-22"), tags=("B-LOC", "O")),
    ]
    # same answer through read_examples, the POS column as tags (not entity tags) is an error
    assert read_examples(path, "conll") == examples
    with pytest.raises(DataError, match=rf"{at(path, 3)}: 'NNP' is not an entity tag.*tag_column \(now 1\)"):
        read_conll(path, tag_column=1)


def test_crlf_tabs_and_no_final_blank_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "-DOCSTART-\tO\r\n\r\nNew\tB-LOC\r\nYork\tI-LOC\r\n\r\n\r\nhi\tO\r\nthere\tO")
    examples = read_conll(path)
    assert [(e.tokens, e.tags, e.source) for e in examples] == [
        (("New", "York"), ("B-LOC", "I-LOC"), f"{path}:3"),
        (("hi", "there"), ("O", "O"), f"{path}:7"),
    ]
    assert examples[0].text == "New York"


def test_spaces_and_tabs_mixed_and_repeated(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "  New \t NNP\tB-LOC  \nYork  NNP I-LOC\n \t \nOK NN O\n")
    assert [e.tags for e in read_conll(path)] == [("B-LOC", "I-LOC"), ("O",)]


def test_tag_and_word_column_choice(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "1 New B-LOC x\n2 York I-LOC x\n\n1 Smith I-PER x\n")
    examples = read_conll(path, word_column=1, tag_column=2)
    assert [(e.tokens, e.tags) for e in examples] == [(("New", "York"), ("B-LOC", "I-LOC")), (("Smith",), ("B-PER",))]
    assert read_conll(path, word_column=-3, tag_column=-2) == examples
    with pytest.raises(DataError, match=rf"{at(path, 1)}: tag_column=5 is out of range: the lines have 4 column"):
        read_conll(path, tag_column=5)
    with pytest.raises(DataError, match=rf"{at(path, 1)}: word_column=-5 is out of range"):
        read_conll(path, word_column=-5)
    with pytest.raises(DataError, match="the same column"):
        read_conll(path, word_column=1, tag_column=-3)


def test_bioes_file_is_detected_and_an_explicit_scheme_is_checked(tmp_path: Path) -> None:
    path = write(tmp_path / "a.bioes", "New B-LOC\nYork E-LOC\nin O\nParis S-LOC\n")
    assert detect_format(path) == "conll"
    assert read_examples(path)[0].tags == ("B-LOC", "I-LOC", "O", "B-LOC")
    assert read_conll(path, scheme="bioes")[0].tags == ("B-LOC", "I-LOC", "O", "B-LOC")
    with pytest.raises(DataError, match=rf"{at(path, 2)}: 'E-LOC' is a BIOES tag, but the tags were declared IOB2"):
        read_conll(path, scheme="iob2")
    with pytest.raises(DataError, match="unknown tag scheme 'bilou'"):
        read_conll(path, scheme="bilou")


def test_explicit_iob2_is_read_leniently(tmp_path: Path) -> None:
    path = write(tmp_path / "a.iob2", "John I-PER\nSmith I-PER\nvisits O\nParis I-LOC\n")
    assert read_conll(path, scheme="iob2")[0].tags == ("B-PER", "I-PER", "O", "B-LOC")


def test_one_column_file_is_unlabelled_text_only_on_request(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "-DOCSTART-\n\nHello\nworld\n\nBye\n")
    examples = read_conll(path, require_tags=False)
    assert [(e.text, e.tokens, e.tags, e.label) for e in examples] == [
        ("Hello world", ("Hello", "world"), None, None),
        ("Bye", ("Bye",), None, None),
    ]
    assert read_examples(path, require_labels=False) == examples
    with pytest.raises(DataError, match=rf"{at(path, 3)}: the lines have one column.*require_tags=False"):
        read_conll(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.conll", "conll"), ("a.BIO", "conll"), ("a.iob", "conll"), ("a.iob2", "conll"), ("a.bioes", "conll"),
     ("a.conllu", "labelfirst"), ("eng.train", "labelfirst")],
)
def test_detect_format_for_conll_suffixes(name: str, expected: str) -> None:
    assert detect_format(name) == expected


def test_wrong_column_count_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\n\nNew York NNP I-NP I-LOC\n")
    expected = rf"^{at(path, 5)}: expected 4 columns \(as on line 3\), found 5\. .*fix the line"
    with pytest.raises(DataError, match=expected):
        read_conll(path)


@pytest.mark.parametrize(("tag", "problem"), [("X-PER", "prefix 'X'"), ("B-", "no entity type after B-")])
def test_bad_tag_names_the_line(tmp_path: Path, tag: str, problem: str) -> None:
    path = write(tmp_path / "a.conll", f"EU I-ORG\nrejects O\n\nGerman {tag}\n")
    with pytest.raises(DataError, match=rf"^{at(path, 4)}: '{tag}' is not an entity tag \({problem}"):
        read_conll(path)


def test_empty_or_docstart_only_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"empty\.conll: the file is empty"):
        read_conll(write(tmp_path / "empty.conll", ""))
    for text in ("-DOCSTART- -X- O O\n\n", "\n \n\t\n"):
        with pytest.raises(DataError, match="holds no sentences"):
            read_conll(write(tmp_path / "docstart.conll", text))
    with pytest.raises(DataError, match="no such file"):
        read_conll(tmp_path / "missing.conll")


def test_encoding_is_detected_and_an_explicit_one_is_checked(tmp_path: Path) -> None:
    path = write(tmp_path / "a.conll", "K\u00f6ln I-LOC\n".encode("cp1252"))
    assert read_conll(path)[0].tokens == ("K\u00f6ln",)
    with pytest.raises(DataError, match=rf"{at(path, 1)}: byte 0xf6 is not valid utf-8"):
        read_conll(path, encoding="utf-8")
