"""The vocabulary: build order, lookup, JSON and file round trips, damaged files."""

from __future__ import annotations

import json

import pytest
import torch

from wordconv.data.vocab import PAD, UNK, Vocab
from wordconv.errors import ConfigError, DataError

DATA = [
    ["the", "cat", "sat", "on", "the", "mat"],
    ["the", "dog", "sat"],
    ["a", "cat", "and", "a", "dog", "<pad>", "<unk>"],
]
# counts: the 3, cat 2, sat 2, dog 2, a 2, on 1, mat 1, and 1 (specials not counted)


def test_build_orders_by_count_then_alphabetically() -> None:
    v = Vocab.build(DATA)
    assert v.itos == [PAD, UNK, "the", "a", "cat", "dog", "sat", "and", "mat", "on"]
    assert v.counts == {"the": 3, "a": 2, "cat": 2, "dog": 2, "sat": 2, "and": 1, "mat": 1, "on": 1}
    assert v.stoi == {t: i for i, t in enumerate(v.itos)}
    assert (v.pad_id, v.unk_id) == (0, 1) and len(v) == 10


def test_min_freq_and_max_size() -> None:
    assert Vocab.build(DATA, min_freq=2).itos == [PAD, UNK, "the", "a", "cat", "dog", "sat"]
    assert Vocab.build(DATA, min_freq=3).itos == [PAD, UNK, "the"]
    assert Vocab.build(DATA, max_size=3).itos == [PAD, UNK, "the", "a", "cat"]
    assert Vocab.build(DATA, min_freq=2, max_size=100).itos[-1] == "sat"
    assert Vocab.build(DATA, max_size=0).itos == [PAD, UNK]
    assert Vocab.build([]).itos == [PAD, UNK]
    with pytest.raises(ConfigError, match="min_freq"):
        Vocab.build(DATA, min_freq=0)
    with pytest.raises(ConfigError, match="max_vocab"):
        Vocab.build(DATA, max_size=-1)


def test_lookup_unknown_is_unk() -> None:
    v = Vocab.build(DATA)
    assert v.index("cat") == 4 and v.index("zebra") == v.unk_id == 1
    assert "cat" in v and "zebra" not in v
    assert v.encode(["the", "zebra", "mat"]) == [2, 1, 8]
    assert v.decode([2, 1, 8]) == ["the", UNK, "mat"]
    assert v.decode(torch.tensor([0, 3])) == [PAD, "a"]
    for bad in ([10], [-1], ["2"]):
        with pytest.raises(DataError, match="not in the vocabulary"):
            v.decode(bad)


def test_constructor_validates() -> None:
    assert Vocab([PAD, UNK, "x"]).counts == {}
    for bad in ([], [UNK, PAD], ["x", "y"], [PAD]):
        with pytest.raises(DataError, match="must start with"):
            Vocab(bad)
    with pytest.raises(DataError, match="'x' more than once"):
        Vocab([PAD, UNK, "x", "y", "x"])
    with pytest.raises(DataError, match="non-empty string"):
        Vocab([PAD, UNK, ""])
    with pytest.raises(DataError, match="not a word"):
        Vocab([PAD, UNK, "x"], counts={"y": 1})


def test_json_round_trip() -> None:
    v = Vocab.build(DATA)
    data = v.to_json()
    assert data["itos"] == v.itos and data["counts"][:3] == [0, 0, 3]
    assert Vocab.from_json(json.loads(json.dumps(data))) == v
    plain = Vocab([PAD, UNK, "x"])
    assert plain.to_json() == {"itos": [PAD, UNK, "x"]}
    assert Vocab.from_json(plain.to_json()) == plain


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([PAD, UNK], "JSON object"),
        ({"counts": [0, 0]}, '"itos"'),
        ({"itos": "abc"}, '"itos"'),
        ({"itos": [PAD, UNK, 3]}, '"itos"'),
        ({"itos": [UNK, PAD]}, '"itos"'),
        ({"itos": [PAD, UNK, "a"], "counts": [0, 0]}, '"counts"'),
        ({"itos": [PAD, UNK, "a"], "counts": [0, 0, -1]}, '"counts"'),
        ({"itos": [PAD, UNK, "a"], "counts": [0, 0, "1"]}, '"counts"'),
        ({"itos": [PAD, UNK], "extra": 1}, "'extra'"),
    ],
)
def test_from_json_names_the_bad_field(data, field: str) -> None:
    with pytest.raises(DataError, match=field):
        Vocab.from_json(data)


def test_save_load_round_trip(tmp_path) -> None:
    v = Vocab.build([["héllo", "日本", "héllo", "x y"]])
    path = tmp_path / "sub" / "vocab.json"
    v.save(path)
    loaded = Vocab.load(path)
    assert loaded == v
    assert loaded.itos == v.itos and loaded.counts == v.counts and loaded.stoi == v.stoi
    # overwriting is atomic: no temp files are left behind
    Vocab([PAD, UNK, "z"]).save(path)
    assert Vocab.load(str(path)).itos == [PAD, UNK, "z"]
    assert [p.name for p in path.parent.iterdir()] == ["vocab.json"]


def test_missing_and_corrupt_files_are_data_errors(tmp_path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(DataError, match="missing.json.*does not exist"):
        Vocab.load(missing)
    path = tmp_path / "vocab.json"
    Vocab.build(DATA).save(path)
    path.write_text(path.read_text()[:25], encoding="utf-8")  # truncated write
    with pytest.raises(DataError, match="vocab.json.*not valid JSON"):
        Vocab.load(path)
    path.write_text('{"itos": ["a", "b"]}', encoding="utf-8")
    with pytest.raises(DataError, match='vocab.json.*"itos"'):
        Vocab.load(path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="vocab.json"):
        Vocab.load(path)
