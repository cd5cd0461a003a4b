"""Tests of wordconv.data.download against a local HTTP server, and of load_data's download path."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
from pathlib import Path

import pytest

from wordconv.data import registry
from wordconv.data.download import cache_dir, download, sha256_file
from wordconv.data.registry import DataFile, load_data
from wordconv.errors import DataError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("WORDCONV_CACHE")
    assert cache_dir().name == "wordconv"


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 100_000)
    assert sha256_file(path) == sha(b"abc" * 100_000)


def test_download_verifies_and_does_not_refetch(served: tuple[Path, str], tmp_path: Path) -> None:
    root, url = served
    data = bytes(range(256)) * 1000
    (root / "data.bin").write_bytes(data)
    dest = tmp_path / "out" / "nested" / "data.bin"
    assert download(f"{url}/data.bin", dest, sha(data), progress=False) == dest
    assert dest.read_bytes() == data
    assert list(dest.parent.iterdir()) == [dest]  # no temp file left
    (root / "data.bin").unlink()
    assert download(f"{url}/data.bin", dest, sha(data).upper(), progress=True) == dest
    assert dest.read_bytes() == data


def test_download_checksum_mismatch_leaves_nothing(served: tuple[Path, str], tmp_path: Path) -> None:
    root, url = served
    (root / "data.bin").write_bytes(b"corrupted")
    dest = tmp_path / "out" / "data.bin"
    expected = sha(b"original")
    with pytest.raises(DataError, match=f"checksum mismatch for {url}/data.bin: expected sha256 {expected}, got"):
        download(f"{url}/data.bin", dest, expected, progress=False)
    assert list(dest.parent.iterdir()) == []


def test_download_replaces_a_damaged_copy(served: tuple[Path, str], tmp_path: Path) -> None:
    root, url = served
    (root / "data.bin").write_bytes(b"good")
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"bad")
    download(f"{url}/data.bin", dest, sha(b"good"), progress=False)
    assert dest.read_bytes() == b"good"


def test_download_404(served: tuple[Path, str], tmp_path: Path) -> None:
    _, url = served
    dest = tmp_path / "out" / "missing.txt"
    with pytest.raises(DataError, match=r"missing\.txt failed: HTTP 404.*--data-dir.*WORDCONV_DATA"):
        download(f"{url}/missing.txt", dest, None, progress=False)
    assert list(dest.parent.iterdir()) == []


def test_download_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a free port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DataError, match=r"failed: .*WORDCONV_DATA"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", None, progress=False, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_load_data_downloads_registry_file_into_cache(
    served: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, url = served
    lines = [f"{i % 2} sentence number {i} \u2026 end" for i in range(40)]
    data = "\n".join(lines).encode("cp1252") + b"\n"
    (root / "rt-polarity.all").write_bytes(data)
    spec = registry.DATASETS["mr"]
    fake = DataFile(spec.files["all"].path, f"{url}/rt-polarity.all", sha(data))
    monkeypatch.setitem(registry.DATASETS, "mr", dataclasses.replace(spec, files={"all": fake}))
    monkeypatch.delenv("WORDCONV_DATA", raising=False)
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))

    splits = load_data("mr", data_dir=None)

    cached = tmp_path / "cache" / "datasets" / "mr" / "rt-polarity.all"
    assert cached.read_bytes() == data
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (32, 4, 4)
    assert splits.labels == ["negative", "positive"]
    assert {e.label for e in splits.test} == {"negative", "positive"}
    assert splits.files == {str(cached): sha(data)}
    assert splits.split_note == "10-fold CV, fold 0 of 10 (seed 13); dev = 10% of train (seed 13)"
    (root / "rt-polarity.all").unlink()  # a second load must use the cache
    assert load_data("mr", download=False).test == splits.test
