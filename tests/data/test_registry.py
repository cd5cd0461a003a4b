"""Tests of wordconv.data.registry: load_data on user files and registry names, and the real mirror."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from wordconv.data.download import sha256_file
from wordconv.data.registry import DATASETS, dataset_status, load_data, resolve_data_dir
from wordconv.data.readers import FORMATS
from wordconv.errors import ConfigError, DataError

TEXTCAT = ["mr", "sst1", "sst2", "trec", "imdb", "agnews"]


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No mirror from the environment and an empty cache, unless a test sets them."""
    monkeypatch.delenv("WORDCONV_DATA", raising=False)
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))


def write_labelfirst(path: Path, n: int, labels: tuple[str, ...] = ("neg", "pos")) -> Path:
    path.write_text("".join(f"{labels[i % len(labels)]} text number {i}\n" for i in range(n)), encoding="utf-8")
    return path


def test_registry_entries_are_consistent() -> None:
    assert set(DATASETS) == {*TEXTCAT, "conll2003", "squad11"}
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert spec.files and spec.description and spec.citation
        for data_file in spec.files.values():
            assert len(data_file.sha256) == 64 and data_file.path.startswith(f"{name}/")
            assert data_file.url.startswith("https://") or name == "imdb"
        if spec.task == "textcat":
            assert spec.format in FORMATS and spec.label_names
    assert DATASETS["mr"].cv_folds == 10
    assert DATASETS["agnews"].label_names["1"] == "World"
    assert DATASETS["trec"].label_names["2"] == "ABBR"
    assert {DATASETS[name].task for name in ("conll2003", "squad11")} == {"ner", "qa"}


def test_resolve_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_data_dir() is None
    monkeypatch.setenv("WORDCONV_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert resolve_data_dir("elsewhere") == Path("elsewhere")


def test_unknown_name_lists_registry() -> None:
    with pytest.raises(DataError, match=r"'nosuch' is neither a registered dataset.*mr, sst1, sst2, trec"):
        load_data("nosuch")


def test_reserved_tasks_raise_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'conll2003' is a named-entity dataset: train it with task ner"):
        load_data("conll2003")
    with pytest.raises(ConfigError, match=r"'mr' is a textcat dataset, not tagged sentences"):
        load_data("mr", task="ner")
    with pytest.raises(ConfigError, match=r"'squad11' is a qa dataset"):
        load_data("squad11")


def test_fold_with_standard_test_split() -> None:
    with pytest.raises(ConfigError, match=r"'sst2' has a standard test split.*drop --fold"):
        load_data("sst2", fold=1)


def test_user_options_rejected_for_registry_names() -> None:
    with pytest.raises(ConfigError, match="apply to user data files only"):
        load_data("mr", text_field="sentence")


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data directory .*nowhere does not exist"):
        load_data("mr", data_dir=tmp_path / "nowhere")


def test_mirror_file_with_wrong_checksum(tmp_path: Path) -> None:
    (tmp_path / "mr").mkdir()
    write_labelfirst(tmp_path / "mr" / "rt-polarity.all", 30, ("0", "1"))
    with pytest.raises(DataError, match=r"rt-polarity\.all: sha256 .* differs from the registered b8846c3b"):
        load_data("mr", data_dir=tmp_path)


def test_not_available_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"sst2/stsa\.binary\.train is not available locally.*downloading is off"):
        load_data("sst2", download=False)
    with pytest.raises(DataError, match=r"imdb/aclImdb_v1_labelled\.tar\.gz .*no download URL.*--data-dir"):
        load_data("imdb", data_dir=tmp_path)


def test_dataset_status_without_data(tmp_path: Path) -> None:
    rows = {row["name"]: row for row in dataset_status(tmp_path)}
    assert list(rows) == list(DATASETS)
    assert not any(row["available"] for row in rows.values())
    assert rows["mr"]["splits"] == ["all"] and rows["sst2"]["splits"] == ["train", "dev", "test"]
    assert "downloaded on first use" in rows["mr"]["where"]
    assert "local mirror" in rows["imdb"]["where"]


def test_user_file_cross_validation(tmp_path: Path) -> None:
    path = write_labelfirst(tmp_path / "mine.txt", 100, ("b", "a", "c", "a"))
    splits = load_data(str(path), fold=3, seed=5)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (81, 9, 10)
    assert splits.labels == ["a", "b", "c"]
    assert splits.split_note == "10-fold CV, fold 3 of 10 (seed 5); dev = 10% of train (seed 5)"
    assert splits.files == {str(path): sha256_file(path)}
    test_counts = Counter(e.label for e in splits.test)
    assert test_counts["a"] == 5 and test_counts["b"] + test_counts["c"] == 5  # stratified: 50 a, 25 b, 25 c
    other = load_data(str(path), fold=4, seed=5)
    assert not set(other.test) & set(splits.test)
    with pytest.raises(ConfigError, match="fold 10 is out of range"):
        load_data(str(path), fold=10)


def test_user_csv_with_test_and_dev_files(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("sentence,y\n" + "".join(f"s{i},{i % 3 + 1}\n" for i in range(30)))
    test = tmp_path / "test.csv"
    test.write_text("sentence,y\na,1\nb,3\n")
    dev = tmp_path / "dev.csv"
    dev.write_text("sentence,y\nc,2\n")
    options = {"text_field": "sentence", "label_field": "y"}
    splits = load_data(str(train), test_path=test, **options)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (27, 3, 2)
    assert splits.labels == ["1", "2", "3"]
    assert splits.split_note == "standard train/test split; dev = 10% of train (seed 13)"
    full = load_data(str(train), test_path=test, dev_path=dev, **options)
    assert (len(full.train), len(full.dev), len(full.test)) == (30, 1, 2)
    assert full.split_note == "standard train/dev/test split"
    assert set(full.files) == {str(train), str(dev), str(test)}
    with pytest.raises(ConfigError, match="a test file was given"):
        load_data(str(train), test_path=test, fold=0, **options)


def test_user_test_label_unknown_to_training(tmp_path: Path) -> None:
    train = write_labelfirst(tmp_path / "train.txt", 20)
    test = tmp_path / "test.txt"
    test.write_text("pos fine\nneutral meh\n")
    with pytest.raises(DataError, match=r"test\.txt:2: label 'neutral' does not occur in the training file"):
        load_data(str(train), test_path=test)



def test_user_multilabel_and_regression_files(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    rows = [{"text": f"t{i}", "label": [["b"], ["a", "b"], [], ["10", "a"]][i % 4]} for i in range(40)]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = load_data(str(train), task="multilabel")  # no test file: unstratified 10-fold CV
    assert splits.labels == ["10", "a", "b"]  # the sorted union of the training labels
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (32, 4, 4)
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"text": "x", "label": ["a"]}) + "\n" + json.dumps({"text": "y", "label": ["a", "c"]}))
    with pytest.raises(DataError, match=r"test\.jsonl:2: label 'c' does not occur in the training file"):
        load_data(str(train), test_path=test, task="multilabel")

    scores = tmp_path / "scores.txt"
    scores.write_text("".join(f"{i / 7:.4f} text number {i}\n" for i in range(50)))  # every score unique
    splits = load_data(str(scores), task="regression", fold=2)
    assert splits.labels == ["score"] and len(splits.test) == 5
    assert {e.label for e in splits.test} <= {f"{i / 7:.4f}" for i in range(50)}


def test_registry_tasks() -> None:
    with pytest.raises(ConfigError, match=r"'trec' labels are categories.*use mr, sst1, sst2"):
        load_data("trec", task="regression")
    with pytest.raises(ConfigError, match=r"no registered dataset is multi-label"):
        load_data("sst1", task="multilabel")


# ---------------------------------------------------------------------------------------------------------------
# The real datasets (skipped when no mirror is present).

MIRROR = Path(os.environ.get("WORDCONV_DATA") or Path(__file__).parents[2].parent / "shared" / "data")
needs_mirror = pytest.mark.skipif(not (MIRROR / "mr").is_dir(), reason=f"no data mirror at {MIRROR}")


@pytest.mark.integration
@needs_mirror
def test_registry_checksums_match_mirror() -> None:
    for spec in DATASETS.values():
        for data_file in spec.files.values():
            assert sha256_file(MIRROR / data_file.path) == data_file.sha256, data_file.path


@pytest.mark.integration
@needs_mirror
@pytest.mark.parametrize(
    ("name", "sizes", "labels"),
    [
        ("sst2", (6920, 872, 1821), ["negative", "positive"]),
        ("sst1", (8544, 1101, 2210), ["very negative", "negative", "neutral", "positive", "very positive"]),
    ],
)
def test_standard_splits(name: str, sizes: tuple[int, int, int], labels: list[str]) -> None:
    splits = load_data(name, data_dir=MIRROR)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == sizes
    assert splits.labels == labels
    assert {e.label for e in splits.test} == set(labels)


@pytest.mark.integration
@needs_mirror
def test_sst1_as_scores() -> None:
    splits = load_data("sst1", data_dir=MIRROR, task="regression")
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (8544, 1101, 2210)
    assert splits.labels == ["score"]
    assert {e.label for e in splits.test} == {"0", "1", "2", "3", "4"}  # the raw levels, not the class names

@pytest.mark.integration
@needs_mirror
def test_mr_ten_fold() -> None:
    splits = load_data("mr", data_dir=MIRROR)
    assert len(splits.train) + len(splits.dev) + len(splits.test) == 10662
    assert abs(len(splits.test) - 1066) <= 2
    assert Counter(e.label for e in splits.test)["positive"] in (533, 534)
    assert any("\u2026" in e.text for e in splits.train + splits.dev + splits.test)  # cp1252 byte 0x85


@pytest.mark.integration
@needs_mirror
def test_trec_and_agnews() -> None:
    trec = load_data("trec", data_dir=MIRROR)
    assert (len(trec.train) + len(trec.dev), len(trec.test)) == (5452, 500)
    assert trec.labels == ["DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"]
    assert Counter(e.label for e in trec.test)["DESC"] == 138
    agnews = load_data("agnews", data_dir=MIRROR)
    assert len(agnews.train) + len(agnews.dev) + len(agnews.test) == 7600
    assert Counter(e.label for e in agnews.test) == {"World": 190, "Sports": 190, "Business": 190, "Sci/Tech": 190}
    assert agnews.split_note.startswith("only test.csv is available: 10-fold CV")


@pytest.mark.integration
@needs_mirror
def test_imdb_archive() -> None:
    splits = load_data("imdb", data_dir=MIRROR)
    assert (len(splits.train) + len(splits.dev), len(splits.test)) == (25000, 25000)
    assert Counter(e.label for e in splits.test) == {"negative": 12500, "positive": 12500}
    assert splits.split_note == "standard train/test split; dev = 10% of train (seed 13)"


@pytest.mark.integration
@needs_mirror
def test_dataset_status_with_mirror() -> None:
    rows = {row["name"]: row for row in dataset_status(MIRROR)}
    assert all(row["available"] for row in rows.values())
    assert rows["mr"]["where"] == str(MIRROR / "mr")
