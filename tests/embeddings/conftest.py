"""Fixtures for the word-vector tests: an isolated cache (the local HTTP server is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty wordconv cache under tmp_path and no $WORDCONV_DATA; returns the cache directory."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("WORDCONV_CACHE", str(cache))
    monkeypatch.delenv("WORDCONV_DATA", raising=False)
    return cache
