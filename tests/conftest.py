"""Shared fixtures: tiny, generated labelled data (unit tests never need the real datasets)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from tiny import make_sentences, write_labelfirst

# two threads at most: CI has 2 cores, and small models are faster without oversubscription
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny_data(tmp_path) -> dict[str, Path]:
    """train/dev/test files in label-first format: 80 / 20 / 20 sentences."""
    d = tmp_path / "tiny"
    d.mkdir()
    return {
        "train": write_labelfirst(d / "train.txt", make_sentences(80, 1)),
        "dev": write_labelfirst(d / "dev.txt", make_sentences(20, 2)),
        "test": write_labelfirst(d / "test.txt", make_sentences(20, 3)),
    }


class QuietHandler(SimpleHTTPRequestHandler):
    """A file server that does not log every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(directory served, its base URL) for an HTTP server on 127.0.0.1 running in a thread."""
    root = tmp_path / "served"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
