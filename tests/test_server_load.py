"""The server under load (wordconv.server): a bounded queue that answers 503 when full, timeouts, and a real
``wordconv serve`` process on 127.0.0.1 hammered by valid and garbage requests from this (a second) process.

The load test asserts: no 5xx but 503 (the busy answer, JSON with Retry-After), every garbage request a 4xx
(or that 503), the server's memory bounded, and correct answers afterwards.  It prints a one-line summary
and, when ``WORDCONV_RELIABILITY_OUT`` names a file, writes its figures there as JSON (RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tiny import FILLER, NEG, POS

from test_server import _cli, _require, model_dir  # skips this module too when fastapi is missing

httpx = _require("httpx")

from wordconv.server import create_app  # noqa: E402

# ---------------------------------------------------------------------------------------------------- a fake model


class FakePrediction:
    def __init__(self, text: str):
        self.text = text

    def to_dict(self) -> dict:
        return {"label": "pos", "score": 1.0, "top_k": [{"label": "pos", "score": 1.0}], "text": self.text}


class GatedPredictor:
    """A text classifier whose ``predict`` waits for ``gate`` (the test decides when the model thread is done)."""

    task, labels, config, metrics, meta = "textcat", ["neg", "pos"], None, None, {}

    def __init__(self):
        self.gate = threading.Event()
        self.calls: list[list[str]] = []

    def predict(self, texts, top_k=1, batch_size=256):
        self.calls.append(list(texts))
        assert self.gate.wait(10), "the test never opened the gate"
        return [FakePrediction(t) for t in texts]


async def _until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


def _busy(r) -> dict:
    """A JSON 503 with Retry-After."""
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json") and int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["status"] == 503 and "try again" in body["error"]
    return body


def test_a_full_queue_answers_503_at_once_and_queues_nothing():
    model = GatedPredictor()
    app = create_app(model, max_queue=4, batch_window_ms=0, request_timeout_s=10)
    batcher = app.state.batcher

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            post = lambda body: asyncio.create_task(client.post("/predict", json=body))  # noqa: E731
            first = post({"texts": ["a", "b"]})
            await _until(lambda: model.calls)  # in the model thread, held at the gate: 2 of 4 texts taken
            assert batcher.pending == 2
            t0 = time.perf_counter()
            body = _busy(await client.post("/predict", json={"texts": ["c", "d", "e"]}))  # 2 + 3 > 4
            assert "4" in body["error"]
            second = post({"texts": ["f", "g"]})  # 2 + 2 fits
            await _until(lambda: batcher.pending == 4)
            _busy(await client.post("/predict", json={"text": "h"}))  # full: refused before its body is read
            _busy(await client.post("/explain", json={"text": "h"}))  # /explain shares the bound
            assert time.perf_counter() - t0 < 2  # at once, not after the gate opens
            health = (await client.get("/health")).json()["batcher"]  # /health still answers
            assert health["pending"] == 4 and health["max_queue"] == 4 and health["refused_busy"] == 3
            model.gate.set()
            r1, r2 = await first, await second
            assert r1.status_code == r2.status_code == 200
            assert [p["text"] for p in r2.json()["predictions"]] == ["f", "g"]
            await _until(lambda: batcher.pending == 0)
            assert (await client.post("/predict", json={"text": "i"})).status_code == 200
        await batcher.aclose()

    asyncio.run(main())
    assert model.calls == [["a", "b"], ["f", "g"], ["i"]]  # the refused texts never reached the model


def test_a_request_alone_always_fits():
    model = GatedPredictor()
    model.gate.set()
    app = create_app(model, max_queue=2, max_texts=5)

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            r = await client.post("/predict", json={"texts": list("abcde")})
        await app.state.batcher.aclose()
        return r

    assert asyncio.run(main()).status_code == 200


def test_a_slow_model_times_out_with_503_and_its_work_is_dropped():
    model = GatedPredictor()
    app = create_app(model, request_timeout_s=0.3, batch_window_ms=0)
    batcher = app.state.batcher

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            t0 = time.perf_counter()
            slow = asyncio.create_task(client.post("/predict", json={"text": "slow"}))
            await _until(lambda: model.calls)  # "slow" is in the model thread, held at the gate
            queued = await client.post("/predict", json={"text": "queued"})  # waits behind it
            slow = await slow
            assert time.perf_counter() - t0 < 3
            for r in (slow, queued):
                assert "did not answer within 0.3 s" in _busy(r)["error"]
            assert batcher.stats["timed_out"] == 2
            assert batcher.pending == 2  # the model thread still holds "slow"; "queued" waits to be dropped
            model.gate.set()
            await _until(lambda: batcher.pending == 0)
            r = await client.post("/predict", json={"text": "fresh"})
            assert r.status_code == 200 and r.json()["predictions"][0]["text"] == "fresh"
        await batcher.aclose()

    asyncio.run(main())
    assert model.calls == [["slow"], ["fresh"]]  # the timed-out "queued" was dropped unrun


async def _asgi_post(app, chunks: list[bytes], stall: bool) -> tuple[int, dict]:
    """POST /predict straight to the ASGI app, the body in ``chunks``; with ``stall`` the client then goes quiet."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": "",
             "headers": [(b"content-length", str(sum(map(len, chunks)) + 100 * stall).encode()),
                         (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    messages = [{"type": "http.request", "body": c, "more_body": stall or i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive():
        if messages:
            await asyncio.sleep(0.01)
            return messages.pop(0)
        await asyncio.sleep(3600)  # the stalled client

    async def send(message):
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 5)
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def test_a_body_that_never_arrives_is_408():
    """A client that sends part of its body and stalls gets 408 after request_timeout_s."""
    app = create_app(GatedPredictor(), request_timeout_s=0.3)
    status, body = asyncio.run(_asgi_post(app, [b'{"text": "sl'], stall=True))
    assert status == body["status"] == 408 and "did not arrive within 0.3 s" in body["error"]


def test_bodies_being_read_at_once_are_bounded():
    """Past max_body_bytes_in_flight over every request being read, a request is refused with 503 (one alone
    always fits)."""
    model = GatedPredictor()
    model.gate.set()
    app = create_app(model, request_timeout_s=0.5, max_body_bytes_in_flight=100)
    alone = [b'{"text": "', b"a" * 150, b'"}']  # more than the bound, but alone: fine

    async def main():
        assert (await _asgi_post(app, alone, stall=False))[0] == 200
        stalled = asyncio.create_task(_asgi_post(app, [b'{"text": "', b"a" * 60], stall=True))  # holds 70 bytes
        await asyncio.sleep(0.1)
        busy = await _asgi_post(app, [b'{"text": "', b"b" * 40, b'"}'], stall=False)  # 70 + 52 > 100
        return busy, await stalled

    (status, body), (stalled_status, _) = asyncio.run(main())
    assert status == body["status"] == 503 and "busy reading other requests" in body["error"]
    assert stalled_status == 408


def test_uvicorn_settings_and_command_options():
    from wordconv.errors import ConfigError
    from wordconv.server import MAX_HEADER_BYTES, bind, serve, uvicorn_config

    sock = bind("127.0.0.1", 0)
    try:
        config = uvicorn_config(lambda scope, receive, send: None, sock, max_connections=7)
    finally:
        sock.close()
    assert config.host == "127.0.0.1" and config.timeout_keep_alive == 5 and config.limit_concurrency == 7
    assert config.h11_max_incomplete_event_size == MAX_HEADER_BYTES == 16384 and config.timeout_graceful_shutdown
    with pytest.raises(ConfigError, match="max_connections"):
        serve("no-such-dir", max_connections=0)  # refused before anything is loaded
    r = _cli("--help")
    assert r.exit_code == 0 and all(o in r.output for o in ("--max-queue", "--request-timeout", "--max-connections"))
    assert _cli("no-such-dir", "--max-queue", "0").exit_code != 0


# ---------------------------------------------------------------------------------------------------- under load

LIMITS = {"max_texts": 8, "max_chars": 400, "max_queue": 24, "request_timeout": 4, "max_connections": 200}
MAX_BODY = 12 * LIMITS["max_chars"] * LIMITS["max_texts"] + 65536  # create_app's formula
N_VALID, N_GARBAGE, N_RAW, CONCURRENCY = 240, 160, 12, 32
RSS_BOUND_MB = 200


def _rss_mb(pid: int, key: str = "VmRSS") -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) / 1024


def _sentence(rng: random.Random) -> str:
    words = rng.sample(FILLER, rng.randint(2, 8))
    words.insert(rng.randrange(len(words) + 1), rng.choice(POS + NEG))
    return " ".join(words)


def valid_requests(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        if i % 12 == 11:
            out.append({"kind": "valid-explain", "method": "POST", "path": "/explain",
                        "json": {"text": _sentence(rng), "top_k": 2}})
        elif i % 3:
            out.append({"kind": "valid-single", "method": "POST", "path": "/predict",
                        "json": {"text": _sentence(rng), "top_k": rng.choice([1, 2])}})
        else:
            texts = [_sentence(rng) for _ in range(rng.randint(2, LIMITS["max_texts"]))]
            out.append({"kind": "valid-batch", "method": "POST", "path": "/predict", "json": {"texts": texts}})
    return out


def garbage_requests(rng: random.Random, n: int) -> list[dict]:
    """Seeded garbage: each request with the statuses it may get (a body-reading route may also be busy: 503)."""
    def post(kind, content, statuses, path="/predict", ctype="application/json"):
        return {"kind": kind, "method": "POST", "path": path, "content": content, "ctype": ctype,
                "expect": set(statuses)}

    def make(i: int) -> dict:
        pick = i % 16
        path = rng.choice(["/predict", "/explain"])
        if pick == 0:
            return post("random-bytes", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))),
                        {400, 422}, path)
        if pick == 1:
            raw = json.dumps({"texts": [_sentence(rng) for _ in range(3)]}).encode()
            return post("truncated-json", raw[: rng.randrange(1, len(raw) - 1)], {400}, path)
        if pick == 2:
            body = rng.choice([{"text": 5}, {"texts": "one"}, {"texts": []}, {"text": ""}, {"text": "a", "x": 1},
                               {}, {"text": "a", "top_k": 0}, {"text": "a", "top_k": "2"}, [1, 2], None, "text",
                               {"question": "q", "context": "c"}, {"texts": ["ok", None]}])
            return post("wrong-fields", json.dumps(body).encode(), {422}, path)
        if pick == 3:
            return post("too-many-texts", json.dumps({"texts": ["fun"] * (LIMITS["max_texts"] + 1)}).encode(),
                        {413}, path)
        if pick == 4:
            return post("huge-text", json.dumps({"text": "word " * LIMITS["max_chars"]}).encode(), {413}, path)
        if pick == 5:
            return post("oversized-body", b'{"text": "' + b"a" * (MAX_BODY + 1000) + b'"}', {413}, path)
        if pick == 6:
            return {"kind": "oversized-chunked", "method": "POST", "path": path, "chunked": MAX_BODY + 50_000,
                    "expect": {413}}
        if pick == 7:
            method, route = rng.choice([("PUT", "/predict"), ("DELETE", "/predict"), ("PATCH", "/explain"),
                                        ("GET", "/predict"), ("POST", "/health"), ("POST", "/metadata"),
                                        ("POST", "/")])
            return {"kind": "wrong-method", "method": method, "path": route, "expect": {405}}
        if pick == 8:
            route = rng.choice(["/nope", "/predict/x", "/static/server.py", "/static/..%2F..%2Fetc%2Fpasswd",
                                "/static/%2e%2e/server.py", "/docs", "/openapi.json/x", "/static/"])
            return {"kind": "unknown-path", "method": "GET", "path": route, "expect": {404}}
        if pick == 9:
            return post("non-utf8", b'{"text": "caf\xe9 \xff\xfe"}', {400}, path)
        if pick == 10:
            return post("lone-surrogate", b'{"text": "\\ud83d fun"}', {422}, path)
        if pick == 11:
            depth = rng.choice([2_000, 50_000])
            return post("deep-nesting", b'{"texts": ' + b"[" * depth + b"]" * depth + b"}", {400, 413, 422}, path)
        if pick == 12:
            number = rng.choice([b"1e999", b"-1e999", b"9" * 5000, b"NaN", b"-0", b"1.5"])
            return post("huge-number", b'{"text": "fun", "top_k": ' + number + b"}", {400, 422}, path)
        if pick == 13:
            return post("wrong-content-type", b"text=fun&top_k=1", {400}, path,
                        rng.choice(["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]))
        if pick == 14:
            return post("empty-body", rng.choice([b"", b"  \n"]), {400}, path)
        return post("nul-and-controls", json.dumps({"text": "\x00\x01\x02", "texts": ["\x7f"]}).encode(), {422},
                    path)

    return [make(i) for i in range(n)]


RAW_GARBAGE = [  # not HTTP at all, or broken HTTP: uvicorn answers 400 or closes the connection
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),  # a TLS hello
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2**20 + b"\r\n\r\n",  # a head past what one read takes
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"GET /\x00\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n",
    b"\r\n" * 100,
]


def _raw_exchange(port: int, payload: bytes, timeout: float = 10) -> str:
    """Send ``payload`` on a fresh connection; the status line's code, or how the connection ended."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(payload)
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError as err:  # the server answered and closed first (seen under load): read what it sent
                if err.errno != errno.ENOTCONN:
                    raise
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionError:  # reset, or a broken pipe: it stopped reading what it refused
            return "reset"
        except TimeoutError:
            return "no-answer"
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return m.group(1).decode() if m else ("closed" if not data else "not-http")


def _stalled_body(port: int, sent: threading.Event) -> tuple[str, float]:
    """Headers that promise 100 bytes, 10 of them, then silence: the server must answer 408 on its own."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"text\": ")
        sent.set()
        data = s.recv(65536)
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return (m.group(1).decode() if m else "none"), time.monotonic() - t0


async def _send_all(base: str, requests: list[dict], results: list) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def one(i: int, req: dict) -> None:
            async with gate:
                kwargs: dict = {}
                if "json" in req:
                    kwargs["json"] = req["json"]
                elif "content" in req:
                    kwargs["content"] = req["content"]
                    kwargs["headers"] = {"content-type": req["ctype"]}
                elif "chunked" in req:
                    total = req["chunked"]

                    async def chunks():
                        yield b'{"text": "'
                        for _ in range(total // 8192):
                            yield b"a" * 8192

                    kwargs["content"] = chunks()
                try:
                    r = await client.request(req["method"], req["path"], **kwargs)
                except httpx.TransportError as e:  # the server closed a connection whose body it refused
                    results[i] = (f"closed:{type(e).__name__}", None, "")
                    return
                results[i] = (str(r.status_code), r.headers.get("retry-after"), r.headers.get("content-type", ""),
                              r.text[:2000])

        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m wordconv.server MODEL --port 0`` with small limits, in its own process on 127.0.0.1."""
    model = model_dir(tmp_path_factory, "textcat")
    logs = tmp_path_factory.mktemp("server-logs")
    out, err = (logs / "stdout.txt").open("wb"), (logs / "stderr.txt").open("wb")
    cmd = [sys.executable, "-m", "wordconv.server", str(model), "--port", "0", "--log-level", "info",
           *(x for k, v in LIMITS.items() for x in (f"--{k.replace('_', '-')}", str(v)))]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (m := re.search(r"wordconv serving .* at http://127\.0\.0\.1:(\d+)",
                                  (logs / "stderr.txt").read_text(errors="replace"))):
            assert proc.poll() is None, (logs / "stderr.txt").read_text(errors="replace")
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            time.sleep(0.05)
        yield {"proc": proc, "port": int(m.group(1)), "base": f"http://127.0.0.1:{m.group(1)}", "model": model,
               "stderr": logs / "stderr.txt"}
    finally:
        proc.send_signal(signal.SIGINT)  # uvicorn shuts down at once; the interpreter's own exit can take seconds
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()
        err.close()


def test_the_server_under_bounded_load_from_another_process(server, capsys):
    import wordconv

    pid, port, base = server["proc"].pid, server["port"], server["base"]
    with httpx.Client(base_url=base, timeout=30) as client:  # warm up: the model has run, allocations settled
        for _ in range(20):
            assert client.post("/predict", json={"texts": ["a great film", "dull"]}).status_code == 200
            assert client.post("/explain", json={"text": "a great film"}).status_code == 200
        meta = client.get("/metadata").json()
    assert meta["limits"]["max_queue"] == LIMITS["max_queue"] and meta["limits"]["max_body_bytes"] == MAX_BODY
    rss_before = _rss_mb(pid)

    rng = random.Random(20240611)
    requests = valid_requests(rng, N_VALID) + garbage_requests(rng, N_GARBAGE)
    rng.shuffle(requests)
    results: list = [None] * len(requests)
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(_rss_mb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stalled: dict = {}
    stalled_sent = threading.Event()
    staller = threading.Thread(target=lambda: stalled.update(result=_stalled_body(port, stalled_sent)), daemon=True)
    staller.start()
    assert stalled_sent.wait(10)
    time.sleep(0.2)  # its head is read (and the queue empty) before the load starts: it waits for its body
    t0 = time.monotonic()
    asyncio.run(_send_all(base, requests, results))
    raw = [_raw_exchange(port, RAW_GARBAGE[i % len(RAW_GARBAGE)]) for i in range(N_RAW)]
    load_s = time.monotonic() - t0
    staller.join(30)
    stop.set()
    sampler.join()
    rss_after = _rss_mb(pid)

    # the figures
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for req, res in zip(requests, results):
        by_kind[req["kind"]][res[0]] += 1
    by_kind["raw-http-garbage"].update(raw)
    by_kind["stalled-body"][stalled.get("result", ("none", 0))[0]] += 1
    statuses = collections.Counter()
    for counts in by_kind.values():
        statuses.update(counts)
    sent = sum(statuses.values())
    five_xx = sum(n for s, n in statuses.items() if s.isdigit() and s.startswith("5"))
    five_xx_not_503 = sum(n for s, n in statuses.items() if s.isdigit() and s.startswith("5") and s != "503")
    summary = {
        "requests_sent": sent, "valid": N_VALID, "garbage_http": N_GARBAGE, "raw_socket_garbage": N_RAW,
        "stalled_bodies": 1, "concurrency": CONCURRENCY, "load_s": round(load_s, 2),
        "status_counts": dict(sorted(statuses.items())), "five_xx_seen": five_xx,
        "five_xx_other_than_503": five_xx_not_503,
        "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
        "rss_mb": {"before": round(rss_before, 1), "peak_during": round(max(samples, default=rss_before), 1),
                   "after": round(rss_after, 1), "bound_over_before": RSS_BOUND_MB},
        "server_limits": LIMITS, "seed": 20240611,
    }
    line = (f"server load: {sent} requests ({N_VALID} valid, {N_GARBAGE} garbage, {N_RAW} raw-socket, 1 stalled) "
            f"in {load_s:.1f} s -> {dict(sorted(statuses.items()))}; 5xx seen {five_xx} (all 503: "
            f"{five_xx_not_503 == 0}); RSS {rss_before:.0f} -> peak {summary['rss_mb']['peak_during']:.0f} -> "
            f"{rss_after:.0f} MB")
    with capsys.disabled():
        print("\n" + line)
    if os.environ.get("WORDCONV_RELIABILITY_OUT"):
        Path(os.environ["WORDCONV_RELIABILITY_OUT"]).write_text(json.dumps(summary, indent=2) + "\n")

    # the checks
    assert five_xx_not_503 == 0, summary
    for req, (status, retry_after, ctype, *text) in zip(requests, results):
        if status == "503":  # the busy answer: JSON with Retry-After, never from uvicorn's connection limit
            assert retry_after and ctype.startswith("application/json") and "try again" in text[0], (req, text)
        if req["kind"].startswith("valid"):
            assert status in ("200", "503"), (req, status, text)
            if status == "200":
                body = json.loads(text[0])
                n = len(req["json"].get("texts", [1]))
                assert len(body.get("predictions") or body.get("explanations")) == n
        elif status.startswith("closed:"):  # refused before its body was read in full: no answer to read
            assert "oversized" in req["kind"], (req["kind"], status)
        else:
            assert int(status) in req["expect"] | {503}, (req["kind"], status, text)
            assert ctype.startswith("application/json") and "Traceback" not in text[0], (req["kind"], text)
    assert by_kind["valid-single"]["200"] + by_kind["valid-batch"]["200"] > N_VALID // 3  # mostly served
    assert all(r in ("400", "closed", "reset") for r in raw), raw
    assert stalled.get("result", ("none",))[0] == "408", stalled  # answered, not left hanging
    assert max(samples, default=0) <= rss_before + RSS_BOUND_MB and rss_after <= rss_before + RSS_BOUND_MB, summary

    # still answering, and answering right
    predictor = wordconv.load(server["model"])
    with httpx.Client(base_url=base, timeout=30) as client:
        deadline = time.monotonic() + 10
        while (health := client.get("/health").json())["batcher"]["pending"]:
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
        assert health["status"] == "ok"
        texts = ["a superb and charming film", "dull plot", "the actors were weak"]
        r = client.post("/predict", json={"texts": texts, "top_k": 2})
        assert r.status_code == 200
        want = [p.to_dict() for p in predictor.predict(texts, top_k=2)]
        assert [p["label"] for p in r.json()["predictions"]] == [p["label"] for p in want]
    assert server["proc"].poll() is None
    log = server["stderr"].read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 300:][:6000]  # no bug met on the way
