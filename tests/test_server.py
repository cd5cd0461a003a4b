"""The HTTP server (wordconv.server): every route and every bad input, for a textcat, an ner and a qa model.

Tiny models train once per session (cached under pytest's base temp dir, shared with test_browser.py).
Predictions through the server must equal the Predictor's own, whether requests run alone or are
micro-batched together; bad input is a 4xx JSON error naming the field, never a 500.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import random
import re
import socket
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

import wordconv
from tiny import FAST, NEG, POS, make_sentences, write_labelfirst
from tiny_qa import make_articles, write_squad


def _require(module: str):
    """The module, or a skip (a failure under CI, which must run these tests)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{module} is not installed ({e}): pip install fastapi uvicorn httpx", allow_module_level=True)


_require("fastapi")
_require("uvicorn")
httpx = _require("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from wordconv.errors import ConfigError, DataError  # noqa: E402
from wordconv.server import Job, MicroBatcher, create_app, serve_command  # noqa: E402

# ---------------------------------------------------------------------------------------------------- tiny models

NER_PER = [["John"], ["Mary"], ["Ann", "Smith"], ["Peter", "Brown"]]
NER_LOC = [["Paris"], ["Berlin"], ["New", "York"], ["Rome"]]
NER_ORG = [["Acme", "Corp"], ["Globex"], ["United", "Nations"]]
NER_FILL = ["the", "said", "in", "visited", "met", "a", "report", "from", "with", "on", "today", "."]
NER_TEXT = "the report said Mary visited New York with Acme Corp."
TAGGER = ["embeddings.dim=16", "model.num_filters=32", "model.char_dim=8", "model.char_filters=8",
          "training.batch_size=8", "training.progress=false", "training.lr=0.005", "training.patience=null"]
QANET = ["embeddings.dim=32", "model.hidden=32", "training.batch_size=8", "training.patience=30",
         "training.progress=false"]


def _conll(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for _ in range(n):
        for _ in range(rng.randint(1, 3)):
            lines += [f"{w} NN O O" for w in rng.sample(NER_FILL, rng.randint(1, 3))]
            typ, names = rng.choice([("PER", NER_PER), ("LOC", NER_LOC), ("ORG", NER_ORG)])
            lines += [f"{w} NN O {'B' if i == 0 else 'I'}-{typ}" for i, w in enumerate(rng.choice(names))]
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _train(kind: str, out: Path, data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    if kind == "textcat":
        train = write_labelfirst(data / "train.txt", make_sentences(120, 1))
        test = write_labelfirst(data / "test.txt", make_sentences(20, 3))
        wordconv.train(str(train), "textcnn", out, epochs=10, overwrite=True,
                       overrides=[*FAST, "training.lr=0.005", f"data.test_path={test}"])
    elif kind == "ner":
        files = {s: _conll(data / f"{s}.txt", n, seed) for s, n, seed in (("train", 120, 0), ("dev", 30, 1),
                                                                          ("test", 30, 2))}
        wordconv.train(str(files["train"]), "tagger", out, task="ner", epochs=12, overwrite=True,
                       overrides=[*TAGGER, f"data.dev_path={files['dev']}", f"data.test_path={files['test']}"])
    else:
        train = write_squad(data / "train.json", make_articles(8, 0, titles=2))
        wordconv.train(str(train), "qanet", out, task="qa", epochs=30, overwrite=True,
                       overrides=[*QANET, f"data.dev_path={train}", f"data.test_path={train}"])


def model_dir(tmp_path_factory: pytest.TempPathFactory, kind: str) -> Path:
    """A tiny trained model directory of ``kind`` (textcat, ner, qa), trained once per test session."""
    root = tmp_path_factory.getbasetemp() / "served-models"
    out = root / kind
    if not (out / "model.safetensors").is_file():
        _train(kind, out, root / f"{kind}-data")
    return out


QA_CONTEXT = "alice lives in paris and works at google ."
QA_QUESTIONS = ["where does alice live ?", "where does alice work ?"]


@pytest.fixture(scope="module")
def textcat(tmp_path_factory):
    return wordconv.load(model_dir(tmp_path_factory, "textcat"))


@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    return wordconv.load(model_dir(tmp_path_factory, "ner"))


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    return wordconv.load(model_dir(tmp_path_factory, "qa"))


def client_for(predictor, **kwargs) -> TestClient:
    return TestClient(create_app(predictor, **kwargs), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def tc_client(textcat):
    with client_for(textcat, max_texts=4, max_chars=60) as c:
        yield c


@pytest.fixture(scope="module")
def ner_client(ner):
    with client_for(ner) as c:
        yield c


@pytest.fixture(scope="module")
def qa_client(qa):
    with client_for(qa, max_texts=3, max_chars=80) as c:
        yield c


def close(a, b, tol: float = 1e-5) -> bool:
    """Equal JSON values, floats within ``tol`` (a batch of other sizes may round the last bits differently)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= tol
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    return a == b


def expect_error(response, status: int, field: str | None = None, match: str | None = None) -> dict:
    """A JSON error of ``status`` whose errors name ``field`` (and whose message matches ``match``)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status and isinstance(body["error"], str) and body["error"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    if match is not None:
        assert re.search(match, body["error"]), body
    return body


# ---------------------------------------------------------------------------------------------------- fake explain


@dataclass
class FakeExplanation:
    """The shape wordconv.explain's Explanation.to_dict() serves."""

    label: str
    probability: float
    tokens: list[dict]
    ngrams: list[dict]
    per_class: dict = field(default_factory=dict)
    method: str = "fake"
    logit: float = 0.0
    bias: float = 0.0
    attention: list | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def fake_explain_module(calls: list | None = None) -> types.ModuleType:
    """A stand-in for wordconv.explain: sentiment words score +1 for their side, filler words a little."""

    def explain(predictor, texts, top_k=5):
        if calls is not None:
            calls.append({"texts": list(texts), "top_k": top_k})
        out = []
        for text, pred in zip(texts, predictor.predict(texts)):
            sign = 1.0 if pred.label == "pos" else -1.0
            tokens = [{"text": m.group(), "start": m.start(), "end": m.end(),
                       "score": sign * (1.0 if m.group() in POS else -1.0 if m.group() in NEG else 0.05)}
                      for m in re.finditer(r"\S+", text)]
            ngrams = [{**t, "filter": i} for i, t in enumerate(sorted(tokens, key=lambda t: -t["score"])[:top_k])]
            per_class = {lab: {"logit": 0.0, "ngrams": ngrams if lab == pred.label else []} for lab in predictor.labels}
            out.append(FakeExplanation(pred.label, pred.score, tokens, ngrams, per_class))
        return out

    module = types.ModuleType("wordconv.explain")
    module.explain = explain
    module.EXPLAINED_TASKS = ("textcat", "multilabel")
    return module


# ---------------------------------------------------------------------------------------------------- textcat


def test_health_metadata_and_page(tc_client, textcat):
    h = tc_client.get("/health")
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["task"] == "textcat"
    m = tc_client.get("/metadata").json()
    assert m["task"] == "textcat" and m["labels"] == textcat.labels == ["neg", "pos"]
    assert m["model"]["type"] == "textcnn" and m["model"]["backend"] == "torch"
    assert m["config"] == textcat.config.model_dump(mode="json")
    assert close(m["metrics"]["accuracy"], textcat.metrics["accuracy"]) and "training" in m["meta"]
    assert m["limits"]["max_texts"] == 4 and m["limits"]["max_chars"] == 60
    page = tc_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'src="static/app.js"' in page.text and 'href="static/app.css"' in page.text
    for name, kind in (("app.js", "javascript"), ("app.css", "css")):
        asset = tc_client.get(f"/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
        # self-contained (no CDN) and no markup built from strings
        assert not re.search(r"https?://", asset.text) and "innerHTML" not in asset.text
    assert not re.search(r"(src|href)=\"https?://", page.text)
    expect_error(tc_client.get("/static/server.py"), 404)
    expect_error(tc_client.get("/static/..%2Fserver.py"), 404)
    expect_error(tc_client.get("/no/such/route"), 404)
    r = expect_error(tc_client.get("/predict"), 405)
    assert "POST" in r["error"] or tc_client.get("/predict").headers.get("allow") == "POST"


def test_predict_equals_the_predictor(tc_client, textcat):
    text = "a great and moving film"
    r = tc_client.post("/predict", json={"text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == "textcat" and len(body["predictions"]) == 1
    assert close(body["predictions"][0], textcat.predict([text])[0].to_dict())
    texts = ["dull and boring plot", "superb", "the film was lovely"]
    r = tc_client.post("/predict", json={"texts": texts, "top_k": 2})
    want = [p.to_dict() for p in textcat.predict(texts, top_k=2)]
    assert close(r.json()["predictions"], want) and all(len(p["top_k"]) == 2 for p in want)
    r = tc_client.post("/predict", json={"text": text, "top_k": 50})  # more than the labels: all of them
    assert len(r.json()["predictions"][0]["top_k"]) == 2
    # any content type is read as JSON (curl -d sends a form type)
    r = tc_client.post("/predict", content=json.dumps({"text": "fun"}).encode(),
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and close(r.json()["predictions"][0], textcat.predict(["fun"])[0].to_dict())
    # non-ASCII text and offsets survive the round trip
    r = tc_client.post("/predict", json={"text": "ein großartiger Film 🎬"})
    assert r.status_code == 200


GARBAGE = [
    (b"\x00\xff\xfe\x80garbage\x01", 400, "body"),
    (b"", 400, "body"),
    (b"   \n", 400, "body"),
    (b'{"text": ', 400, "body"),
    (b'{"text": "a"} trailing', 400, "body"),
    (b"[" * 50_000, 400, "body"),  # too deep for the parser
    (b"null", 422, "body"),
    (b"[1, 2]", 422, "body"),
    (b'"a text"', 422, "body"),
    (b"42", 422, "body"),
]


@pytest.mark.parametrize("raw,status,field", GARBAGE, ids=[repr(g[0][:12]) for g in GARBAGE])
def test_unreadable_bodies(tc_client, raw, status, field):
    expect_error(tc_client.post("/predict", content=raw), status, field)
    expect_error(tc_client.post("/explain", content=raw), status, field)


def test_random_bytes_never_500(tc_client, qa_client):
    rng = random.Random(0)
    for _ in range(30):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        for client in (tc_client, qa_client):
            r = client.post("/predict", content=raw)
            assert 400 <= r.status_code < 500 and "error" in r.json()


BAD_TEXTCAT = [
    ({"text": 5}, 422, "text", "valid string"),
    ({"text": None}, 422, "body", "either text"),
    ({"text": ["a"]}, 422, "text", None),
    ({"texts": "one string"}, 422, "texts", "valid list"),
    ({"texts": ["ok", 3]}, 422, "texts[1]", "valid string"),
    ({"texts": ["ok", {"text": "x"}]}, 422, "texts[1]", None),
    ({"text": ""}, 422, "text", "empty text"),
    ({"text": " \t\n "}, 422, "text", "empty text"),
    ({"texts": ["fine", ""]}, 422, "texts[1]", "empty text"),
    ({"texts": []}, 422, "texts", "at least 1"),
    ({}, 422, "body", "either text"),
    ({"text": "a", "texts": ["b"]}, 422, "body", "either text"),
    ({"text": "a", "top_k": 0}, 422, "top_k", "greater than or equal to 1"),
    ({"text": "a", "top_k": "2"}, 422, "top_k", "valid integer"),
    ({"text": "a", "top_k": True}, 422, "top_k", "valid integer"),
    ({"text": "a", "top_k": 1.5}, 422, "top_k", None),
    ({"text": "a", "lang": "en"}, 422, "lang", "unknown field"),
    ({"texts": ["a", "b", "c", "d", "e"]}, 413, "texts", "at most 4"),
    ({"text": "x" * 61}, 413, "text", "61 characters; at most 60"),
    ({"texts": ["fine", "y" * 100]}, 413, "texts[1]", "at most 60"),
    ({"question": "who?", "context": "Ann did."}, 422, "context", "question-answering"),
    ({"items": [{"question": "who?", "context": "Ann did."}]}, 422, "items", "question-answering"),
]


@pytest.mark.parametrize("body,status,field,match", BAD_TEXTCAT, ids=[json.dumps(b[0])[:40] for b in BAD_TEXTCAT])
def test_bad_textcat_bodies(tc_client, body, status, field, match):
    expect_error(tc_client.post("/predict", json=body), status, field, match)


def test_oversized_body_is_refused_before_it_is_read(textcat):
    with client_for(textcat, max_texts=1, max_chars=10) as client:
        limit = client.get("/metadata").json()["limits"]["max_body_bytes"]
        big = json.dumps({"text": "word " * (limit // 5 + 10)}).encode()
        expect_error(client.post("/predict", content=big), 413, "body", "at most")

        def chunks():  # no content-length: the stream is cut off at the limit
            yield b'{"text": "'
            for _ in range(limit // 1000 + 2):
                yield b"a" * 1000
            yield b'"}'

        expect_error(client.post("/predict", content=chunks()), 413, "body")


def test_create_app_refuses_bad_limits(textcat):
    for kwargs in ({"max_texts": 0}, {"max_chars": -1}, {"max_batch": 0}, {"batch_window_ms": -1},
                   {"max_texts": True}, {"max_chars": "10"}, {"max_queue": 0}, {"request_timeout_s": 0},
                   {"request_timeout_s": float("nan")}, {"max_body_bytes_in_flight": 0}):
        with pytest.raises(ConfigError, match=next(iter(kwargs))):
            create_app(textcat, **kwargs)


def test_predictor_errors_are_4xx_and_unexpected_ones_json_500(tc_client, textcat, monkeypatch, caplog):
    def refuse(texts, top_k=1, batch_size=256):
        raise DataError("text 0: nothing this model can read")

    monkeypatch.setattr(textcat, "predict", refuse)
    expect_error(tc_client.post("/predict", json={"text": "fine"}), 422, "body", "nothing this model can read")

    def crash(texts, top_k=1, batch_size=256):
        raise RuntimeError("boom at /home/secret/model.py")

    monkeypatch.setattr(textcat, "predict", crash)
    monkeypatch.setitem(sys.modules, "wordconv.explain", fake_explain_module())
    for route in ("/predict", "/explain"):
        caplog.clear()
        r = tc_client.post(route, json={"text": "fine"})
        body = expect_error(r, 500, None, r"internal error [0-9a-f]{12}: the server's log has the details")
        # nothing of the exception reaches the client: no message, no type, no traceback, no path
        for leak in ("boom", "RuntimeError", "Traceback", "/home/secret", 'File "'):
            assert leak not in r.text
        # the server's log has it all, under the same id
        error_id = body["error"].split()[2].rstrip(":")
        logged = [rec for rec in caplog.records if error_id in rec.getMessage()]
        assert logged and logged[0].exc_info and "boom" in str(logged[0].exc_info[1]), caplog.text
        assert route in logged[0].getMessage()
    monkeypatch.undo()
    assert tc_client.post("/predict", json={"text": "fine"}).status_code == 200  # the batcher lives on


def test_a_bug_outside_the_model_is_a_json_500_too(textcat, monkeypatch, caplog):
    """The catch-all handler: any exception escaping a route is a JSON 500 with an id, logged with its traceback."""
    app = create_app(textcat)

    @app.get("/crash")
    async def crash():
        raise KeyError("/etc/passwd")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/crash")
    body = expect_error(r, 500, None, "internal error")
    assert "passwd" not in r.text and "KeyError" not in r.text and "Traceback" not in r.text
    assert any(rec.exc_info and body["error"].split()[2].rstrip(":") in rec.getMessage() for rec in caplog.records)


ODD_BODIES = [  # (body, content type, statuses): never a 500, never a traceback, always JSON
    (b'{"text": "fine"}', "multipart/form-data; boundary=x", {200}),  # any content type is read as JSON
    (b'{"text": "fine"}', "text/plain; charset=latin-1", {200}),
    (b'{"text": "caf\xe9"}', "application/json", {400}),  # not UTF-8
    ('{"text": "fine"}'.encode("utf-16"), "application/json", {200}),  # JSON readers take UTF-16 too
    (b'{"text": "\\ud800 lone"}', "application/json", {422}),  # an unpaired surrogate
    (b'{"texts": ["ok", "\\udfff"]}', "application/json", {422}),
    (b'{"text": "a", "top_k": 1e999}', "application/json", {422}),  # inf
    (b'{"text": "a", "top_k": NaN}', "application/json", {422}),
    (b'{"text": "a", "top_k": ' + b"9" * 5000 + b"}", "application/json", {400}),  # past Python's int digits
    (b'{"text": "a", "top_k": ' + b"9" * 400 + b"}", "application/json", {200}),  # huge but fine: all labels
    (b'{"text": ' + b"[" * 500 + b"]" * 500 + b"}", "application/json", {422}),  # deep, parseable
    (b'{"texts": ' + b"[" * 60_000 + b"}", "application/json", {400}),  # deeper than the parser goes
    (b'{"texts": ' + b"[" * 70_000 + b"}", "application/json", {413}),  # over this client's body limit
    (b'{"text": "a", "x": {"y": {"z": [1, 2', "application/json", {400}),  # truncated
    (b'{"text": "fine", "text": 5}', "application/json", {422}),  # a duplicate key: the last wins
    (b'{"text": "\\u0000"}', "application/json", {200, 422}),  # a NUL is a character (maybe no word)
]


@pytest.mark.parametrize("raw,ctype,statuses", ODD_BODIES, ids=[repr(b[0][:24]) for b in ODD_BODIES])
def test_odd_bodies_are_answered_in_json(tc_client, raw, ctype, statuses):
    r = tc_client.post("/predict", content=raw, headers={"content-type": ctype})
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json") and "Traceback" not in r.text
    json.loads(r.content.decode("utf-8"))  # valid JSON, valid UTF-8
    if r.status_code != 200:
        expect_error(r, r.status_code)


def test_listens_on_localhost_by_default():
    import inspect

    from wordconv.server import serve, serving

    for fn in (serve, serving, serve_command):
        host = inspect.signature(fn).parameters["host"].default
        assert host == "127.0.0.1", (fn.__name__, host)


# ---------------------------------------------------------------------------------------------------- explain


def test_explain_with_a_stand_in(tc_client, textcat, monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "wordconv.explain", fake_explain_module(calls))
    assert tc_client.get("/metadata").json()["explain"] is True
    text = "the plot was great"
    r = tc_client.post("/explain", json={"text": text})
    assert r.status_code == 200, r.text
    exp = r.json()["explanations"][0]
    assert exp["label"] == textcat.predict([text])[0].label
    assert {"label", "probability", "method", "logit", "bias", "tokens", "ngrams", "attention", "per_class"} <= set(exp)
    assert [text[t["start"]:t["end"]] for t in exp["tokens"]] == text.split()
    assert calls[-1] == {"texts": [text], "top_k": 5}  # no top_k in the body: explain's own default
    r = tc_client.post("/explain", json={"texts": [text, "dull"], "top_k": 2})
    assert len(r.json()["explanations"]) == 2 and calls[-1]["top_k"] == 2
    assert all(len(e["ngrams"]) <= 2 for e in r.json()["explanations"])
    # the same validation as /predict
    expect_error(tc_client.post("/explain", json={"text": ""}), 422, "text", "empty text")
    expect_error(tc_client.post("/explain", json={"texts": ["a"] * 5}), 413, "texts")
    expect_error(tc_client.post("/explain", json={"question": "q", "context": "c"}), 422, "context")


def test_explain_missing_is_501(tc_client, monkeypatch):
    monkeypatch.setitem(sys.modules, "wordconv.explain", None)  # import wordconv.explain -> ImportError
    assert tc_client.get("/metadata").json()["explain"] is False
    expect_error(tc_client.post("/explain", json={"text": "great"}), 501, None, "wordconv.explain")
    assert tc_client.post("/predict", json={"text": "great"}).status_code == 200


@pytest.mark.skipif(importlib.util.find_spec("wordconv.explain") is None, reason="wordconv.explain is not written yet")
def test_explain_with_the_real_module(tc_client, textcat):
    text = "a superb film with charming actors"
    r = tc_client.post("/explain", json={"text": text})
    assert r.status_code == 200, r.text
    exp = r.json()["explanations"][0]
    assert exp["label"] == textcat.predict([text])[0].label
    assert close(exp["probability"], textcat.predict([text])[0].score, 1e-4)
    assert exp["tokens"] and all(text[t["start"]:t["end"]] == t["text"] for t in exp["tokens"])
    assert all(text[g["start"]:g["end"]] == g["text"] for g in exp["ngrams"])
    assert set(exp["per_class"]) == set(textcat.labels)
    r = tc_client.post("/explain", json={"text": text, "top_k": 1})
    assert len(r.json()["explanations"][0]["ngrams"]) <= 1


# ---------------------------------------------------------------------------------------------------- ner


def test_ner_routes(ner_client, ner):
    m = ner_client.get("/metadata").json()
    assert m["task"] == "ner" and set(m["labels"]) == {"LOC", "ORG", "PER"} and m["model"]["type"] == "tagger"
    assert m["explain"] is False
    r = ner_client.post("/predict", json={"text": NER_TEXT})
    assert r.status_code == 200, r.text
    got = r.json()["predictions"][0]
    assert close(got, ner.predict([NER_TEXT])[0].to_dict())
    assert got["entities"] and all(NER_TEXT[e["start"]:e["end"]] == e["text"] for e in got["entities"])
    texts = [NER_TEXT, "John met Mary in Rome today .", "nothing here"]
    r = ner_client.post("/predict", json={"texts": texts})
    assert close(r.json()["predictions"], [p.to_dict() for p in ner.predict(texts)])
    expect_error(ner_client.post("/explain", json={"text": NER_TEXT}), 400, None, "model is ner")
    expect_error(ner_client.post("/predict", json={"question": "q", "context": "c"}), 422, "context", "ner")
    expect_error(ner_client.post("/predict", json={"texts": ["ok", 7]}), 422, "texts[1]")
    expect_error(ner_client.post("/predict", json={"text": "  "}), 422, "text", "empty")
    expect_error(ner_client.post("/predict", content=b"\xff\xfe"), 400, "body")


# ---------------------------------------------------------------------------------------------------- qa


def test_qa_routes(qa_client, qa):
    m = qa_client.get("/metadata").json()
    assert m["task"] == "qa" and m["model"]["type"] == "qanet" and m["explain"] is False
    r = qa_client.post("/predict", json={"question": QA_QUESTIONS[0], "context": QA_CONTEXT})
    assert r.status_code == 200, r.text
    got = r.json()["predictions"][0]
    assert close(got, qa.answer([QA_QUESTIONS[0]], [QA_CONTEXT])[0].to_dict())
    assert QA_CONTEXT[got["start"]:got["end"]] == got["answer"]
    items = [{"question": q, "context": QA_CONTEXT} for q in QA_QUESTIONS]
    r = qa_client.post("/predict", json={"items": items})
    assert close(r.json()["predictions"], [a.to_dict() for a in qa.answer(QA_QUESTIONS, [QA_CONTEXT] * 2)])
    expect_error(qa_client.post("/explain", json={"text": "x"}), 400, None, "model is qa")


BAD_QA = [
    ({"text": "where?"}, 422, "text", "question-answering model"),
    ({"texts": ["where?"]}, 422, "texts", "question-answering model"),
    ({"question": "where does alice live ?"}, 422, "body", "context is missing"),
    ({"context": QA_CONTEXT}, 422, "body", "question is missing"),
    ({"question": "", "context": QA_CONTEXT}, 422, "question", "empty text"),
    ({"question": "q ?", "context": 3}, 422, "context", "valid string"),
    ({"items": []}, 422, "items", "at least 1"),
    ({"items": [{"question": "q ?"}]}, 422, "items[0].context", "Field required"),
    ({"items": [{"question": "q ?", "context": "c", "id": 1}]}, 422, "items[0].id", "unknown field"),
    ({"items": ["q ?"]}, 422, "items[0]", None),
    ({"items": [{"question": "q", "context": "c"}], "question": "q2", "context": "c"}, 422, "body", "either"),
    ({"items": [{"question": "q", "context": "c"}] * 4}, 413, "items", "at most 3"),
    ({"question": "q ?", "context": "word " * 20}, 413, "context", "100 characters; at most 80"),
    ({"items": [{"question": "q", "context": "c"}, {"question": "q" * 81, "context": "c"}]}, 413,
     "items[1].question", "at most 80"),
    ({"question": "q ?", "context": "c", "top_k": 2}, 422, "top_k", "unknown field"),
]


@pytest.mark.parametrize("body,status,field,match", BAD_QA, ids=[json.dumps(b[0])[:40] for b in BAD_QA])
def test_bad_qa_bodies(qa_client, body, status, field, match):
    expect_error(qa_client.post("/predict", json=body), status, field, match)


# ---------------------------------------------------------------------------------------------------- micro-batching


async def _post_all(app, bodies: list[dict]) -> list:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))


def test_concurrent_requests_are_batched_and_equal_unbatched(textcat):
    app = create_app(textcat, batch_window_ms=20)
    texts = [text for _, text in make_sentences(48, 7)]
    bodies = [{"text": t, "top_k": 1 + i % 2} if i % 3 else {"texts": [t, texts[(i + 5) % 48]], "top_k": 2}
              for i, t in enumerate(texts)]
    responses = asyncio.run(_post_all(app, bodies))
    assert all(r.status_code == 200 for r in responses)
    for body, r in zip(bodies, responses):
        want = [p.to_dict() for p in textcat.predict(body.get("texts") or [body["text"]], top_k=body["top_k"])]
        assert close(r.json()["predictions"], want), (body, r.json())
    stats = app.state.batcher.stats
    assert stats["requests"] == len(bodies) and stats["items"] == sum(len(b.get("texts", [1])) for b in bodies)
    assert stats["batches"] < len(bodies) and stats["largest_batch"] > 2, stats


def test_concurrent_ner_and_qa_requests_equal_unbatched(ner, qa):
    texts = [NER_TEXT, "John met Mary in Rome today .", "the report from Globex", "Ann Smith visited Berlin ."] * 3
    responses = asyncio.run(_post_all(create_app(ner), [{"text": t} for t in texts]))
    for t, r in zip(texts, responses):
        # scores within 1e-4: a batch of other texts rounds differently (1.5e-5 seen on an AVX-512 CPU)
        assert close(r.json()["predictions"][0], ner.predict([t])[0].to_dict(), tol=1e-4)
    articles = make_articles(6, 5, titles=1)
    pairs = [(q["question"], p["context"]) for p in articles[0]["paragraphs"] for q in p["qas"]]
    app = create_app(qa)
    responses = asyncio.run(_post_all(app, [{"question": q, "context": c} for q, c in pairs]))
    for (q, c), r in zip(pairs, responses):
        assert close(r.json()["predictions"][0], qa.answer([q], [c])[0].to_dict(), tol=1e-4)
    assert app.state.batcher.stats["batches"] < len(pairs)


def test_a_bad_request_in_a_batch_fails_alone(textcat, monkeypatch):
    real = textcat.predict

    def picky(texts, top_k=1, batch_size=256):
        if any("poison" in t for t in texts):
            raise DataError("poison: not a word this model reads")
        return real(texts, top_k=top_k, batch_size=batch_size)

    monkeypatch.setattr(textcat, "predict", picky)
    app = create_app(textcat, batch_window_ms=20)
    texts = ["great fun", "poison pill", "dull plot", "lovely story", "weak actors", "superb"]
    responses = asyncio.run(_post_all(app, [{"text": t} for t in texts]))
    assert app.state.batcher.stats["largest_batch"] > 1  # the poison shared a batch with others
    for t, r in zip(texts, responses):
        if "poison" in t:
            expect_error(r, 422, "body", "poison")
        else:
            assert r.status_code == 200 and close(r.json()["predictions"][0], real([t])[0].to_dict())


def test_a_lone_request_does_not_wait_for_the_window(textcat):
    with client_for(textcat, batch_window_ms=3000) as client:
        t0 = time.perf_counter()
        for _ in range(3):
            assert client.post("/predict", json={"text": "great fun"}).status_code == 200
        assert time.perf_counter() - t0 < 2.5  # three lone requests: none held for the 3 s window


def test_micro_batcher_limits_and_isolates():
    """The batcher alone: batches never exceed max_batch (a bigger job runs alone), order is kept, and
    a failing batch is rerun job by job."""
    from concurrent.futures import ThreadPoolExecutor

    sizes: list[int] = []

    def run(jobs: list[Job]) -> list[list]:
        items = [x for j in jobs for x in j.items]
        sizes.append(len(items))
        time.sleep(0.02)  # later jobs queue up meanwhile
        if "bad" in items:
            raise DataError("bad item")
        return [[x.upper() for x in j.items] for j in jobs]

    async def main():
        batcher = MicroBatcher(run, ThreadPoolExecutor(1), window_s=0.01, max_batch=4)
        jobs = [["a", "b"], ["c"], ["d", "e"], ["f", "g", "h", "i", "j", "k"], ["l"], ["bad"], ["m", "n"]]
        results = await asyncio.gather(*(batcher.submit(j) for j in jobs), return_exceptions=True)
        await batcher.aclose()
        return jobs, results

    jobs, results = asyncio.run(main())
    for job, result in zip(jobs, results):
        if job == ["bad"]:
            assert isinstance(result, DataError)
        else:
            assert result == [x.upper() for x in job]
    assert 6 in sizes and all(s <= 4 for s in sizes if s != 6) and len(sizes) < len(jobs) + 3, sizes


# ---------------------------------------------------------------------------------------------------- --onnx


def test_serving_the_onnx_export(tmp_path_factory, textcat):
    """``serve --onnx``'s predictor (wordconv.export, written separately): same answers as PyTorch's."""
    try:
        from wordconv.export import OnnxPredictor, export_onnx
        import onnxruntime  # noqa: F401
    except ImportError as e:
        pytest.skip(f"no ONNX export here ({e})")
    from wordconv.server import load_predictor

    out = tmp_path_factory.mktemp("onnx") / "model"
    export_onnx(model_dir(tmp_path_factory, "textcat"), out)
    predictor = load_predictor(out, onnx=True)
    assert isinstance(predictor, OnnxPredictor)
    with client_for(predictor) as client:
        m = client.get("/metadata").json()
        assert m["model"]["backend"] == "onnx" and m["task"] == "textcat" and m["labels"] == textcat.labels
        assert m["explain"] is False
        texts = ["a superb and charming film", "dull plot", "the actors were weak"]
        r = client.post("/predict", json={"texts": texts, "top_k": 2})
        assert r.status_code == 200, r.text
        got, want = r.json()["predictions"], [p.to_dict() for p in textcat.predict(texts, top_k=2)]
        assert [p["label"] for p in got] == [p["label"] for p in want]
        assert close(got, want, 1e-4)
        expect_error(client.post("/explain", json={"text": "great"}), 501, None, "without --onnx")
        expect_error(client.post("/predict", json={"text": ""}), 422, "text")


# ---------------------------------------------------------------------------------------------------- the command


def _cli(*args: str):
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def test_serve_command_errors(tmp_path_factory, monkeypatch):
    r = _cli(str(tmp_path_factory.mktemp("empty") / "nothing"))
    assert r.exit_code != 0 and "error:" in r.output
    monkeypatch.setitem(sys.modules, "wordconv.export", None)
    r = _cli(str(model_dir(tmp_path_factory, "textcat")), "--onnx")
    assert r.exit_code != 0 and "--onnx needs wordconv.export" in r.output
    monkeypatch.undo()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = _cli(str(model_dir(tmp_path_factory, "textcat")), "--port", str(port))
        assert r.exit_code != 0 and f"cannot listen on 127.0.0.1:{port}" in r.output
    r = _cli(str(model_dir(tmp_path_factory, "textcat")), "--port", "70000")
    assert r.exit_code != 0
    r = _cli("--help")
    assert r.exit_code == 0 and "--host" in r.output and "--onnx" in r.output
