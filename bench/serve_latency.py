"""Serving latency and throughput: `wordconv serve` over HTTP on 127.0.0.1, beside Predictor.predict in-process.

    python bench/serve_latency.py                              # trains TextCNN on MR fold 0 if needed
    python bench/serve_latency.py --model-dir runs/demo-mr
    python bench/serve_latency.py --model-dir runs/demo-mr --onnx           # after `wordconv export runs/demo-mr`
    python bench/serve_latency.py --model-dir runs/mr0 --requests 200 --seconds 3 --no-write   # smoke run

The server runs in its own process (``python -m wordconv.server DIR``, what ``wordconv serve`` runs) with
its defaults (2 ms batch window, 256 texts per model call); the clients are threads of this process
over keep-alive connections (``http.client``), sending MR test sentences (fold 0):

* single: one client, sequential requests of one sentence each: p50 / p90 / p99 latency, client-side
  (JSON encode, HTTP round trip, decode);
* batched: ``--clients`` concurrent clients, each request ``--batch`` sentences: sentences/s;
* concurrent single: ``--clients`` concurrent clients of one sentence each: sentences/s and the mean
  batch the server's micro-batcher formed (from /health).

The peer, measured first in this process with the same torch threads: ``Predictor.predict`` (``--onnx``:
the export's ``OnnxPredictor.predict``, and the server runs ``--onnx`` too) called directly, one sentence
at a time (latency) and in batches of 256 (throughput): the upper bound HTTP can approach.  Each phase
stops after ``--requests`` requests or ``--seconds`` seconds, whichever comes first.  Goals:
single-sentence p99 <= 10 ms; batched >= 5,000 sentences/s.  Results in
``bench/results/serve_latency.json``; table between ``<!-- serve:begin -->`` / ``<!-- serve:end -->``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import torch
from rich.console import Console

from benchlib import machine, write_between  # bench/ is on sys.path

import wordconv
from wordconv.pipeline import load_splits, resolve_config
from wordconv.server import load_predictor

BEGIN, END, HEADING = "<!-- serve:begin -->", "<!-- serve:end -->", "## Serving latency and throughput (HTTP)"
GOAL_P99_MS = 10.0
GOAL_SENTENCES_PER_S = 5000.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between the closest ranks."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def latency_summary(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90), "p99_ms": percentile(ms, 99),
            "mean_ms": statistics.fmean(ms) if ms else float("nan"), "max_ms": max(ms) if ms else float("nan")}


def default_model(args, console: Console) -> Path:
    """The model to serve: --model-dir, else Kim's TextCNN (wordconv's defaults) on MR fold 0, trained once."""
    if args.model_dir:
        return Path(args.model_dir)
    out = Path(args.out_dir) / "textcnn-mr-fold0"
    if not (out / "model.safetensors").is_file():
        console.print(f"training TextCNN on MR fold 0 -> {out}")
        wordconv.train("mr", "textcnn", out, fold=0, data_dir=args.data_dir, overwrite=True, console=console)
    return out


def sentences(args) -> list[str]:
    if args.texts:
        lines = [x.strip() for x in Path(args.texts).read_text(encoding="utf-8").splitlines()]
        return [x for x in lines if x]
    cfg = resolve_config(None, [], data="mr", model="textcnn", fold=0, data_dir=args.data_dir)
    return [ex.text for ex in load_splits(cfg).test]


# ---------------------------------------------------------------------------------------------------- the peer


def in_process(model_dir: Path, texts: list[str], args) -> dict:
    """Predictor.predict (--onnx: OnnxPredictor.predict) called directly: one sentence per call, then batches
    of 256."""
    pred = load_predictor(model_dir, onnx=args.onnx)
    pred.predict(texts[:256])  # warm-up
    lat, t_end = [], time.perf_counter() + args.seconds
    for i in range(args.requests):
        t = time.perf_counter()
        pred.predict([texts[i % len(texts)]])
        lat.append(time.perf_counter() - t)
        if t > t_end:
            break
    done, calls, t0 = 0, 0, time.perf_counter()
    while calls < max(1, args.requests // 8) and time.perf_counter() - t0 < args.seconds:
        batch = [texts[(calls * 256 + j) % len(texts)] for j in range(256)]
        pred.predict(batch, batch_size=256)
        done += len(batch)
        calls += 1
    return {"single": latency_summary(lat), "sentences_per_s": done / (time.perf_counter() - t0), "batch": 256}


# ---------------------------------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m wordconv.server DIR`` on a free 127.0.0.1 port, stopped on exit."""

    def __init__(self, model_dir: Path, extra: list[str]):
        self.port = free_port()
        cmd = [sys.executable, "-m", "wordconv.server", str(model_dir), "--port", str(self.port), "--log-level",
               "warning", *extra]
        self.log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty server never blocks on it
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, text=True)

    def __enter__(self) -> "ServerProcess":
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise SystemExit(f"the server exited ({self.proc.returncode}): {self.log.read()}")
            try:
                if get_json(self.port, "/health")["status"] == "ok":
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise SystemExit("the server did not answer /health within 120 s")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def get_json(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


class Client:
    """One keep-alive connection posting JSON to /predict."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def predict(self, body: dict) -> list:
        self.conn.request("POST", "/predict", json.dumps(body), {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {data[:300]!r}")
        return json.loads(data)["predictions"]

    def close(self) -> None:
        self.conn.close()


def single_latency(port: int, texts: list[str], args) -> dict:
    client = Client(port)
    for i in range(min(50, args.requests)):  # warm-up: connection, allocator, the batcher task
        client.predict({"text": texts[i % len(texts)]})
    lat, t_end = [], time.perf_counter() + args.seconds
    for i in range(args.requests):
        t = time.perf_counter()
        client.predict({"text": texts[i % len(texts)]})
        lat.append(time.perf_counter() - t)
        if t > t_end:
            break
    client.close()
    return latency_summary(lat)


def concurrent(port: int, texts: list[str], clients: int, batch: int, args) -> dict:
    """``clients`` threads, each posting ``batch`` sentences per request, sharing one budget of requests."""
    budget = threading.Semaphore(args.requests)
    stop_at = time.perf_counter() + args.seconds
    counts = [0] * clients
    lat: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(clients + 1)

    def work(k: int) -> None:
        client = Client(port)
        client.predict({"texts": texts[:batch]})  # warm-up, off the clock
        start.wait()
        i = k * 7919
        try:
            while time.perf_counter() < stop_at and budget.acquire(blocking=False):
                body = [texts[(i + j) % len(texts)] for j in range(batch)]
                i += batch
                t = time.perf_counter()
                preds = client.predict({"text": body[0]} if batch == 1 else {"texts": body})
                lat.append(time.perf_counter() - t)
                counts[k] += len(preds)
        except Exception as e:  # noqa: BLE001 - reported with the results
            errors.append(str(e))
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    before = get_json(port, "/health")["batcher"]
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    after = get_json(port, "/health")["batcher"]
    batches = after["batches"] - before["batches"]
    return {"clients": clients, "batch": batch, "sentences": sum(counts), "seconds": wall,
            "sentences_per_s": sum(counts) / wall, "request_latency": latency_summary(lat),
            "server_batches": batches, "mean_server_batch": (after["items"] - before["items"]) / max(1, batches),
            "errors": errors[:5]}


# ---------------------------------------------------------------------------------------------------- report


def table(r: dict) -> str:
    s, b, c, p = r["server"]["single"], r["server"]["batched"], r["server"]["concurrent_single"], r["in_process"]
    ok_lat = "yes" if s["p99_ms"] <= GOAL_P99_MS else "**no**"
    ok_thr = "yes" if b["sentences_per_s"] >= GOAL_SENTENCES_PER_S else "**no**"
    lines = [
        "| measurement | server (HTTP, 127.0.0.1) | in-process predict (the peer) | ratio (server / in-process) "
        "| goal met |",
        "|---|---|---|---|---|",
        f"| single sentence, sequential: p50 / p99 ms | {s['p50_ms']:.2f} / **{s['p99_ms']:.2f}** | "
        f"{p['single']['p50_ms']:.2f} / {p['single']['p99_ms']:.2f} | p99 x{s['p99_ms'] / p['single']['p99_ms']:.1f} "
        f"| {ok_lat} (p99 <= {GOAL_P99_MS:.0f} ms) |",
        f"| batched: {b['clients']} clients x {b['batch']} sentences per request, sentences/s | "
        f"**{b['sentences_per_s']:,.0f}** | {p['sentences_per_s']:,.0f} (batch {p['batch']}) | "
        f"{b['sentences_per_s'] / p['sentences_per_s']:.2f} | {ok_thr} (>= {GOAL_SENTENCES_PER_S:,.0f}/s) |",
        f"| concurrent single: {c['clients']} clients x 1 sentence, sentences/s | {c['sentences_per_s']:,.0f} "
        f"(mean server batch {c['mean_server_batch']:.1f}) | - | "
        f"{c['sentences_per_s'] / p['sentences_per_s']:.2f} | - |",
    ]
    return ("\n".join(lines) + "\n\n"
            f"Model: `{r['model_type']}` ({r['backend']}) from `{r['model_dir']}`; {r['n_texts']:,} MR test "
            "sentences (fold 0) sent "
            f"round-robin; at most {r['args']['requests']:,} requests or {r['args']['seconds']:.0f} s per phase. "
            "Latency is the client's (JSON, HTTP/1.1 keep-alive round trip, uvicorn + FastAPI, micro-batcher, "
            "predict). Server: `python -m wordconv.server DIR` (= `wordconv serve DIR`), defaults (2 ms window, "
            f"256 texts per model call). Command: `python bench/serve_latency.py`, {r['date']}, {r['machine']}.\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=None, help="a model to serve (default: TextCNN on MR fold 0, trained)")
    ap.add_argument("--texts", default=None, help="a file of texts, one per line (default: MR fold 0 test)")
    ap.add_argument("--data-dir", default=os.environ.get("WORDCONV_DATA"))
    ap.add_argument("--out-dir", default="runs/bench-serve")
    ap.add_argument("--requests", type=int, default=3000, help="requests per phase, at most")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds per phase, at most")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64, help="sentences per request in the batched phase")
    ap.add_argument("--onnx", action="store_true", help="serve (and call in-process) the ONNX export: "
                                                         "`wordconv export DIR` first")
    ap.add_argument("--server-arg", dest="server_args", action="append", default=[],
                    help="passed to the server, e.g. --server-arg=--batch-window-ms=5")
    ap.add_argument("--results", default="bench/results/serve_latency.json")
    ap.add_argument("--no-write", action="store_true", help="print only: no results file, no BENCHMARKS.md")
    args = ap.parse_args()
    console = Console(stderr=True)
    model_dir = default_model(args, console)
    texts = sentences(args)
    console.print(f"{len(texts):,} sentences; peer: {'OnnxPredictor' if args.onnx else 'Predictor'}.predict "
                  f"in-process ({torch.get_num_threads()} threads)")
    peer = in_process(model_dir, texts, args)
    console.print(peer)
    with ServerProcess(model_dir, ["--onnx"] * args.onnx + args.server_args) as server:
        single = single_latency(server.port, texts, args)
        console.print({"single": single})
        batched = concurrent(server.port, texts, args.clients, args.batch, args)
        console.print({"batched": batched})
        conc = concurrent(server.port, texts, args.clients, 1, args)
        console.print({"concurrent_single": conc})
    model_type = json.loads((model_dir / "config.json").read_text())["model"]["type"]
    results = {"model_dir": str(model_dir), "model_type": model_type,
               "backend": "onnx" if args.onnx else "torch",
               "n_texts": len(texts), "in_process": peer,
               "server": {"single": single, "batched": batched, "concurrent_single": conc},
               "ratios": {"p99_server_over_in_process": single["p99_ms"] / peer["single"]["p99_ms"],
                          "throughput_server_over_in_process": batched["sentences_per_s"] / peer["sentences_per_s"]},
               "goals": {"p99_ms": GOAL_P99_MS, "sentences_per_s": GOAL_SENTENCES_PER_S,
                         "p99_met": single["p99_ms"] <= GOAL_P99_MS,
                         "throughput_met": batched["sentences_per_s"] >= GOAL_SENTENCES_PER_S},
               "args": {k: v for k, v in vars(args).items() if k != "no_write"},
               "threads": torch.get_num_threads(), "date": str(date.today()), "machine": machine()}
    md = table(results)
    print(md)
    if not args.no_write:
        path = Path(args.results)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1))
        write_between(md, BEGIN, END, HEADING)


if __name__ == "__main__":
    main()
