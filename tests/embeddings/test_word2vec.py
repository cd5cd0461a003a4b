"""Training word2vec with gensim on tiny corpora, reading corpora, and nearest neighbours."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
import tarfile
from pathlib import Path

import numpy as np
import pytest

from wordconv.data.text import PreprocessConfig, Preprocessor
from wordconv.embeddings.vectors import detect_vector_format, load_vectors, vector_dim
from wordconv.embeddings.word2vec import _tokenize, nearest_neighbours, read_corpus, train_word2vec
from wordconv.errors import ConfigError, DataError

from tiny import shared_data_dir

ANIMALS = ["cat", "dog", "mouse", "hamster"]
VEHICLES = ["car", "truck", "bus", "train"]
TINY = {"dim": 8, "min_count": 1, "epochs": 5, "sample": 0.0, "workers": 1, "progress": False}


def two_topic_corpus(documents: int = 200, seed: int = 0) -> list[str]:
    """Documents that each use the words of one topic only (capitalized now and then)."""
    rng = random.Random(seed)
    texts = []
    for i in range(documents):
        topic = ANIMALS if i % 2 else VEHICLES
        words = [rng.choice(topic) for _ in range(12)]
        words[0] = words[0].capitalize()
        texts.append(" ".join(words) + ".")
    return texts


def test_skipgram_learns_that_cooccurring_words_are_neighbours(tmp_path: Path) -> None:
    output = tmp_path / "out" / "vectors.vec"
    stats = train_word2vec(two_topic_corpus(), output, **TINY)

    assert stats["words"] == 9  # 8 words and "." (lowercased by the default preprocessing)
    assert stats["documents"] == 200 and stats["tokens"] == 200 * 13
    assert stats["dim"] == 8 and stats["format"] == "word2vec" and stats["seconds"] > 0
    lines = output.read_text().splitlines()
    assert lines[0] == "9 8" and len(lines) == 10
    counts = Counter(" ".join(two_topic_corpus()).lower().replace(".", " .").split())
    written = [line.split(" ")[0] for line in lines[1:]]
    assert [counts[word] for word in written] == sorted(counts.values(), reverse=True)  # frequency order
    assert [p.name for p in output.parent.iterdir()] == ["vectors.vec"]  # no temporary file left
    assert detect_vector_format(output) == "word2vec" and vector_dim(output) == 8

    for word, topic in (("cat", ANIMALS), ("truck", VEHICLES)):
        neighbours = [other for other, _ in nearest_neighbours(output, word, k=3)]
        assert set(neighbours) == set(topic) - {word}, neighbours

    vectors = load_vectors(output, ["<pad>", "<unk>", "cat", "Dog", "zebra"])
    assert vectors.found.tolist() == [False, False, True, True, False]


def test_training_is_deterministic_with_one_worker(tmp_path: Path) -> None:
    texts = two_topic_corpus(60)
    train_word2vec(texts, tmp_path / "a.vec", **TINY)
    train_word2vec(texts, tmp_path / "b.vec", **TINY)
    train_word2vec(texts, tmp_path / "c.vec", **{**TINY, "seed": 14})
    assert (tmp_path / "a.vec").read_bytes() == (tmp_path / "b.vec").read_bytes()
    assert (tmp_path / "a.vec").read_bytes() != (tmp_path / "c.vec").read_bytes()


def test_cbow_binary_and_gzip_outputs(tmp_path: Path) -> None:
    texts = two_topic_corpus(40)
    binary = train_word2vec(texts, tmp_path / "v.bin", **{**TINY, "sg": False})
    assert binary["format"] == "word2vec-bin" and detect_vector_format(tmp_path / "v.bin") == "word2vec-bin"
    compressed = train_word2vec(lambda: iter(texts), tmp_path / "v.vec.gz", **TINY)  # a callable corpus
    assert compressed["format"] == "word2vec"
    assert (tmp_path / "v.vec.gz").read_bytes()[:2] == b"\x1f\x8b"
    for name in ("v.bin", "v.vec.gz"):
        assert load_vectors(tmp_path / name, ["cat", "bus"], zero_rows=()).found.all()


def test_preprocessing_is_ours(tmp_path: Path) -> None:
    texts = ["Don't stop <br />the Music"] * 5
    train_word2vec(texts, tmp_path / "v.vec", **TINY)
    words = {line.split(" ")[0] for line in (tmp_path / "v.vec").read_text().splitlines()[1:]}
    assert words == {"do", "n't", "stop", "the", "music"}  # clitics split, HTML dropped, lowercased
    cased = PreprocessConfig(lowercase=False, max_length=3)  # max_length is ignored: whole documents are used
    stats = train_word2vec(texts, tmp_path / "c.vec", preprocessing=cased, **TINY)
    assert stats["tokens"] == 25 and "Music" in (tmp_path / "c.vec").read_text()


def test_long_documents_are_passed_in_pieces_gensim_does_not_cut(tmp_path: Path) -> None:
    # gensim silently drops the tokens of a sentence after the 10,000th
    words = [f"w{i % 50}" for i in range(25_000)]
    sentences, documents, tokens = _tokenize([" ".join(words)], Preprocessor(PreprocessConfig(max_length=None)), lambda: None)
    assert [len(s) for s in sentences] == [10_000, 10_000, 5_000] and sum(sentences, []) == words
    assert (documents, tokens) == (1, 25_000)
    stats = train_word2vec([" ".join(words)], tmp_path / "v.vec", **{**TINY, "epochs": 1})
    assert stats["tokens"] == 25_000 and stats["words"] == 50


def test_training_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bad word2vec options: dim must be 1 or more, got 0; sample must be in \[0, 1\)"):
        train_word2vec(["a b"], tmp_path / "v.vec", dim=0, sample=1.5)
    with pytest.raises(DataError, match=r"no word occurs 5 or more times in the corpus \(4 tokens in 2 documents\).*--min-count"):
        train_word2vec(["a b", "c d"], tmp_path / "v.vec", progress=False)
    with pytest.raises(DataError, match="no tokens after preprocessing"):
        train_word2vec(["", "  "], tmp_path / "v.vec", progress=False)
    with pytest.raises(DataError, match="document 2 of the corpus is a int, not a string"):
        train_word2vec(["a", 3], tmp_path / "v.vec", progress=False)  # type: ignore[list-item]
    assert not (tmp_path / "v.vec").exists()


def test_nearest_neighbours_errors_and_lowercase(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("the 1 0 0\na 0.9 0.1 0\nfilm 0 1 0\nmovie 0 0.9 0.1\n")
    assert [w for w, _ in nearest_neighbours(path, "Film", k=2)] == ["movie", "a"]
    score = dict(nearest_neighbours(path, "the", k=3))["a"]
    assert score == pytest.approx(0.9 / np.hypot(0.9, 0.1), rel=1e-6)
    with pytest.raises(DataError, match=r"has no vector for 'zebra'"):
        nearest_neighbours(path, "zebra")
    with pytest.raises(DataError, match=r"has no vector for 'movie' among its first 2 words"):
        nearest_neighbours(path, "movie", limit=2)
    with pytest.raises(ConfigError, match="k must be 1 or more"):
        nearest_neighbours(path, "the", k=0)


# ------------------------------------------------------------------------------------------------
# corpora


def test_read_corpus_text_csv_jsonl_labelfirst(tmp_path: Path) -> None:
    lines = tmp_path / "corpus.txt"
    lines.write_text("first document\n\nsecond one\n")
    assert read_corpus(lines) == ["first document", "second one"]
    assert read_corpus(lines, format="labelfirst") == ["document", "one"]
    csv = tmp_path / "c.csv"
    csv.write_text('id,body\n1,"hello, world"\n2,bye\n')
    assert read_corpus(csv, text_field="body") == ["hello, world", "bye"]
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "label": "x"}) for t in ("one", "two")) + "\n")
    assert read_corpus(jsonl) == ["one", "two"]
    assert read_corpus("corpus.txt", tmp_path) == ["first document", "second one"]  # relative to the mirror


def test_read_corpus_folder_and_tarball(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("second <br />review")
    (folder / "sub" / "a.txt").write_text("nested review")
    (folder / "notes.md").write_text("not a document")
    (folder / "empty.txt").write_text("  ")
    assert read_corpus(folder) == ["second <br />review", "nested review"]

    archive = tmp_path / "unsup.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in (
            ("aclImdb/README", "readme"),
            ("aclImdb/train/unsup/0_0.txt", "great film"),
            ("aclImdb/train/unsup/1_0.txt", "café"),
            ("aclImdb/train/urls_unsup.txt", "http://www.imdb.com/title/tt0000001/usercomments"),
        ):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert len(read_corpus(archive)) == 3
    assert read_corpus(archive, subdir="aclImdb/train/unsup/") == ["great film", "café"]
    assert read_corpus(folder, subdir="sub") == ["nested review"]
    with pytest.raises(DataError, match=r"unsup\.tar\.gz: no \.txt files under aclImdb/test/\. .*check the path and the subdir"):
        read_corpus(archive, subdir="aclImdb/test")


def test_read_corpus_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"corpus 'nope\.txt' is neither an existing file or folder( \(also looked in .*\))? nor a registered dataset"):
        read_corpus("nope.txt")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n")
    with pytest.raises(DataError, match="contains only blank lines"):
        read_corpus(blank)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text(" \n")
    with pytest.raises(DataError, match="the corpus has no text"):
        read_corpus(tmp_path / "d")
    with pytest.raises(ConfigError, match="unknown corpus format 'xml'"):
        read_corpus(blank, format="xml")
    with pytest.raises(ConfigError, match="subdir applies to a folder or .tar.gz corpus only, not to a lines file"):
        read_corpus(blank, subdir="x")


@pytest.mark.integration
def test_read_corpus_of_a_registered_dataset() -> None:
    data = shared_data_dir()
    if data is None or not (data / "trec").is_dir():
        pytest.skip("the shared data mirror is not available")
    texts = read_corpus("trec", data)
    assert len(texts) == 5452  # TREC train, dev carved from it included; the 500 test questions are not
    assert all(isinstance(text, str) and text for text in texts)
