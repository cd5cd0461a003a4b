"""Tests of wordconv.data.squad (SQuAD JSON and JSON-lines questions, the split by article) and of load_data with
task qa on user files and registry names."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from wordconv.data.registry import load_data
from wordconv.data.squad import (
    article_count,
    read_qa_jsonl,
    read_squad,
    split_by_article,
)
from wordconv.errors import ConfigError, DataError

CONTEXT = "The Eiffel Tower was completed in 1889. It stands in Paris."


def squad_doc(n_articles: int = 2, questions: int = 2) -> dict:
    """A valid SQuAD document: ``n_articles`` articles of one paragraph with ``questions`` questions each."""
    data = []
    for a in range(n_articles):
        qas = [
            {"id": f"a{a}q{q}", "question": f"  When was tower {a} done ({q})? ",
             "answers": [{"text": "1889", "answer_start": 34}, {"text": "in 1889", "answer_start": 31}]}
            for q in range(questions)
        ]
        data.append({"title": f"Article_{a}", "paragraphs": [{"context": CONTEXT, "qas": qas}]})
    return {"version": "1.1", "data": data}


def write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_reads_a_good_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "s.json", squad_doc())
    examples = read_squad(path)
    assert [e.qid for e in examples] == ["a0q0", "a0q1", "a1q0", "a1q1"]
    first = examples[0]
    assert first.text == CONTEXT and first.question == "When was tower 0 done (0)?"  # question stripped
    assert first.answers == (("1889", 34), ("in 1889", 31))
    assert first.title == "Article_0" and first.label is None
    assert first.source == f"{path}: article 'Article_0', question a0q0"
    assert article_count(examples) == 2


def test_bom_and_integer_ids(tmp_path: Path) -> None:
    doc = squad_doc(1, 1)
    doc["data"][0]["paragraphs"][0]["qas"][0]["id"] = 7
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode("utf-8"))
    assert read_squad(path)[0].qid == "7"


def test_non_ascii_offsets_count_code_points(tmp_path: Path) -> None:
    context = "Café Müller — 東京 😀 opened in 1999 and closed in 2003."
    start = context.index("1999")
    assert len(context[:start].encode("utf-8")) != start  # a byte offset would differ
    doc = {"data": [{"title": "Café", "paragraphs": [{"context": context, "qas": [
        {"id": "x", "question": "When did it open?", "answers": [{"text": "1999", "answer_start": start}]},
        {"id": "y", "question": "Which city?", "answers": [{"text": "東京 😀", "answer_start": context.index("東")}]},
    ]}]}]}
    examples = read_squad(write_json(tmp_path / "u.json", doc))
    for example in examples:
        (text, begin), = example.answers
        assert example.text[begin:begin + len(text)] == text
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = len(context[:start].encode("utf-8"))
    with pytest.raises(DataError, match=rf"answer '1999' is not at answer_start .*occurs at offset {start}\."):
        read_squad(write_json(tmp_path / "bytes.json", doc))


def test_unlabelled_questions(tmp_path: Path) -> None:
    doc = squad_doc(1, 2)
    qas = doc["data"][0]["paragraphs"][0]["qas"]
    del qas[0]["answers"]
    qas[1]["answers"] = []
    path = write_json(tmp_path / "u.json", doc)
    assert [e.answers for e in read_squad(path)] == [None, None]
    with pytest.raises(DataError, match=r"question a0q0: has no answers, but gold answers are needed"):
        read_squad(path, require_answers=True)


def _broken(edit) -> dict:
    doc = copy.deepcopy(squad_doc())
    edit(doc)
    return doc


def _qa(doc: dict, article: int = 1, question: int = 0) -> dict:
    return doc["data"][article]["paragraphs"][0]["qas"][question]


MALFORMED = [
    ("no data", lambda d: d.pop("data"), r"not a SQuAD file; the top level must be an object"),
    ("data not list", lambda d: d.update(data={}), r"key 'data': expected a list, got dict"),
    ("article not object", lambda d: d["data"].append([]), r"article 3: expected an object, got list"),
    ("no title", lambda d: d["data"][1].pop("title"), r"article 2: no key 'title' \(it has \['paragraphs'\]\)"),
    ("no paragraphs", lambda d: d["data"][1].pop("paragraphs"), r"article 2 \('Article_1'\): no key 'paragraphs'"),
    ("no context", lambda d: d["data"][1]["paragraphs"][0].pop("context"),
     r"article 2 \('Article_1'\), paragraph 1: no key 'context'"),
    ("no qas", lambda d: d["data"][1]["paragraphs"][0].pop("qas"), r"'Article_1'\), paragraph 1: no key 'qas'"),
    ("no id", lambda d: _qa(d, 1, 1).pop("id"), r"'Article_1'\), paragraph 1, question 2: no key 'id'"),
    ("no question", lambda d: _qa(d).pop("question"), r"article 2 \('Article_1'\), question a1q0: no key 'question'"),
    ("no answer text", lambda d: _qa(d)["answers"][1].pop("text"), r"question a1q0, answer 2: no key 'text'"),
    ("no answer_start", lambda d: _qa(d)["answers"][0].pop("answer_start"),
     r"question a1q0, answer 1: no key 'answer_start'"),
    ("title not string", lambda d: d["data"][0].update(title=3), r"article 1, key 'title': expected a string, got int"),
    ("question not string", lambda d: _qa(d).update(question=["x"]), r"key 'question': expected a string, got list"),
    ("answers not list", lambda d: _qa(d).update(answers={"text": "1889"}), r"key 'answers': expected a list"),
    ("start as string", lambda d: _qa(d)["answers"][0].update(answer_start="34"),
     r"answer 1: answer_start is '34'; it must be a character offset"),
    ("start negative", lambda d: _qa(d)["answers"][0].update(answer_start=-1), r"answer_start is -1"),
    ("start bool", lambda d: _qa(d)["answers"][0].update(answer_start=True), r"answer_start is True"),
    ("empty question", lambda d: _qa(d).update(question="  "), r"question a1q0, key 'question': is empty"),
    ("empty context", lambda d: d["data"][0]["paragraphs"][0].update(context=""),
     r"article 1 \('Article_0'\), paragraph 1, key 'context': is empty"),
    ("empty answer", lambda d: _qa(d)["answers"][0].update(text=""), r"answer 1, key 'text': is empty"),
    ("duplicate id", lambda d: _qa(d, 1, 1).update(id="a0q1"),
     r"question a0q1: question id 'a0q1' was already used at .*article 1 \('Article_0'\), question a0q1"),
    ("wrong offset", lambda d: _qa(d)["answers"][0].update(answer_start=33),
     (r"question a1q0, answer 1: answer '1889' is not at answer_start 33: the context there reads ' 188'.*"
      r"Fix answer_start.*occurs at offset 34\.")),
    ("answer not in context", lambda d: _qa(d)["answers"][0].update(text="1890"),
     r"answer '1890' is not at answer_start 34.*does not occur in the context at all"),
    ("squad 2.0", lambda d: _qa(d).update(is_impossible=True, answers=[]), r"SQuAD 2.0 unanswerable question"),
]


@pytest.mark.parametrize(("edit", "message"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_malformed_files(tmp_path: Path, edit, message: str) -> None:
    path = write_json(tmp_path / "bad.json", _broken(edit))
    with pytest.raises(DataError, match=message):
        read_squad(path)


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"data": [\n  {"title": "x",, }\n]}', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.json: invalid JSON: Expecting property name .* at line 2, column 17\. Fix the file"):
        read_squad(path)


def test_invalid_utf8_empty_and_questionless_files(tmp_path: Path) -> None:
    path = tmp_path / "latin.json"
    path.write_bytes('{"data": [{"title": "Caf\u00e9"}]}'.encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.json:1: byte 0xe9 is not valid utf-8"):
        read_squad(path)
    (tmp_path / "empty.json").write_bytes(b"")
    with pytest.raises(DataError, match=r"the file is empty"):
        read_squad(tmp_path / "empty.json")
    with pytest.raises(DataError, match=r"holds no questions"):
        read_squad(write_json(tmp_path / "none.json", {"data": [{"title": "t", "paragraphs": []}]}))
    with pytest.raises(DataError, match=r"no such file"):
        read_squad(tmp_path / "missing.json")


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_jsonl_reader(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [
        {"question": "When?", "context": CONTEXT, "answers": [{"text": "1889", "answer_start": 34}]},
        "",
        {"id": "own", "title": "Paris", "question": "Where? ", "context": CONTEXT},
    ])
    first, second = read_qa_jsonl(path)
    assert (first.qid, first.source, first.answers, first.title) == ("line-1", f"{path}:1", (("1889", 34),), None)
    assert (second.qid, second.question, second.answers, second.title) == ("own", "Where?", None, "Paris")
    with pytest.raises(DataError, match=r"q.jsonl:3: has no answers"):
        read_qa_jsonl(path, require_answers=True)
    with pytest.raises(DataError, match=r"only blank lines"):
        read_qa_jsonl(write_jsonl(tmp_path / "blank.jsonl", ["", "  "]))


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", r"bad.jsonl:2: malformed JSON"),
    ("[1, 2]", r"bad.jsonl:2: a JSON list, not an object"),
    ({"context": CONTEXT}, r"bad.jsonl:2: no key 'question' \(it has \['context'\]\)"),
    ({"question": "q"}, r"bad.jsonl:2: no key 'context'"),
    ({"question": "q", "context": " "}, r"bad.jsonl:2, key 'context': is empty"),
    ({"id": "a", "question": "q", "context": CONTEXT}, r"bad.jsonl:2: question id 'a' was already used at .*:1"),
    ({"question": "q", "context": CONTEXT, "answers": [{"text": "Paris", "answer_start": 0}]},
     r"bad.jsonl:2, answer 1: answer 'Paris' is not at answer_start 0: the context there reads 'The E'"),
    ({"question": "q", "context": CONTEXT, "answers": [{"answer_start": 0}]}, r"bad.jsonl:2, answer 1: no key 'text'"),
])
def test_jsonl_errors_name_file_and_line(tmp_path: Path, line, message: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "question": "q", "context": CONTEXT}, line])
    with pytest.raises(DataError, match=message):
        read_qa_jsonl(path)


def test_split_by_article_is_disjoint_ordered_and_seeded(tmp_path: Path) -> None:
    examples = read_squad(write_json(tmp_path / "s.json", squad_doc(20, 3)))
    train, dev, test = split_by_article(examples, test_articles=4, dev_articles=3, seed=5)
    titles = [{e.title for e in part} for part in (train, dev, test)]
    assert [len(t) for t in titles] == [13, 3, 4] and [len(p) for p in (train, dev, test)] == [39, 9, 12]
    assert not (titles[0] & titles[1] or titles[0] & titles[2] or titles[1] & titles[2])
    assert sorted(e.qid for e in train + dev + test) == sorted(e.qid for e in examples)
    for part in (train, dev, test):
        assert part == [e for e in examples if e in part]  # file order kept
    assert split_by_article(examples, 4, 3, seed=5) == (train, dev, test)
    assert split_by_article(examples, 4, 3, seed=6) != (train, dev, test)
    assert split_by_article(examples, 0, 0) == (examples, [], [])


def test_split_by_article_errors_and_untitled_questions(tmp_path: Path) -> None:
    examples = read_squad(write_json(tmp_path / "s.json", squad_doc(12, 1)))
    with pytest.raises(DataError, match=r"12 article\(s\), but splitting by article needs 8 test \+ 4 dev \+ at "
                                         r"least 1 training article"):
        split_by_article(examples)
    with pytest.raises(ConfigError, match=r"article counts must be 0 or more"):
        split_by_article(examples, test_articles=-1)
    # JSON lines without titles: each context is an article, so questions on one paragraph stay together
    records = [{"question": f"q{i}", "context": f"Paragraph {i // 2} text."} for i in range(10)]
    untitled = read_qa_jsonl(write_jsonl(tmp_path / "q.jsonl", records))
    assert article_count(untitled) == 5
    train, dev, test = split_by_article(untitled, 1, 1, seed=0)
    assert [len(part) for part in (train, dev, test)] == [6, 2, 2]
    assert len({e.text for e in test}) == 1


def test_load_data_user_files(tmp_path: Path) -> None:
    path = write_json(tmp_path / "mine.json", squad_doc(15, 2))
    splits = load_data(str(path), task="qa", seed=3)
    assert splits.labels == ["answer"] and list(splits.files) == [str(path)]
    assert splits.split_note == "mine.json split by article: 3 train / 4 dev / 8 test articles, seed 3"
    assert [len(p) for p in (splits.train, splits.dev, splits.test)] == [6, 8, 16]
    assert splits == load_data(str(path), task="qa", seed=3)

    lines = [{"title": f"T{i % 6}", "question": f"q{i}", "context": CONTEXT,
              "answers": [{"text": "Paris", "answer_start": 53}]} for i in range(12)]
    test_file = write_jsonl(tmp_path / "test.qa", lines[:2])
    splits = load_data(str(write_jsonl(tmp_path / "train.jsonl", lines)), task="qa", test_path=str(test_file),
                       format="jsonl")
    assert splits.split_note.startswith("train.jsonl split by article: 2 train / 4 dev articles, seed 13; test = ")
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (4, 8, 2)
    splits = load_data(str(path), task="qa", test_path=str(path), dev_path=str(path))
    assert splits.split_note == "standard train/dev/test split" and len(splits.train) == 30


def test_load_data_qa_errors(tmp_path: Path) -> None:
    path = write_json(tmp_path / "mine.json", squad_doc(15, 1))
    with pytest.raises(ConfigError, match=r"cross-validation folds do not apply"):
        load_data(str(path), task="qa", fold=0)
    with pytest.raises(ConfigError, match=r"task qa reads fixed keys"):
        load_data(str(path), task="qa", text_field="body")
    with pytest.raises(ConfigError, match=r"format 'csv' does not apply to task qa"):
        load_data(str(path), task="qa", format="csv")
    other = tmp_path / "mine.txt"
    other.write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match=r"mine.txt: task qa reads SQuAD JSON \(.json\) or JSON-lines"):
        load_data(str(other), task="qa")
    doc = squad_doc(15, 1)
    del doc["data"][3]["paragraphs"][0]["qas"][0]["answers"]
    with pytest.raises(DataError, match=r"question a3q0: has no answers, but gold answers are needed"):
        load_data(str(write_json(tmp_path / "unlabelled.json", doc)), task="qa")
    with pytest.raises(DataError, match=r"5 article\(s\), but splitting by article needs 8 test"):
        load_data(str(write_json(tmp_path / "small.json", squad_doc(5, 1))), task="qa")


def test_registry_task_mismatches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WORDCONV_DATA", raising=False)
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match=r"'squad11' is a qa dataset \(extractive question answering\): train it "
                                          r"with task qa"):
        load_data("squad11", download=False)
    with pytest.raises(ConfigError, match=r"'squad11' is a qa dataset, not tagged sentences"):
        load_data("squad11", task="ner", download=False)
    with pytest.raises(ConfigError, match=r"'mr' is a textcat dataset, not questions with answers; for task qa use "
                                          r"squad11"):
        load_data("mr", task="qa", download=False)
    with pytest.raises(ConfigError, match=r"'squad11' is split by article, so cross-validation folds do not apply"):
        load_data("squad11", task="qa", fold=2, download=False)
    with pytest.raises(DataError, match=r"squad11/dev-v1.1.json is not available locally .*downloading is off"):
        load_data("squad11", task="qa", download=False)
