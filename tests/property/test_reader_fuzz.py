"""Fuzz tests of every reader: whatever bytes a file holds, a reader returns examples or raises DataError.

Each reader gets three kinds of input, written to a file with the reader's extension:

* random bytes;
* structured garbage: fragments of its own format (CSV quotes, JSON pieces, CoNLL tags, SQuAD keys, vector rows)
  glued to BOMs, NULs, invalid UTF-8, cp1252 bytes, CR/LF variants, over-long numbers and deep nesting;
* mutations of a valid file: bytes inserted, deleted, replaced, duplicated, the file cut short.

Any exception other than :class:`~wordconv.errors.DataError` (or a subclass) fails the test.  Settings are
explicit and deterministic (``derandomize=True``, no example database); ``WORDCONV_FUZZ_SCALE=N`` runs N times as
many examples, randomly (a longer fuzzing session).
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzzing import fuzz_settings

from wordconv.data.conll import read_conll
from wordconv.data.readers import (
    Example,
    iter_examples,
    read_examples,
    read_folder,
    read_text_bytes,
)
from wordconv.data.squad import read_qa_file, read_qa_jsonl, read_squad
from wordconv.embeddings.vectors import (
    detect_vector_format,
    iter_vectors,
    load_vectors,
    vector_dim,
)
from wordconv.errors import DataError



# Example counts (RELIABILITY.md lists them as fuzz iterations): per reader target (see TARGETS).
N_PER_TARGET = 60
N_DECODE = 300
N_STREAM_SAME = 100  # per format (labelfirst, jsonl)

# --------------------------------------------------------------------------------------------
# bytes

NOISE = [
    b"\xef\xbb\xbf", b"\x00", b"\xff\xfe", b"\xfe\xff", b"\xff", b"\xc3", b"\xc3\xa9", b"\xed\xa0\x80",  # BOM, NUL,
    b"\xf4\x90\x80\x80", b"\x93", b"\x94", b"\x85", b"\x80", b"\x81", b"\x8d", b"\x9d",  # bad UTF-8, cp1252
    b"\r", b"\n", b"\r\n", b"\n\n", b"\t", b" ", b"  ", b"\x0b", b"\x0c", b"\x1c", b"\xe2\x80\xa8", b"\xc2\x85",
    b"9" * 5000, b"-1", b"0", b"1", b"1.5", b"nan", b"NaN", b"inf", b"-Infinity", b"1e999", b"[" * 3000,
    b"a", b"caf\xc3\xa9", b"\xe6\x97\xa5\xe6\x9c\xac", b"\xf0\x9f\x98\x80", b'"', b"'", b"\\", b"#",
]  # fmt: skip
FRAGMENTS = {
    "text": [b"pos ", b"neg ", b"a good film", b",", b"\t", b"__label__1 "],
    "csv": [b"text,label\n", b"label,text\n", b'"', b'""', b",", b"\t", b"text\tlabel\n", b'"a, b"', b"pos", b"nan"],
    "json": [b'{"text": "a", "label": "b"}', b"{", b"}", b"[", b"]", b":", b",", b'"text"', b'"label"', b"null",
             b"true", b'["x", 1]', b'{"text": ["a"]}', b'"\\ud800"', b'"\\u0000"', b'{"text": 1e400}', b"{}"],
    "conll": [b"-DOCSTART- -X- O O\n", b"EU B-ORG\n", b"word O\n", b"I-PER", b"E-LOC", b"S-", b"B-", b"O", b"X",
              b"B-MISC\n", b"rejects VBZ I-VP O\n"],
    "squad": [b'{"data": [', b'{"title": "t", "paragraphs": [', b'{"context": "abc", "qas": [', b'"is_impossible": true',
              b'{"id": "1", "question": "q", "answers": [', b'{"text": "b", "answer_start": 1}', b"]}", b"]", b"}",
              b",", b'"id": 7', b'"answer_start": -1', b'"context": ""', b'"question": "q"', b'"answers": null'],
    "vectors": [b"3 2\n", b"0 3\n", b"2 0\n", b"1 " + b"9" * 30 + b"\n", b"the 0.1 0.2\n", b"a 1 2 3\n", b"the", b" ",
                b"nan", b"1e999", b"\x00\x00\x80\x3f", b"\x00\x00\xc0\x7f", b"\x1f\x8b", b"\n",
                b"w " + struct.pack("<2f", 1.0, 2.0)],
}  # fmt: skip


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


SQUAD = json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "Paris is in France.", "qas": [
    {"id": "q1", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}]}]}]}]}).encode()
SEEDS = {
    "text": b"pos a good film\nneg bad \xe2\x80\x99s\r\nneg,pos two\n",
    "csv": b'text,label\n"a, ""b""",pos\nc,neg\n',
    "tsv": b"text\tlabel\na\tpos\nb \"c\tneg\n",
    "json": b'{"text": "a", "label": "pos"}\n\n{"text": "b", "label": ["x", "y"]}\n{"text": "3", "label": 1}\n',
    "conll": b"-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\nPeter NNP B-PER\nS NNP E-PER\n",
    "squad": SQUAD,
    "qa": b'{"question": "Where?", "context": "in Paris", "answers": [{"text": "Paris", "answer_start": 3}]}\n'
          b'{"question": "Who?", "context": "me", "id": 4, "title": "t"}\n',
    "vectors": b"2 3\nthe 0.1 0.2 0.3\n. . . 1 2 3\n",
    "glove": b"the 0.1 0.2 0.3\na -1 2e-3 3\n",
    "binary": b"2 2\nthe " + struct.pack("<2f", 1.0, 2.0) + b"\na " + struct.pack("<2f", 3.0, 4.0) + b"\n",
    "tar": _tar({"train/pos/1.txt": b"good", "train/neg/2.txt": b"bad \x93x\x94", "train/unsup/3.txt": b"x"}),
}  # fmt: skip


@st.composite
def mutated(draw, seed: bytes, pool: list[bytes]) -> bytes:
    """``seed`` with a few random edits."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "truncate"]))
        if edit == "insert":
            data[at:at] = draw(st.sampled_from(pool) | st.binary(min_size=1, max_size=4))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif edit == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
        elif edit == "truncate":
            del data[at:]
    return bytes(data)


def garbage(kind: str, seed: str | None = None) -> st.SearchStrategy[bytes]:
    pool = NOISE + FRAGMENTS[kind]
    return st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from(pool) | st.binary(max_size=3), max_size=25).map(b"".join),
        mutated(SEEDS[seed or kind], pool),
    )


# --------------------------------------------------------------------------------------------
# readers


def _all(iterator) -> list:
    return list(iterator)


VOCAB = ["<pad>", "<unk>", "the", "The", "a", ".", "w", "x"]


@dataclass(frozen=True)
class Target:
    """One reader call: the file suffix, the call, and the inputs fed to it."""

    name: str
    suffix: str
    read: Callable[[Path], object]
    data: st.SearchStrategy[bytes]


def _vector_reads(path: Path) -> object:
    detect_vector_format(path)
    vector_dim(path)
    return load_vectors(path, VOCAB, extra=2, casefold_file=True)


def _compress(data: bytes, cut: int) -> bytes:
    compressed = gzip.compress(data, mtime=0)
    return compressed[: len(compressed) - cut]


def _gzipped(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """gzip-compressed data, whole or cut short."""
    return st.builds(_compress, data, st.sampled_from([0, 0, 1, 4, 8]) | st.integers(0, 40))


TARGETS = [
    Target("labelfirst", ".txt", read_examples, garbage("text")),
    Target("labelfirst-unlabelled", ".txt", lambda p: read_examples(p, require_labels=False), garbage("text")),
    Target("labelfirst-multilabel", ".txt", lambda p: read_examples(p, multilabel=True), garbage("text")),
    Target("labelfirst-utf8", ".txt", lambda p: read_examples(p, encoding="utf-8"), garbage("text")),
    Target("labelfirst-stream", ".txt", lambda p: _all(iter_examples(p)), garbage("text")),
    Target("csv", ".csv", read_examples, garbage("csv")),
    Target("csv-columns", ".csv", lambda p: read_examples(p, text_field="2+3", label_field="1"), garbage("csv")),
    Target("csv-multilabel", ".csv", lambda p: read_examples(p, multilabel=True, require_labels=False),
           garbage("csv")),
    Target("tsv", ".tsv", read_examples, garbage("csv", "tsv")),
    Target("jsonl", ".jsonl", read_examples, garbage("json")),
    Target("jsonl-multilabel", ".jsonl", lambda p: read_examples(p, multilabel=True, require_labels=False),
           garbage("json")),
    Target("jsonl-stream", ".jsonl", lambda p: _all(iter_examples(p, multilabel=True)), garbage("json")),
    Target("conll", ".conll", read_examples, garbage("conll")),
    Target("conll-bioes-unlabelled", ".bio", lambda p: read_conll(p, scheme="bioes", require_tags=False),
           garbage("conll")),
    Target("conll-columns", ".conll", lambda p: read_conll(p, word_column=1, tag_column=2), garbage("conll")),
    Target("squad", ".json", read_squad, garbage("squad")),
    Target("squad-answers", ".json", lambda p: read_qa_file(p, require_answers=True), garbage("squad")),
    Target("qa-jsonl", ".jsonl", read_qa_jsonl, garbage("squad", "qa")),
    Target("qa-jsonl-answers", ".ndjson", lambda p: read_qa_file(p, require_answers=True), garbage("squad", "qa")),
    Target("folder-tar", ".tar.gz", read_folder, st.one_of(
        st.binary(max_size=300), _gzipped(mutated(SEEDS["tar"], NOISE)), _gzipped(st.binary(max_size=600)))),
    Target("vectors-text", ".vec", _vector_reads, garbage("vectors")),
    Target("vectors-glove", ".txt", lambda p: _all(iter_vectors(p, "glove")), garbage("vectors", "glove")),
    Target("vectors-binary", ".bin", _vector_reads, garbage("vectors", "binary")),
    Target("vectors-binary-iter", ".bin", lambda p: _all(iter_vectors(p)), garbage("vectors", "binary")),
    Target("vectors-gzip", ".vec.gz", _vector_reads, _gzipped(garbage("vectors"))),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the whole module: every example overwrites its target's file."""
    return tmp_path_factory.mktemp("fuzz")


BY_NAME = {target.name: target for target in TARGETS}


@pytest.mark.parametrize("name", list(BY_NAME))
@fuzz_settings(N_PER_TARGET)
@given(data=st.data())
def test_reader_returns_examples_or_raises_data_error(workdir: Path, name: str, data: st.DataObject) -> None:
    target = BY_NAME[name]
    content = data.draw(target.data, label="content")
    path = workdir / f"{target.name}{target.suffix}"
    path.write_bytes(content)
    try:
        result = target.read(path)
    except DataError:
        return
    if isinstance(result, list):
        assert result, "a reader returned no examples instead of raising DataError"
        for item in result:
            if isinstance(item, Example) and item.tokens is not None:  # a CoNLL sentence: words split on " " and tab
                assert item.tokens and all(w and " " not in w and "\t" not in w for w in item.tokens)
                assert item.text == " ".join(item.tokens) and item.source
                assert item.tags is None or len(item.tags) == len(item.tokens)
            elif isinstance(item, Example):
                assert isinstance(item.text, str) and item.text.strip() and item.source


# Regressions found by the fuzzer: each of these used to escape as a non-DataError.
REGRESSIONS = [
    ("jsonl", b"[" * 100_000),  # RecursionError from the JSON parser
    ("jsonl", b'{"text": ' + b"1" * 5000 + b', "label": "x"}'),  # ValueError: int over 4300 digits
    ("jsonl-stream", b'{"text": "a", "label": "b"}\n' + b"[" * 100_000),
    ("jsonl-stream", b'{"text": ' + b"1" * 5000 + b', "label": "x"}'),
    ("squad", b"[" * 100_000),
    ("squad", b'{"data": ' + b"1" * 5000 + b"}"),
    ("qa-jsonl", b'{"question": ' + b"[" * 100_000),
    ("qa-jsonl", b'{"question": "q", "context": "c", "id": ' + b"1" * 5000 + b"}"),
    ("folder-tar", b"\x1f\x8b\x08"),  # TypeError from tarfile on a gzip header cut short
    ("vectors-text", b"1" * 5000 + b" 3\nx 1 2 3\n"),  # ValueError: header number over 4300 digits
    ("vectors-text", b"2 " + b"1" * 5000 + b"\nx 1 2 3\n"),
]


@pytest.mark.parametrize(("name", "content"), REGRESSIONS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(REGRESSIONS)])
def test_regressions_raise_data_error(workdir: Path, name: str, content: bytes) -> None:
    target = BY_NAME[name]
    path = workdir / f"regression-{target.name}{target.suffix}"
    path.write_bytes(content)
    with pytest.raises(DataError):
        target.read(path)


@fuzz_settings(N_DECODE)
@given(st.binary(max_size=200) | st.lists(st.sampled_from(NOISE), max_size=12).map(b"".join),
       st.none() | st.sampled_from(["utf-8", "cp1252", "latin-1", "utf-16", "ascii", "no-such-codec"]))
@example(b"\xef\xbb\xbfabc", None)
def test_read_text_bytes_decodes_or_raises_data_error(data: bytes, encoding: str | None) -> None:
    try:
        text = read_text_bytes(data, "f.txt", encoding)
    except DataError:
        assert b"\x00" in data or encoding is not None
        return
    assert b"\x00" not in data
    if encoding is None:
        try:
            assert text == data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            assert len(text) == len(data)  # one character per byte: cp1252 or Latin-1



@pytest.mark.parametrize(("fmt", "suffix", "kind"), [("labelfirst", ".txt", "text"), ("jsonl", ".jsonl", "json")])
@fuzz_settings(N_STREAM_SAME)
@given(data=st.data())
def test_streaming_reads_utf8_like_read_examples(workdir: Path, fmt: str, suffix: str, kind: str,
                                                 data: st.DataObject) -> None:
    """On UTF-8 files (where decoding line by line changes nothing), iter_examples gives read_examples's examples,
    and fails (with a DataError) exactly where read_examples does."""
    content = data.draw(garbage(kind), label="content")
    multilabel = data.draw(st.booleans(), label="multilabel")
    path = workdir / f"stream-{fmt}{suffix}"
    path.write_bytes(content)
    results = []
    for read in (read_examples, lambda *args, **kw: list(iter_examples(*args, **kw))):
        try:
            results.append(read(path, fmt, multilabel=multilabel, encoding="utf-8"))
        except DataError:
            results.append(DataError)
    assert results[0] == results[1]


@pytest.mark.parametrize("multilabel", [False, True])
def test_streaming_refuses_a_number_as_text_like_read_examples(workdir: Path, multilabel: bool) -> None:
    """Found by the fuzzer: read_examples refused ``{"text": 3}`` (a number where the text should be), while
    iter_examples read it as the text "3"."""
    path = workdir / "number-text.jsonl"
    path.write_bytes(b'{"text": "a", "label": "x"}\n{"text": 3, "label": 1}\n')
    with pytest.raises(DataError, match=r":2: field 'text' is the number 3"):
        read_examples(path, multilabel=multilabel)
    with pytest.raises(DataError, match=r":2: field 'text' is the number 3"):
        list(iter_examples(path, multilabel=multilabel))
