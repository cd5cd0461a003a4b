"""Extractive question answering data: SQuAD v1.1 JSON files, JSON-lines question files, and a split by article.

A question is an :class:`~wordconv.data.readers.Example` with the paragraph in ``text`` (kept exactly as written,
since answer offsets point into it), the question in ``question`` (surrounding blanks removed), its id in
``qid``, the article title in ``title`` and its gold answers in ``answers`` as (text, character start) pairs.
Offsets count Unicode code points (Python string indices), as SQuAD's do.  Every answer must sit at its offset:
``context[start:start + len(text)] == text``, with no allowance for whitespace (the official dev-v1.1.json has no
mismatch at all).

A question without an ``answers`` key, or with an empty list, is unlabelled (``answers=None``): a file of
questions to answer.  Pass ``require_answers=True`` where gold answers are needed (training, evaluation).  SQuAD
2.0 unanswerable questions (``"is_impossible": true``) are refused, not read as unlabelled.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wordconv.data.readers import Example, _read_file_bytes, json_objects, read_text_bytes
from wordconv.errors import ConfigError, DataError

_SQUAD_FORM = '{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers"}]}]}]}'
_JSONL_FORM = '{"question": ..., "context": ..., "id": ... (optional), "answers": [{"text", "answer_start"}] (optional)}'


def read_squad(path: str | Path, *, require_answers: bool = False) -> list[Example]:
    """Every question of a SQuAD v1.1 JSON file, in file order.

    Raises DataError for invalid UTF-8 or JSON, a missing key, a value of the wrong type, an empty context or
    question, a repeated question id, an answer that is not at its ``answer_start``, a SQuAD 2.0 unanswerable
    question, a file without questions and (with ``require_answers``) a question without answers.
    """
    path = Path(path)
    document = _load_json(path)
    if not isinstance(document, dict) or "data" not in document:
        raise DataError(f"{path}: not a SQuAD file; the top level must be an object {_SQUAD_FORM}.")
    articles = _typed(document["data"], list, f"{path}: key 'data'")
    examples: list[Example] = []
    seen: dict[str, str] = {}
    for a_index, article in enumerate(articles, start=1):
        place = f"{path}: article {a_index}"
        article = _typed(article, dict, place)
        title = _text(_key(article, "title", place), f"{place}, key 'title'", strip=False)
        place = f"{path}: article {a_index} ({title!r})"
        paragraphs = _typed(_key(article, "paragraphs", place), list, f"{place}, key 'paragraphs'")
        for p_index, paragraph in enumerate(paragraphs, start=1):
            where = f"{place}, paragraph {p_index}"
            paragraph = _typed(paragraph, dict, where)
            context = _text(_key(paragraph, "context", where), f"{where}, key 'context'", strip=False)
            questions = _typed(_key(paragraph, "qas", where), list, f"{where}, key 'qas'")
            for q_index, qa in enumerate(questions, start=1):
                at = f"{where}, question {q_index}"
                qa = _typed(qa, dict, at)
                qid = _qid(_key(qa, "id", at), f"{at}, key 'id'")
                at = f"{place}, question {qid}"
                _unique_id(qid, at, seen)
                question = _text(_key(qa, "question", at), f"{at}, key 'question'", strip=True)
                answers = _answers(qa, context, at, require_answers)
                examples.append(Example(context, source=f"{path}: article {title!r}, question {qid}",
                                        question=question, answers=answers, qid=qid, title=title))
    if not examples:
        raise DataError(f"{path}: holds no questions. Pass a SQuAD file with at least one question in 'qas'.")
    return examples


def read_qa_jsonl(path: str | Path, *, require_answers: bool = False) -> list[Example]:
    """Questions from a JSON-lines file, one object per line: ``question``, ``context``, and optionally ``id``
    (default ``line-<n>``), ``title`` (the article, for :func:`split_by_article`) and ``answers`` as in SQuAD.

    Blank lines are passed over.  Raises DataError, naming ``file:line``, as :func:`read_squad` does.
    """
    path = Path(path)
    text = read_text_bytes(_read_file_bytes(path), str(path), "utf-8")
    examples: list[Example] = []
    seen: dict[str, str] = {}
    for number, record in json_objects(text, path, '{"question": "...", "context": "..."}'):
        at = f"{path}:{number}"
        qid = _qid(record["id"], f"{at}, key 'id'") if "id" in record else f"line-{number}"
        _unique_id(qid, at, seen)
        title = _text(record["title"], f"{at}, key 'title'", strip=False) if "title" in record else None
        context = _text(_key(record, "context", at, _JSONL_FORM), f"{at}, key 'context'", strip=False)
        question = _text(_key(record, "question", at, _JSONL_FORM), f"{at}, key 'question'", strip=True)
        answers = _answers(record, context, at, require_answers, _JSONL_FORM)
        examples.append(Example(context, source=at, question=question, answers=answers, qid=qid, title=title))
    if not examples:
        raise DataError(f"{path}: contains only blank lines, no questions. Pass the right file or fill it.")
    return examples


def read_qa_file(path: str | Path, *, require_answers: bool = False) -> list[Example]:
    """Questions from a SQuAD-format ``.json`` file or a ``.jsonl``/``.ndjson`` file of question/context lines."""
    p = Path(path)
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        return read_qa_jsonl(p, require_answers=require_answers)
    if p.suffix.lower() == ".json":
        return read_squad(p, require_answers=require_answers)
    raise DataError(f"{p}: questions are read from SQuAD-format .json or from .jsonl lines with question and "
                    "context fields; rename the file or convert it")


def split_by_article(
    examples: Sequence[Example], test_articles: int = 8, dev_articles: int = 4, seed: int = 13
) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, dev, test) with whole articles in each part, so no paragraph is seen in training and tested on.

    The articles (by ``title``, in order of first appearance; a question without a title is its own paragraph's
    article, keyed by its context) are shuffled with ``random.Random(seed)``: the first ``test_articles`` are
    test, the next ``dev_articles`` dev, the rest train.  Each part keeps the input order.  Raises ConfigError for
    a negative count and DataError when fewer than ``test_articles + dev_articles + 1`` articles are present.
    """
    if test_articles < 0 or dev_articles < 0:
        raise ConfigError(f"article counts must be 0 or more, got test_articles={test_articles}, "
                          f"dev_articles={dev_articles}.")
    keys = [_article(example) for example in examples]
    articles = list(dict.fromkeys(keys))
    if len(articles) < test_articles + dev_articles + 1:
        raise DataError(
            f"{len(articles)} article(s), but splitting by article needs {test_articles} test + {dev_articles} dev "
            f"+ at least 1 training article. Add articles, or pass your own test/dev files (data.test_path, "
            f"data.dev_path)."
        )
    random.Random(seed).shuffle(articles)
    part = {key: "test" for key in articles[:test_articles]}
    part.update({key: "dev" for key in articles[test_articles:test_articles + dev_articles]})
    split: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for example, key in zip(examples, keys, strict=True):
        split[part.get(key, "train")].append(example)
    return split["train"], split["dev"], split["test"]


def article_count(examples: Sequence[Example]) -> int:
    """The number of distinct articles among ``examples`` (as :func:`split_by_article` counts them)."""
    return len({_article(example) for example in examples})


def _article(example: Example) -> tuple[str, str]:
    return ("title", example.title) if example.title is not None else ("context", example.text)


def _load_json(path: Path) -> object:
    """The parsed JSON of a UTF-8 file (a byte-order mark is allowed)."""
    text = read_text_bytes(_read_file_bytes(path), str(path), "utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: invalid JSON: {err.msg} at line {err.lineno}, column {err.colno}. Fix the file; a "
                        f"SQuAD file is one JSON object {_SQUAD_FORM}.") from None
    except (ValueError, RecursionError) as err:  # a number over Python's 4300-digit limit, nesting too deep
        raise DataError(f"{path}: cannot parse the JSON ({err}). Fix the file; a SQuAD file is one JSON object "
                        f"{_SQUAD_FORM}.") from None


def _key(record: dict, key: str, where: str, form: str = _SQUAD_FORM) -> Any:
    if key not in record:
        raise DataError(f"{where}: no key {key!r} (it has {sorted(record)}). Add it; the format is {form}.")
    return record[key]


def _typed(value: Any, kind: type, where: str, form: str = _SQUAD_FORM) -> Any:
    if not isinstance(value, kind):
        name = {dict: "an object", list: "a list"}[kind]
        raise DataError(f"{where}: expected {name}, got {type(value).__name__} {_short(value)}. The format is "
                        f"{form}; fix the file.")
    return value


def _text(value: object, where: str, *, strip: bool) -> str:
    """A string that is not blank (stripped when ``strip``)."""
    if not isinstance(value, str):
        raise DataError(f"{where}: expected a string, got {type(value).__name__} {_short(value)}. Fix the file.")
    if not value.strip():
        raise DataError(f"{where}: is empty. Write the text, or delete the entry.")
    return value.strip() if strip else value


def _qid(value: object, where: str) -> str:
    """A question id: a non-blank string, or an integer (kept as its decimal string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value, where, strip=True)


def _unique_id(qid: str, where: str, seen: dict[str, str]) -> None:
    if qid in seen:
        raise DataError(f"{where}: question id {qid!r} was already used at {seen[qid]}. Give every question its own "
                        f"id.")
    seen[qid] = where


def _answers(
    record: dict, context: str, where: str, required: bool, form: str = _SQUAD_FORM
) -> tuple[tuple[str, int], ...] | None:
    """The checked (text, start) answers of a question, or None when it has none (unlabelled)."""
    if record.get("is_impossible") is True:
        raise DataError(f"{where}: is a SQuAD 2.0 unanswerable question ('is_impossible': true); wordconv reads "
                        f"SQuAD v1.1, where every question has an answer. Remove such questions.")
    raw = record.get("answers")
    if raw is None or raw == []:
        if required:
            raise DataError(f"{where}: has no answers, but gold answers are needed here (training or evaluation). "
                            f"Add 'answers': [{{'text': ..., 'answer_start': ...}}], or remove the question.")
        return None
    answers = []
    for number, answer in enumerate(_typed(raw, list, f"{where}, key 'answers'", form), start=1):
        at = f"{where}, answer {number}"
        answer = _typed(answer, dict, at, form)
        text = _text(_key(answer, "text", at, form), f"{at}, key 'text'", strip=False)
        start = _key(answer, "answer_start", at, form)
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise DataError(f"{at}: answer_start is {start!r}; it must be a character offset (an integer >= 0) into "
                            f"the context. Fix the file.")
        found = context[start:start + len(text)]
        if found != text:
            raise DataError(
                f"{at}: answer {text!r} is not at answer_start {start}: the context there reads {found!r} (the "
                f"context has {len(context)} characters). Fix answer_start to the offset of the answer in the "
                f"context (counted in Unicode characters, from 0) or fix the answer text."
                + _hint(context, text, start)
            )
        answers.append((text, start))
    return tuple(answers)


def _hint(context: str, text: str, start: int) -> str:
    """Where the answer does occur in the context, when it does."""
    found = []
    at = context.find(text)
    while at >= 0:
        found.append(at)
        at = context.find(text, at + 1)
    if not found:
        return " The answer text does not occur in the context at all."
    nearest = min(found, key=lambda i: abs(i - start))
    return f" The answer text occurs at offset {nearest}" + (f" (and {len(found) - 1} more)." if len(found) > 1 else ".")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
