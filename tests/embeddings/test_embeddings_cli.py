"""`wordconv embeddings train|neighbours|list` through typer's CliRunner: exit codes and messages."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wordconv.embeddings.cli import app
from wordconv.embeddings.vectors import load_vectors

runner = CliRunner()
FAST = ["--dim", "8", "--min-count", "1", "--epochs", "5", "--sample", "0", "--workers", "1", "--quiet"]


def cli(*args: object):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    rng = random.Random(0)
    path = tmp_path / "corpus.txt"
    topics = (["Cat", "dog", "mouse"], ["car", "bus", "truck"])
    path.write_text("".join(" ".join(rng.choice(topics[i % 2]) for _ in range(10)) + "\n" for i in range(100)))
    return path


def test_train_then_neighbours(corpus: Path, tmp_path: Path) -> None:
    output = tmp_path / "vectors.vec"
    result = cli("train", "--corpus", corpus, "--output", output, *FAST)
    assert result.exit_code == 0, result.output
    assert "trained skip-gram on 100 documents (1,000 tokens)" in result.output
    assert "6 words x 8 dimensions" in result.output
    assert output.read_text().splitlines()[0] == "6 8"

    result = cli("neighbours", output, "cat", "-k", "2")
    assert result.exit_code == 0, result.output
    assert "dog" in result.output and "mouse" in result.output and "truck" not in result.output

    cased = tmp_path / "cased.bin"
    result = cli("train", "--corpus", corpus, "-o", cased, "--cbow", "--no-lowercase", *FAST)
    assert result.exit_code == 0 and "trained CBOW" in result.output
    assert load_vectors(cased, ["Cat"], zero_rows=(), lowercase_fallback=False).found.all()


def test_train_on_a_folder_subdir(tmp_path: Path) -> None:
    for folder, words in (("reviews", "cat dog mouse"), ("urls", "http www imdb")):
        (tmp_path / "docs" / folder).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "docs" / folder / f"{i}.txt").write_text(words)
    output = tmp_path / "v.vec"
    result = cli("train", "--corpus", tmp_path / "docs", "--subdir", "reviews", "-o", output, *FAST)
    assert result.exit_code == 0, result.output
    assert "on 3 documents (9 tokens)" in result.output
    assert {line.split(" ")[0] for line in output.read_text().splitlines()[1:]} == {"cat", "dog", "mouse"}


def test_train_errors_exit_cleanly(corpus: Path, tmp_path: Path) -> None:
    result = cli("train", "--corpus", tmp_path / "missing.txt", "--output", tmp_path / "v.vec")
    assert result.exit_code == 2
    assert "error:" in result.output and "missing.txt" in result.output

    result = cli("train", "--corpus", corpus, "--output", tmp_path / "v.vec", "--dim", "0", "--quiet")
    assert result.exit_code == 3 and "dim must be 1 or more" in result.output

    result = cli("train", "--corpus", corpus, "--output", tmp_path / "v.vec", "--min-count", "1000", "--quiet")
    assert result.exit_code == 2 and "Lower --min-count" in result.output
    assert not (tmp_path / "v.vec").exists()

    assert cli("train", "--output", tmp_path / "v.vec").exit_code == 2  # --corpus is required (usage error)


def test_neighbours_errors(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("the 1 0\nfilm 0 1\n")
    result = cli("neighbours", path, "zebra")
    assert result.exit_code == 2 and "has no vector for 'zebra'" in result.output
    result = cli("neighbours", "glove-7b", "the")
    assert result.exit_code == 2 and "neither an existing file nor a named vector set" in result.output


def test_list_and_named_sets(tmp_path: Path, isolated: Path) -> None:
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / "glove.6B.100d.txt").write_text("the 1 0 0\nfilm 0 1 0\nmovie 0 0.9 0.1\n")
    result = cli("list", "--data-dir", tmp_path)
    assert result.exit_code == 0, result.output
    for name in ("glove-6b-100d", "glove-840b-300d", "word2vec-google-news-300", "fasttext-crawl-300d-2m"):
        assert name in result.output
    assert "yes" in result.output

    result = cli("neighbours", "glove-6b-100d", "film", "-k", "1", "--data-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "movie" in result.output

    result = cli("neighbours", "glove-6b-300d", "film")
    assert result.exit_code == 2 and "https://nlp.stanford.edu/data/glove.6B.zip" in result.output
