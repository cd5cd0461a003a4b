"""SQuAD v1.1 dev from ../shared/data/squad11 (skipped when absent): the published counts, every answer at its
offset, the registry's split by article, and a perfect score for the gold answers themselves."""

from __future__ import annotations

import json

import pytest
from tiny import shared_data_dir

from wordconv.data.registry import load_data
from wordconv.data.squad import article_count, read_squad
from wordconv.evaluation.squad import squad_metrics

DATA = shared_data_dir()
SQUAD = DATA / "squad11" / "dev-v1.1.json" if DATA is not None else None
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(SQUAD is None or not SQUAD.is_file(), reason="SQuAD v1.1 (../shared/data/squad11) not present"),
]


def test_counts_and_offsets() -> None:
    examples = read_squad(SQUAD, require_answers=True)
    assert len(examples) == 10570 and article_count(examples) == 48
    assert len({e.text for e in examples}) == 2067  # paragraphs
    assert sum(len(e.answers) for e in examples) == 34726
    assert all(e.text[start:start + len(text)] == text for e in examples for text, start in e.answers)
    raw = json.loads(SQUAD.read_text(encoding="utf-8"))  # the reader keeps file order and ids
    assert [e.qid for e in examples] == [q["id"] for a in raw["data"] for p in a["paragraphs"] for q in p["qas"]]
    assert examples[0].source == f"{SQUAD}: article 'Super_Bowl_50', question 56be4db0acb8001400a502ec"


def test_registry_split_by_article(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORDCONV_DATA", raising=False)
    splits = load_data("squad11", data_dir=DATA, task="qa", download=False)
    assert splits.split_note == "SQuAD v1.1 dev split by article: 36 train / 4 dev / 8 test articles, seed 13"
    assert splits.labels == ["answer"]
    assert [len(part) for part in (splits.train, splits.dev, splits.test)] == [7845, 1117, 1608]
    titles = [{e.title for e in part} for part in (splits.train, splits.dev, splits.test)]
    assert [len(t) for t in titles] == [36, 4, 8]
    assert titles[1] == {"Huguenot", "Martin_Luther", "Prime_number", "Teacher"}
    assert titles[2] == {"Black_Death", "Construction", "Ctenophora", "Force", "Harvard_University",
                         "Jacksonville,_Florida", "Nikola_Tesla", "Victoria_and_Albert_Museum"}
    other = load_data("squad11", data_dir=DATA, task="qa", download=False, seed=14)
    assert {e.title for e in other.test} != titles[2]


def test_gold_answers_score_perfectly() -> None:
    examples = read_squad(SQUAD, require_answers=True)
    golds = [[text for text, _ in e.answers] for e in examples]
    assert squad_metrics([g[0] for g in golds], golds) == {"exact_match": 100.0, "f1": 100.0, "count": 10570}
