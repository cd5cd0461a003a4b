"""Word vectors read off a sentence encoder (`wordconv embeddings from-encoder`), with a tiny BERT the tests write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tiny_hf import write_tiny_bert
from wordconv.embeddings.cli import app
from wordconv.embeddings.from_encoder import UNIFORM_STD, corpus_words, encoder_word_vectors, read_word_list
from wordconv.embeddings.vectors import iter_vectors, load_vectors
from wordconv.errors import ConfigError, DataError
from wordconv.retrieval import SentenceEncoder

runner = CliRunner()
WORDS = ["good", "great", "bad", "awful", "film", "movie", "team", "pizza"]  # all in the tiny BERT's vocabulary


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("hf") / "bert")


def test_corpus_words_counts_orders_and_cuts() -> None:
    texts = ["b a a", "c b a", "A d"]  # lowercased: a x4, b x2, c x1, d x1
    assert corpus_words(texts, min_count=1) == ["a", "b", "c", "d"]  # ties keep first-seen order
    assert corpus_words(texts, min_count=2) == ["a", "b"]
    assert corpus_words(texts, min_count=1, max_words=3) == ["a", "b", "c"]
    with pytest.raises(DataError, match="no word occurs 9 or more times"):
        corpus_words(texts, min_count=9)
    with pytest.raises(ConfigError, match="min_count"):
        corpus_words(texts, min_count=0)
    with pytest.raises(ConfigError, match="max_words"):
        corpus_words(texts, max_words=0)


def test_read_word_list_from_a_vector_file_or_lines(tmp_path: Path) -> None:
    vec = tmp_path / "v.vec"
    vec.write_text("3 2\nthe 0.1 0.2\nfilm 0.3 0.4\nthe 0.5 0.6\n")
    assert read_word_list(vec) == ["the", "film"]  # file order, duplicates dropped
    lines = tmp_path / "words.txt"
    lines.write_text("good\n\nbad\ngood\n")
    assert read_word_list(lines) == ["good", "bad"]
    lines.write_text("good\nnot one\n")
    with pytest.raises(DataError, match=r"words.txt:2: 'not one' is not one word"):
        read_word_list(lines)
    with pytest.raises(DataError, match="does not exist"):
        read_word_list(tmp_path / "missing.txt")


def test_vectors_are_the_encoders_single_word_vectors(bert: Path, tmp_path: Path) -> None:
    raw = SentenceEncoder(str(bert)).encode(WORDS)
    out = tmp_path / "raw.vec"
    stats = encoder_word_vectors(WORDS, out, encoder=str(bert), center=False, std=None, progress=False)
    assert stats["words"] == len(WORDS) and stats["dim"] == 32 and stats["format"] == "word2vec"
    read = dict(iter_vectors(out))
    assert list(read) == WORDS  # frequency order kept
    for i, w in enumerate(WORDS):
        assert read[w] == pytest.approx(raw[i], abs=1e-5)

    # centred and scaled: mean zero, average per-dimension spread of U[-0.25, 0.25], same directions after centring
    out2 = tmp_path / "scaled.vec"
    encoder_word_vectors(WORDS, out2, encoder=str(bert), progress=False)
    scaled = np.stack([v for _, v in iter_vectors(out2)])
    assert np.abs(scaled.mean(axis=0)).max() < 1e-5
    assert scaled.std(axis=0).mean() == pytest.approx(UNIFORM_STD, rel=1e-4)
    centred = raw - raw.mean(axis=0)
    assert scaled == pytest.approx(centred * (UNIFORM_STD / centred.std(axis=0).mean()), abs=1e-5)

    # a model's vocabulary finds them like any vector file
    loaded = load_vectors(out2, ["<pad>", "<unk>", "film", "team", "unseen"], seed=0)
    assert loaded.coverage.types_found == 2 and loaded.dim == 32
    assert loaded.matrix[2] == pytest.approx(dict(iter_vectors(out2))["film"])


def test_bad_inputs(bert: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no words"):
        encoder_word_vectors([], tmp_path / "x.vec", encoder=str(bert))
    with pytest.raises(DataError, match="not single words"):
        encoder_word_vectors(["good", "two words"], tmp_path / "x.vec", encoder=str(bert))
    with pytest.raises(ConfigError, match="std"):
        encoder_word_vectors(["good"], tmp_path / "x.vec", encoder=str(bert), std=0.0)
    with pytest.raises(ConfigError, match="does not exist"):
        encoder_word_vectors(["good"], tmp_path / "x.vec", encoder=str(tmp_path / "nowhere"))
    assert not (tmp_path / "x.vec").exists()


def test_cli_from_a_corpus_and_from_a_list(bert: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("good film\ngreat movie\nbad film\nawful pizza\n")
    out = tmp_path / "enc.vec"
    result = runner.invoke(app, ["from-encoder", "--corpus", str(corpus), "--encoder", str(bert), "--min-count", "2",
                                 "--output", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "encoded 1 words" in result.output and [w for w, _ in iter_vectors(out)] == ["film"]

    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    result = runner.invoke(app, ["from-encoder", "--words", str(words), "--encoder", str(bert), "--max-words", "3",
                                 "--output", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert [w for w, _ in iter_vectors(out)] == WORDS[:3]
    written = np.stack([v for _, v in iter_vectors(out)])
    assert written.std(axis=0).mean() == pytest.approx(UNIFORM_STD, rel=1e-4)  # the CLI's default scale
    result = runner.invoke(app, ["from-encoder", "--words", str(words), "--encoder", str(bert), "--std", "0",
                                 "--output", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    raw = SentenceEncoder(str(bert)).encode(WORDS)
    kept = np.stack([v for _, v in iter_vectors(out)])
    assert kept == pytest.approx(raw - raw.mean(axis=0), abs=1e-5)  # --std 0: centred, not rescaled

    for args, message in (([], "pass one of --corpus"), (["--corpus", str(corpus), "--words", str(words)], "not both")):
        result = runner.invoke(app, ["from-encoder", *args, "--encoder", str(bert), "--output", str(out)])
        assert result.exit_code != 0 and message in result.output
        assert "Traceback" not in result.output
    result = runner.invoke(app, ["from-encoder", "--words", str(words), "--max-words", "0", "--output", str(out)])
    assert result.exit_code != 0 and "--max-words 0" in result.output


def test_join_puts_a_files_vectors_in_front(bert: Path, tmp_path: Path) -> None:
    w2v = tmp_path / "w2v.vec"
    w2v.write_text("3 2\nfilm 1 2\ngood 3 4\nnowhere 5 6\n")
    out = tmp_path / "joined.vec"
    stats = encoder_word_vectors(["good", "bad", "film"], out, encoder=str(bert), join=w2v, progress=False)
    assert stats["dim"] == 2 + 32 and stats["joined_dim"] == 2 and stats["left_out"] == 1  # "bad" is not in w2v.vec
    read = dict(iter_vectors(out))
    assert list(read) == ["good", "film"]
    assert read["good"][:2] == pytest.approx([3, 4]) and read["film"][:2] == pytest.approx([1, 2])
    encoder_word_vectors(["good", "film"], tmp_path / "alone.vec", encoder=str(bert), progress=False)
    alone = dict(iter_vectors(tmp_path / "alone.vec"))
    assert read["good"][2:] == pytest.approx(alone["good"], abs=1e-5)  # the encoder part as without --join

    # the CLI takes the words from the joined file when given no other list
    result = runner.invoke(app, ["from-encoder", "--join", str(w2v), "--encoder", str(bert), "--output", str(out),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert [w for w, _ in iter_vectors(out)] == ["film", "good", "nowhere"] and "34 dimensions after 2" in result.output

    other = tmp_path / "other.vec"
    other.write_text("1 2\nzzz 1 2\n")
    with pytest.raises(DataError, match="none of the 2 requested words"):
        encoder_word_vectors(["good", "film"], out, encoder=str(bert), join=other, progress=False)
