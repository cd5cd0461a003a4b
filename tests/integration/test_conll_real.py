"""CoNLL-2003 from ../shared/data/conll2003 (skipped when absent): the reader's IOB1 -> IOB2 conversion of the
original files equals the IOB2 copies, and the sentence, token and entity counts are the published ones."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from tiny import shared_data_dir

from wordconv.data.conll import read_conll, tags_to_spans
from wordconv.data.readers import read_examples
from wordconv.evaluation.entity import entity_metrics

DATA = shared_data_dir()
CONLL = DATA / "conll2003" if DATA is not None else None
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CONLL is None or not CONLL.is_dir(), reason="CoNLL-2003 (../shared/data/conll2003) not present"),
]

# original IOB1 file, IOB2 copy, sentences, tokens, entities per type (the README's table, = the CoNLL-2003 paper)
SPLITS = [
    ("eng.train", "iob2/train.txt", 14041, 203621, {"PER": 6600, "LOC": 7140, "ORG": 6321, "MISC": 3438}),
    ("eng.testa", "iob2/valid.txt", 3250, 51362, {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922}),
    ("eng.testb", "iob2/test.txt", 3453, 46435, {"PER": 1617, "LOC": 1668, "ORG": 1661, "MISC": 702}),
]


def _raw_sentences(path: Path) -> list[list[list[str]]]:
    """The sentences of a CoNLL file as lists of columns, parsed independently of wordconv."""
    sentences: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in path.read_text(encoding="ascii").split("\n"):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if current:
                sentences.append(current)
            current = []
            continue
        current.append(line.split(" "))
    if current:
        sentences.append(current)
    return sentences


@pytest.mark.parametrize(("original", "copy", "n_sentences", "n_tokens", "entities"), SPLITS)
def test_iob1_files_convert_to_the_iob2_copies(
    original: str, copy: str, n_sentences: int, n_tokens: int, entities: dict[str, int]
) -> None:
    examples = read_conll(CONLL / original)
    raw = _raw_sentences(CONLL / copy)
    assert len(examples) == len(raw) == n_sentences
    assert sum(len(example.tokens) for example in examples) == n_tokens
    assert [example.tokens for example in examples] == [tuple(columns[0] for columns in s) for s in raw]
    iob2 = [tuple(columns[-1] for columns in s) for s in raw]
    assert [example.tags for example in examples] == iob2  # the conversion, exactly
    assert [example.tags for example in read_conll(CONLL / copy, scheme="iob2")] == iob2  # the identity
    counts = Counter(span[0] for example in examples for span in tags_to_spans(example.tags))
    assert counts == entities
    assert all(example.text == " ".join(example.tokens) and example.label is None for example in examples)
    assert examples[0].source == f"{CONLL / original}:3"  # after the -DOCSTART- line and its blank line


def test_entity_metrics_of_iob1_gold_against_its_iob2_copy() -> None:
    # the same entities in both schemes: perfect entity scores though the tags differ
    gold = [[columns[-1] for columns in s] for s in _raw_sentences(CONLL / "eng.testb")]
    pred = [list(example.tags) for example in read_examples(CONLL / "iob2" / "test.txt", "conll")]
    m = entity_metrics(gold, pred)
    assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)
    assert m["gold_entities"] == m["correct_entities"] == 1617 + 1668 + 1661 + 702
    assert m["token_accuracy"] < 1.0


def test_registry_entry_and_a_short_tagger_run(tmp_path):
    """``conll2003`` through the registry (train / testa / testb) and five epochs of the CNN tagger on 400
    training sentences: far from the benchmark, but the real files run end to end and it learns something."""
    import wordconv
    from wordconv.data.registry import load_data

    splits = load_data("conll2003", data_dir=DATA, task="ner")
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (14041, 3250, 3453)
    assert splits.labels == ["LOC", "MISC", "ORG", "PER"]
    small = tmp_path / "train.txt"
    small.write_text("".join("".join(f"{w} {t}\n" for w, t in zip(ex.tokens, ex.tags)) + "\n"
                             for ex in splits.train[:400]), encoding="utf-8")
    test = CONLL / "iob2" / "valid.txt"
    pred = wordconv.train(str(small), "tagger", task="ner", epochs=5, overrides=[
        f"data.test_path={test}", "model.num_filters=64", "training.batch_size=16", "training.lr=0.003",
        "training.progress=false"])
    assert pred.metrics["f1"] > 0.2, pred.metrics
