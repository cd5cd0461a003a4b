"""Open-domain QA: retrieve passages from a collection, read the answer from them (`wordconv qa`)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

import wordconv
from tiny_qa import make_articles, write_squad
from wordconv.cli import app
from wordconv.errors import ConfigError, ModelError
from wordconv.opendomain import default_index_dir, read_open
from wordconv.retrieval import PassageIndex, read_corpus


ARTICLES = make_articles(8, 0, titles=2)  # one person per paragraph: "NAME lives in CITY and works at FIRM ."


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    d = tmp_path_factory.mktemp("reader")
    train = write_squad(d / "train.json", ARTICLES)
    return wordconv.train(str(train), "qanet", d / "model", task="qa", epochs=30, overrides=[
        "embeddings.dim=32", "model.hidden=32", "training.batch_size=8", "training.patience=30",
        f"data.dev_path={train}", f"data.test_path={train}", "training.progress=false"])


@pytest.fixture
def corpus(tmp_path):
    """The reader's paragraphs as documents (``doc0.txt`` ... with a leading paragraph about nothing), and
    their questions with answers: the reader knows them all, so a wrong answer is the retrieval's fault."""
    folder = tmp_path / "docs"
    folder.mkdir()
    qas = []
    paragraphs = [p for a in ARTICLES for p in a["paragraphs"]]
    names = [p["context"].split()[0] for p in paragraphs]
    for i, p in enumerate(paragraphs):
        (folder / f"doc{i}.txt").write_text(f"an introduction .\n\n{p['context']}\n", encoding="utf-8")
        if names.count(names[i]) == 1:  # a name in two paragraphs would make its questions ambiguous
            qas += [(qa["question"], qa["answers"][0]["text"], f"doc{i}.txt") for qa in p["qas"]]
    assert len(qas) >= 4
    return folder, qas


def test_answers_come_from_the_retrieved_passage(reader, corpus):
    folder, qas = corpus
    index = PassageIndex.build(read_corpus(folder), method="bm25")
    answers = read_open(reader, index, [q for q, _, _ in qas], k=3)
    assert [a.answer for a in answers] == [a for _, a, _ in qas]
    assert [a.doc for a in answers] == [d for _, _, d in qas]
    for a in answers:
        text = (folder / a.doc).read_text(encoding="utf-8")
        assert text[a.doc_start:a.doc_end] == a.answer == a.context[a.start:a.end]  # offsets in passage and document
        assert a.retrieval_rank >= 1 and 0.0 <= a.score <= 1.0


def test_cli_indexes_once_and_reuses_the_index(reader, corpus, tmp_path, monkeypatch):
    folder, qas = corpus
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))
    question, answer, doc = qas[3]
    args = ["qa", str(reader.path), "--corpus", str(folder), "--question", question, "--top-k", "2"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout.splitlines()[0])
    assert row["answer"] == answer and row["doc"] == doc and row["question"] == question and "context" not in row
    where = default_index_dir(folder, "bm25")
    assert where.is_dir() and str(tmp_path / "cache") in str(where)
    stamp = sorted(p.stat().st_mtime_ns for p in where.iterdir())
    res = CliRunner().invoke(app, args)  # same corpus: the saved index is loaded, not rebuilt
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[0])["answer"] == answer
    assert sorted(p.stat().st_mtime_ns for p in where.iterdir()) == stamp
    # a question file
    qs = tmp_path / "questions.txt"
    qs.write_text(f"{qas[0][0]}\n\n{qas[2][0]}\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["qa", str(reader.path), "--corpus", str(folder), "--input", str(qs)])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["answer"] for x in res.stdout.splitlines()] == [qas[0][1], qas[2][1]]


def test_clear_errors(reader, corpus, tmp_path):
    corpus, _ = corpus
    res = CliRunner().invoke(app, ["qa", str(reader.path), "--corpus", str(corpus)])
    assert res.exit_code != 0 and "nothing to answer" in res.output
    res = CliRunner().invoke(app, ["qa", str(reader.path), "--corpus", str(corpus), "-q", "x ?", "--retriever", "tfidf"])
    assert res.exit_code != 0 and "bm25, dense or hybrid" in res.output
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "a ?"}\n{"q": 1}\n', encoding="utf-8")
    res = CliRunner().invoke(app, ["qa", str(reader.path), "--corpus", str(corpus), "--input", str(bad)])
    assert res.exit_code != 0 and "q.jsonl:2" in res.output


def test_a_classifier_is_not_a_reader(tmp_path, corpus):
    corpus, _ = corpus
    from tiny import make_sentences, write_labelfirst

    data = write_labelfirst(tmp_path / "train.txt", make_sentences(40, 0))
    clf = wordconv.train(str(data), "textcnn", overrides=["training.progress=false", "training.epochs=1"])
    with pytest.raises(ModelError, match="reader"):
        read_open(clf, PassageIndex.build(read_corpus(corpus)), ["who ?"])


def test_rank_weight_trusts_the_retrievers_order(reader, corpus):
    """span_score - w * ln(rank): w = 0 keeps the best span over the passages, a large w the answer read from
    the first passage, and in between each span competes on its score after the rank penalty.  The
    "retriever" here puts the question's own paragraph third, after two other people's."""
    from wordconv.retrieval import Hit

    folder, qas = corpus
    passages = read_corpus(folder)
    bm25 = PassageIndex.build(passages, method="bm25")
    content = [p for p in passages if "lives" in p.text]

    class Reversed:  # two other people's paragraphs first, the question's own third
        def search_many(self, questions, k):
            out = []
            for top in bm25.search_many(questions, 1):
                others = [p for p in content if p.id != top[0].passage.id][:k - 1]
                out.append([Hit(p, 0.0, r + 1) for r, p in enumerate([*others, top[0].passage])])
            return out

    index, questions = Reversed(), [q for q, _, _ in qas]
    hits = index.search_many(questions, 3)
    reads = {(q, h.rank): r for q, hs in zip(questions, hits) for h in hs
             for r in reader.answer([q], [h.passage.text])}
    plain = read_open(reader, index, questions, k=3)
    assert any(a.retrieval_rank > 1 for a in plain)  # by its own score the reader reaches past rank 1 ...
    first = read_open(reader, index, questions, k=3, rank_weight=1e6)
    assert all(a.retrieval_rank == 1 for a in first)  # ... a large weight keeps it at rank 1
    assert [a.answer for a in first] != [a.answer for a in plain]
    for w in (0.0, 0.5, 3.0, 1e6):
        got = read_open(reader, index, questions, k=3, rank_weight=w)
        for q, hs, a in zip(questions, hits, got):
            best = max((h.rank for h in hs), key=lambda r: (reads[(q, r)].span_score - w * math.log(r), -r))
            assert a.retrieval_rank == best and a.answer == reads[(q, best)].answer, (w, q)
    with pytest.raises(ConfigError, match="rank_weight"):
        read_open(reader, index, questions, k=3, rank_weight=-1.0)
    res = CliRunner().invoke(app, ["qa", str(reader.path), "--corpus", str(folder), "-q", "x ?", "--rank-weight", "-2"])
    assert res.exit_code != 0 and "--rank-weight" in res.output
