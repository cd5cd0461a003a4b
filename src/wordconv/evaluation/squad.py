"""The SQuAD v1.1 metrics, computed as the official ``evaluate-v1.1.py`` script computes them.

An answer is normalized by lower-casing it, deleting ASCII punctuation (``string.punctuation``), deleting the
words ``a``/``an``/``the`` and collapsing whitespace.  Exact match is 1 when the normalized prediction equals the
normalized gold answer; F1 is the harmonic mean of precision and recall over the bags of normalized words (0
when no word is shared, so an empty prediction scores 0 even against an empty gold answer).  A question scores
the maximum over its gold answers; the totals are the means over questions, as percentages (0-100).  The
arithmetic follows the script step by step, so the numbers are identical to its, not just close.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from wordconv.errors import DataError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop the articles a/an/the, and join the words with single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(pred: str, gold: str) -> float:
    """1.0 when ``pred`` and ``gold`` are equal after :func:`normalize_answer`, else 0.0."""
    return float(normalize_answer(pred) == normalize_answer(gold))


def f1(pred: str, gold: str) -> float:
    """Token-level F1 of the normalized words of ``pred`` against those of ``gold`` (0.0 when none is shared)."""
    pred_tokens = normalize_answer(pred).split()
    gold_tokens = normalize_answer(gold).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = 1.0 * same / len(pred_tokens)
    recall = 1.0 * same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_metrics(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict:
    """``exact_match`` and ``f1`` (percentages, 0-100) of one predicted answer per question against that question's
    gold answers (the best-scoring gold answer counts), and ``count``, the number of questions.

    No questions give 0.0 for both.  Raises DataError when the numbers of predictions and questions differ, or
    for a question without gold answers.
    """
    if len(predictions) != len(golds):
        raise DataError(
            f"{len(predictions)} predictions but {len(golds)} questions. Pass one predicted answer per question, in "
            f"the same order."
        )
    total_em = total_f1 = 0.0
    for index, (pred, answers) in enumerate(zip(predictions, golds, strict=True)):
        if isinstance(answers, str) or not answers:
            raise DataError(
                f"question {index}: gold answers {answers!r}; each question needs a list of one or more gold answer "
                f"strings. Evaluate on labelled questions only."
            )
        total_em += max(exact_match(pred, gold) for gold in answers)
        total_f1 += max(f1(pred, gold) for gold in answers)
    count = len(golds)
    return {
        "exact_match": 100.0 * total_em / count if count else 0.0,
        "f1": 100.0 * total_f1 / count if count else 0.0,
        "count": count,
    }
