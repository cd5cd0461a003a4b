"""Passage retrieval: corpus reading and chunking, BM25 against a hand computation, dense retrieval with a tiny
random BERT, reciprocal rank fusion, saving/loading an index, and reusing it for the same corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from tiny_hf import write_tiny_bert

from wordconv.errors import ConfigError, DataError
from wordconv.retrieval import (
    BM25,
    Passage,
    PassageIndex,
    SentenceEncoder,
    chunk_document,
    corpus_checksum,
    index_for,
    read_corpus,
    recall_at_k,
    reciprocal_rank_fusion,
)

# words the tiny BERT's WordPiece vocabulary holds (tests/tiny.py), so no text becomes [UNK]
TOY = [
    "the film is a great story with brilliant actors",
    "the match was a boring goal league",
    "pizza and pasta with cheese and bread",
    "the soup was awful and the salad dull",
    "a charming movie of the team and the coach",
    "this plot is quite tedious and the actors weak",
]


def toy_passages(texts: list[str] = TOY) -> list[Passage]:
    return [Passage(i, f"doc{i}", t, 0) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("hf") / "bert")


# --------------------------------------------------------------------------------------------
# chunking and reading


def assert_offsets(document: str, passages: list[tuple[int, str]]) -> None:
    for start, text in passages:
        assert document[start:start + len(text)] == text
        assert text == text.strip() and text


def test_paragraphs_keep_exact_offsets_with_non_ascii_and_crlf():
    doc = "  Café naïve — 日本語の文章。\r\n second line\r\n\r\n \t\r\n\n Ünïcödé paragraph two.  \n\n\n\nß third\n"
    chunks = chunk_document(doc)
    assert [t for _, t in chunks] == ["Café naïve — 日本語の文章。\r\n second line", "Ünïcödé paragraph two.",
                                      "ß third"]
    assert_offsets(doc, chunks)


def test_long_paragraph_is_cut_into_overlapping_windows():
    words = [f"wörd{i}" for i in range(450)]
    doc = "intro paragraph\n\n" + "  ".join(words[:225]) + "\n" + " ".join(words[225:]) + "\n\nlast"
    chunks = chunk_document(doc, max_words=200, stride=50)
    assert_offsets(doc, chunks)
    assert chunks[0][1] == "intro paragraph" and chunks[-1][1] == "last"
    windows = [t.split() for _, t in chunks[1:-1]]
    assert windows == [words[0:200], words[150:350], words[300:450]]  # 50 words shared, the last word kept


def test_a_paragraph_of_exactly_max_words_is_one_passage():
    doc = " ".join(["w"] * 10)
    assert chunk_document(doc, max_words=10, stride=3) == [(0, doc)]
    assert [t.count("w") for _, t in chunk_document(doc + " w", max_words=10, stride=3)] == [10, 4]


@pytest.mark.parametrize("max_words, stride", [(0, 0), (10, 10), (10, -1)])
def test_bad_chunking_is_a_config_error(max_words, stride):
    with pytest.raises(ConfigError, match="max_words|stride"):
        chunk_document("text", max_words=max_words, stride=stride)


def test_read_folder_of_documents(tmp_path):
    corpus = tmp_path / "docs"
    (corpus / "sub").mkdir(parents=True)
    (corpus / ".hidden").mkdir()
    (corpus / "b.md").write_text("# Title\n\nBody of b.\n", encoding="utf-8")
    (corpus / "a.txt").write_text("First of a.\n\nSecond of a, naïve.", encoding="utf-8")
    (corpus / "sub" / "c.TXT").write_text("\ufeffC text", encoding="utf-8")
    (corpus / "empty.txt").write_text("  \n\n ", encoding="utf-8")
    (corpus / "skip.csv").write_text("x,y", encoding="utf-8")
    (corpus / ".hidden" / "h.txt").write_text("hidden", encoding="utf-8")
    passages = read_corpus(corpus)
    assert [(p.id, p.doc, p.text) for p in passages] == [
        (0, "a.txt", "First of a."), (1, "a.txt", "Second of a, naïve."),
        (2, "b.md", "# Title"), (3, "b.md", "Body of b."), (4, "sub/c.TXT", "C text")]
    a = (corpus / "a.txt").read_text(encoding="utf-8")
    assert all(a[p.start:p.end] == p.text for p in passages[:2])


def test_read_single_text_file_is_one_document(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("One.\n\nTwo " + "x " * 5 + "\n", encoding="utf-8")
    passages = read_corpus(path, max_words=4, stride=1)
    assert {p.doc for p in passages} == {"book.txt"}
    assert [p.text for p in passages] == ["One.", "Two x x x", "x x x"]  # words 0-3, 3-5
    text = path.read_text(encoding="utf-8")
    assert all(text[p.start:p.end] == p.text for p in passages)


def test_read_jsonl(tmp_path):
    path = tmp_path / "docs.jsonl"
    rows = [{"title": "Paris", "text": "Paris is in France.\n\nIt is big."}, {"id": 7, "text": "Seven."}, {},
            {"text": "Anonymous."}]
    path.write_text("\n".join(json.dumps(r) if r else "" for r in rows) + "\n", encoding="utf-8")
    passages = read_corpus(path)
    assert [(p.doc, p.text, p.start) for p in passages] == [
        ("Paris", "Paris is in France.", 0), ("Paris", "It is big.", 21), ("7", "Seven.", 0),
        ("docs.jsonl:4", "Anonymous.", 0)]


def squad(articles: list[tuple[str, list[str]]]) -> dict:
    return {"version": "1.1", "data": [
        {"title": t, "paragraphs": [{"context": c, "qas": []} for c in contexts]} for t, contexts in articles]}


def test_read_squad_json(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(squad([("Normans", ["The Normans were.", "Rollo came."]), ("Physics", ["Force."])])),
                    encoding="utf-8")
    passages = read_corpus(path, max_words=2, stride=0)  # SQuAD paragraphs stay whole
    assert [(p.id, p.doc, p.text, p.start) for p in passages] == [
        (0, "Normans", "The Normans were.", 0), (1, "Normans", "Rollo came.", 19), (2, "Physics", "Force.", 0)]
    document = "The Normans were.\n\nRollo came."  # the article: paragraphs joined by a blank line
    assert all(document[p.start:p.end] == p.text for p in passages[:2])


@pytest.mark.parametrize("name, content, message", [
    ("bad.jsonl", '{"text": "ok"}\n\n{"text": oops}\n', r"bad\.jsonl:3: malformed JSON"),
    ("bad.jsonl", '{"text": "ok"}\n{"title": "t"}\n', r'bad\.jsonl:2: no "text" field'),
    ("bad.jsonl", '["a list"]\n', r"bad\.jsonl:1: a JSON list"),
    ("bad.jsonl", '{"text": "a", "title": 3}\n', r'bad\.jsonl:1: "title" is a int'),
    ("bad.json", '{"data": [\n{"title": "x",}]}', r"bad\.json:2: not valid JSON"),
    ("bad.json", '{"text": "a"}', r"not SQuAD format.*\.jsonl"),
    ("bad.json", '{"data": [{"title": "x", "paragraphs": [{"qas": []}]}]}',
     r"data\[0\]\.paragraphs\[0\] has no \"context\""),
    ("bad.json", '{"data": [{"title": "x"}]}', r'data\[0\] has no "paragraphs"'),
    ("bad.csv", "a,b\n", r"unsupported file type '\.csv'"),
    ("empty.txt", " \n\n \n", r"has no text"),
    ("binary.txt", "a\x00b", r"NUL bytes"),
])
def test_corpus_errors_name_the_file_and_the_fix(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_corpus(path)


def test_missing_and_empty_corpus_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds no \.txt or \.md files"):
        read_corpus(tmp_path / "empty")


# --------------------------------------------------------------------------------------------
# BM25


def test_bm25_scores_equal_a_hand_computation():
    docs = ["the cat sat on the mat", "the dog sat", "cats and dogs"]  # lengths 6, 3, 3: avgdl 4
    bm25 = BM25(k1=1.5, b=0.75).fit(docs)
    scores = bm25.scores(["Cat SAT", "the the", "zebra"])
    idf_cat = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))  # df 1 of N 3
    idf_sat = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # df 2
    idf_the = idf_sat  # df 2 as well
    norm = {6: 1.5 * (1 - 0.75 + 0.75 * 6 / 4), 3: 1.5 * (1 - 0.75 + 0.75 * 3 / 4)}  # k1 * (1 - b + b |d| / avgdl)
    one = {n: 1 * 2.5 / (1 + norm[n]) for n in norm}  # tf = 1: tf (k1 + 1) / (tf + norm)
    two = 2 * 2.5 / (2 + norm[6])  # "the" twice in doc 0
    assert scores[0] == pytest.approx([idf_cat * one[6] + idf_sat * one[6], idf_sat * one[3], 0.0], rel=1e-12)
    assert scores[1] == pytest.approx([2 * idf_the * two, 2 * idf_the * one[3], 0.0], rel=1e-12)  # query tf counts
    assert scores[2] == pytest.approx([0.0, 0.0, 0.0])


def test_bm25_ranking_and_misses():
    index = PassageIndex.build(toy_passages(), "bm25")
    hits = index.search("pizza with cheese", k=3)
    assert hits[0].passage.id == 2 and [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert index.search("zebra quagga", k=3) == []  # no shared word: no hit
    assert len(index.search("the", k=10)) == 5  # only the five passages holding "the"


def test_bm25_stopwords_and_ties():
    texts = ["the and of", "the cat", "cat the"]
    plain = BM25().fit(texts)
    assert "the" in plain.vocabulary
    stopped = BM25(stopwords="english").fit(texts)
    assert "the" not in stopped.vocabulary and stopped.scores(["the"]).sum() == 0
    index = PassageIndex.build(toy_passages(texts), "bm25")
    assert [h.passage.id for h in index.search("cat", k=2)] == [1, 2]  # equal scores: lower id first


def test_bm25_indexes_cjk_per_character():
    index = PassageIndex.build(toy_passages(["東京は日本の首都です", "Paris est la capitale"]), "bm25")
    assert index.search("首都", k=1)[0].passage.id == 0


@pytest.mark.parametrize("kwargs, message", [({"k1": -1.0}, "k1"), ({"b": 1.5}, "b=")])
def test_bm25_parameters_are_checked(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        BM25(**kwargs)


def test_search_arguments_are_checked():
    index = PassageIndex.build(toy_passages(), "bm25")
    with pytest.raises(ConfigError, match="k=0"):
        index.search("film", k=0)
    with pytest.raises(ConfigError, match="list of queries"):
        index.search_many("film")
    with pytest.raises(ConfigError, match="method='tfidf'"):
        PassageIndex.build(toy_passages(), "tfidf")
    with pytest.raises(DataError, match="twice"):
        PassageIndex.build([Passage(0, "a", "x", 0), Passage(0, "b", "y", 0)])
    with pytest.raises(DataError, match="empty"):
        PassageIndex.build([])


# --------------------------------------------------------------------------------------------
# dense and hybrid


def test_sentence_encoder_makes_unit_vectors(bert):
    enc = SentenceEncoder(str(bert))
    assert enc.max_length == 64  # the tiny model's positions, under the default 256
    vectors = enc.encode(TOY + [""])
    assert vectors.shape == (len(TOY) + 1, 32) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(len(TOY) + 1), abs=1e-5)
    # the order of the texts in a batch (longest first, padded) does not change a text's vector
    assert enc.encode([TOY[2]])[0] == pytest.approx(vectors[2], abs=1e-5)


def test_sentence_encoder_counts_texts_it_cuts(bert, caplog):
    enc = SentenceEncoder(str(bert), max_length=8)
    enc.encode(["the film " * 10, "good"])
    assert enc.truncated == 1 and "1 of 2 texts are longer than 8" in caplog.text


def test_dense_search_ranks_a_duplicate_first_and_sorts(bert):
    index = PassageIndex.build(toy_passages(), "dense", encoder=str(bert))
    for p in index.passages:
        hits = index.search(p.text, k=4)
        assert len(hits) == 4 and hits[0].passage.id == p.id
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert len(index.search("good", k=100)) == len(TOY)


def test_reciprocal_rank_fusion_by_hand():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60)
    assert fused == [(1, pytest.approx(1 / 61 + 1 / 62)), (3, pytest.approx(1 / 63 + 1 / 61)),
                     (2, pytest.approx(1 / 62))]
    # equal scores: the better best rank first, then the lower item
    assert [item for item, _ in reciprocal_rank_fusion([[5, 4], [4, 5], [9]], k=0)] == [4, 5, 9]


def test_hybrid_fuses_the_bm25_and_dense_rankings(bert):
    passages = toy_passages()
    hybrid = PassageIndex.build(passages, "hybrid", encoder=str(bert), fusion_depth=3)
    sparse_index = PassageIndex.build(passages, "bm25")
    dense_index = PassageIndex.build(passages, "dense", encoder=str(bert))
    query = "the actors and the story"
    for k in (2, 4):  # each method's top max(k, fusion_depth) are fused
        depth = max(k, 3)
        rankings = [[h.passage.id for h in index.search(query, k=depth)] for index in (sparse_index, dense_index)]
        expected = reciprocal_rank_fusion(rankings, k=60)[:k]
        hits = hybrid.search(query, k=k)
        assert [(h.passage.id, h.score) for h in hits] == [(i, pytest.approx(s)) for i, s in expected]
        assert [h.rank for h in hits] == list(range(1, k + 1))


@pytest.mark.parametrize("method", ["bm25", "dense", "hybrid"])
def test_save_load_gives_identical_results(bert, tmp_path, method):
    index = PassageIndex.build(toy_passages(), method, encoder=str(bert) if method != "bm25" else None)
    queries = ["great story", "awful soup", "the team and the coach", TOY[1]]
    before = index.search_many(queries, k=3)
    saved = index.save(tmp_path / "idx")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary directory left
    assert sorted(p.name for p in saved.iterdir()) == sorted(
        ["index.json", "passages.json"] + (["bm25.json", "bm25.npz"] if method != "dense" else [])
        + (["dense.safetensors"] if method != "bm25" else []))
    loaded = PassageIndex.load(saved)
    assert loaded.passages == index.passages and loaded.params == index.params
    after = loaded.search_many(queries, k=3)
    assert [[h.passage for h in hits] for hits in after] == [[h.passage for h in hits] for hits in before]
    assert [[h.score for h in hits] for hits in after] == [pytest.approx([h.score for h in hits], abs=1e-6)
                                                          for hits in before]


def test_save_replaces_an_index_but_no_other_directory(tmp_path):
    target = tmp_path / "idx"
    PassageIndex.build(toy_passages(), "bm25").save(target)
    PassageIndex.build(toy_passages(TOY[:2]), "bm25").save(target)
    assert len(PassageIndex.load(target)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(DataError, match="not a passage index"):
        PassageIndex.build(toy_passages(), "bm25").save(other)


def test_load_refuses_another_method_or_encoder(bert, tmp_path):
    dense = PassageIndex.build(toy_passages(), "dense", encoder=str(bert)).save(tmp_path / "dense")
    with pytest.raises(ConfigError, match="built with method 'dense', not 'bm25'"):
        PassageIndex.load(dense, method="bm25")
    with pytest.raises(ConfigError, match="built with encoder .*bert.*, not .*other.*rebuild"):
        PassageIndex.load(dense, encoder=str(tmp_path / "other"))
    assert PassageIndex.load(dense, method="dense", encoder=str(bert)).method == "dense"
    sparse_dir = PassageIndex.build(toy_passages(), "bm25").save(tmp_path / "bm25")
    with pytest.raises(ConfigError, match="uses no encoder"):
        PassageIndex.load(sparse_dir, encoder=str(bert))


def test_load_checks_the_format(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        PassageIndex.load(tmp_path / "none")
    saved = PassageIndex.build(toy_passages(), "bm25").save(tmp_path / "idx")
    info = json.loads((saved / "index.json").read_text(encoding="utf-8"))
    (saved / "index.json").write_text(json.dumps({**info, "version": 99}), encoding="utf-8")
    with pytest.raises(DataError, match="version 99.*rebuild"):
        PassageIndex.load(saved)
    (saved / "index.json").write_text(json.dumps(info), encoding="utf-8")
    (saved / "bm25.npz").unlink()
    with pytest.raises(DataError, match="bm25.npz missing or broken"):
        PassageIndex.load(saved)


def test_index_for_reuses_or_rebuilds(bert, tmp_path, monkeypatch):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"title": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TOY)),
                      encoding="utf-8")
    index_dir = tmp_path / "index"
    built: list[str] = []
    real_build = PassageIndex.build.__func__

    def counting_build(cls, passages, method="bm25", *args, **kwargs):
        built.append(method)
        return real_build(cls, passages, method, *args, **kwargs)

    monkeypatch.setattr(PassageIndex, "build", classmethod(counting_build))
    first = index_for(corpus, index_dir)
    assert built == ["bm25"] and first.corpus["checksum"] == corpus_checksum(corpus)
    again = index_for(corpus, index_dir)
    assert built == ["bm25"] and again.passages == first.passages  # same corpus: loaded, not rebuilt
    index_for(corpus, index_dir, stopwords="english")  # other settings: rebuilt
    assert built == ["bm25", "bm25"]
    dense = index_for(corpus, index_dir, "dense", encoder=str(bert))  # other method: rebuilt
    assert built[-1] == "dense" and dense.search(TOY[3], k=1)[0].passage.id == 3
    index_for(corpus, index_dir, "dense", encoder=str(bert))
    assert len(built) == 3
    other = write_tiny_bert(tmp_path / "bert2", seed=1)
    index_for(corpus, index_dir, "dense", encoder=str(other))  # other encoder: rebuilt
    assert len(built) == 4
    index_for(corpus, index_dir, "dense", encoder=str(other), max_words=3, stride=1)  # other chunking: rebuilt
    assert len(built) == 5
    with corpus.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "a new lovely story"}) + "\n")
    grown = index_for(corpus, index_dir, "dense", encoder=str(other), max_words=3, stride=1)  # corpus changed
    assert len(built) == 6 and grown.passages[-1].text == "lovely story"
    info = json.loads((index_dir / "index.json").read_text(encoding="utf-8"))
    (index_dir / "index.json").write_text(json.dumps({**info, "version": 0}), encoding="utf-8")
    index_for(corpus, index_dir, "dense", encoder=str(other), max_words=3, stride=1)  # old format: rebuilt
    assert len(built) == 7
    with pytest.raises(ConfigError, match="unknown option"):
        index_for(corpus, index_dir, k3=1)


def test_corpus_checksum_of_a_folder_follows_its_files(tmp_path):
    (tmp_path / "a.txt").write_text("one", encoding="utf-8")
    first = corpus_checksum(tmp_path)
    (tmp_path / "ignored.csv").write_text("x", encoding="utf-8")
    assert corpus_checksum(tmp_path) == first
    (tmp_path / "a.txt").write_text("two", encoding="utf-8")
    assert corpus_checksum(tmp_path) != first


# --------------------------------------------------------------------------------------------
# evaluation


def test_recall_at_k():
    index = PassageIndex.build(toy_passages(), "bm25")
    questions = ["pizza cheese", "boring goal", "zebra", "the actors"]
    gold = [2, [0, 1], 4, {5}]  # 2 found first; 1 first (a list of golds); zebra: nothing; 5 within the top 5
    ranks = [next((h.rank for h in hits if h.passage.id in g), None)
             for hits, g in zip(index.search_many(questions, k=5), [{2}, {0, 1}, {4}, {5}], strict=True)]
    assert ranks[:3] == [1, 1, None] and ranks[3] is not None
    r = recall_at_k(index, questions, gold, ks=(1, 5))
    assert r == {1: pytest.approx((2 + (ranks[3] == 1)) / 4), 5: pytest.approx(3 / 4)}
    with pytest.raises(DataError, match="2 questions but 1 gold"):
        recall_at_k(index, questions[:2], gold[:1])
    with pytest.raises(ConfigError, match="ks="):
        recall_at_k(index, questions, gold, ks=(0,))
