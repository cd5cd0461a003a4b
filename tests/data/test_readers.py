"""Tests of wordconv.data.readers on tiny files built in tmp_path."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from wordconv.data.readers import (
    Example,
    detect_format,
    read_examples,
    read_folder,
    read_folder_splits,
    read_text_bytes,
)
from wordconv.errors import DataError


def write(path: Path, data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to ``path`` and return it."""
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.TSV", "tsv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.tar.gz", "folder"),
        ("a.tgz", "folder"),
        ("rt-polarity.all", "labelfirst"),
        ("a.txt", "labelfirst"),
    ],
)
def test_detect_format_by_suffix(name: str, expected: str) -> None:
    assert detect_format(name) == expected


def test_detect_format_directory_is_folder(tmp_path: Path) -> None:
    assert detect_format(tmp_path) == "folder"


def test_labelfirst_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", "1 a good film \n0 bad\n\n2   tabs\tand  spaces \n")
    assert read_examples(path) == [
        Example("a good film", "1", f"{path}:1"),
        Example("bad", "0", f"{path}:2"),
        Example("tabs\tand  spaces", "2", f"{path}:4"),
    ]


def test_labelfirst_unlabelled_keeps_whole_line(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", "hello world\nsingle\n")
    examples = read_examples(path, require_labels=False)
    assert [(e.text, e.label) for e in examples] == [("hello world", None), ("single", None)]


def test_cp1252_byte_0x85_stays_inside_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "mr.all", b"0 wait \x85 what \x93quoted\x94\n1 second line\n")
    examples = read_examples(path)
    assert len(examples) == 2
    assert examples[0].text == "wait \u2026 what \u201cquoted\u201d"
    assert examples[1].source.endswith(":2")


def test_only_newline_ends_a_line(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", "1 form\x0cfeed, group\x1dsep, line\u2028sep, nel\x85end\n0 next\n")
    examples = read_examples(path)
    assert [e.label for e in examples] == ["1", "0"]
    assert examples[0].text == "form\x0cfeed, group\x1dsep, line\u2028sep, nel\x85end"


def test_latin1_fallback_for_bytes_undefined_in_cp1252() -> None:
    assert read_text_bytes(b"caf\xe9 \x81", "x") == "caf\xe9 \x81"


def test_utf8_bom_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", b"\xef\xbb\xbf1 caf\xc3\xa9\r\n0 b\r\n")
    assert [(e.label, e.text) for e in read_examples(path)] == [("1", "caf\u00e9"), ("0", "b")]


def test_explicit_encoding_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", b"1 ok\n0 caf\xe9\n")
    with pytest.raises(DataError, match=r"d\.txt:2: byte 0xe9 is not valid utf-8"):
        read_examples(path, encoding="utf-8")


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.txt", b"")
    with pytest.raises(DataError, match=r"empty\.txt: the file is empty"):
        read_examples(path)


def test_blank_lines_only(tmp_path: Path) -> None:
    path = write(tmp_path / "blank.txt", "\n  \n\r\n")
    with pytest.raises(DataError, match=r"blank\.txt: contains only blank lines"):
        read_examples(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.txt: no such file"):
        read_examples(tmp_path / "nope.txt")


def test_directory_where_file_expected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"is a directory.*format 'folder'"):
        read_examples(tmp_path, "labelfirst")


def test_line_without_text(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", "1 fine\n0\n")
    with pytest.raises(DataError, match=r"d\.txt:2: the line has a label \('0'\) but no text"):
        read_examples(path)


def test_binary_file(tmp_path: Path) -> None:
    path = write(tmp_path / "model.bin", b"PK\x03\x04" + b"\x00" * 64 + b"\x12\x34")
    with pytest.raises(DataError, match=r"model\.bin: contains NUL bytes"):
        read_examples(path)


def test_unknown_format(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", "1 a\n")
    with pytest.raises(DataError, match="unknown format 'xml'"):
        read_examples(path, "xml")


def test_csv_round_trip_with_header_and_quotes(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'id,text,label\n1,"hello, ""world""",pos\n2,bye,neg\n')
    assert read_examples(path) == [
        Example('hello, "world"', "pos", f"{path}:2"),
        Example("bye", "neg", f"{path}:3"),
    ]


def test_csv_named_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "sentence,y\nhi,1\n")
    assert read_examples(path, text_field="sentence", label_field="y") == [Example("hi", "1", f"{path}:2")]


def test_csv_missing_column_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "sentence,y\nhi,1\n")
    with pytest.raises(DataError, match=r"no column 'text'.*\['sentence', 'y'\].*--text-field/--label-field"):
        read_examples(path)


def test_csv_missing_label_column_allowed_when_labels_not_required(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text\nhi\n")
    assert read_examples(path, require_labels=False) == [Example("hi", None, f"{path}:2")]


def test_csv_headerless_column_numbers_ag_news_style(tmp_path: Path) -> None:
    path = write(tmp_path / "ag.csv", '"3","Title one","Desc, one"\n"1","Title two",""\n')
    examples = read_examples(path, text_field="2+3", label_field="1")
    assert examples == [
        Example("Title one Desc, one", "3", f"{path}:1"),
        Example("Title two", "1", f"{path}:2"),
    ]


def test_csv_quoted_newline_and_line_where_row_ends(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'text,label\n"two\nlines",a\n"",b\n')
    with pytest.raises(DataError, match=r"d\.csv:4: the text is empty"):
        read_examples(path)
    path.write_text('text,label\n"two\nlines",a\n')
    assert read_examples(path) == [Example("two\nlines", "a", f"{path}:3")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,label\nhi,\n", r"d\.csv:2: the label is empty or NaN"),
        ("text,label\nNaN,1\n", r"d\.csv:2: the text is empty or NaN"),
        ("text,label\nhi,1,extra\n", r"d\.csv:2: the row has 3 fields but the header has 2"),
        ('text,label\n"unclosed,1\n', r"d\.csv:\d+: cannot parse the CSV row"),
    ],
)
def test_csv_bad_rows(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path / "d.csv", content)
    with pytest.raises(DataError, match=message):
        read_examples(path)


def test_csv_column_number_past_row_end(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "1,a\n2\n")
    with pytest.raises(DataError, match=r"d\.csv:2: the row has 1 fields but column 2"):
        read_examples(path, text_field="2", label_field="1")


def test_csv_mixed_name_and_number_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\nhi,1\n")
    with pytest.raises(DataError, match="both as column names"):
        read_examples(path, text_field="text", label_field="2")


def test_tsv_round_trip_keeps_bare_quotes(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", 'sentence\tlabel\nthe "best" film\t1\n')
    assert read_examples(path, text_field="sentence") == [Example('the "best" film', "1", f"{path}:2")]


def test_jsonl_round_trip(tmp_path: Path) -> None:
    lines = [json.dumps({"text": "héllo", "label": "a"}), "", json.dumps({"text": "x", "label": 3, "id": 9})]
    path = write(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    assert read_examples(path) == [Example("héllo", "a", f"{path}:1"), Example("x", "3", f"{path}:3")]


def test_jsonl_malformed_line_number(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": "b"}\n\n{"text": "a", label}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:3: malformed JSON"):
        read_examples(path)


def test_jsonl_missing_field_lists_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"sentence": "a", "label": "b"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:1: no field 'text'.*\['label', 'sentence'\]"):
        read_examples(path)


def test_jsonl_non_string_text(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"text": null, "label": "b"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:1: field 'text' is None"):
        read_examples(path)



# ---------------------------------------------------------------------------------------------------------------
# Multi-label examples (task multilabel) and numeric labels (task regression).


def test_jsonl_multilabel_lists_and_strings(tmp_path: Path) -> None:
    lines = [{"text": "goal and pizza", "label": ["sport", "food"]}, {"text": "nothing", "label": []},
             {"text": "soup", "label": "food"}, {"text": "team", "label": "sport, food,,sport"},
             {"text": "blank", "label": ""}, {"text": "num", "label": [3]}]
    path = write(tmp_path / "d.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    examples = read_examples(path, multilabel=True)
    assert [e.labels for e in examples] == [("sport", "food"), (), ("food",), ("sport", "food"), (), ("3",)]
    assert all(e.label is None for e in examples) and examples[1].source == f"{path}:2"
    bad = write(tmp_path / "bad.jsonl", json.dumps({"text": "x", "label": ["a", None]}) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:1: field 'label' holds None"):
        read_examples(bad, multilabel=True)
    with pytest.raises(DataError, match=r"bad\.jsonl:1: field 'label' is \['a', None\]"):
        read_examples(bad)  # a list is no single label


def test_csv_and_labelfirst_multilabel_split_on_separator(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'text,label\ngoal and pizza,"sport,food"\nnothing,\nsoup,food\n')
    assert [(e.text, e.labels) for e in read_examples(path, multilabel=True)] == [
        ("goal and pizza", ("sport", "food")), ("nothing", ()), ("soup", ("food",))]
    # single-label reading is unchanged: "sport,food" is one label and an empty label an error
    with pytest.raises(DataError, match=r"d\.csv:3: the label is empty"):
        read_examples(path)
    lf = write(tmp_path / "d.txt", "sport;food goal and pizza\n; nothing at all\n")
    assert [(e.text, e.labels) for e in read_examples(lf, multilabel=True, label_separator=";")] == [
        ("goal and pizza", ("sport", "food")), ("nothing at all", ())]
    assert read_examples(lf)[0] == Example("goal and pizza", "sport;food", f"{lf}:1")


def test_jsonl_numeric_labels_are_kept_as_text(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", json.dumps({"text": "x", "label": 0.75}) + "\n")
    assert read_examples(path) == [Example("x", "0.75", f"{path}:1")]


def make_tree(root: Path) -> None:
    """An aclImdb-like tree under ``root``: train/test with pos/neg, plus files that are not examples."""
    for split in ("train", "test"):
        for label, texts in (("pos", ["great", "fine"]), ("neg", ["awful"])):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for index, text in enumerate(texts):
                (folder / f"{index}_7.txt").write_text(f"{split} {text}<br />", encoding="utf-8")
            (folder / "notes.md").write_text("not an example")
        (root / "aclImdb" / split / f"urls_{split}.txt").write_text("http://x")
    (root / "aclImdb" / "train" / "unsup").mkdir()
    (root / "aclImdb" / "train" / "unsup" / "0_0.txt").write_text("unlabelled")


def test_folder_from_directory(tmp_path: Path) -> None:
    make_tree(tmp_path)
    examples = read_folder(tmp_path, "aclImdb/train")
    assert [(e.label, e.text) for e in examples] == [
        ("neg", "train awful<br />"),
        ("pos", "train great<br />"),
        ("pos", "train fine<br />"),
    ]
    assert examples[0].source == str(tmp_path / "aclImdb/train/neg/0_7.txt")
    assert read_examples(tmp_path / "aclImdb" / "test") == read_folder(tmp_path / "aclImdb", "test")


def test_folder_from_tar_gz_both_splits_in_one_pass(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    archive = tmp_path / "imdb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree / "aclImdb", arcname="aclImdb")
    splits = read_folder_splits(archive, {"train": "aclImdb/train", "test": "aclImdb/test/"})
    assert {split: [(e.label, e.text) for e in examples] for split, examples in splits.items()} == {
        "train": [("neg", "train awful<br />"), ("pos", "train great<br />"), ("pos", "train fine<br />")],
        "test": [("neg", "test awful<br />"), ("pos", "test great<br />"), ("pos", "test fine<br />")],
    }
    assert splits["test"][0].source == f"{archive}:aclImdb/test/neg/0_7.txt"


def test_folder_without_examples(tmp_path: Path) -> None:
    make_tree(tmp_path)
    with pytest.raises(DataError, match=r"no examples found.*<label>/<name>\.txt"):
        read_folder(tmp_path, "aclImdb/train/pos")


@pytest.mark.parametrize(("subdir", "folder"), [("aclImdb", "'test'"), (None, "'aclImdb'")])
def test_folder_root_one_level_too_high(tmp_path: Path, subdir: str | None, folder: str) -> None:
    make_tree(tmp_path)
    (tmp_path / "aclImdb" / "imdbEr.txt").write_text("0.1")
    with pytest.raises(DataError, match=f"folder {folder} holds .txt files and subfolders"):
        read_folder(tmp_path, subdir)


def test_folder_empty_example_file(tmp_path: Path) -> None:
    (tmp_path / "pos").mkdir()
    (tmp_path / "pos" / "a.txt").write_text("  \n")
    with pytest.raises(DataError, match=r"a\.txt: the file is empty"):
        read_folder(tmp_path)


def test_damaged_archive(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"x" * 5000
        info = tarfile.TarInfo("pos/a.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    archive = write(tmp_path / "cut.tar.gz", buffer.getvalue()[:-40])
    with pytest.raises(DataError, match=r"cut\.tar\.gz: cannot read the archive.*fetch it again"):
        read_folder(archive)
