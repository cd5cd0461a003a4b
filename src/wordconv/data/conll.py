"""Named-entity tags and CoNLL files: the IOB1, IOB2 and BIOES tag schemes, entity spans, and a CoNLL reader.

A tag is ``O`` (outside every entity) or ``P-TYPE``: a prefix ``P`` and an entity type (``B-PER``, ``I-LOC``).
The schemes differ in the prefixes they use:

* IOB1 (the original CoNLL-2003 files): ``I-X`` marks every token of an entity; ``B-X`` only starts an entity
  that directly follows another entity of the same type (``I-PER I-PER B-PER``: two people).
* IOB2: ``B-X`` starts every entity, ``I-X`` continues it.
* BIOES: ``S-X`` is a one-token entity; a longer one is ``B-X I-X ... E-X``.

Entity spans are read with the chunk rules of the conlleval script (``startOfChunk``/``endOfChunk``), which give
every sequence a meaning, valid or not: an ``I-X`` after ``O`` or after another type starts an entity, a change
of type ends one.  conlleval has no ``S`` prefix and reads ``E`` as in IOE; the rules here add ``S`` and ``E`` as
seqeval does (``B`` and ``S`` always start an entity, ``E`` and ``S`` always end one), which leaves conlleval's
result unchanged on every sequence of ``B``/``I``/``O`` tags.  Since the rules read IOB1 and IOB2 alike, reading
a file as IOB1 is right for both, and converting IOB1 to IOB2 leaves valid IOB2 unchanged.

A CoNLL file holds one token per line, in whitespace-separated columns (word first, entity tag last by default),
with a blank line after each sentence; ``-DOCSTART-`` lines head documents and are not sentences.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from wordconv.data.readers import Example, _lines, _read_file_bytes, read_text_bytes
from wordconv.errors import DataError

log = logging.getLogger(__name__)

SCHEMES = ("iob1", "iob2", "bioes")

_PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES"}
_TAG = re.compile(r"O|[BIES]-\S+")
_DOCSTART = "-DOCSTART-"
_TAG_FORM = "a tag is O, or B-, I-, E- or S- followed by an entity type (e.g. B-PER)"


def check_tags(tags: Sequence[str], where: str, *, scheme: str | None = None) -> None:
    """Raise DataError unless every tag is ``O`` or ``P-TYPE`` with ``P`` in B/I/E/S and a non-empty ``TYPE``.

    ``where`` names the place in the message (``"file.txt:12"``); with several tags the message also gives the
    1-based position of the bad one.  With ``scheme`` the prefix must also belong to it (no ``E-``/``S-`` in
    IOB1/IOB2).
    """
    if scheme is not None:
        _check_scheme(scheme)
    for position, tag in enumerate(tags, start=1):
        problem = _tag_problem(tag)
        if problem is None and (scheme is None or tag == "O" or tag[0] in _PREFIXES[scheme]):
            continue
        at = f"{where} (tag {position})" if len(tags) > 1 else where
        if problem is not None:
            raise DataError(f"{at}: {tag!r} is not an entity tag ({problem}); {_TAG_FORM}. Fix the tag.")
        raise DataError(_scheme_message(at, tag, scheme))


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """``"bioes"`` when any tag starts with ``E-`` or ``S-``, else ``"iob1"`` (right for IOB1 and IOB2 alike)."""
    for tags in sequences:
        if any(tag.startswith(("E-", "S-")) for tag in tags):
            return "bioes"
    return "iob1"


def tags_to_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of a tag sequence as ``(type, start, end)`` with ``end`` exclusive, in order.

    Uses conlleval's chunk rules (with ``S``/``E`` as in seqeval, see the module docstring), so it reads IOB1,
    IOB2 and BIOES, and gives invalid sequences conlleval's reading: ``O I-PER`` is a person, ``B-PER I-LOC``
    two entities.  Raises DataError for a tag that is not ``O`` or ``P-TYPE`` (see :func:`check_tags`).
    """
    check_tags(tags, "tag sequence")
    return _spans(tags)


def _spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """:func:`tags_to_spans` for tags already checked."""
    spans = []
    prev_prefix, prev_type, start = "O", "", 0
    for index, tag in enumerate([*tags, "O"]):
        prefix, type_ = ("O", "") if tag == "O" else (tag[0], tag[2:])
        if _end_of_chunk(prev_prefix, prefix, prev_type, type_):
            spans.append((prev_type, start, index))
        if _start_of_chunk(prev_prefix, prefix, prev_type, type_):
            start = index
        prev_prefix, prev_type = prefix, type_
    return spans


def _end_of_chunk(prev_prefix: str, prefix: str, prev_type: str, type_: str) -> bool:
    """conlleval's ``endOfChunk`` (with seqeval's ``E``/``S``): does an entity end before this tag?"""
    return (
        prev_prefix in "ES"
        or (prev_prefix in "BI" and prefix in "BSO")
        or (prev_prefix != "O" and prev_type != type_)
    )


def _start_of_chunk(prev_prefix: str, prefix: str, prev_type: str, type_: str) -> bool:
    """conlleval's ``startOfChunk`` (with seqeval's ``E``/``S``): does an entity start at this tag?"""
    return (
        prefix in "BS"
        or (prefix in "IE" and prev_prefix in "ESO")
        or (prefix != "O" and prev_type != type_)
    )


def spans_to_tags(spans: Iterable[tuple[str, int, int]], n: int, scheme: str) -> list[str]:
    """The ``n`` tags, in ``scheme``, that mark the entities ``(type, start, end)`` (``end`` exclusive).

    Spans must lie within ``0..n``, be non-empty and not overlap (ValueError otherwise).  In IOB1 an entity
    starts with ``B-`` only when the entity just before it ends where it starts and has the same type.
    """
    _check_scheme(scheme)
    tags = ["O"] * n
    prev_end, prev_type = -1, ""
    for type_, start, end in sorted(spans, key=lambda span: (span[1], span[2])):
        if not type_ or not 0 <= start < end <= n:
            raise ValueError(f"span {(type_, start, end)!r} is empty or outside 0..{n}, or has no type")
        if start < prev_end:
            raise ValueError(f"span {(type_, start, end)!r} overlaps the span before it (which ends at {prev_end})")
        if scheme == "bioes" and end - start == 1:
            tags[start] = f"S-{type_}"
        elif scheme == "bioes":
            tags[start : end - 1] = [f"B-{type_}"] + [f"I-{type_}"] * (end - start - 2)
            tags[end - 1] = f"E-{type_}"
        elif scheme == "iob2":
            tags[start:end] = [f"B-{type_}"] + [f"I-{type_}"] * (end - start - 1)
        else:
            first = "B" if start == prev_end and type_ == prev_type else "I"
            tags[start:end] = [f"{first}-{type_}"] + [f"I-{type_}"] * (end - start - 1)
        prev_end, prev_type = end, type_
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Tags of scheme ``source`` rewritten in scheme ``target`` (each one of :data:`SCHEMES`), same entities.

    Entities are read with :func:`tags_to_spans`, leniently (an ``I-X`` after ``O`` starts an entity, also in
    IOB2), so the result is always a valid sequence of ``target``.  Raises DataError for a tag that is malformed
    or not of ``source`` (``E-``/``S-`` in IOB1/IOB2).
    """
    check_tags(tags, "tag sequence", scheme=source)
    _check_scheme(target)
    return spans_to_tags(tags_to_spans(tags), len(tags), target)


def read_conll(
    path: str | Path,
    *,
    word_column: int = 0,
    tag_column: int = -1,
    scheme: str | None = None,
    encoding: str | None = None,
    require_tags: bool = True,
) -> list[Example]:
    """Read a CoNLL file: one :class:`Example` per sentence, with its tags converted to IOB2.

    Columns are split on spaces and tabs and numbered from 0 (negative numbers count from the end);
    ``word_column`` holds the words and ``tag_column`` the entity tags, in ``scheme`` (detected per file by
    :func:`detect_scheme` when None).  Every token line must have as many columns as the first.  Each example
    has ``tokens``, ``tags`` (None for a file without a tag column when ``require_tags=False``),
    ``text`` = the tokens joined by spaces, ``label=None`` and ``source`` = ``"path:line"`` of its first token.
    """
    path = Path(path)
    if scheme is not None:
        _check_scheme(scheme)
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty. Pass a CoNLL file: one token per line, a blank line after "
                        f"each sentence.")
    text = read_text_bytes(_read_file_bytes(path), str(path), encoding)
    sentences = _conll_sentences(text, path)
    if not sentences:
        raise DataError(
            f"{path}: holds no sentences, only blank or {_DOCSTART} lines. Pass the right file: one token per "
            f"line, a blank line after each sentence."
        )
    first_line, first_columns = sentences[0][0]
    width = len(first_columns)
    where = f"{path}:{first_line}"
    word_index = _column_index(word_column, width, "word_column", where)
    tag_index = _tag_index(tag_column, word_index, width, where, require_tags)
    tags: list[list[str] | None] = []
    for lines in sentences:
        if tag_index is None:
            tags.append(None)
            continue
        sentence_tags = [columns[tag_index] for _, columns in lines]
        for (number, _), tag in zip(lines, sentence_tags, strict=True):
            if tag != "O" and (_tag_problem(tag) is not None or scheme is not None and tag[0] not in _PREFIXES[scheme]):
                _raise_file_tag(tag, f"{path}:{number}", scheme, tag_column)
        tags.append(sentence_tags)
    if tag_index is not None and scheme is None:
        scheme = detect_scheme(t for t in tags if t is not None)
        log.debug("%s: tags read as %s", path, scheme)
    examples = []
    for lines, sentence_tags in zip(sentences, tags, strict=True):
        tokens = tuple(columns[word_index] for _, columns in lines)
        iob2 = None if sentence_tags is None else tuple(spans_to_tags(_spans(sentence_tags), len(tokens), "iob2"))
        examples.append(Example(" ".join(tokens), None, f"{path}:{lines[0][0]}", tokens=tokens, tags=iob2))
    return examples


def _conll_sentences(text: str, path: Path) -> list[list[tuple[int, list[str]]]]:
    """The sentences of a CoNLL text, each a list of (line number, columns); checks every line's column count."""
    sentences: list[list[tuple[int, list[str]]]] = []
    current: list[tuple[int, list[str]]] = []
    width, width_line = 0, 0
    for number, line in _lines(text):
        columns = line.replace("\t", " ").split(" ")
        if "" in columns:
            columns = [column for column in columns if column]
        if not columns or columns[0] == _DOCSTART:
            if current:
                sentences.append(current)
                current = []
            continue
        if not width:
            width, width_line = len(columns), number
        elif len(columns) != width:
            raise DataError(
                f"{path}:{number}: expected {width} columns (as on line {width_line}), found {len(columns)}. "
                f"Every token line needs the same columns, separated by spaces or tabs, and a blank line ends a "
                f"sentence; fix the line (a word must not contain a space)."
            )
        current.append((number, columns))
    if current:
        sentences.append(current)
    return sentences


def _column_index(column: int, width: int, name: str, where: str) -> int:
    """``column`` as an index in 0..width-1 (negative counts from the end); DataError when out of range."""
    if not -width <= column < width:
        raise DataError(
            f"{where}: {name}={column} is out of range: the lines have {width} column(s). Pass a column number "
            f"from 0 to {width - 1}, or from -{width} to -1 counting from the end."
        )
    return column % width


def _tag_index(tag_column: int, word_index: int, width: int, where: str, require_tags: bool) -> int | None:
    """The index of the tag column, or None for a file without one (only allowed when tags are not required)."""
    has_tags = width > 1 and -width <= tag_column < width and tag_column % width != word_index
    if not has_tags and not require_tags:
        return None
    if width == 1:
        raise DataError(
            f"{where}: the lines have one column (the words) and no tag column. Add the entity tags as a last "
            f"column, or read the file as unlabelled text (require_tags=False)."
        )
    index = _column_index(tag_column, width, "tag_column", where)
    if index == word_index:
        raise DataError(
            f"{where}: tag_column={tag_column} and word_column are the same column. Pass the column of the entity "
            f"tags (the last one: -1)."
        )
    return index


def _raise_file_tag(tag: str, where: str, scheme: str | None, tag_column: int) -> None:
    """DataError naming the line for a malformed tag, or one outside ``scheme``."""
    problem = _tag_problem(tag)
    if problem is not None:
        raise DataError(
            f"{where}: {tag!r} is not an entity tag ({problem}); {_TAG_FORM}. Fix the tag, or pass the right "
            f"tag_column (now {tag_column}) if this column holds something else, such as POS tags."
        )
    raise DataError(_scheme_message(where, tag, scheme or ""))


def _tag_problem(tag: object) -> str | None:
    """What is wrong with a tag, or None for ``O`` and a well-formed ``P-TYPE``."""
    if isinstance(tag, str) and _TAG.fullmatch(tag):
        return None
    if not isinstance(tag, str):
        return f"a {type(tag).__name__}, not a string"
    prefix, dash, type_ = tag.partition("-")
    if not dash:
        return "no B-/I-/E-/S- prefix"
    if prefix not in ("B", "I", "E", "S"):
        return f"prefix {prefix!r} is not B, I, E or S"
    return f"no entity type after {prefix}-" if not type_ else "the entity type contains whitespace"


def _scheme_message(where: str, tag: str, scheme: str) -> str:
    """The DataError message for a tag whose prefix is not in ``scheme``."""
    return (
        f"{where}: {tag!r} is a BIOES tag, but the tags were declared {scheme.upper()}, which uses only "
        f"B-, I- and O. Declare the scheme 'bioes' (or leave it unset to detect it), or fix the tag."
    )


def _check_scheme(scheme: str) -> str:
    """``scheme`` itself when it is one of :data:`SCHEMES`; DataError otherwise."""
    if scheme not in SCHEMES:
        raise DataError(f"unknown tag scheme {scheme!r}; use one of {', '.join(SCHEMES)}.")
    return scheme
