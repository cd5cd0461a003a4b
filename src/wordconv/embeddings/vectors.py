"""Reading pretrained word vectors: word2vec (binary and text), GloVe (no header) and fastText ``.vec`` files.

A vector file is streamed -- line by line (text) or record by record (binary) -- and only the rows of the
requested words are kept, so a 4 GB file needs memory for the vocabulary, not for the file.  Values are parsed
only for rows that are kept, which keeps reading a multi-GB text file to the speed of scanning its lines.

Formats (:data:`FORMATS`), all optionally gzip-compressed (detected from the content, not the name):

* ``"word2vec-bin"`` -- the original C tool's binary format (GoogleNews): a header line ``"N D\\n"``, then per
  word the word's bytes up to a space, then ``D`` little-endian float32 values, optionally followed by ``"\\n"``.
* ``"word2vec"`` -- the text format with the same ``"N D"`` header line, then ``word v1 ... vD`` per line.
  fastText's ``.vec`` files are this format.
* ``"glove"`` -- ``word v1 ... vD`` lines without a header; the first row fixes ``D``.

Fields are separated by single ASCII spaces only (not by other whitespace: glove.840B has words containing
non-breaking spaces), and when a row has more fields than ``D + 1`` its last ``D`` fields are the vector and the
rest is the word (glove.840B has words such as ``". . ."``).  Words of unknown text are drawn from
``U[-0.25, 0.25]``, as in Kim (2014)'s code, so that they have roughly the variance of the pretrained ones.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import logging
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from wordconv.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = [
    "FORMATS",
    "Coverage",
    "PretrainedVectors",
    "detect_vector_format",
    "iter_vectors",
    "load_vectors",
    "vector_dim",
]

FORMATS = ("word2vec-bin", "word2vec", "glove")
_ALIASES = {
    "bin": "word2vec-bin",
    "binary": "word2vec-bin",
    "word2vec-binary": "word2vec-bin",
    "word2vec-text": "word2vec",
    "text": "word2vec",
    "vec": "word2vec",
    "fasttext": "word2vec",
}
_FORMAT_HINT = "'word2vec-bin' (binary, 'N D' header), 'word2vec' (text, 'N D' header; fastText .vec) or 'glove'"

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_MAX_LINE = 1 << 20  # the longest first line sniffed: a 300d text row is ~3-4 KB
_SAMPLE = 1 << 16  # bytes after the header looked at to tell binary from text
_CHUNK = 1 << 22  # binary files are read in 4 MiB chunks
_MAX_WORD = 1 << 16  # a binary record whose word has no space within 64 KiB is not a word2vec record
_TICK = 4096  # rows between progress-bar updates
_BINARY_CONTROL_SHARE = 0.02  # float32 data has ~12% bytes < 0x20; text has none but \n \r \t


@dataclass
class Coverage:
    """How many of the requested word types (and of their tokens) the vector file has.

    ``tokens_*`` weight each type by its corpus count (each type counts once when no counts were given).
    ``lowercase_hits`` are types found only through their lowercase form (included in ``types_found``).
    """

    types_total: int
    types_found: int
    tokens_total: int
    tokens_found: int
    lowercase_hits: int
    name: str = "vector"

    @property
    def type_rate(self) -> float:
        return self.types_found / self.types_total if self.types_total else 0.0

    @property
    def token_rate(self) -> float:
        return self.tokens_found / self.tokens_total if self.tokens_total else 0.0

    def __str__(self) -> str:
        return (
            f"{self.name} coverage: {self.types_found:,} of {self.types_total:,} word types ({self.type_rate:.1%}), "
            f"{self.tokens_found:,} of {self.tokens_total:,} tokens ({self.token_rate:.1%}); "
            f"{self.lowercase_hits:,} via lowercase"
        )


@dataclass
class PretrainedVectors:
    """The vectors of a vocabulary, read from a vector file by :func:`load_vectors`.

    ``matrix[i]`` is the vector of ``words[i]``: the file's vector where ``found[i]``, else a random one
    (all zeros for the ``zero_rows``, which are never ``found``).
    """

    dim: int
    matrix: np.ndarray  # (len(words), dim) float32
    found: np.ndarray  # (len(words),) bool
    extra_words: list[str]
    extra_matrix: np.ndarray  # (len(extra_words), dim) float32
    coverage: Coverage
    path: str
    format: str
    rows_read: int = field(default=0)  # rows of the file scanned (all of them unless every word was found early)


# --------------------------------------------------------------------------------------------
# opening and sniffing


@contextlib.contextmanager
def _open(path: Path) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """(decompressed byte stream, raw file) of a vector file; gzip is detected from the magic bytes.

    Decompression errors inside the block become DataErrors.  The raw file's ``tell()`` drives progress bars.
    """
    if path.is_dir():
        raise DataError(f"{path}: is a directory; pass the vector file itself (e.g. glove.6B.300d.txt).")
    try:
        raw = open(path, "rb")  # noqa: SIM115 -- closed in the finally below
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such file. Check the path, or pass a named vector set (see `wordconv embeddings list`)."
        ) from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror}). Check its permissions.") from None
    try:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw  # type: ignore[assignment]
        try:
            yield stream, raw
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise DataError(
                f"{path}: cannot decompress the gzip data ({err}). The file is damaged or incomplete; fetch it again."
            ) from None
    finally:
        raw.close()


@dataclass(frozen=True)
class _Head:
    """What the start of a vector file says: its format, its ``(N, D)`` header and where the rows start."""

    format: str
    header: tuple[int, int] | None
    header_line: int  # line number of the header, or of the first row of a GloVe file
    dim: int


def _parse_header(line: bytes) -> tuple[int, int] | None:
    """``(N, D)`` when ``line`` is a word2vec header ``"N D"``, else None."""
    fields = line.split()
    if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
        try:
            return int(fields[0]), int(fields[1])
        except ValueError:  # over Python's 4300-digit limit: not a header
            return None
    return None


def _looks_binary(sample: bytes) -> bool:
    """True for bytes that are not text: a NUL byte, or many control characters (float32 data)."""
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    control = sum(sample.count(bytes([c])) for c in range(32) if c not in (9, 10, 13))
    return control / len(sample) > _BINARY_CONTROL_SHARE


def _check_utf8(sample: bytes, path: Path, first_line: int) -> None:
    """DataError when ``sample`` (text starting at ``first_line``) is not UTF-8; a cut-off last character is fine."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError as err:
        line = first_line + sample[: err.start].count(b"\n")
        raise DataError(
            f"{path}:{line}: byte {sample[err.start]:#04x} is not valid UTF-8. Word-vector text files must be "
            f"UTF-8; convert the file (e.g. `iconv -f latin1 -t utf-8`)."
        ) from None


def _sniff(path: Path) -> _Head:
    """Read the start of ``path`` and work out its format and dimension (raises DataError for what cannot be)."""
    with _open(path) as (stream, _):
        line_no = 0
        first = b""
        while True:
            first = stream.readline(_MAX_LINE)
            line_no += 1
            if line_no == 1:
                first = first.removeprefix(_BOM)
            if not first or first.strip():
                break
        if not first:
            raise DataError(f"{path}: the file is empty. Pass a word-vector file (word2vec, GloVe or fastText .vec).")
        if len(first) >= _MAX_LINE and not first.endswith(b"\n"):
            raise DataError(
                f"{path}:{line_no}: the line is longer than {_MAX_LINE:,} bytes, so this is not a word-vector file "
                f"({_FORMAT_HINT}). Check the path."
            )
        header = _parse_header(first)
        if header is not None:
            count, dim = header
            if dim == 0:
                raise DataError(f"{path}:{line_no}: the header {first.strip().decode()!r} says 0 dimensions. Fix it.")
            sample = stream.read(_SAMPLE)
            if not sample.strip() or count == 0:
                raise DataError(
                    f"{path}: only a header line ({first.strip().decode()!r}), no vectors. The file is incomplete; "
                    f"fetch it again."
                )
            if _looks_binary(sample):
                return _Head("word2vec-bin", header, line_no, dim)
            _check_utf8(sample, path, line_no + 1)
            return _Head("word2vec", header, line_no, dim)
        if _looks_binary(first):
            raise DataError(
                f"{path}: looks like a binary file but does not start with a word2vec header line 'N D' (number of "
                f"words, dimensions). It is not a vector file wordconv can read ({_FORMAT_HINT}); check the path, "
                f"and unzip a .zip archive first."
            )
        _check_utf8(first + stream.read(_SAMPLE), path, line_no)
        fields = first.rstrip(b"\r\n ").count(b" ")
        if fields == 0:
            raise DataError(
                f"{path}:{line_no}: the first row has a word but no values. A GloVe file has 'word v1 ... vD' per "
                f"line; check the file ({_FORMAT_HINT})."
            )
        return _Head("glove", None, line_no, fields)


def _normalize_format(format: str | None) -> str | None:
    if format is None:
        return None
    name = _ALIASES.get(format.lower(), format.lower())
    if name not in FORMATS:
        raise ConfigError(f"unknown vector format {format!r}; use {_FORMAT_HINT}, or leave it unset to detect it.")
    return name


def _inspect(path: str | Path, format: str | None) -> _Head:
    """The sniffed head of ``path``, checked against an explicitly given ``format``."""
    wanted = _normalize_format(format)
    head = _sniff(Path(path))
    if wanted is not None and wanted != head.format:
        what = {
            "word2vec-bin": "a word2vec binary file ('N D' header, then binary floats)",
            "word2vec": "a word2vec/fastText text file ('N D' header, then text rows)",
            "glove": "a GloVe text file (no header line)",
        }[head.format]
        raise DataError(
            f"{path}: format {wanted!r} was given, but the file looks like {what}. Pass format={head.format!r}, "
            f"or leave the format unset to detect it."
        )
    return head


def detect_vector_format(path: str | Path) -> str:
    """``"word2vec-bin"``, ``"word2vec"`` (text with an ``"N D"`` header; fastText ``.vec``) or ``"glove"``.

    Reads only the start of the file (gzip is decompressed transparently).
    """
    return _sniff(Path(path)).format


def vector_dim(path: str | Path, format: str | None = None) -> int:
    """The number of dimensions of a vector file, from its header or first row (reads only the start)."""
    return _inspect(path, format).dim


# --------------------------------------------------------------------------------------------
# rows


_Row = tuple[bytes, bytes, int]  # (word bytes, vector payload, line or record number)


def _is_number(field: bytes) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _text_rows(path: Path, head: _Head, tick: Callable[[int], None]) -> Iterator[_Row]:
    """(word, the bytes of its values, line number) per row of a text vector file; DataError for bad rows."""
    dim = head.dim
    if head.header is not None:
        origin = f"the header (line {head.header_line}) says {dim}"
    else:
        origin = f"line {head.header_line}, the first row, has {dim}"
    first_row = True
    with _open(path) as (stream, raw):
        for number, line in enumerate(stream, start=1):
            if number % _TICK == 0:
                tick(raw.tell())
            if number == 1:
                line = line.removeprefix(_BOM)
            if number == head.header_line and head.header is not None:
                continue
            line = line.rstrip(b"\r\n ")
            if not line:
                continue
            if b"\x00" in line:
                raise DataError(
                    f"{path}:{number}: contains NUL bytes, so this part is binary, not text. If this is a word2vec "
                    f"binary file it must start with its header; otherwise the file is damaged, fetch it again."
                )
            spaces = line.count(b" ")
            if spaces == dim:
                cut = line.index(b" ")
                yield line[:cut], line[cut + 1 :], number
            else:
                word = _odd_row_word(line, spaces, dim, path, number, origin, first_row and head.header is not None)
                yield word, line[len(word) + 1 :], number
            first_row = False


def _odd_row_word(line: bytes, spaces: int, dim: int, path: Path, number: int, origin: str, vs_header: bool) -> bytes:
    """The word of a row with more or fewer than ``dim + 1`` fields: a word with spaces, else a DataError."""
    if spaces > dim:
        parts = line.rsplit(b" ", dim)
        pieces = parts[0].split(b" ")
        if all(parts[1:]) and all(pieces) and not _is_number(pieces[-1]):
            return parts[0]  # a word with spaces, e.g. ". . ." in glove.840B
        if not (all(parts) and all(pieces)):
            raise DataError(
                f"{path}:{number}: an empty field (two spaces in a row). Fields must be separated by single spaces; "
                f"fix the line."
            )
    if vs_header:
        raise DataError(
            f"{path}:{number}: the header and the rows disagree: {origin} values per word, but line {number}, the "
            f"first row, has {spaces}. Fix the header's second number, or remove line 1 if it is not a header."
        )
    raise DataError(
        f"{path}:{number}: dimension mismatch: line {number} has {spaces} values, expected {dim} ({origin}). The line "
        f"is damaged or the file truncated; fix or delete the line, or fetch the file again."
    )


def _binary_rows(path: Path, head: _Head, tick: Callable[[int], None]) -> Iterator[_Row]:
    """(word, its ``4 * D`` vector bytes, record number) per record of a word2vec binary file."""
    width = 4 * head.dim
    with _open(path) as (stream, raw):
        for _ in range(head.header_line):
            stream.readline(_MAX_LINE)
        buf = b""
        pos = 0
        record = 0

        def more() -> bool:
            """Append a chunk to ``buf`` (dropping what was consumed, so ``pos`` becomes 0); False at EOF."""
            nonlocal buf, pos
            chunk = stream.read(_CHUNK)
            if not chunk:
                return False
            buf = buf[pos:] + chunk
            pos = 0
            tick(raw.tell())
            return True

        def truncated(what: str) -> DataError:
            return DataError(
                f"{path}: truncated in record {record + 1} (after {record:,} complete records): {what}. The file "
                f"is incomplete (an interrupted download?) or not word2vec binary; fetch it again."
            )

        while True:
            while True:  # skip the newline that may end the previous record
                while pos < len(buf) and buf[pos] == 0x0A:
                    pos += 1
                if pos < len(buf) or not more():
                    break
            if pos >= len(buf):
                return
            space = buf.find(b" ", pos)
            while space < 0:
                if len(buf) - pos > _MAX_WORD:
                    raise DataError(
                        f"{path}: record {record + 1} has no space after its word within {_MAX_WORD:,} bytes, so "
                        f"this is not a word2vec binary file. Check the file ({_FORMAT_HINT})."
                    )
                if not more():
                    raise truncated(f"the file ends inside the word {buf[pos:][:50]!r}")
                space = buf.find(b" ", pos)
            while len(buf) < space + 1 + width:
                offset = space - pos
                if not more():
                    got = len(buf) - space - 1
                    raise truncated(f"word {buf[pos:space][:50]!r} has {got} of its {width} vector bytes")
                space = offset
            end = space + 1 + width
            yield buf[pos:space], buf[space + 1 : end], record + 1
            record += 1
            pos = end


def _parse_text_values(payload: bytes, dim: int, path: Path, number: int) -> np.ndarray:
    """The ``dim`` float32 values of a text row; DataError naming the bad value."""
    fields = payload.split(b" ")
    try:
        vector = np.array(fields, dtype=np.float32)
    except ValueError:  # find the culprit with Python's parser, which may accept what numpy's does not
        values = []
        for index, field_ in enumerate(fields):
            try:
                values.append(float(field_))
            except ValueError:
                shown = field_.decode("utf-8", "replace")[:40]
                what = f"{shown!r}, not a number" if field_ else "empty (two spaces in a row?)"
                raise DataError(f"{path}:{number}: value {index + 1} of the row is {what}. Fix the line.") from None
        vector = np.array(values, dtype=np.float32)
    _check_finite(vector, path, f"line {number}")
    if len(vector) != dim:  # cannot happen: rows were checked by their spaces
        raise DataError(f"{path}:{number}: {len(vector)} values, expected {dim}.")
    return vector


def _check_finite(vector: np.ndarray, path: Path, where: str) -> None:
    if not np.isfinite(vector).all():
        index = int(np.flatnonzero(~np.isfinite(vector))[0])
        raise DataError(
            f"{path}: {where}: value {index + 1} is {vector[index]}, not a finite number. The file is damaged; "
            f"fetch it again or fix the row."
        )


@contextlib.contextmanager
def _progress(path: Path, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A function ``tick(bytes_read)`` driving a progress bar over the (compressed) file size."""
    if not enabled:
        yield lambda position: None
        return
    total = path.stat().st_size
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"reading {path.name}", total=total)
        yield lambda position: bar.update(task, completed=position)
        bar.update(task, completed=total)


def _label(path: Path, format: str) -> str:
    """What coverage messages call the vectors: GloVe, fastText (.vec) or word2vec."""
    if format == "glove":
        return "GloVe"
    name = path.name.lower().removesuffix(".gz")
    return "fastText" if name.endswith(".vec") else "word2vec"


# --------------------------------------------------------------------------------------------
# loading


def load_vectors(
    path: str | Path,
    words: Sequence[str],
    *,
    counts: Mapping[str, int] | None = None,
    format: str | None = None,
    lowercase_fallback: bool = True,
    extra: int = 0,
    lowercase_extra: bool = False,
    casefold_file: bool = False,
    init_scale: float = 0.25,
    seed: int = 13,
    zero_rows: Sequence[int] = (0, 1),
    progress: bool = False,
) -> PretrainedVectors:
    """The vectors of ``words`` from a vector file, streamed so that memory stays O(len(words) + extra).

    A word takes the vector of its exact form in the file; else, with ``lowercase_fallback``, that of its
    lowercase form (an exact match wins even when it comes later in the file).  With ``casefold_file`` (for a
    model that lowercases its input and a cased file such as GoogleNews word2vec), a word not in the file as
    such also takes the vector of the file's first word whose lowercase form it is ("film" <- "Film"); these
    count as lowercase hits too.  The first occurrence of a word wins.  Words not found get a row drawn from ``U[-init_scale, init_scale]`` (Kim 2014; the whole random
    matrix is drawn from ``seed`` first, so a word's random row does not depend on which others were found); the
    rows at ``zero_rows`` (PAD and UNK in a wordconv vocabulary) are zeros and are left out of the coverage.

    ``extra`` > 0 also returns the first ``extra`` file words not among ``words`` (files are ordered by
    frequency), e.g. to let a model look up words unseen in training; with ``lowercase_extra`` each file word is
    lowercased first and skipped when its lowercase form is requested or already taken.

    ``counts`` (token counts per word) weights the token coverage.  ``format`` (one of :data:`FORMATS`) is
    detected when None; a given format that disagrees with the file is a DataError.  Raises DataError for a
    missing, empty or malformed file (naming the line or record) and when none of the words is in the file.
    """
    path = Path(path)
    words = list(words)
    if extra < 0:
        raise ConfigError(f"extra must be 0 or more, got {extra}.")
    if init_scale < 0:
        raise ConfigError(f"init_scale must be 0 or more, got {init_scale}.")
    head = _inspect(path, format)
    zero = set(zero_rows)
    if any(not 0 <= row < len(words) for row in zero):
        raise ConfigError(
            f"zero_rows {sorted(zero)} must be indices into the {len(words)} words; pass zero_rows=() for a word "
            f"list without PAD/UNK entries."
        )
    dim = head.dim
    binary = head.format == "word2vec-bin"

    exact: dict[bytes, list[int]] = {}
    for i, word in enumerate(words):
        if i not in zero:
            exact.setdefault(word.encode("utf-8"), []).append(i)
    lower: set[bytes] = set()
    if lowercase_fallback:
        lower = {word.lower().encode("utf-8") for i, word in enumerate(words) if i not in zero and word.lower() != word}
    wanted = exact.keys() | lower
    requested = set(words)
    requested_bytes = {word.encode("utf-8") for word in words}

    def parse(payload: bytes, where: int) -> np.ndarray:
        if binary:
            vector = np.frombuffer(payload, dtype="<f4").astype(np.float32)
            _check_finite(vector, path, f"record {where}")
            return vector
        return _parse_text_values(payload, dim, path, where)

    def decode(word: bytes, where: int) -> str:
        if binary:
            return word.decode("utf-8", errors="replace")  # GoogleNews has a few invalid bytes
        try:
            return word.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(
                f"{path}:{where}: the word {word[:50]!r} is not valid UTF-8. Word-vector text files must be UTF-8; "
                f"convert the file."
            ) from None

    vectors: dict[bytes, np.ndarray] = {}
    folded: dict[bytes, np.ndarray] = {}  # casefold_file: requested word -> vector of a cased form of it
    missing = len(exact)
    extra_words: list[str] = []
    extra_vectors: list[np.ndarray] = []
    taken: set[str] = set()
    rows = 0
    finished_early = False
    with _progress(path, progress) as tick:
        for word, payload, where in (_binary_rows if binary else _text_rows)(path, head, tick):
            rows += 1
            vector = None
            if word in wanted and word not in vectors:
                vector = vectors[word] = parse(payload, where)
                missing -= word in exact
            elif casefold_file and word not in exact:
                folded_word = word.lower() if word.isascii() else decode(word, where).lower().encode("utf-8")
                if folded_word in exact and folded_word not in folded:
                    vector = folded[folded_word] = parse(payload, where)
            if len(extra_words) < extra and word:
                if lowercase_extra:
                    candidate = decode(word, where).lower()
                    new = candidate not in requested
                else:
                    new = word not in requested_bytes
                    candidate = decode(word, where) if new else ""
                if new and candidate not in taken:
                    taken.add(candidate)
                    extra_words.append(candidate)
                    extra_vectors.append(parse(payload, where) if vector is None else vector)
            elif missing == 0 and len(extra_words) >= extra:
                finished_early = True  # every word found: the rest of the file cannot change the result
                break
    if head.header is not None and not finished_early and rows != head.header[0]:
        log.warning("%s: the header says %d words, but the file has %d rows", path, head.header[0], rows)

    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-init_scale, init_scale, size=(len(words), dim)).astype(np.float32)
    found = np.zeros(len(words), dtype=bool)
    types_total = types_found = tokens_total = tokens_found = lowercase_hits = 0
    for i, word in enumerate(words):
        if i in zero:
            matrix[i] = 0.0
            continue
        vector = vectors.get(word.encode("utf-8"))
        if vector is None and lowercase_fallback and word.lower() != word:
            vector = vectors.get(word.lower().encode("utf-8"))
            lowercase_hits += vector is not None
        if vector is None and casefold_file:
            vector = folded.get(word.encode("utf-8"))
            lowercase_hits += vector is not None
        count = 1 if counts is None else counts.get(word, 0)
        types_total += 1
        tokens_total += count
        if vector is not None:
            matrix[i] = vector
            found[i] = True
            types_found += 1
            tokens_found += count
    coverage = Coverage(types_total, types_found, tokens_total, tokens_found, lowercase_hits, _label(path, head.format))
    if types_total and not types_found:
        case = (
            "the lowercase fallback was on"
            if lowercase_fallback
            else "turn on the lowercase fallback (or lowercase the text) if the vectors are uncased"
        )
        raise DataError(
            f"{path}: none of the {types_total:,} requested words is among the {rows:,} words of the file (read as "
            f"{head.format!r} format, {dim} dimensions). Check the format ({_FORMAT_HINT}) and the case ({case}), "
            f"and that the vectors are for the language and tokenization of your data."
        )
    log.info("%s", coverage)
    extra_matrix = np.stack(extra_vectors) if extra_vectors else np.zeros((0, dim), dtype=np.float32)
    return PretrainedVectors(
        dim=dim,
        matrix=matrix,
        found=found,
        extra_words=extra_words,
        extra_matrix=extra_matrix.astype(np.float32, copy=False),
        coverage=coverage,
        path=str(path),
        format=head.format,
        rows_read=rows,
    )


def iter_vectors(
    path: str | Path, format: str | None = None, *, limit: int | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """Every ``(word, float32 vector)`` of a vector file in file order (up to ``limit`` rows), parsed and checked.

    Duplicate words are all yielded.  For a whole file in memory (e.g. nearest neighbours); to pick the
    vectors of a vocabulary use :func:`load_vectors`, which parses only the rows it keeps.
    """
    path = Path(path)
    head = _inspect(path, format)
    binary = head.format == "word2vec-bin"
    rows = (_binary_rows if binary else _text_rows)(path, head, lambda position: None)
    for count, (word, payload, where) in enumerate(rows):
        if limit is not None and count >= limit:
            return
        if binary:
            vector = np.frombuffer(payload, dtype="<f4").astype(np.float32)
            _check_finite(vector, path, f"record {where}")
            yield word.decode("utf-8", errors="replace"), vector
        else:
            try:
                text = word.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(
                    f"{path}:{where}: the word {word[:50]!r} is not valid UTF-8; convert the file."
                ) from None
            yield text, _parse_text_values(payload, head.dim, path, where)
