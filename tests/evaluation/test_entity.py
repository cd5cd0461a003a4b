"""Tests of wordconv.evaluation.entity: hand-computed cases, and parity with seqeval (conlleval's rules)."""

from __future__ import annotations

import random
import warnings

import pytest
from seqeval.metrics import (
    accuracy_score,
    classification_report,
    f1_score,
    precision_score,
    recall_score,
)

from wordconv.errors import DataError
from wordconv.evaluation.entity import entity_metrics


def test_hand_computed_two_sentences() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"]]
    m = entity_metrics(gold, pred)
    # gold: PER 0-2, LOC 3, ORG 0, PER 2 (4); predicted: PER 0-2, ORG 3, ORG 0 (3); correct: PER 0-2, ORG 0 (2)
    assert (m["gold_entities"], m["predicted_entities"], m["correct_entities"]) == (4, 3, 2)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(4 / 7)  # 2 * 2/3 * 1/2 / (2/3 + 1/2)
    assert m["token_accuracy"] == pytest.approx(5 / 7)
    assert list(m["per_type"]) == ["LOC", "ORG", "PER"]
    assert m["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 0}
    assert m["per_type"]["ORG"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1, "predicted": 2}
    )
    assert m["per_type"]["PER"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2, "predicted": 1}
    )


def test_a_wrong_boundary_is_a_wrong_entity() -> None:
    m = entity_metrics([["B-PER", "I-PER", "O"]], [["B-PER", "B-PER", "O"]])
    assert (m["gold_entities"], m["predicted_entities"], m["correct_entities"]) == (1, 2, 0)
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)
    assert m["token_accuracy"] == pytest.approx(2 / 3)


def test_entities_not_tags_are_compared() -> None:
    # IOB1 gold, IOB2 and lenient predictions of the same entities: every entity right, not every tag
    gold = [["I-PER", "I-PER", "B-PER", "O", "I-LOC"]]
    for pred in (["B-PER", "I-PER", "B-PER", "O", "B-LOC"], ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]):
        m = entity_metrics(gold, [pred])
        assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)
    assert entity_metrics(gold, [["B-PER", "I-PER", "B-PER", "O", "B-LOC"]])["token_accuracy"] == pytest.approx(3 / 5)
    # an I- after O in the prediction starts an entity, as in conlleval
    m = entity_metrics([["O", "B-ORG", "I-ORG"]], [["O", "I-ORG", "I-ORG"]])
    assert (m["correct_entities"], m["f1"]) == (1, 1.0)


def test_bioes_tags() -> None:
    gold = [["B-PER", "E-PER", "S-LOC", "O"]]
    pred = [["B-PER", "E-PER", "B-LOC", "E-LOC"]]
    m = entity_metrics(gold, pred)
    assert (m["gold_entities"], m["predicted_entities"], m["correct_entities"]) == (2, 2, 1)
    assert m["per_type"]["LOC"]["f1"] == 0.0 and m["per_type"]["PER"]["f1"] == 1.0


def test_undefined_scores_are_zero() -> None:
    m = entity_metrics([["O", "O"]], [["O", "O"]])
    assert (m["precision"], m["recall"], m["f1"], m["token_accuracy"]) == (0.0, 0.0, 0.0, 1.0)
    assert m["per_type"] == {}
    m = entity_metrics([], [])
    assert (m["f1"], m["token_accuracy"], m["gold_entities"]) == (0.0, 0.0, 0)


def test_mismatched_lengths_and_bad_tags() -> None:
    with pytest.raises(DataError, match="2 gold sentences but 1 predicted"):
        entity_metrics([["O"], ["O"]], [["O"]])
    with pytest.raises(DataError, match="^sentence 1: 2 gold tags but 3 predicted"):
        entity_metrics([["O"], ["O", "B-PER"]], [["O"], ["O", "B-PER", "O"]])
    with pytest.raises(DataError, match=r"^sentence 0 \(predicted\) \(tag 2\): 'X-PER' is not an entity tag"):
        entity_metrics([["O", "B-PER"]], [["O", "X-PER"]])


# --------------------------------------------------------------------------------------------
# parity with seqeval (default mode: conlleval's chunk rules, S-/E- included)

TYPES = ["PER", "LOC", "ORG", "B-X"]  # a type may contain a hyphen
PREFIXES = {"iob1": "IIIIB", "iob2": "BBII", "bioes": "BBIESS", "any": "BIES"}


def _random_tag(rng: random.Random, prefixes: str) -> str:
    return "O" if rng.random() < 0.4 else f"{rng.choice(prefixes)}-{rng.choice(TYPES)}"


def _random_corpus(rng: random.Random, scheme: str, n: int) -> tuple[list[list[str]], list[list[str]]]:
    """``n`` random gold sentences (often invalid in ``scheme``) and predictions that change some of their tags."""
    gold, pred = [], []
    for _ in range(n):
        tags = [_random_tag(rng, PREFIXES[scheme]) for _ in range(rng.randint(0, 12))]
        noise = rng.choice([0.0, 0.1, 0.3, 1.0])
        gold.append(tags)
        pred.append([_random_tag(rng, PREFIXES[scheme]) if rng.random() < noise else tag for tag in tags])
    return gold, pred


def _assert_same_as_seqeval(gold: list[list[str]], pred: list[list[str]]) -> None:
    m = entity_metrics(gold, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval's UndefinedMetricWarning: it scores 0.0, as we do
        assert m["precision"] == pytest.approx(precision_score(gold, pred), abs=1e-12)
        assert m["recall"] == pytest.approx(recall_score(gold, pred), abs=1e-12)
        assert m["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
        report = classification_report(gold, pred, output_dict=True)
    if any(gold):
        assert m["token_accuracy"] == pytest.approx(accuracy_score(gold, pred), abs=1e-12)
    per_type = {name: scores for name, scores in report.items() if not name.endswith(" avg")}
    assert list(m["per_type"]) == sorted(per_type)
    for name, scores in per_type.items():
        ours = m["per_type"][name]
        assert ours["support"] == scores["support"]
        assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx(
            (scores["precision"], scores["recall"], scores["f1-score"]), abs=1e-12
        )
    assert m["gold_entities"] == (report["micro avg"]["support"] if per_type else 0)


@pytest.mark.parametrize("scheme", PREFIXES)
def test_same_as_seqeval_on_random_sequences(scheme: str) -> None:
    rng = random.Random(f"entity-{scheme}")
    corpora = [_random_corpus(rng, scheme, rng.randint(1, 8)) for _ in range(40)]
    for gold, pred in corpora:
        _assert_same_as_seqeval(gold, pred)
    # all of them as one corpus
    _assert_same_as_seqeval([s for gold, _ in corpora for s in gold], [s for _, pred in corpora for s in pred])
