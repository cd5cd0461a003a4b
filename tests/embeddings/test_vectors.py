"""Reading word2vec / GloVe / fastText vector files: exact vectors, lowercase fallback, extras, coverage, errors."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from wordconv.embeddings.vectors import Coverage, detect_vector_format, iter_vectors, load_vectors, vector_dim
from wordconv.errors import ConfigError, DataError

from embeddings.vector_files import (
    DIM,
    ROWS,
    WRITERS,
    vector_of,
    word2vec_binary_bytes,
    write_glove,
    write_word2vec_binary,
    write_word2vec_text,
)
from tiny import shared_data_dir

SPECIALS = ["<pad>", "<unk>"]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("kind", list(WRITERS))
def test_every_format_gives_the_exact_vectors(tmp_path: Path, kind: str, compress: bool) -> None:
    writer, name, expected_format = WRITERS[kind]
    path = writer(tmp_path / (name + (".gz" if compress else "")), compress=compress)
    assert detect_vector_format(path) == expected_format
    assert vector_dim(path) == DIM

    words = [*SPECIALS, "the", "film", "Bad", "nope"]
    vectors = load_vectors(path, words)

    assert vectors.format == expected_format
    assert vectors.dim == DIM
    assert vectors.matrix.dtype == np.float32 and vectors.matrix.shape == (6, DIM)
    assert vectors.found.tolist() == [False, False, True, True, True, False]
    np.testing.assert_array_equal(vectors.matrix[2], vector_of("the"))  # the first "the", not the duplicate
    np.testing.assert_array_equal(vectors.matrix[3], vector_of("film"))
    np.testing.assert_array_equal(vectors.matrix[4], [-3.0, 3.0, -3.0])  # exact "Bad", not "bad"
    np.testing.assert_array_equal(vectors.matrix[:2], np.zeros((2, DIM)))
    assert vectors.extra_words == [] and vectors.extra_matrix.shape == (0, DIM)
    assert (vectors.coverage.types_total, vectors.coverage.types_found) == (4, 3)
    assert vectors.path == str(path)


def test_explicit_format_and_aliases(tmp_path: Path) -> None:
    path = write_word2vec_text(tmp_path / "v.vec")
    for format in ("word2vec", "fasttext", "vec", "word2vec-text"):
        assert load_vectors(path, ["the"], zero_rows=(), format=format).found.all()
    with pytest.raises(ConfigError, match="unknown vector format 'fasttext-bin'"):
        load_vectors(path, ["the"], zero_rows=(), format="fasttext-bin")


def test_lowercase_fallback(tmp_path: Path) -> None:
    path = write_glove(tmp_path / "v.txt")
    words = [*SPECIALS, "the", "Film", "movie", "MOVIE", "Good", "FUN"]
    vectors = load_vectors(path, words)
    # "movie" is not in the file (only "Movie"): the fallback only ever goes to the lowercase form
    assert vectors.found.tolist() == [False, False, True, True, False, False, True, True]
    np.testing.assert_array_equal(vectors.matrix[3], vector_of("film"))
    np.testing.assert_array_equal(vectors.matrix[6], vector_of("good"))
    np.testing.assert_array_equal(vectors.matrix[7], [4.0, 4.0, 4.0])  # "fun", not "Fun"
    assert vectors.coverage.lowercase_hits == 3

    strict = load_vectors(path, words, lowercase_fallback=False)
    assert strict.found.tolist() == [False, False, True, False, False, False, False, False]
    assert strict.coverage.lowercase_hits == 0


def test_exact_match_wins_even_later_in_the_file(tmp_path: Path) -> None:
    path = write_glove(tmp_path / "v.txt")  # "bad" comes before "Bad"
    vectors = load_vectors(path, [*SPECIALS, "Bad", "bad"])
    np.testing.assert_array_equal(vectors.matrix[2], [-3.0, 3.0, -3.0])
    np.testing.assert_array_equal(vectors.matrix[3], vector_of("bad"))
    assert vectors.coverage.lowercase_hits == 0


def test_extra_words_in_file_order(tmp_path: Path) -> None:
    path = write_glove(tmp_path / "v.txt")
    vectors = load_vectors(path, [*SPECIALS, "the", "Movie"], extra=4)
    assert vectors.extra_words == ["film", "good", "bad", "Bad"]
    np.testing.assert_array_equal(vectors.extra_matrix, [vector_of(w) for w in vectors.extra_words])
    assert vectors.extra_matrix.dtype == np.float32

    everything = load_vectors(path, [*SPECIALS, "film"], extra=100)
    assert everything.extra_words == ["the", "Movie", "good", "bad", "Bad", "Fun", "fun", "plot"]  # one "the"
    np.testing.assert_array_equal(everything.extra_matrix[0], vector_of("the"))


def test_lowercase_extra_skips_requested_and_taken_forms(tmp_path: Path) -> None:
    path = write_glove(tmp_path / "v.txt")
    vectors = load_vectors(path, [*SPECIALS, "movie", "fun"], extra=100, lowercase_extra=True)
    # Movie -> "movie" is requested, Bad -> "bad" is taken, Fun -> "fun" is requested
    assert vectors.extra_words == ["the", "film", "good", "bad", "plot"]
    np.testing.assert_array_equal(vectors.extra_matrix[3], vector_of("bad"))
    assert vectors.found.tolist() == [False, False, False, True]


def test_coverage_numbers(tmp_path: Path) -> None:
    path = write_glove(tmp_path / "v.txt")
    words = [*SPECIALS, "the", "Film", "nope", "plot"]
    counts = {"the": 10, "Film": 3, "nope": 5, "plot": 2, "<pad>": 100, "<unk>": 7}
    coverage = load_vectors(path, words, counts=counts).coverage
    assert coverage == Coverage(4, 3, 20, 15, 1, "GloVe")
    assert coverage.type_rate == 0.75 and coverage.token_rate == 0.75
    assert str(coverage) == "GloVe coverage: 3 of 4 word types (75.0%), 15 of 20 tokens (75.0%); 1 via lowercase"

    by_type = load_vectors(path, words).coverage
    assert (by_type.tokens_total, by_type.tokens_found) == (4, 3)
    assert Coverage(0, 0, 0, 0, 0).type_rate == 0.0
    big = Coverage(17_890, 8_123, 230_111, 201_234, 312, "GloVe")
    assert str(big) == (
        "GloVe coverage: 8,123 of 17,890 word types (45.4%), 201,234 of 230,111 tokens (87.5%); 312 via lowercase"
    )
    vec = write_word2vec_text(tmp_path / "v.vec")
    assert str(load_vectors(vec, ["the"], zero_rows=()).coverage).startswith("fastText coverage: 1 of 1")


def test_unknown_rows_are_uniform_and_seeded(tmp_path: Path) -> None:
    path = write_glove(tmp_path / "v.txt")
    words = [*SPECIALS, "the"] + [f"unknown{i}" for i in range(200)]
    vectors = load_vectors(path, words)
    unknown = vectors.matrix[3:]
    assert np.abs(unknown).max() <= 0.25 and unknown.std() > 0.1  # U[-0.25, 0.25] has std 0.144
    np.testing.assert_array_equal(load_vectors(path, words).matrix, vectors.matrix)
    assert not np.array_equal(load_vectors(path, words, seed=14).matrix[3:], unknown)
    assert np.abs(load_vectors(path, words, init_scale=0.01).matrix[3:]).max() <= 0.01
    # a word's random row does not depend on which other words were found
    first = load_vectors(path, [*SPECIALS, "x0", "the"]).matrix[2]
    second = load_vectors(path, [*SPECIALS, "x0", "film"]).matrix[2]
    np.testing.assert_array_equal(first, second)


def test_zero_rows(tmp_path: Path) -> None:
    path = write_glove(tmp_path / "v.txt")
    vectors = load_vectors(path, ["the", "film", "plot"], zero_rows=(0, 1))
    np.testing.assert_array_equal(vectors.matrix[:2], np.zeros((2, DIM)))
    assert vectors.found.tolist() == [False, False, True]
    assert vectors.coverage.types_total == 1
    assert load_vectors(path, ["the", "film"], zero_rows=()).found.all()
    with pytest.raises(ConfigError, match=r"zero_rows \[0, 1\] must be indices into the 1 words"):
        load_vectors(path, ["the"])


def test_words_with_spaces_bom_crlf_trailing_spaces_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    body = "the 1 2 3 \r\n\r\n. . . 4 5 6\r\na b 7 8 9\r\n\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    vectors = load_vectors(path, ["the", ". . .", "a b"], zero_rows=())
    np.testing.assert_array_equal(vectors.matrix, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])


def test_binary_words_with_invalid_utf8_are_replaced(tmp_path: Path) -> None:
    rows = [("the", [1.0, 2.0, 3.0])]
    data = word2vec_binary_bytes(rows).replace(b"1 3\n", b"2 3\n") + b"caf\xe9 " + np.ones(3, "<f4").tobytes()
    path = tmp_path / "v.bin"
    path.write_bytes(data)
    vectors = load_vectors(path, ["the"], zero_rows=(), extra=5)
    assert vectors.extra_words == ["caf\ufffd"]


def test_streaming_keeps_memory_small(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    row = " ".join(["0.123456"] * 20)
    path.write_text("".join(f"w{i} {row}\n" for i in range(20_000)))  # 3.2 MB
    load_vectors(write_glove(tmp_path / "warm.txt"), [*SPECIALS, "the"], progress=True)  # imports, caches
    tracemalloc.start()
    try:
        vectors = load_vectors(path, [*SPECIALS, "w5", "w19999", "absent"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert vectors.found.tolist() == [False, False, True, True, False]
    assert vectors.rows_read == 20_000
    assert peak < 512 * 1024, f"peak {peak:,} bytes for a {path.stat().st_size:,} byte file"


def test_stops_reading_when_every_word_is_found(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("the 1 2 3\nfilm 4 5 6\nbroken\n")
    vectors = load_vectors(path, [*SPECIALS, "the", "film"])
    assert vectors.rows_read == 2
    with pytest.raises(DataError, match=r"v\.txt:3: dimension mismatch: line 3 has 0 values, expected 3"):
        load_vectors(path, [*SPECIALS, "the", "film", "nope"])


def test_vector_dim_reads_only_the_head(tmp_path: Path) -> None:
    glove = tmp_path / "g.txt"
    glove.write_bytes(b"the 1 2 3 4\n" + b"a 1 2 3 4\n" * 8000 + b"\x00\xff garbage \x01" * 100)
    assert vector_dim(glove) == 4
    assert detect_vector_format(glove) == "glove"
    with pytest.raises(DataError, match="contains NUL bytes"):
        load_vectors(glove, [*SPECIALS, "zzz", "the"])

    header = tmp_path / "w.vec"
    header.write_text("3 5\nthe 1 2 3 4 5\nnot a row\nalso 1\n")
    assert vector_dim(header) == 5
    assert vector_dim(header, format="word2vec") == 5


def test_iter_vectors(tmp_path: Path) -> None:
    for kind in ("glove", "word2vec-bin"):
        writer, name, _ = WRITERS[kind]
        path = writer(tmp_path / name)
        pairs = list(iter_vectors(path))
        assert [word for word, _ in pairs] == [word for word, _ in ROWS]
        np.testing.assert_array_equal(pairs[-1][1], vector_of("plot"))
        assert len(list(iter_vectors(path, limit=3))) == 3


def test_progress_bar(tmp_path: Path) -> None:
    path = write_word2vec_binary(tmp_path / "v.bin")
    assert load_vectors(path, [*SPECIALS, "the"], progress=True).found[2]


# ------------------------------------------------------------------------------------------------
# errors


def test_missing_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.txt: no such file.*wordconv embeddings list"):
        load_vectors(tmp_path / "nope.txt", ["the"])
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.txt: the file is empty"):
        load_vectors(empty, ["the"])
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\n\n \n")
    with pytest.raises(DataError, match=r"blank\.txt: the file is empty"):
        vector_dim(blank)
    with pytest.raises(DataError, match="is a directory"):
        detect_vector_format(tmp_path)


def test_header_only(tmp_path: Path) -> None:
    path = tmp_path / "v.vec"
    path.write_text("3 3\n")
    with pytest.raises(DataError, match=r"only a header line \('3 3'\), no vectors"):
        load_vectors(path, ["the"])


def test_header_disagrees_with_rows(tmp_path: Path) -> None:
    path = tmp_path / "v.vec"
    path.write_text("2 4\nthe 1 2 3\nfilm 1 2 3\n")
    with pytest.raises(DataError, match=r"v\.vec:2: the header and the rows disagree: the header \(line 1\) says 4"):
        load_vectors(path, [*SPECIALS, "the"])


@pytest.mark.parametrize("header", [False, True])
def test_dimension_mismatch_names_the_line(tmp_path: Path, header: bool) -> None:
    rows = ["the 1 2 3", "film 1 2 3", "good 1 2", "bad 1 2 3"]
    path = tmp_path / "v.txt"
    path.write_text("\n".join((["4 3"] if header else []) + rows) + "\n")
    line = 4 if header else 3
    origin = r"the header \(line 1\) says 3" if header else r"line 1, the first row, has 3"
    with pytest.raises(DataError, match=rf"v\.txt:{line}: dimension mismatch: line {line} has 2 values, expected 3 \({origin}\)"):
        load_vectors(path, [*SPECIALS, "bad"])


def test_too_many_values_is_a_mismatch_not_a_word_with_spaces(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("the 1 2 3\nfilm 1 2 3 4\n")
    with pytest.raises(DataError, match=r"v\.txt:2: dimension mismatch: line 2 has 4 values, expected 3"):
        load_vectors(path, [*SPECIALS, "film"])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("film 1 x 3", r"v\.txt:2: value 2 of the row is 'x', not a number"),
        ("film 1  3", r"v\.txt:2: value 2 of the row is empty \(two spaces in a row\?\)"),
        ("film 1 nan 3", r"line 2: value 2 is nan, not a finite number"),
        ("film 1 2  3", r"v\.txt:2: an empty field \(two spaces in a row\)"),
    ],
)
def test_bad_values(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "v.txt"
    path.write_text(f"the 1 2 3\n{row}\n")
    with pytest.raises(DataError, match=message):
        load_vectors(path, [*SPECIALS, "film"])


def test_binary_truncated(tmp_path: Path) -> None:
    data = word2vec_binary_bytes()
    path = tmp_path / "v.bin"
    path.write_bytes(data[:-7])  # inside the last vector
    with pytest.raises(DataError, match=r"truncated in record 10 \(after 9 complete records\): word b'plot' has 6 of its 12"):
        load_vectors(path, [*SPECIALS, "nope"])
    path.write_bytes(data + b"half")  # a word without its space and vector
    with pytest.raises(DataError, match=r"truncated in record 11 .*ends inside the word b'half'"):
        load_vectors(path, [*SPECIALS, "nope"])


def test_binary_header_count_mismatch_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "v.bin"
    path.write_bytes(word2vec_binary_bytes().replace(b"10 3\n", b"12 3\n", 1))
    assert load_vectors(path, [*SPECIALS, "the", "nope"]).found[2]
    assert "the header says 12 words, but the file has 10 rows" in caplog.text


def test_binary_without_header(tmp_path: Path) -> None:
    path = tmp_path / "v.bin"
    path.write_bytes(word2vec_binary_bytes()[5:])
    with pytest.raises(DataError, match="looks like a binary file but does not start with a word2vec header"):
        load_vectors(path, ["the"])


@pytest.mark.parametrize(
    ("kind", "format", "looks"),
    [
        ("word2vec-bin", "word2vec", "a word2vec binary file"),
        ("word2vec-bin", "glove", "a word2vec binary file"),
        ("word2vec-text", "word2vec-bin", "a word2vec/fastText text file"),
        ("word2vec-text", "glove", "a word2vec/fastText text file"),
        ("glove", "word2vec", "a GloVe text file"),
    ],
)
def test_format_disagreeing_with_the_file(tmp_path: Path, kind: str, format: str, looks: str) -> None:
    writer, name, detected = WRITERS[kind]
    path = writer(tmp_path / name)
    with pytest.raises(DataError, match=rf"format '{format}' was given, but the file looks like {looks}.*format='{detected}'"):
        load_vectors(path, ["the"], zero_rows=(), format=format)


def test_no_word_found(tmp_path: Path) -> None:
    path = write_glove(tmp_path / "v.txt")
    with pytest.raises(DataError, match=r"none of the 2 requested words is among the 10 words of the file \(read as 'glove' format, 3 dimensions\).*case"):
        load_vectors(path, [*SPECIALS, "xx", "yy"])
    assert load_vectors(path, SPECIALS).coverage.types_total == 0  # nothing asked, nothing to complain about


def test_damaged_gzip_and_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "v.txt.gz"
    path.write_bytes(gzip.compress(b"the 1 2 3\n" * 1000)[:60])
    with pytest.raises(DataError, match="cannot decompress the gzip data"):
        load_vectors(path, ["the"], zero_rows=())
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"the 1 2 3\ncaf\xe9 1 2 3\n")
    with pytest.raises(DataError, match=r"latin\.txt:2: byte 0xe9 is not valid UTF-8"):
        load_vectors(latin, ["the"], zero_rows=())


def test_first_row_without_values(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("the\nfilm 1 2\n")
    with pytest.raises(DataError, match=r"v\.txt:1: the first row has a word but no values"):
        vector_dim(path)


# ------------------------------------------------------------------------------------------------
# real data


@pytest.mark.integration
def test_real_glove_subset() -> None:
    data = shared_data_dir()
    if data is None or not (data / "embeddings" / "glove.6B.50d.10k.txt").is_file():
        pytest.skip("the shared data mirror is not available")
    path = data / "embeddings" / "glove.6B.50d.10k.txt"
    assert detect_vector_format(path) == "glove" and vector_dim(path) == 50
    words = [*SPECIALS, "the", "movie", "The", "Good", "qqxqzz"]
    vectors = load_vectors(path, words, counts={"the": 50, "movie": 5, "The": 3, "Good": 2, "qqxqzz": 1})
    assert vectors.dim == 50
    assert vectors.found.tolist() == [False, False, True, True, True, True, False]
    np.testing.assert_allclose(vectors.matrix[2, :3], [0.418, 0.24968, -0.41242])
    np.testing.assert_array_equal(vectors.matrix[4], vectors.matrix[2])
    assert str(vectors.coverage) == (
        "GloVe coverage: 4 of 5 word types (80.0%), 60 of 61 tokens (98.4%); 2 via lowercase"
    )
    assert vectors.rows_read == 10_000


def test_casefold_file_matches_a_cased_file_word_to_a_lowercased_vocabulary(tmp_path):
    path = tmp_path / "cased.txt"
    path.write_text("Film 1 1\nfilm 2 2\nParis 3 3\nPARIS 4 4\nÉté 5 5\n", encoding="utf-8")
    pv = load_vectors(path, ["<pad>", "<unk>", "film", "paris", "été", "zzz"], casefold_file=True)
    assert pv.matrix[2].tolist() == [2, 2]  # the exact form wins even though "Film" comes first
    assert pv.matrix[3].tolist() == [3, 3]  # the first cased form in file order (the most frequent)
    assert pv.matrix[4].tolist() == [5, 5]  # non-ASCII case folding
    assert pv.found.tolist() == [False, False, True, True, True, False]
    assert pv.coverage.lowercase_hits == 2
    with pytest.raises(DataError, match="none of the 1 requested words"):  # only the other direction without it
        load_vectors(path, ["<pad>", "<unk>", "paris"], casefold_file=False, lowercase_fallback=True)
