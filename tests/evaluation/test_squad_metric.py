"""Tests of wordconv.evaluation.squad: parity with the official SQuAD v1.1 evaluation script on hand cases and on
random ones, whose numbers must be identical (not approximately equal)."""

from __future__ import annotations

import random
import re
import string
import sys
from collections import Counter

import pytest

from wordconv.errors import DataError
from wordconv.evaluation import squad as ours
from wordconv.evaluation.squad import squad_metrics

# --- the official evaluate-v1.1.py (https://rajpurkar.github.io/SQuAD-explorer/), its functions verbatim ---------


def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return (normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def evaluate(dataset, predictions):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article['paragraphs']:
            for qa in paragraph['qas']:
                total += 1
                if qa['id'] not in predictions:
                    message = 'Unanswered question ' + qa['id'] + \
                              ' will receive score 0.'
                    print(message, file=sys.stderr)
                    continue
                ground_truths = list(map(lambda x: x['text'], qa['answers']))  # noqa: C417
                prediction = predictions[qa['id']]
                exact_match += metric_max_over_ground_truths(
                    exact_match_score, prediction, ground_truths)
                f1 += metric_max_over_ground_truths(
                    f1_score, prediction, ground_truths)

    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total

    return {'exact_match': exact_match, 'f1': f1}

# --- end of the official script --------------------------------------------------------------------------------


def official(predictions: list[str], golds: list[list[str]]) -> dict:
    """The official ``evaluate`` on a dataset built from parallel predictions and gold answer lists."""
    qas = [{"id": str(i), "answers": [{"text": g} for g in gold]} for i, gold in enumerate(golds)]
    dataset = [{"paragraphs": [{"qas": qas}]}]
    return evaluate(dataset, {str(i): pred for i, pred in enumerate(predictions)})


# (prediction, gold answers)
HAND = [
    ("the Denver Broncos", ["Denver Broncos"]),  # article dropped
    ("An apple a day", ["apple day"]),
    ("theatre", ["the atre"]),  # 'the' only as a whole word
    ("Broncos.", ["broncos"]),  # punctuation
    ("U.S.A.", ["USA"]),
    ("rock-n-roll", ["rocknroll"]),
    ("“quoted”", ['"quoted"']),  # curly quotes are not string.punctuation
    ("  Denver \t\n Broncos ", ["Denver Broncos"]),  # whitespace
    ("Denver", ["Denver Broncos", "the Broncos", "Carolina"]),  # several gold answers: best one counts
    ("Carolina Panthers", ["Denver Broncos", "Panthers", "Carolina Panthers"]),
    ("", ["Denver Broncos"]),  # empty prediction
    ("the", ["a"]),  # both normalize to empty: EM 1, F1 0
    ("", [""]),
    ("a b a b c", ["a b c c", "b b"]),  # repeated words: bags, not sets
    ("Über straße", ["über STRASSE", "über straße"]),
    ("1,000", ["1000"]),
]


@pytest.mark.parametrize(("pred", "golds"), HAND)
def test_hand_cases_match_the_official_script(pred: str, golds: list[str]) -> None:
    for gold in golds:
        assert ours.normalize_answer(gold) == normalize_answer(gold)
        assert ours.exact_match(pred, gold) == exact_match_score(pred, gold)
        assert ours.f1(pred, gold) == f1_score(pred, gold)
    assert squad_metrics([pred], [golds]) == {**official([pred], [golds]), "count": 1}


def test_hand_values() -> None:
    assert ours.normalize_answer("The  Denver, Broncos!") == "denver broncos"
    assert ours.exact_match("the Denver Broncos", "Denver Broncos") == 1.0
    assert ours.f1("Denver", "Denver Broncos") == pytest.approx(2 / 3)  # P 1, R 1/2
    assert ours.f1("the", "a") == 0.0 and ours.exact_match("the", "a") == 1.0
    m = squad_metrics(["Denver", "Panthers", "nothing"], [["Denver Broncos", "Denver"], ["Carolina Panthers"], ["x"]])
    assert m["count"] == 3
    assert m["exact_match"] == pytest.approx(100 / 3)
    assert m["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert squad_metrics([], []) == {"exact_match": 0.0, "f1": 0.0, "count": 0}


WORDS = ["the", "a", "an", "The", "AN", "Denver", "broncos", "Broncos", "1,000", "U.S.", "x", "theatre", "an-d",
         "café", "CAFÉ", "(50)", "'s", "—", "1889", "in", "a.", "the,", "", "!", "Ünïcode"]
SPACES = [" ", "  ", "\t", "\n", " \u00a0 ", ""]


def _answer(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(0, 6))]
    return "".join(word + rng.choice(SPACES) for word in words)


def test_random_cases_match_the_official_script() -> None:
    rng = random.Random(7)
    predictions, golds = [], []
    for _ in range(400):
        gold = [_answer(rng) for _ in range(rng.randint(1, 4))]
        pred = rng.choice(gold) if rng.random() < 0.2 else _answer(rng)  # some exact hits
        predictions.append(pred)
        golds.append(gold)
        for answer in gold:
            assert ours.normalize_answer(answer) == normalize_answer(answer)
            assert ours.f1(pred, answer) == f1_score(pred, answer)
            assert ours.exact_match(pred, answer) == exact_match_score(pred, answer)
    result = squad_metrics(predictions, golds)
    assert result == {**official(predictions, golds), "count": 400}  # identical floats
    assert 0 < result["exact_match"] < 100 and 0 < result["f1"] < 100


def test_errors() -> None:
    with pytest.raises(DataError, match=r"2 predictions but 1 questions"):
        squad_metrics(["a", "b"], [["a"]])
    with pytest.raises(DataError, match=r"question 1: gold answers \[\]; each question needs"):
        squad_metrics(["a", "b"], [["a"], []])
    with pytest.raises(DataError, match=r"question 0: gold answers 'a'"):
        squad_metrics(["a"], ["a"])
