"""The HTTP server: ``wordconv serve DIR`` puts one model directory behind a small JSON API and a web page.

    POST /predict    {"text": "..."} or {"texts": [...]}, optional "top_k"   (qa: {"question", "context"}
                     or {"items": [{"question", "context"}, ...]})          -> {"predictions": [...]}
    POST /explain    {"text"} or {"texts"}, optional "top_k" (n-grams per class; text classifiers)
                                                                             -> {"explanations": [...]}
    GET  /health     liveness and the micro-batcher's counters
    GET  /metadata   task, labels, model type, config, metrics, meta, request limits
    GET  /           the web page (wordconv/static: no CDN, works offline)

Routes are thin (house style 8): they validate the body, then call the same
:class:`~wordconv.inference.Predictor` a library user calls.  Bad input is a 4xx JSON error that names
the field at fault (400 unreadable JSON, 413 too many or too long texts or too large a body, 422 wrong shape,
type or an empty text, 404 / 405 unknown route or method).  An unexpected error (a bug) is a 500 whose
JSON holds only an id; its traceback goes to the server's log.  No response ever holds a traceback.

Load is bounded (:func:`create_app`): at most ``max_queue`` texts wait for or are in the model (more:
503 with ``Retry-After`` at once, nothing queued); a body must arrive within ``request_timeout_s`` (else
408) and its predictions come within the same time (else 503, the work dropped); uvicorn closes idle
connections, caps request heads and, past ``max_connections``, answers 503 itself
(:func:`uvicorn_config`).  The server listens on 127.0.0.1 unless told otherwise and never opens a file
named by a request (the page's three files are read once, at start).

Requests that arrive together are micro-batched: one background task gathers them (up to
``max_batch`` texts, waiting at most ``batch_window_ms`` for company once requests overlap) and runs
one ``predict`` call in the single model thread; each request gets exactly its own predictions back.
"""

# no `from __future__ import annotations`: FastAPI reads the route functions' annotations (Request) at runtime
import asyncio
import contextlib
import importlib
import json
import math
import socket
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from rich.console import Console

from wordconv.errors import ConfigError, DataError, ModelError, WordconvError
from wordconv.userio import user_errors

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC = Path(__file__).parent / "static"
# the page and its two assets, by URL name: (file, media type); nothing else under static/ is served
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
# the page loads only its own script and style: even a bug that wrote user text as markup could not run it
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                                           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                           "form-action 'none'; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
TEXT_TASKS = ("textcat", "multilabel", "regression", "ner")
EXPLAIN_TASKS = ("textcat", "multilabel")  # one probability per label to explain (wordconv.explain)
TEXT_KEYS, QA_KEYS = {"text", "texts"}, {"question", "context", "items"}
log = logging.getLogger("wordconv.server")
INSTALL_HINT = "the server needs fastapi and uvicorn: pip install 'wordconv[serve]' (or fastapi uvicorn)"


# ---------------------------------------------------------------------------------------------------- request bodies


def _not_blank(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("empty_text", "empty text: give at least one word")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): no UTF-8 text, nothing a model can read
        raise PydanticCustomError("unpaired_surrogate", "the text holds an unpaired UTF-16 surrogate (such as "
                                                        "\\ud800): send valid Unicode text") from None
    return text


Text = Annotated[str, AfterValidator(_not_blank)]


class TextsRequest(BaseModel):
    """Body of ``POST /predict`` (text models) and ``POST /explain``: one text or a list of texts."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: Optional[Text] = None
    texts: Optional[list[Text]] = Field(default=None, min_length=1)
    top_k: Optional[int] = Field(default=None, ge=1)  # textcat: how many labels to rank (default 1)

    @model_validator(mode="after")
    def _one_of(self) -> "TextsRequest":
        if (self.text is None) == (self.texts is None):
            raise PydanticCustomError("text_or_texts", "give either text (one string) or texts (a list of strings)")
        return self

    def all_texts(self) -> list[tuple[str, str]]:
        """(field name, text) pairs in request order."""
        if self.text is not None:
            return [("text", self.text)]
        return [(f"texts[{i}]", t) for i, t in enumerate(self.texts or [])]


class QAItem(BaseModel):
    """One question about one context (``POST /predict`` of a question-answering model)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    question: Text
    context: Text


class QARequest(BaseModel):
    """Body of ``POST /predict`` for a question-answering model: one question and its context, or items."""

    model_config = ConfigDict(extra="forbid", strict=True)

    question: Optional[Text] = None
    context: Optional[Text] = None
    items: Optional[list[QAItem]] = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_of(self) -> "QARequest":
        single = self.question is not None or self.context is not None
        if single == (self.items is not None):
            raise PydanticCustomError("question_or_items", "give either question and context, or items (a list of "
                                                           "{question, context} objects)")
        if single and (self.question is None or self.context is None):
            missing = "context" if self.context is None else "question"
            raise PydanticCustomError("question_and_context", f"{missing} is missing: give both question and context")
        return self

    def pairs(self) -> list[tuple[str, str, str]]:
        """(field prefix, question, context) triples in request order."""
        if self.items is None:
            return [("", self.question or "", self.context or "")]
        return [(f"items[{i}].", it.question, it.context) for i, it in enumerate(self.items)]


# ---------------------------------------------------------------------------------------------------- errors


class ApiError(Exception):
    """A request the server refuses: an HTTP status and ``(field, message)`` pairs."""

    def __init__(self, status: int, errors: list[tuple[str, str]], headers: dict[str, str] | None = None):
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in errors))
        self.status, self.errors, self.headers = status, errors, dict(headers or {})


class Busy(ApiError):
    """503 with a ``Retry-After``: the queue is full, or the model did not answer in time.  Nothing was kept."""

    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(503, [("", message)], {"Retry-After": str(retry_after_s)})


def _field_name(loc: Sequence[Any]) -> str:
    """``("texts", 3)`` -> ``texts[3]``; ``("items", 0, "context")`` -> ``items[0].context``; ``()`` -> ``body``."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _validation_errors(exc: ValidationError | Any, allowed: str) -> list[tuple[str, str]]:
    out = []
    for e in exc.errors():
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = f"unknown field; this body takes {allowed}"
        out.append((_field_name(e["loc"]), msg))
    return out


def error_body(status: int, errors: list[tuple[str, str]]) -> dict:
    """The JSON of every error: ``{"error": "field: message; ...", "status", "errors": [{field, message}]}``."""
    summary = "; ".join(f"{f}: {m}" if f else m for f, m in errors)
    return {"error": summary, "status": status, "errors": [{"field": f or None, "message": m} for f, m in errors]}


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _json_safe(value: Any) -> Any:
    """Plain JSON values: non-finite floats become null, tuples lists, numpy/torch scalars numbers, anything else
    its string."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if callable(getattr(value, "item", None)) and getattr(value, "ndim", None) == 0:  # a numpy / torch scalar
        return _json_safe(value.item())
    return str(value)


# ---------------------------------------------------------------------------------------------------- micro-batching


@dataclass
class Job:
    """One request waiting for its predictions: its items (texts, or (question, context) pairs)."""

    items: list
    top_k: int
    future: asyncio.Future = field(repr=False)
    released: bool = field(default=False, repr=False)  # its items no longer count against max_queue


class MicroBatcher:
    """Gathers the jobs of concurrent requests into one model call in the model thread.

    The first job after a quiet spell goes at once (a lone client pays no window); once requests overlap,
    each batch waits up to ``window_s`` for more, up to ``max_batch`` items.  While the model thread is
    busy, new jobs queue up and form the next batch.  ``run(jobs)`` returns each job's results; when a
    batch fails, its jobs are run one by one so that one bad request cannot fail the others.

    ``max_queue`` bounds the items waiting for or inside the model call (None: no bound): a job that would
    go over it is refused at once with :class:`Busy` (503) and never enqueued, so memory cannot grow with
    the backlog.  A job alone always fits, however large.  ``timeout_s`` bounds how long ``submit`` waits:
    then it raises :class:`Busy` and the job is dropped (skipped if still queued, its results discarded if
    the model is already running it); its items count until the model thread is done with them."""

    def __init__(self, run: Callable[[list[Job]], list[list]], executor: ThreadPoolExecutor, *, window_s: float,
                 max_batch: int, max_queue: int | None = None, timeout_s: float | None = None):
        self.run, self.executor, self.window_s, self.max_batch = run, executor, window_s, max_batch
        self.max_queue, self.timeout_s = max_queue, timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Job] | None = None
        self._task: asyncio.Task | None = None
        self._carry: Job | None = None
        self._last_jobs = 0
        self._generation = 0  # bumped when a new loop takes over; late releases from the old one are ignored
        self.pending = 0  # items admitted and not yet finished with (queued or in the model call)
        self.stats = {"batches": 0, "requests": 0, "items": 0, "largest_batch": 0, "refused_busy": 0,
                      "timed_out": 0}

    def _ensure_started(self) -> asyncio.Queue[Job]:
        # bound to the running loop; a test client that runs each request in a new loop gets a new task
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done() or self._queue is None:
            self._loop, self._queue, self._carry = loop, asyncio.Queue(), None
            self._generation += 1
            self.pending = 0  # the old loop's jobs are gone with it
            self._task = loop.create_task(self._serve_forever(self._queue), name="wordconv-batcher")
        return self._queue

    def full(self, n: int = 1) -> bool:
        """Whether ``n`` more items would be refused now."""
        return self.max_queue is not None and self.pending > 0 and self.pending + n > self.max_queue

    def _admit(self, n: int) -> None:
        if self.full(n):
            self.stats["refused_busy"] += 1
            raise Busy(f"the server is busy: {self.pending:,} texts are waiting for the model and this request "
                       f"would bring them over the limit of {self.max_queue:,}; try again shortly")
        self.pending += n

    def _release(self, job: Job) -> None:
        if not job.released:
            job.released = True
            self.pending = max(0, self.pending - len(job.items))

    def _release_items(self, n: int, generation: int) -> None:
        if generation == self._generation:
            self.pending = max(0, self.pending - n)

    async def _wait(self, future: "asyncio.Future[Any]") -> Any:
        if self.timeout_s is None:
            return await future
        try:
            return await asyncio.wait_for(future, self.timeout_s)  # cancels the future when it expires
        except TimeoutError:
            self.stats["timed_out"] += 1
            raise Busy(f"the model did not answer within {self.timeout_s:g} s (the server is busy); try again "
                       "shortly") from None

    async def start(self) -> None:
        self._ensure_started()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def submit(self, items: list, top_k: int = 1) -> list:
        """This request's results, in item order, once its batch has run."""
        queue = self._ensure_started()
        self._admit(len(items))
        job = Job(items, top_k, asyncio.get_running_loop().create_future())
        queue.put_nowait(job)
        return await self._wait(job.future)

    async def call(self, fn: Callable[[], Any], n_items: int) -> Any:
        """``fn()`` in the model thread, outside any batch (``/explain``), under the same queue bound and
        timeout as :meth:`submit`; ``n_items`` count against ``max_queue`` until ``fn`` has returned."""
        self._ensure_started()
        self._admit(n_items)
        loop, generation = asyncio.get_running_loop(), self._generation

        def done(_f) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing left to count
                loop.call_soon_threadsafe(self._release_items, n_items, generation)

        try:
            work = self.executor.submit(fn)
        except BaseException:
            self._release_items(n_items, generation)
            raise
        work.add_done_callback(done)
        return await self._wait(asyncio.wrap_future(work, loop=loop))

    async def _gather(self, queue: asyncio.Queue[Job]) -> list[Job]:
        loop = asyncio.get_running_loop()
        first = self._carry or await queue.get()
        self._carry = None
        jobs, size = [first], len(first.items)
        wait = self.window_s > 0 and self._last_jobs > 1  # overlapping traffic: worth waiting for company
        deadline = loop.time() + self.window_s
        while size < self.max_batch:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if not wait or remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:  # asyncio's, since Python 3.11
                    break
            if size + len(job.items) > self.max_batch:
                self._carry = job  # first in the next batch
                break
            jobs.append(job)
            size += len(job.items)
        return jobs

    async def _serve_forever(self, queue: asyncio.Queue[Job]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            gathered = await self._gather(queue)
            jobs = []
            for j in gathered:
                if j.future.done():  # timed out or the client went away: dropped unrun
                    self._release(j)
                else:
                    jobs.append(j)
            if not jobs:
                continue
            self._last_jobs = len(jobs)
            n = sum(len(j.items) for j in jobs)
            self.stats["batches"] += 1
            self.stats["requests"] += len(jobs)
            self.stats["items"] += n
            self.stats["largest_batch"] = max(self.stats["largest_batch"], n)
            try:
                results = await loop.run_in_executor(self.executor, self.run, jobs)
            except asyncio.CancelledError:
                for j in jobs:
                    self._release(j)
                    if not j.future.done():
                        j.future.set_exception(ApiError(503, [("", "the server is shutting down")]))
                raise
            except Exception as e:  # noqa: BLE001 - handed to the requests, each answered on its own
                if len(jobs) == 1:
                    results = [e]
                else:
                    results = []
                    for j in jobs:
                        try:
                            results.append((await loop.run_in_executor(self.executor, self.run, [j]))[0])
                        except Exception as one:  # noqa: BLE001 - this request's own error
                            results.append(one)
            for j, r in zip(jobs, results):
                self._release(j)
                if j.future.done():  # timed out while the model ran: the results are dropped
                    continue
                if isinstance(r, BaseException):
                    j.future.set_exception(r)
                else:
                    j.future.set_result(r)


def run_jobs(predictor: Any, jobs: list[Job]) -> list[list[dict]]:
    """One model call for every job's items (in the model thread); each job's prediction dicts.

    Text classifiers rank ``max(top_k)`` labels once; each job keeps the first ``top_k`` of them, which is
    what a call with its own ``top_k`` gives."""
    items = [x for j in jobs for x in j.items]
    if predictor.task == "qa":
        preds = predictor.answer([q for q, _ in items], [c for _, c in items])
    else:
        preds = predictor.predict(items, top_k=max(j.top_k for j in jobs))
    dicts = [p.to_dict() for p in preds]
    out, at = [], 0
    for j in jobs:
        mine = dicts[at: at + len(j.items)]
        at += len(j.items)
        for d in mine:
            if isinstance(d.get("top_k"), list):
                d["top_k"] = d["top_k"][: j.top_k]
        out.append(mine)
    return out


# ---------------------------------------------------------------------------------------------------- the app


def _explain_module():
    return importlib.import_module("wordconv.explain")  # written separately; may be absent from this version


def create_app(predictor: Any, *, max_texts: int = 256, max_chars: int = 20000, batch_window_ms: float = 2,
               max_batch: int = 256, max_queue: int = 4096, request_timeout_s: float = 30,
               max_body_bytes_in_flight: Optional[int] = None) -> "FastAPI":
    """A FastAPI app serving ``predictor`` (a :class:`~wordconv.inference.Predictor`, or an ONNX predictor with
    the same interface).  ``max_texts``: texts (qa: questions) per request; ``max_chars``: characters per
    text, question or context; ``batch_window_ms`` / ``max_batch``: micro-batching (see :class:`MicroBatcher`).

    Load limits, so that a flood of requests costs bounded memory and gets answers rather than a hang:
    ``max_queue``: texts waiting for or in the model at once (a request that would go over gets 503 with
    ``Retry-After``, at once, and nothing is queued; a request alone always fits); ``request_timeout_s``: a
    request whose body has not arrived by then gets 408, one whose predictions have not come by then 503
    (its work is dropped); ``max_body_bytes_in_flight``: request bytes being read at once, over every
    request (503 past it, unless the request is alone; default: the larger of 256 MiB and one largest body)."""
    fastapi, _ = _require_server_deps()
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    for name, value, low in (("max_texts", max_texts, 1), ("max_chars", max_chars, 1), ("max_batch", max_batch, 1),
                             ("batch_window_ms", batch_window_ms, 0), ("max_queue", max_queue, 1),
                             ("request_timeout_s", request_timeout_s, 0.001),
                             ("max_body_bytes_in_flight", 1 if max_body_bytes_in_flight is None else
                              max_body_bytes_in_flight, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low:
            raise ConfigError(f"{name} must be a number >= {low}, got {value!r}")
    task = getattr(predictor, "task", "textcat")
    if task not in (*TEXT_TASKS, "qa"):
        raise ModelError(f"cannot serve a model of task {task!r}: the server knows {', '.join(TEXT_TASKS)} and qa")
    page = {name: (STATIC / name) for name in ("index.html", *ASSETS)}
    missing = [str(p) for p in page.values() if not p.is_file()]
    if missing:
        raise ModelError(f"the web page files are missing from the installed package ({', '.join(missing)}): "
                         "reinstall wordconv (its package data includes wordconv/static)")
    assets = {name: p.read_bytes() for name, p in page.items()}
    # a body can hold max_texts texts (qa: question + context) of max_chars characters, each up to 6 bytes
    # once JSON-escaped, plus room for keys; anything larger is refused before it is read in full
    max_body = 12 * max_chars * max_texts + 65536
    in_flight_limit = int(max_body_bytes_in_flight or max(256 * 2**20, max_body))
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wordconv-model")  # one model call at a time
    batcher = MicroBatcher(lambda jobs: run_jobs(predictor, jobs), executor, window_s=batch_window_ms / 1000,
                           max_batch=int(max_batch), max_queue=int(max_queue), timeout_s=float(request_timeout_s))
    reading = {"bytes": 0}  # request bytes read and not yet parsed, over every request
    config = getattr(predictor, "config", None)
    model_type = getattr(getattr(config, "model", None), "type", None)
    onnx_class = type(predictor).__name__.startswith("Onnx")
    backend = getattr(predictor, "backend", None) or ("onnx" if onnx_class else "torch")
    static_meta = _json_safe({
        "task": task, "labels": list(getattr(predictor, "labels", []) or []),
        "model": {"type": model_type, "backend": backend,
                  "path": str(getattr(predictor, "path", "") or "") or None},
        "config": config.model_dump(mode="json") if hasattr(config, "model_dump") else None,
        "metrics": getattr(predictor, "metrics", None), "meta": getattr(predictor, "meta", None) or {},
        "limits": {"max_texts": max_texts, "max_chars": max_chars, "max_batch": max_batch,
                   "batch_window_ms": batch_window_ms, "max_body_bytes": max_body, "max_queue": max_queue,
                   "request_timeout_s": request_timeout_s, "max_body_bytes_in_flight": in_flight_limit},
    })
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(_app) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.aclose()

    app = fastapi.FastAPI(title="wordconv", version=_version(), docs_url=None, redoc_url=None, lifespan=lifespan,
                          description=__doc__)
    app.state.predictor, app.state.batcher, app.state.executor = predictor, batcher, executor

    def json_response(content: Any, status: int = 200) -> Response:
        try:
            body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        except (ValueError, TypeError):  # a NaN/inf (JSON has no such number), a numpy scalar, a lone surrogate
            body = json.dumps(_json_safe(content), separators=(",", ":")).encode("ascii")  # \u-escapes: valid JSON
        return Response(body, status_code=status, media_type="application/json")

    def fail(status: int, errors: list[tuple[str, str]], headers: dict | None = None) -> Response:
        response = json_response(error_body(status, errors), status)
        response.headers.update(headers or {})
        return response

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return fail(exc.status, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_request: Request, exc: RequestValidationError) -> Response:
        return fail(422, _validation_errors(exc, "the documented fields"))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return fail(exc.status_code, [("", str(exc.detail))], dict(exc.headers or {}))

    @app.exception_handler(WordconvError)
    async def _wordconv_error(_request: Request, exc: WordconvError) -> Response:
        # the predictor refused the input (DataError) or the request does not suit the model
        return fail(422 if isinstance(exc, DataError) else 400, [("body", str(exc))])

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # a bug (in the model or here): the traceback goes to the server's log under an id; the client gets
        # the id and nothing of the exception (its message may hold paths or another request's text)
        return fail(500, [("", internal_error(request, exc))])

    def internal_error(request: Request, exc: BaseException) -> str:
        error_id = uuid.uuid4().hex[:12]
        log.error("internal error %s on %s %s", error_id, request.method, request.url.path,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return f"internal error {error_id}: the server's log has the details"

    async def model_call(request: Request, work: Awaitable[Any]) -> Any:
        """The batcher's answer; an unexpected exception from the model becomes a logged, generic 500."""
        try:
            return await work
        except (ApiError, WordconvError):
            raise
        except Exception as e:  # noqa: BLE001 - logged with its traceback; the client gets an id
            raise ApiError(500, [("", internal_error(request, e))]) from None

    def refuse_if_full(n: int = 1) -> None:
        if batcher.full(n):  # before the body is read: a flood costs no memory
            batcher.stats["refused_busy"] += 1
            raise Busy(f"the server is busy: {batcher.pending:,} texts are waiting for the model (at most "
                       f"{max_queue:,}); try again shortly")

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body:
            raise ApiError(413, [("body", f"{int(declared):,} bytes; at most {max_body:,} per request")])
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body:
                    raise ApiError(413, [("body", f"more than {max_body:,} bytes; at most {max_body:,} per "
                                                  "request")])
                reading["bytes"] += len(chunk)
                chunks.append(chunk)
                if reading["bytes"] > in_flight_limit and reading["bytes"] > size:  # others' too: alone, it fits
                    raise Busy(f"the server is busy reading other requests (more than {in_flight_limit:,} bytes "
                               "at once); try again shortly")
        except ClientDisconnect:  # gone (or its HTTP broke) mid-body: nobody reads this answer, nothing to log
            raise ApiError(400, [("body", "the connection closed before the whole body arrived")]) from None
        finally:
            reading["bytes"] -= sum(len(c) for c in chunks)
        return b"".join(chunks)

    async def read_json(request: Request) -> dict:
        refuse_if_full()
        try:
            async with asyncio.timeout(request_timeout_s):
                raw = await read_body(request)
        except TimeoutError:
            raise ApiError(408, [("body", f"the request body did not arrive within {request_timeout_s:g} s")]) \
                from None
        if not raw.strip():
            raise ApiError(400, [("body", 'empty body: send a JSON object such as {"text": "..."}')])
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ApiError(400, [("body", f"not valid JSON: {str(e)[:200]}")]) from None
        if not isinstance(data, dict):
            raise ApiError(422, [("body", f"expected a JSON object such as {{\"text\": \"...\"}}, got "
                                          f"{_json_type(data)}")])
        return data

    def check_task_keys(data: dict) -> None:
        keys = set(data)
        if task == "qa" and keys & TEXT_KEYS and not keys & QA_KEYS:
            name = min(keys & TEXT_KEYS)
            raise ApiError(422, [(name, 'this is a question-answering model (task qa): send {"question": ..., '
                                        '"context": ...} or {"items": [{"question": ..., "context": ...}]}')])
        if task != "qa" and keys & QA_KEYS and not keys & TEXT_KEYS:
            name = min(keys & QA_KEYS)
            raise ApiError(422, [(name, f'question and context are for question-answering models; this model is '
                                        f'{task}: send {{"text": ...}} or {{"texts": [...]}}')])

    def check_limits(named: list[tuple[str, str]], count: int, count_field: str) -> None:
        if count > max_texts:
            raise ApiError(413, [(count_field, f"{count} items; at most {max_texts} per request (split them)")])
        long = [(f, f"{len(t):,} characters; at most {max_chars:,}") for f, t in named if len(t) > max_chars]
        if long:
            raise ApiError(413, long[:10])

    def parse_texts(data: dict) -> TextsRequest:
        try:
            req = TextsRequest.model_validate(data)
        except ValidationError as e:
            raise ApiError(422, _validation_errors(e, "text or texts, and top_k")) from None
        named = req.all_texts()
        check_limits(named, len(named), "texts")
        return req

    @app.post("/predict", summary="predictions for texts (qa: answers to questions)")
    async def predict(request: Request) -> Response:
        data = await read_json(request)
        check_task_keys(data)
        if task == "qa":
            try:
                qa = QARequest.model_validate(data)
            except ValidationError as e:
                raise ApiError(422, _validation_errors(e, "question and context, or items")) from None
            pairs = qa.pairs()
            check_limits([(f"{p}{k}", t) for p, q, c in pairs for k, t in (("question", q), ("context", c))],
                         len(pairs), "items")
            results = await model_call(request, batcher.submit([(q, c) for _, q, c in pairs]))
        else:
            req = parse_texts(data)
            results = await model_call(request, batcher.submit([t for _, t in req.all_texts()], req.top_k or 1))
        return json_response({"task": task, "predictions": results})

    def explainer():
        """wordconv.explain's module, or why this model cannot be explained here (an ApiError)."""
        if task not in EXPLAIN_TASKS:
            raise ApiError(400, [("", f"/explain explains text classifiers (tasks {', '.join(EXPLAIN_TASKS)}); this "
                                      f"model is {task}: use /predict")])
        if backend == "onnx":
            raise ApiError(501, [("", "explanations read the PyTorch model: serve without --onnx to explain")])
        try:
            return _explain_module()
        except ImportError as e:
            raise ApiError(501, [("", f"explanations need wordconv.explain, which this installation lacks ({e})")]) \
                from None

    @app.post("/explain", summary="which words and n-grams drove a text classifier's prediction")
    async def explain(request: Request) -> Response:
        data = await read_json(request)
        module = explainer()
        check_task_keys(data)
        req = parse_texts(data)
        texts = [t for _, t in req.all_texts()]
        kwargs = {} if req.top_k is None else {"top_k": req.top_k}  # n-grams per class; explain's default else

        def run() -> list[dict]:
            return [r.to_dict() for r in module.explain(predictor, texts, **kwargs)]

        results = await model_call(request, batcher.call(run, len(texts)))
        return json_response({"task": task, "explanations": results})

    @app.get("/health", summary="liveness, uptime and micro-batching counters")
    async def health() -> Response:
        return json_response({"status": "ok", "task": task, "uptime_s": round(time.time() - started, 3),
                              "batcher": {**batcher.stats, "pending": batcher.pending, "max_queue": max_queue}})

    @app.get("/metadata", summary="task, labels, model type, config, metrics, meta and request limits")
    async def metadata() -> Response:
        try:
            explainer()
            can_explain = True
        except ApiError:
            can_explain = False
        return json_response({**static_meta, "explain": can_explain})

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(assets["index.html"], media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in ASSETS:
            raise ApiError(404, [("", f"no such file: {name}")])
        return Response(assets[name], media_type=ASSETS[name], headers=PAGE_HEADERS)

    return app


# ---------------------------------------------------------------------------------------------------- running it


def _version() -> str:
    from wordconv import __version__

    return __version__


def _require_server_deps():
    try:
        import fastapi
        import uvicorn
    except ImportError as e:
        raise WordconvError(f"{INSTALL_HINT} ({e})") from None
    return fastapi, uvicorn


def load_predictor(model_dir: str | Path, onnx: bool = False) -> Any:
    """The predictor ``serve`` uses: :class:`~wordconv.inference.Predictor`, or with ``onnx`` the exported
    ONNX model's :class:`~wordconv.export.OnnxPredictor`."""
    if not onnx:
        from wordconv.inference import Predictor

        return Predictor.load(model_dir)
    try:
        from wordconv.export import OnnxPredictor
    except ImportError as e:
        raise ModelError(f"--onnx needs wordconv.export and onnxruntime, which cannot be imported here ({e}); "
                         "serve without --onnx, or install the export extra (pip install 'wordconv[export]')") from None
    return OnnxPredictor.load(model_dir)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free one), or a clear error."""
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             proto=socket.IPPROTO_TCP)[0]
        # proto IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say
        # they are TCP; with it on, a response written in two parts waits ~40 ms for the client's delayed ACK
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        return sock
    except (OSError, OverflowError) as e:
        if sock is not None:
            sock.close()
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(f"cannot listen on {host}:{port}: {reason} (another server on that port? choose one with "
                          "--port)") from None


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# a request line and headers still incomplete past this are refused (h11's own default; bodies: create_app)
MAX_HEADER_BYTES = 16 * 1024
KEEP_ALIVE_S = 5  # an idle kept-alive connection is closed after this


def uvicorn_config(app: Any, sock: socket.socket, *, log_level: str = "info", access_log: bool = True,
                   max_connections: int | None = 1024) -> Any:
    """uvicorn's settings for ``app`` on ``sock``: idle connections closed after :data:`KEEP_ALIVE_S`; a request
    head still incomplete past :data:`MAX_HEADER_BYTES` refused with 400 (so a connection buffers at most that
    plus one network read; this is uvicorn's h11 parser, the one it uses when httptools is absent, whose own
    limit is about 80 KiB); at most ``max_connections`` connections or requests at once (more: uvicorn's own
    plain-text 503); at most 10 s to finish requests on shutdown."""
    _, uvicorn = _require_server_deps()
    host, port = sock.getsockname()[:2]
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=access_log,
                          timeout_keep_alive=KEEP_ALIVE_S, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                          limit_concurrency=max_connections, timeout_graceful_shutdown=10)


@contextlib.contextmanager
def serving(app: "FastAPI", host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
            max_connections: int | None = 1024) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread (tests, benchmarks); yields its base URL, stops on exit."""
    _, uvicorn = _require_server_deps()
    sock = bind(host, port)
    server = uvicorn.Server(uvicorn_config(app, sock, log_level=log_level, access_log=False,
                                           max_connections=max_connections))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="wordconv-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise ModelError("the server did not start (see its log above)")
        time.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, onnx: bool = False, *,
          max_texts: int = 256, max_chars: int = 20000, batch_window_ms: float = 2, max_batch: int = 256,
          max_queue: int = 4096, request_timeout_s: float = 30, max_connections: int = 1024,
          log_level: str = "info") -> None:
    """Load ``model_dir`` and serve it over HTTP until interrupted (Ctrl-C).  Binds 127.0.0.1 (this machine
    only) unless told otherwise.  The limits: :func:`create_app`'s and :func:`uvicorn_config`'s."""
    _, uvicorn = _require_server_deps()
    if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
        raise ConfigError(f"max_connections must be a number >= 1, got {max_connections!r}")
    predictor = load_predictor(model_dir, onnx=onnx)
    app = create_app(predictor, max_texts=max_texts, max_chars=max_chars, batch_window_ms=batch_window_ms,
                     max_batch=max_batch, max_queue=max_queue, request_timeout_s=request_timeout_s)
    sock = bind(host, port)
    server = uvicorn.Server(uvicorn_config(app, sock, log_level=log_level, max_connections=max_connections))
    # uvicorn names no address when handed a socket: say where (with --port 0, the only way to know)
    logging.getLogger("uvicorn.error").info("wordconv serving %s at %s (Ctrl-C to stop)", model_dir, url_of(sock))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


_err = Console(stderr=True)


def serve_command(
    model_dir: Annotated[Path, typer.Argument(help="a trained model directory")],
    host: Annotated[str, typer.Option(help="address to listen on: 127.0.0.1 is this machine only; 0.0.0.0 every "
                                           "network interface (anyone who can reach it may use the model)")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free one)")] = 8000,
    onnx: Annotated[bool, typer.Option("--onnx", help="run the exported ONNX model (wordconv.export) with "
                                                      "onnxruntime instead of PyTorch")] = False,
    max_texts: Annotated[int, typer.Option("--max-texts", min=1, help="texts (qa: questions) per request")] = 256,
    max_chars: Annotated[int, typer.Option("--max-chars", min=1, help="characters per text, question or "
                                                                      "context")] = 20000,
    batch_window_ms: Annotated[float, typer.Option(
        "--batch-window-ms", min=0, help="how long a batch of concurrent requests waits for more")] = 2,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="texts per model call")] = 256,
    max_queue: Annotated[int, typer.Option("--max-queue", min=1, help="texts waiting for or in the model at once; "
                                                                      "past it, requests get 503 at once")] = 4096,
    request_timeout: Annotated[float, typer.Option(
        "--request-timeout", min=0.001, help="seconds a request may take: its body (else 408), then its "
                                             "predictions (else 503)")] = 30,
    max_connections: Annotated[int, typer.Option("--max-connections", min=1, help="connections or requests at "
                                                                                  "once; past it, 503")] = 1024,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's: critical, error, warning, info, "
                                                               "debug, trace")] = "info",
) -> None:
    """Serve a model over HTTP: POST /predict and /explain, GET /health and /metadata, a web page at /."""
    with user_errors(_err):
        if host not in ("127.0.0.1", "localhost", "::1"):
            _err.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this machine on port {port} "
                       "can use the model (there is no authentication)", highlight=False)
        serve(model_dir, host, port, onnx, max_texts=max_texts, max_chars=max_chars,
              batch_window_ms=batch_window_ms, max_batch=max_batch, max_queue=max_queue,
              request_timeout_s=request_timeout, max_connections=max_connections, log_level=log_level)


if __name__ == "__main__":  # python -m wordconv.server DIR [--port N] (what `wordconv serve` runs)
    typer.run(serve_command)
