"""Readers for labelled text files: label-first lines, CSV/TSV, JSONL and folder-per-class trees.

Every reader returns a list of :class:`Example` and raises :class:`~wordconv.errors.DataError` for anything it
cannot read, naming the file (and line or member) and saying how to fix it.  Nothing is skipped silently: blank
lines are the only thing passed over, and they carry no example.

Decoding follows the datasets in the mirror: UTF-8 (a byte-order mark is dropped), else Windows-1252 (MR), else
Latin-1.  Lines are split on ``\\n`` only, with a trailing ``\\r`` removed, because ``str.splitlines()`` also
breaks on U+0085, which Windows-1252 files such as MR contain as byte 0x85.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from wordconv.errors import DataError

log = logging.getLogger(__name__)

FORMATS = ("labelfirst", "csv", "tsv", "jsonl", "folder", "conll")

_FIELD_HINT = "pass --text-field/--label-field"
_COLUMN_NUMBERS = re.compile(r"^\d+(\+\d+)*$")
_MISSING_CELLS = {"", "nan"}
_SKIPPED_CLASS_DIRS = {"unsup"}
_CONLL_SUFFIXES = (".conll", ".bio", ".iob", ".iob2", ".bioes")

T = TypeVar("T")


@dataclass(frozen=True)
class Example:
    """One text with its raw label as written in the file (``None`` for unlabelled text).

    ``source`` says where the example came from (``"path:line"`` or ``"archive.tar.gz:member"``) so that later
    errors can point at it.  A multi-label example (read with ``multilabel=True``) has ``label=None`` and its
    labels in ``labels``, possibly none; single-label examples leave ``labels`` at None.

    A tagged sentence (task ``ner``, read from a CoNLL file) has its words in ``tokens``, one tag per word in
    ``tags`` (IOB2 after reading; ``None`` when unlabelled) and ``text`` = the words joined by single spaces.

    A question (task ``qa``, read from SQuAD-format JSON) has the paragraph in ``text``, the question in
    ``question``, its gold answers in ``answers`` as (answer text, character start in ``text``) pairs (none
    when unlabelled), the question's id in ``qid`` and the article's title in ``title``.
    """

    text: str
    label: str | None = None
    source: str = ""
    labels: tuple[str, ...] | None = None
    tokens: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    question: str | None = None
    answers: tuple[tuple[str, int], ...] | None = None
    qid: str | None = None
    title: str | None = None


def detect_format(path: str | Path) -> str:
    """Guess a reader format from a path: by suffix (``.conll``/``.bio``/``.iob``/``.iob2``/``.bioes``: ``conll``),
    a directory or tarball is ``folder``, else ``labelfirst``."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir() or name.endswith((".tar.gz", ".tgz")):
        return "folder"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".tsv":
        return "tsv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in _CONLL_SUFFIXES:
        return "conll"
    return "labelfirst"


def read_text_bytes(data: bytes, source: str, encoding: str | None = None) -> str:
    """Decode file contents: ``encoding`` if given, else UTF-8 (BOM dropped), else cp1252, else Latin-1.

    Raises DataError for data with NUL bytes (binary or UTF-16 files) and for bytes that the explicitly
    requested ``encoding`` cannot decode.
    """
    if b"\x00" in data:
        raise DataError(
            f"{source}: contains NUL bytes, so it is a binary file or UTF-16 text, not a text file wordconv can "
            f"read. Pass the plain-text data file, or convert it to UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)."
        )
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise DataError(
                f"{source}:{line}: byte {data[err.start]:#04x} is not valid {encoding}. "
                f"Pass the file's real encoding, or leave the encoding unset to detect UTF-8/cp1252/Latin-1."
            ) from None
        except LookupError:
            raise DataError(
                f"{source}: unknown encoding {encoding!r}; use a Python codec name such as 'utf-8' or 'cp1252'."
            ) from None
        return text.removeprefix("\ufeff")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
        log.info("%s: not valid UTF-8, decoded as cp1252", source)
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        log.info("%s: not valid UTF-8 or cp1252, decoded as Latin-1", source)
    return text


def read_examples(
    path: str | Path,
    format: str | None = None,
    *,
    text_field: str = "text",
    label_field: str = "label",
    encoding: str | None = None,
    require_labels: bool = True,
    multilabel: bool = False,
    label_separator: str = ",",
) -> list[Example]:
    """Read every example of a data file (or folder-per-class tree) in one of :data:`FORMATS`.

    ``format`` defaults to :func:`detect_format`.  ``text_field``/``label_field`` name the CSV/TSV columns or
    JSON keys; for CSV/TSV they may also be 1-based column numbers (``"1"``, ``"2+3"`` joins columns 2 and 3 with
    a space), and then the file has no header row.  With ``require_labels=False`` a label-first file is read as
    one unlabelled text per line, and a missing label column/key gives ``label=None``.

    With ``multilabel=True`` each example carries a set of labels in ``Example.labels``: a JSONL label may be a
    list of strings (``[]``: none), and any label string is split on ``label_separator`` (``"a,b"``), with
    blanks around labels, empty parts and repeats dropped.  No labels at all are written as an empty CSV/TSV
    label cell, an empty JSONL list or string, or a lone separator as the first word of a label-first line.
    """
    path = Path(path)
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise DataError(f"{path}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if fmt == "conll":
        from wordconv.data.conll import read_conll  # conll imports this module

        return read_conll(path, encoding=encoding, require_tags=require_labels)
    if fmt == "folder":
        examples = read_folder(path, encoding=encoding)
        return [_split_labels(e, label_separator) for e in examples] if multilabel else examples
    text = read_text_bytes(_read_file_bytes(path), str(path), encoding)
    if fmt == "labelfirst":
        examples = _parse_labelfirst(text, path, require_labels)
    elif fmt == "jsonl":
        examples = _parse_jsonl(text, path, text_field, label_field, require_labels, multilabel)
    else:
        examples = _parse_csv(text, path, "\t" if fmt == "tsv" else ",", text_field, label_field, require_labels,
                              allow_empty_label=multilabel)
    if not examples:
        raise DataError(f"{path}: contains only blank lines, no examples. Pass the right file or fill it.")
    return [_split_labels(e, label_separator) for e in examples] if multilabel else examples


def _split_labels(example: Example, separator: str) -> Example:
    """A multi-label example: its label string split on ``separator`` (unlabelled text stays unlabelled)."""
    if example.labels is not None or example.label is None:
        return example
    return Example(example.text, None, example.source, _unique(example.label.split(separator)))


def _unique(labels: list[str]) -> tuple[str, ...]:
    """Stripped, non-empty labels in first-seen order, each once."""
    return tuple(dict.fromkeys(lab.strip() for lab in labels if lab.strip()))


def _read_file_bytes(path: Path) -> bytes:
    """The bytes of a data file, with DataErrors for a missing path, a directory and an empty file."""
    if path.is_dir():
        raise DataError(
            f"{path}: is a directory, but a data file was expected. Pass a file, or use format 'folder' "
            f"for a folder-per-class tree (<dir>/<label>/*.txt)."
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such file. Check the path (relative paths start at the current directory)."
        ) from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror}). Check its permissions.") from None
    if not data:
        raise DataError(f"{path}: the file is empty. Pass a file with one example per line.")
    return data


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) pairs, split on ``\\n`` only, with a trailing ``\\r`` removed."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.removesuffix("\r")


def json_objects(text: str, path: str | Path, example: str = '{"text": "..."}') -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file; DataError naming ``path:line`` for a
    line that is not valid JSON or not an object (``example``: what a line should look like)."""
    for number, line in _lines(text):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: malformed JSON ({err.msg} at column {err.colno}); each line must be "
                            f"one JSON object such as {example}: fix the line") from None
        except (ValueError, RecursionError) as err:  # a number over Python's 4300-digit limit, nesting too deep
            raise DataError(f"{path}:{number}: cannot parse the JSON ({err}); each line must be one JSON object such "
                            f"as {example}: fix the line") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: a JSON {type(record).__name__}, not an object; each line must be one "
                            f"JSON object such as {example}: fix the line")
        yield number, record


def _parse_labelfirst(text: str, path: Path, require_labels: bool) -> list[Example]:
    """``<label> <text>`` lines; with ``require_labels=False`` each whole line is an unlabelled text."""
    examples = []
    for number, line in _lines(text):
        if not line.strip():
            continue
        source = f"{path}:{number}"
        if not require_labels:
            examples.append(Example(line.strip(), None, source))
            continue
        parts = line.split(maxsplit=1)
        if len(parts) < 2:
            raise DataError(
                f"{source}: the line has a label ({parts[0]!r}) but no text after it. Every line must be "
                f"'<label> <text>'; fix or delete the line."
            )
        examples.append(Example(parts[1].strip(), parts[0], source))
    return examples


def _parse_jsonl(
    text: str, path: Path, text_field: str, label_field: str, require_labels: bool, multilabel: bool = False
) -> list[Example]:
    """One JSON object per line with the text under ``text_field`` and the label under ``label_field``
    (with ``multilabel``, also a list of labels, or an empty string: no labels)."""
    examples = []
    for number, record in json_objects(text, path, f'{{"{text_field}": "...", "{label_field}": "..."}}'):
        source = f"{path}:{number}"
        if isinstance(record.get(text_field), (int, float)) and not isinstance(record.get(text_field), bool):
            raise DataError(f"{source}: field {text_field!r} is the number {record[text_field]!r}, not a text: does "
                            f"{text_field!r} name the text field? Name it ({_FIELD_HINT}), or quote the text.")
        text_value = _json_value(record, text_field, source, required=True)
        if multilabel and isinstance(record.get(label_field), list):
            examples.append(Example(text_value, None, source, _json_labels(record[label_field], label_field, source)))
            continue
        if multilabel and isinstance(record.get(label_field), str) and not record[label_field].strip():
            examples.append(Example(text_value, None, source, ()))
            continue
        label_value = _json_value(record, label_field, source, required=require_labels)
        examples.append(Example(text_value, label_value, source))
    return examples


def _json_labels(values: list, field: str, source: str) -> tuple[str, ...]:
    """The labels of a JSON list: strings (or integers), each non-empty."""
    out = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise DataError(
                f"{source}: field {field!r} holds {value!r}; a list of labels must hold non-empty strings. "
                f"Fix the line."
            )
        out.append(value)
    return _unique(out)


def _json_value(record: dict, field: str, source: str, *, required: bool) -> str | None:
    """A non-empty string (or a number: a regression target, an integer label) from a JSON object, or None when
    optional and absent."""
    if field not in record:
        if not required:
            return None
        raise DataError(
            f"{source}: no field {field!r}; the object has {sorted(record)}. "
            f"Name the text and label fields ({_FIELD_HINT})."
        )
    value = record[field]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or value.strip().lower() in _MISSING_CELLS:
        raise DataError(f"{source}: field {field!r} is {value!r}; it must be a non-empty string. Fix the line.")
    return value.strip()


def _parse_column_spec(spec: str) -> list[int] | None:
    """``"2+3"`` -> ``[1, 2]`` (0-based column indices); None when ``spec`` is a column name."""
    if not _COLUMN_NUMBERS.match(spec):
        return None
    columns = [int(part) - 1 for part in spec.split("+")]
    if min(columns) < 0:
        raise DataError(f"column number in {spec!r} must be 1 or more (columns are numbered from 1).")
    return columns


def _parse_csv(
    text: str,
    path: Path,
    delimiter: str,
    text_field: str,
    label_field: str,
    require_labels: bool,
    allow_empty_label: bool = False,
) -> list[Example]:
    """CSV/TSV rows; a header row names the columns unless both fields are given as column numbers.

    ``allow_empty_label``: an empty label cell is an example without labels (multi-label data), not an error.
    """
    text_columns = _parse_column_spec(text_field)
    label_columns = _parse_column_spec(label_field)
    if (text_columns is None) != (label_columns is None):
        raise DataError(
            f"{path}: give text and label fields both as column names (file with a header row) or both as "
            f"1-based column numbers (file without header); got {text_field!r} and {label_field!r}."
        )
    # TSV text often holds bare double quotes (e.g. GLUE files), so TSV fields are never quoted.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    rows = _csv_rows(reader, path)
    if text_columns is None:
        header, width = next(((row, len(row)) for _, row in rows), (None, 0))
        if header is None:
            raise DataError(f"{path}: contains only blank lines, no header row. Pass the right file or fill it.")
        names = [name.strip() for name in header]
        for field in (text_field, label_field):
            where = [i + 1 for i, name in enumerate(names) if name == field]
            if len(where) > 1:
                raise DataError(f"{path}: the header row names column {field!r} {len(where)} times (columns "
                                f"{', '.join(map(str, where))}); rename the duplicates so that one column is "
                                f"{field!r}, or give 1-based column numbers ({_FIELD_HINT}).")
        text_columns = [_find_column(names, text_field, path, required=True)]
        label_index = _find_column(names, label_field, path, required=require_labels)
        label_columns = None if label_index is None else [label_index]
    else:
        width = None
    examples = []
    for number, row in rows:
        source = f"{path}:{number}"
        if width is not None and len(row) != width:
            raise DataError(
                f"{source}: the row has {len(row)} fields but the header has {width}. Quote fields that contain "
                f"the delimiter, or fix the row."
            )
        text_value = " ".join(cell.strip() for cell in _cells(row, text_columns, source) if cell.strip())
        if text_value.lower() in _MISSING_CELLS:
            raise DataError(f"{source}: the text is empty or NaN (field {text_field!r}). Fill it or delete the row.")
        label_value = None
        if label_columns is not None:
            label_value = " ".join(cell.strip() for cell in _cells(row, label_columns, source))
            if label_value.lower() in _MISSING_CELLS and not (allow_empty_label and label_value == ""):
                raise DataError(
                    f"{source}: the label is empty or NaN (field {label_field!r}). Fill it or delete the row."
                )
        examples.append(Example(text_value, label_value, source))
    return examples


def _csv_rows(reader: Iterator[list[str]], path: Path) -> Iterator[tuple[int, list[str]]]:
    """Non-blank CSV rows with the line number where each ends; csv.Error becomes a DataError."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(f"{path}:{reader.line_num}: cannot parse the CSV row ({err}). Check its quoting.") from None
        if row and any(cell.strip() for cell in row):
            yield reader.line_num, row


def _find_column(names: list[str], field: str, path: Path, *, required: bool) -> int | None:
    """The index of column ``field`` in the header; DataError listing the columns when it is required."""
    if field in names:
        return names.index(field)
    if not required:
        return None
    raise DataError(
        f"{path}: no column {field!r} in the header row; the columns are {names}. Name the text and label "
        f"columns ({_FIELD_HINT}), or give 1-based column numbers (e.g. '2+3' and '1') for a file without header."
    )


def _cells(row: list[str], columns: list[int], source: str) -> list[str]:
    """The cells of ``row`` at ``columns``; DataError when the row is too short."""
    if max(columns) >= len(row):
        raise DataError(
            f"{source}: the row has {len(row)} fields but column {max(columns) + 1} was asked for. "
            f"Fix the row or the column numbers ({_FIELD_HINT})."
        )
    return [row[column] for column in columns]


def read_folder(path: str | Path, subdir: str | None = None, *, encoding: str | None = None) -> list[Example]:
    """Read a folder-per-class tree ``<root>/<label>/*.txt`` (one example per file, label = folder name).

    ``path`` is a directory or a ``.tar.gz``/``.tgz`` archive (read as a stream, nothing is extracted);
    ``root`` is ``path/subdir``.  Files directly in ``root``, files that do not end in ``.txt``, deeper
    files and ``unsup`` folders are not examples and are ignored.
    """
    return read_folder_splits(path, {"": subdir or ""}, encoding=encoding)[""]


def read_folder_splits(
    path: str | Path, subdirs: Mapping[str, str], *, encoding: str | None = None
) -> dict[str, list[Example]]:
    """Read several folder-per-class trees of one directory or archive at once, e.g. IMDB's train and test.

    ``subdirs`` maps a split name to its root inside ``path``
    (``{"train": "aclImdb/train", "test": "aclImdb/test"}``); an archive is read only once.
    """
    path = Path(path)
    roots = {split: subdir.strip("/") for split, subdir in subdirs.items()}
    found: dict[str, list[tuple[str, Example]]] = {split: [] for split in roots}
    nested: dict[str, set[str]] = {split: set() for split in roots}

    def locate(name: str) -> tuple[str, str] | None:
        """(split, label) of an example file, None for any other file; notes label folders with subfolders."""
        for split, root in roots.items():
            prefix = f"{root}/" if root else ""
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix) :].split("/")
            if len(parts) > 2:
                nested[split].add(parts[0])
            elif len(parts) == 2 and name.endswith(".txt") and parts[0] not in _SKIPPED_CLASS_DIRS:
                return split, parts[0]
        return None

    in_archive = not path.is_dir()
    for name, (split, label), data in _folder_members(path, locate):
        source = f"{path}:{name}" if in_archive else str(path / name)
        text = read_text_bytes(data, source, encoding).strip()
        if not text:
            raise DataError(f"{source}: the file is empty. Delete it or fill in its text.")
        found[split].append((name, Example(text, label, source)))
    result = {}
    for split, items in found.items():
        where = f"{path}/{roots[split]}" if roots[split] else str(path)
        if not items:
            raise DataError(
                f"{where}: no examples found. A folder-per-class tree must hold <label>/<name>.txt files "
                f"(one example per file); check the path or the folder inside the archive."
            )
        mixed = sorted(nested[split] & {example.label for _, example in items})
        if mixed:
            raise DataError(
                f"{where}: folder {mixed[0]!r} holds .txt files and subfolders, so it is not a class folder. Point "
                f"at the folder whose subfolders are the classes (e.g. 'aclImdb/train' inside the IMDB archive)."
            )
        result[split] = [example for _, example in sorted(items, key=lambda item: item[0])]
    return result


def _folder_members(path: Path, locate: Callable[[str], T | None]) -> Iterator[tuple[str, T, bytes]]:
    """(name with '/' separators, ``locate(name)``, contents) of the files under a directory or in an archive
    that ``locate`` accepts (does not map to None)."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            name = file.relative_to(path).as_posix()
            found = locate(name)
            if found is not None and file.is_file():
                yield name, found, file.read_bytes()
        return
    if not path.exists():
        raise DataError(f"{path}: no such directory or archive. Check the path.")
    if not path.name.lower().endswith((".tar.gz", ".tgz")):
        raise DataError(f"{path}: a folder-per-class dataset must be a directory or a .tar.gz/.tgz archive.")
    try:
        with tarfile.open(path, "r|gz") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                found = locate(name) if member.isfile() else None
                if found is not None:
                    yield name, found, archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError, TypeError) as err:
        # TypeError: tarfile's stream mode on a gzip header cut short ("ord() expected a character")
        raise DataError(
            f"{path}: cannot read the archive ({err}). It is damaged or incomplete; fetch it again."
        ) from None


# --------------------------------------------------------------------------------------------
# streaming: one example at a time, for corpora larger than memory (see wordconv.data.shards)

_STREAMED_FORMATS = ("labelfirst", "jsonl")


def iter_examples(
    path: str | Path,
    format: str | None = None,
    *,
    text_field: str = "text",
    label_field: str = "label",
    encoding: str | None = None,
    require_labels: bool = True,
    multilabel: bool = False,
    label_separator: str = ",",
) -> Iterator[Example]:
    """The examples of a data file one at a time, as :func:`read_examples` reads them, without holding the file.

    Label-first and JSONL files are streamed line by line, with the same sources (``path:line``) and the same
    DataErrors, raised when the reading gets to the line at fault.  One difference: without ``encoding`` each line
    is decoded on its own (UTF-8, else cp1252, else Latin-1) rather than the whole file at once.  The other
    formats (a CSV field may span lines, a folder tree is many files) are read whole by :func:`read_examples`.
    """
    path = Path(path)
    fmt = format or detect_format(path)
    if fmt not in _STREAMED_FORMATS:
        yield from read_examples(path, fmt, text_field=text_field, label_field=label_field, encoding=encoding,
                                 require_labels=require_labels, multilabel=multilabel, label_separator=label_separator)
        return
    count = 0
    for number, line in _stream_lines(path, encoding):
        if not line.strip():
            continue
        source = f"{path}:{number}"
        if fmt == "labelfirst":
            example = _labelfirst_example(line, source, require_labels)
        else:
            example = _jsonl_example(_json_line(line, source, f'{{"{text_field}": "...", "{label_field}": "..."}}'),
                                     source, text_field, label_field, require_labels, multilabel)
        yield _split_labels(example, label_separator) if multilabel else example
        count += 1
    if not count:
        raise DataError(f"{path}: contains only blank lines, no examples. Pass the right file or fill it.")


def _stream_lines(path: Path, encoding: str | None) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line) of a file read in binary, split on ``\\n`` only, ``\\r`` removed."""
    if path.is_dir():
        raise DataError(
            f"{path}: is a directory, but a data file was expected. Pass a file, or use format 'folder' "
            f"for a folder-per-class tree (<dir>/<label>/*.txt)."
        )
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such file. Check the path (relative paths start at the current directory)."
        ) from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror}). Check its permissions.") from None
    with handle:
        number = 0
        for number, raw in enumerate(handle, start=1):  # binary lines end at b"\n" only
            yield number, _decode_line(raw.removesuffix(b"\n").removesuffix(b"\r"), path, number, encoding)
        if number == 0:
            raise DataError(f"{path}: the file is empty. Pass a file with one example per line.")


def _decode_line(data: bytes, path: Path, number: int, encoding: str | None) -> str:
    """One line's text, decoded as :func:`read_text_bytes` decodes a file (a BOM is dropped from line 1)."""
    if b"\x00" in data:
        raise DataError(
            f"{path}:{number}: contains NUL bytes, so {path} is a binary file or UTF-16 text, not a text file "
            f"wordconv can read. Pass the plain-text data file, or convert it to UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)."
        )
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as err:
            raise DataError(
                f"{path}:{number}: byte {data[err.start]:#04x} is not valid {encoding}. "
                f"Pass the file's real encoding, or leave the encoding unset to detect UTF-8/cp1252/Latin-1."
            ) from None
        except LookupError:
            raise DataError(
                f"{path}: unknown encoding {encoding!r}; use a Python codec name such as 'utf-8' or 'cp1252'."
            ) from None
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
    return text.removeprefix("\ufeff") if number == 1 else text


def _labelfirst_example(line: str, source: str, require_labels: bool) -> Example:
    """One ``<label> <text>`` line (the whole line as an unlabelled text with ``require_labels=False``)."""
    if not require_labels:
        return Example(line.strip(), None, source)
    parts = line.split(maxsplit=1)
    if len(parts) < 2:
        raise DataError(
            f"{source}: the line has a label ({parts[0]!r}) but no text after it. Every line must be "
            f"'<label> <text>'; fix or delete the line."
        )
    return Example(parts[1].strip(), parts[0], source)


def _json_line(line: str, source: str, example: str) -> dict:
    """The JSON object on one line of a JSON-lines file (errors as :func:`json_objects` words them)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{source}: malformed JSON ({err.msg} at column {err.colno}); each line must be "
                        f"one JSON object such as {example}: fix the line") from None
    except (ValueError, RecursionError) as err:  # a number over Python's 4300-digit limit, nesting too deep
        raise DataError(f"{source}: cannot parse the JSON ({err}); each line must be one JSON object such as "
                        f"{example}: fix the line") from None
    if not isinstance(record, dict):
        raise DataError(f"{source}: a JSON {type(record).__name__}, not an object; each line must be one "
                        f"JSON object such as {example}: fix the line")
    return record


def _jsonl_example(record: dict, source: str, text_field: str, label_field: str, require_labels: bool,
                   multilabel: bool) -> Example:
    """The example of one JSON-lines object, as :func:`_parse_jsonl` reads it."""
    if isinstance(record.get(text_field), (int, float)) and not isinstance(record.get(text_field), bool):
        raise DataError(f"{source}: field {text_field!r} is the number {record[text_field]!r}, not a text: does "
                        f"{text_field!r} name the text field? Name it ({_FIELD_HINT}), or quote the text.")
    text_value = _json_value(record, text_field, source, required=True)
    if multilabel and isinstance(record.get(label_field), list):
        return Example(text_value, None, source, _json_labels(record[label_field], label_field, source))
    if multilabel and isinstance(record.get(label_field), str) and not record[label_field].strip():
        return Example(text_value, None, source, ())
    return Example(text_value, _json_value(record, label_field, source, required=require_labels), source)
