"""Tiny word-vector files in every format, written by the tests (values round-trip exactly)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

# Values exactly representable in float32 and in short decimal text, so every format round-trips exactly.
ROWS: list[tuple[str, list[float]]] = [
    ("the", [0.5, -1.0, 0.25]),
    ("film", [1.0, 2.0, 3.0]),
    ("Movie", [-0.5, 0.75, 1.5]),
    ("good", [2.0, 0.0, -2.0]),
    ("bad", [0.125, 0.125, -0.125]),
    ("Bad", [-3.0, 3.0, -3.0]),
    ("the", [9.0, 9.0, 9.0]),  # a duplicate: the first "the" wins
    ("Fun", [1.25, -1.25, 0.5]),
    ("fun", [4.0, 4.0, 4.0]),
    ("plot", [0.25, 0.5, 0.75]),
]
DIM = 3


def vector_of(word: str) -> np.ndarray:
    """The first vector of ``word`` in ROWS."""
    return np.array(next(values for w, values in ROWS if w == word), dtype=np.float32)


def text_lines(rows: list[tuple[str, list[float]]]) -> list[str]:
    return [word + " " + " ".join(repr(v) for v in values) for word, values in rows]


def write_glove(path: Path, rows=ROWS, *, compress: bool = False) -> Path:
    return _write(path, ("\n".join(text_lines(rows)) + "\n").encode("utf-8"), compress)


def write_word2vec_text(path: Path, rows=ROWS, *, compress: bool = False, dim: int = DIM) -> Path:
    body = "\n".join([f"{len(rows)} {dim}"] + text_lines(rows)) + "\n"
    return _write(path, body.encode("utf-8"), compress)


def word2vec_binary_bytes(rows=ROWS, *, newline: bool = True, dim: int = DIM) -> bytes:
    records = [
        word.encode("utf-8") + b" " + np.asarray(values, dtype="<f4").tobytes() + (b"\n" if newline else b"")
        for word, values in rows
    ]
    return f"{len(rows)} {dim}\n".encode() + b"".join(records)


def write_word2vec_binary(path: Path, rows=ROWS, *, compress: bool = False, newline: bool = True) -> Path:
    return _write(path, word2vec_binary_bytes(rows, newline=newline), compress)


def _write(path: Path, data: bytes, compress: bool) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


WRITERS: dict[str, tuple[Callable[..., Path], str, str]] = {
    # name: (writer, file name, detected format)
    "glove": (write_glove, "vectors.txt", "glove"),
    "word2vec-text": (write_word2vec_text, "vectors.txt", "word2vec"),
    "fasttext-vec": (write_word2vec_text, "vectors.vec", "word2vec"),
    "word2vec-bin": (write_word2vec_binary, "vectors.bin", "word2vec-bin"),
    "word2vec-bin-no-newline": (partial(write_word2vec_binary, newline=False), "vectors.bin", "word2vec-bin"),
}
