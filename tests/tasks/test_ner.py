"""Task ner end to end on a tiny generated CoNLL corpus: training, save/load, prediction with offsets, CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import wordconv
from wordconv.cli import app
from wordconv.errors import ConfigError, DataError, ModelError
from wordconv.models.tagger import casing, char_ids
from wordconv.data.conll import tags_to_spans
from wordconv.tasks.ner import _joined_offsets, subword_ids, tag_id_spans, tag_names

PER = [["John"], ["Mary"], ["Ann", "Smith"], ["Peter", "Brown"]]
LOC = [["Paris"], ["Berlin"], ["New", "York"], ["Rome"]]
ORG = [["Acme", "Corp"], ["Globex"], ["United", "Nations"]]
FILL = ["the", "said", "in", "visited", "met", "a", "report", "from", "with", "on", "today", "."]

TAGGER = ["embeddings.dim=16", "model.num_filters=32", "model.char_dim=8", "model.char_filters=8",
          "training.batch_size=8", "training.progress=false", "training.lr=0.005", "training.patience=null"]


def make_sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sent: list[tuple[str, str]] = []
        for _ in range(rng.randint(1, 3)):
            sent += [(w, "O") for w in rng.sample(FILL, rng.randint(1, 3))]
            typ, names = rng.choice([("PER", PER), ("LOC", LOC), ("ORG", ORG)])
            name = rng.choice(names)
            sent += [(w, ("B-" if i == 0 else "I-") + typ) for i, w in enumerate(name)]
        out.append(sent)
    return out


def write_conll(path, sentences, docstart=True):
    lines = ["-DOCSTART- -X- -X- O", ""] if docstart else []
    for s in sentences:
        lines += [f"{w} NN O {t}" for w, t in s] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def conll(tmp_path):
    return {split: write_conll(tmp_path / f"{split}.txt", make_sentences(n, seed))
            for split, n, seed in (("train", 120, 0), ("dev", 30, 1), ("test", 30, 2))}


def train_tagger(conll, out=None, extra=(), epochs=12):
    return wordconv.train(str(conll["train"]), "tagger", out, task="ner", epochs=epochs, overrides=[
        *TAGGER, f"data.dev_path={conll['dev']}", f"data.test_path={conll['test']}", *extra])


def test_tag_names_and_features():
    assert tag_names(["LOC", "PER"], "iob2") == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert tag_names(["X"], "bioes") == ["O", "B-X", "I-X", "E-X", "S-X"]
    assert [casing(w) for w in ["paris", "NATO", "Paris", "iPhone", "1996", ",", "A"]] == [1, 2, 3, 4, 5, 6, 3]
    assert char_ids("ab", 512, 20) == (1 + 97 % 511, 1 + 98 % 511)
    long = char_ids("abcdefghij", 512, 4)  # head 2 + tail 2
    assert long == char_ids("abij", 512, 4)


@pytest.mark.parametrize("scheme", ["iob2", "bioes"])
def test_tag_id_spans_read_tags_as_conlleval(scheme):
    """The id-based reader (only the non-O words) agrees with the tag-string reader on random, mostly
    invalid sequences (I- after O, E- without B-, type changes)."""
    tags = tag_names(["LOC", "PER"], scheme)
    prefixes, types = [t[0] for t in tags], ["" if t == "O" else t[2:] for t in tags]
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(0, 12))
        ids = np.where(rng.random(n) < 0.4, 0, rng.integers(0, len(tags), n))
        want = tags_to_spans([tags[j] for j in ids])
        got = tag_id_spans(ids, prefixes, types)
        assert got == want, [tags[j] for j in ids]
    assert tag_id_spans(np.array([1, 2, 0, 2]), prefixes, types) == [("LOC", 0, 2), ("LOC", 3, 4)]
    assert _joined_offsets(["New", "York", "!"]) == [(0, 3), (4, 8), (9, 10)]
    assert _joined_offsets([]) == []


@pytest.mark.parametrize("crf", [True, False])
def test_tagger_learns_and_round_trips(conll, tmp_path, crf):
    out = tmp_path / "model"
    pred = train_tagger(conll, out, extra=[f"model.crf={str(crf).lower()}"])
    assert pred.metrics["f1"] >= 0.95, pred.metrics
    assert set(pred.metrics["per_type"]) == {"LOC", "ORG", "PER"}
    text = "the report said Mary visited New York with Acme Corp."
    first = pred.predict([text])[0]
    ents = {(e.type, e.text) for e in first.entities}
    assert ("PER", "Mary") in ents and ("LOC", "New York") in ents
    for e in first.entities:
        assert text[e.start:e.end] == e.text and 0.0 < e.score <= 1.0
    assert len(first.tags) == len(first.tokens) == len(first.offsets)
    loaded = wordconv.load(out)
    again = loaded.predict([text])[0]
    assert again.to_dict() == first.to_dict()
    assert loaded.labels == ["LOC", "ORG", "PER"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["f1"] == pred.metrics["f1"] and metrics["task"] == "ner"


def test_padding_does_not_change_tags(conll):
    pred = train_tagger(conll, epochs=2)
    short = ["John", "met", "Mary"]
    long = ["the"] * 30 + ["Peter", "Brown", "visited", "Rome"]
    alone = pred.predict_tokens([short])[0].tags
    together = pred.predict_tokens([short, long], batch_size=2)[0].tags
    assert alone == together
    with pytest.raises(DataError, match="sentence 1: expected a list of non-empty words"):
        pred.predict_tokens([short, ["Mary", ""]])
    with pytest.raises(DataError, match="sentence 0 has no words"):
        pred.predict_tokens([[]])
    with pytest.raises(ModelError, match="use predict"):
        pred.predict_proba(["John met Mary"])


def test_evaluate_and_cli(conll, tmp_path):
    out = tmp_path / "m"
    train_tagger(conll, out, epochs=2)
    metrics = wordconv.evaluate(out, str(conll["test"]))
    assert {"f1", "precision", "recall", "token_accuracy"} <= set(metrics)
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(out), "Mary visited Paris today ."])
    assert res.exit_code == 0, res.output
    line = json.loads(res.stdout.strip().splitlines()[0])
    assert line["text"] == "Mary visited Paris today ." and "entities" in line and "tags" in line
    res = runner.invoke(app, ["evaluate", str(out), "--data", str(conll["test"])])
    assert res.exit_code == 0 and "entity F1" in res.output


def test_unknown_type_at_evaluation_names_line(conll, tmp_path):
    out = tmp_path / "m"
    train_tagger(conll, out, epochs=1)
    bad = tmp_path / "bad.txt"
    bad.write_text("Mary NN O B-PER\nZork NN O B-ALIEN\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.txt:1.*ALIEN"):
        wordconv.evaluate(out, str(bad))


def test_config_errors(conll):
    with pytest.raises(ConfigError, match="'textcnn' does not serve task 'ner'; models that do: pretrained, tagger"):
        wordconv.train(str(conll["train"]), "textcnn", task="ner", overrides=TAGGER[:1])
    with pytest.raises(ConfigError, match="'tagger' does not serve task 'textcat'"):
        wordconv.train(str(conll["train"]), "tagger", overrides=["training.progress=false"])


# ---- a pretrained encoder as the tagger ---------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_ner_bert(tmp_path_factory):
    from tiny_hf import write_tiny_bert_words

    words = sorted({w for names in PER + LOC + ORG for n in names for w in [n]} | set(FILL))
    return write_tiny_bert_words(tmp_path_factory.mktemp("bert"), words)


def test_subword_alignment_round_trip(tiny_ner_bert):
    from wordconv.models.pretrained import PretrainedEncoder, PretrainedParams

    enc = PretrainedEncoder(PretrainedParams(encoder=str(tiny_ner_bert), max_length=12), tiny_ner_bert, weights=True)
    sents = [["John", "visited", "Paris"], ["xyzzy", "the", "New", "York", "report"]]
    ids, first = subword_ids(enc, sents)
    for s, row, f in zip(sents, ids, first):
        assert len(f) == len(s) and f[0] == 0 and all(a < b for a, b in zip(f, f[1:]))
        for i, w in enumerate(s):  # each word's pieces are the tokenizer's pieces of that word
            end = f[i + 1] if i + 1 < len(f) else len(row)
            assert row[f[i]:end] == enc.tokenizer(w, add_special_tokens=False)["input_ids"]
    long = [["the"] * 20]
    ids, first = subword_ids(enc, long)
    assert len(ids[0]) == enc.content and first[0][enc.content:] == [-1] * (20 - enc.content)


@pytest.mark.parametrize("case_dim", [0, 4])
def test_pretrained_tagger_learns(conll, tiny_ner_bert, tmp_path, case_dim):
    out = tmp_path / "bert-ner"
    pred = wordconv.train(str(conll["train"]), "pretrained", out, task="ner", epochs=8, overrides=[
        f"model.encoder={tiny_ner_bert}", f"model.case_dim={case_dim}", "training.lr=0.003", "training.batch_size=8", "training.progress=false",
        f"data.dev_path={conll['dev']}", f"data.test_path={conll['test']}", "training.patience=null"])
    assert pred.metrics["f1"] >= 0.85, pred.metrics
    text = "the report said Mary visited Paris ."
    before = pred.predict([text])[0].to_dict()
    assert wordconv.load(out).predict([text])[0].to_dict() == before
    assert before["tags"][3] == "B-PER"
    assert (pred.model.case is not None) == bool(case_dim)


def test_word_dropout_only_while_training():
    from wordconv.config import EmbeddingConfig
    from wordconv.models.tagger import ConvTagger, TaggerConfig

    torch.manual_seed(0)
    enc = ConvTagger(TaggerConfig(word_dropout=0.5, input_dropout=0.0, conv_dropout=0.0, num_filters=8, char_dim=0,
                                  case_dim=0), EmbeddingConfig(dim=4), vocab_size=20)
    ids = torch.randint(2, 20, (4, 9))
    enc.eval()
    assert torch.equal(enc(ids).states, enc(ids).states)
    enc.train()
    assert not torch.equal(enc(ids).states, enc(ids).states)
    with pytest.raises(ValueError, match="word_dropout"):
        TaggerConfig(word_dropout=1.0)


def test_tagger_batches_look_words_up_in_tables_of_distinct_words():
    """Each distinct word's id, casing class and characters are computed once; a batch gathers them."""
    from wordconv.data.readers import Example
    from wordconv.data.vocab import Vocab
    from wordconv.tasks.base import WordIds
    from wordconv.tasks.ner import NamedEntityRecognition

    task = NamedEntityRecognition(["PER"], scheme="bioes", crf=True)
    vocab = Vocab(["<pad>", "<unk>", "met", "john"])
    sents = [["John", "met", "Mary"], ["Mary", "met", "JOHN", "again", "1996"], ["met"]]
    data = task.encode([Example(" ".join(s), None, "t", tokens=tuple(s)) for s in sents],
                       WordIds(None, vocab), 1, "input", with_labels=False)
    assert len(data.type_ids) == 1 + len({w for s in sents for w in s})  # row 0: padding
    batches = list(data.batches(8, shuffle=False))
    assert len(batches) == 1
    b = batches[0]
    for r, i in enumerate(b["index"].tolist()):
        words = sents[i]
        assert b["ids"][r, :len(words)].tolist() == vocab.encode([w.lower() for w in words])
        assert b["case"][r, :len(words)].tolist() == [casing(w) for w in words]
        for j, w in enumerate(words):
            ids = char_ids(w, task.char_buckets, task.max_word_chars)
            assert b["chars"][r, j, :len(ids)].tolist() == list(ids) and not b["chars"][r, j, len(ids):].any()
        assert (b["ids"][r, len(words):] == 0).all() and (b["types"][r, len(words):] == 0).all()
        assert not b["chars"][r, len(words):].any()
    assert "chars" not in next(iter(data.batches(8, shuffle=False, chars=False)))


def test_tagging_pauses_the_garbage_collector_and_restores_it():
    import gc

    from wordconv.inference import _gc_paused

    assert gc.isenabled()
    with _gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()  # re-enabled after an error too
    gc.disable()
    try:
        with _gc_paused():
            pass
        assert not gc.isenabled()  # a caller's disabled collector stays disabled
    finally:
        gc.enable()


def test_tagger_brings_its_training_defaults_unless_set():
    from wordconv.pipeline import resolve_config

    cfg = resolve_config(None, ["task=ner", "model.type=tagger"])
    assert (cfg.training.epochs, cfg.training.patience) == (50, 8)
    cfg = resolve_config(None, ["task=ner", "model.type=tagger", "training.patience=3"], epochs=4)
    assert (cfg.training.epochs, cfg.training.patience) == (4, 3)
