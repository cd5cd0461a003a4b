"""Named vector sets: resolving a path, the mirror, the cache, and downloads from a local HTTP server."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from wordconv.embeddings.catalog import VECTOR_SETS, VectorSet, catalog_table, resolve_vectors
from wordconv.embeddings.vectors import load_vectors
from wordconv.errors import DataError

from tiny import shared_data_dir

GLOVE_LINES = b"the 1 2 3\nfilm 4 5 6\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def fake_set(monkeypatch: pytest.MonkeyPatch, **changes: object) -> VectorSet:
    """Register a test vector set "test-vectors" (a plain GloVe file unless ``changes`` say otherwise)."""
    entry = VectorSet(
        name="test-vectors",
        description="test",
        url="http://127.0.0.1:9/test.txt",
        file="test.txt",
        member=None,
        dim=3,
        format="glove",
        lowercase=True,
        sha256=None,
        citation="none",
    )
    entry = dataclasses.replace(entry, **changes)
    monkeypatch.setitem(VECTOR_SETS, entry.name, entry)
    return entry


def test_catalog_entries() -> None:
    expected = {
        "glove-6b-50d-10k",
        "glove-6b-50d",
        "glove-6b-100d",
        "glove-6b-200d",
        "glove-6b-300d",
        "glove-840b-300d",
        "word2vec-google-news-300",
        "fasttext-crawl-300d-2m",
        "fasttext-wiki-news-300d-1m",
    }
    assert set(VECTOR_SETS) == expected
    for name, entry in VECTOR_SETS.items():
        assert entry.name == name and entry.citation and entry.url.startswith("https://")
        assert entry.format in ("glove", "word2vec", "word2vec-bin")
    # only the checksum that is actually known is recorded
    assert [name for name, entry in VECTOR_SETS.items() if entry.sha256] == ["glove-6b-50d-10k"]
    assert VECTOR_SETS["glove-6b-50d-10k"].sha256 == "f6ff508f0c7eb106528d58e3d2d23048fbbf167b05887988304fd1299b26ac3a"
    assert VECTOR_SETS["glove-6b-300d"].url == "https://nlp.stanford.edu/data/glove.6B.zip"
    assert VECTOR_SETS["glove-6b-300d"].member == "glove.6B.300d.txt"
    assert VECTOR_SETS["glove-6b-300d"].archive == "glove.6B.zip"
    google = VECTOR_SETS["word2vec-google-news-300"]
    assert google.browser_only and google.format == "word2vec-bin" and not google.lowercase
    assert google.file == "GoogleNews-vectors-negative300.bin.gz"
    assert VECTOR_SETS["fasttext-crawl-300d-2m"].member == "crawl-300d-2M.vec"


def test_an_existing_path_wins(tmp_path: Path, isolated: Path) -> None:
    path = tmp_path / "glove-6b-50d"  # a file named like a catalog entry
    path.write_bytes(GLOVE_LINES)
    assert resolve_vectors(str(path)) == path
    with pytest.raises(DataError, match="is a directory"):
        resolve_vectors(str(tmp_path))


def test_unknown_name_lists_the_catalog(isolated: Path) -> None:
    with pytest.raises(DataError, match=r"'glove-7b' is neither an existing file nor a named vector set.*glove-6b-50d-10k, glove-6b-50d,"):
        resolve_vectors("glove-7b")


def test_mirror_then_cache(tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "embeddings").mkdir(parents=True)
    (isolated / "embeddings").mkdir(parents=True)
    cached = isolated / "embeddings" / "glove.6B.100d.txt"
    cached.write_bytes(GLOVE_LINES)
    assert resolve_vectors("glove-6b-100d") == cached
    assert resolve_vectors("glove-6b-100d", mirror) == cached
    mirrored = mirror / "embeddings" / "glove.6B.100d.txt"
    mirrored.write_bytes(GLOVE_LINES)
    assert resolve_vectors("glove-6b-100d", mirror) == mirrored
    monkeypatch.setenv("WORDCONV_DATA", str(mirror))
    assert resolve_vectors("glove-6b-100d") == mirrored
    with pytest.raises(DataError, match="data directory .*nowhere does not exist"):
        resolve_vectors("glove-6b-100d", tmp_path / "nowhere")


def test_a_damaged_mirror_copy_with_a_known_checksum(tmp_path: Path, isolated: Path) -> None:
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / "glove.6B.50d.10k.txt").write_bytes(GLOVE_LINES)
    with pytest.raises(DataError, match=r"sha256 [0-9a-f]{64} differs from the registered f6ff508f.* of glove-6b-50d-10k"):
        resolve_vectors("glove-6b-50d-10k", tmp_path)


def test_missing_set_says_where_to_get_it(tmp_path: Path, isolated: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    expected = (
        r"glove-840b-300d is not available locally \(looked at .*mirror/embeddings/glove\.840B\.300d\.txt and "
        r".*cache/embeddings/glove\.840B\.300d\.txt\) and downloading is off\. Download glove\.840B\.300d\.txt "
        r"from the zip archive https://nlp\.stanford\.edu/data/glove\.840B\.300d\.zip.*--data-dir"
    )
    with pytest.raises(DataError, match=expected):
        resolve_vectors("glove-840b-300d", mirror)
    with pytest.raises(DataError, match=r"https://drive\.google\.com/file/d/0B7XkCwpI5KDYNlNUTTlSS21pQmM in a browser \(Google Drive"):
        resolve_vectors("word2vec-google-news-300", download=True)


def test_download_a_plain_file(served: tuple[Path, str], isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = served
    (root / "test.txt").write_bytes(GLOVE_LINES)
    fake_set(monkeypatch, url=f"{url}/test.txt", sha256=sha(GLOVE_LINES))
    with pytest.raises(DataError, match=rf"downloading is off\. Download test\.txt from {url}/test\.txt"):
        resolve_vectors("test-vectors")
    path = resolve_vectors("test-vectors", download=True, progress=False)
    assert path == isolated / "embeddings" / "test.txt" and path.read_bytes() == GLOVE_LINES
    (root / "test.txt").unlink()  # now from the cache
    assert resolve_vectors("test-vectors") == path
    assert load_vectors(path, ["film"], zero_rows=()).found.all()


def test_a_corrupted_download_is_rejected(served: tuple[Path, str], isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = served
    (root / "test.txt").write_bytes(GLOVE_LINES.replace(b"4", b"7"))
    fake_set(monkeypatch, url=f"{url}/test.txt", sha256=sha(GLOVE_LINES))
    with pytest.raises(DataError, match=rf"checksum mismatch for {url}/test\.txt"):
        resolve_vectors("test-vectors", download=True, progress=False)
    assert list((isolated / "embeddings").iterdir()) == []


def test_download_and_extract_a_zip_member(served: tuple[Path, str], isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = served
    (root / "vectors.zip").write_bytes(zipped({"readme.txt": b"hello", "test.txt": GLOVE_LINES}))
    fake_set(monkeypatch, url=f"{url}/vectors.zip", member="test.txt")
    path = resolve_vectors("test-vectors", download=True, progress=False)
    assert path == isolated / "embeddings" / "test.txt" and path.read_bytes() == GLOVE_LINES
    assert sorted(p.name for p in (isolated / "embeddings").iterdir()) == ["test.txt"]  # archive removed


def test_a_shared_archive_is_kept_until_every_member_is_extracted(
    served: tuple[Path, str], isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, url = served
    (root / "vectors.zip").write_bytes(zipped({"a.txt": GLOVE_LINES, "b.txt": GLOVE_LINES}))
    fake_set(monkeypatch, url=f"{url}/vectors.zip", member="a.txt", file="a.txt")
    fake_set(monkeypatch, name="test-b", url=f"{url}/vectors.zip", member="b.txt", file="b.txt")
    resolve_vectors("test-vectors", download=True, progress=False)
    assert sorted(p.name for p in (isolated / "embeddings").iterdir()) == ["a.txt", "vectors.zip"]
    (root / "vectors.zip").unlink()  # the second member comes from the kept archive
    assert resolve_vectors("test-b").read_bytes() == GLOVE_LINES
    assert sorted(p.name for p in (isolated / "embeddings").iterdir()) == ["a.txt", "b.txt"]


def test_a_zip_from_the_mirror_is_extracted_into_the_cache(tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "embeddings").mkdir(parents=True)
    (mirror / "embeddings" / "vectors.zip").write_bytes(zipped({"test.txt": GLOVE_LINES}))
    fake_set(monkeypatch, url="https://example.invalid/vectors.zip", member="test.txt")
    assert resolve_vectors("test-vectors", mirror) == isolated / "embeddings" / "test.txt"
    assert (mirror / "embeddings" / "vectors.zip").is_file()  # the mirror is never changed


def test_damaged_or_wrong_zip(served: tuple[Path, str], isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = served
    (root / "vectors.zip").write_bytes(b"this is not a zip archive")
    fake_set(monkeypatch, url=f"{url}/vectors.zip", member="test.txt")
    with pytest.raises(DataError, match=r"vectors\.zip: cannot extract test\.txt .*damaged or incomplete and was deleted"):
        resolve_vectors("test-vectors", download=True, progress=False)
    assert list((isolated / "embeddings").iterdir()) == []
    (root / "vectors.zip").write_bytes(zipped({"other.txt": GLOVE_LINES}))
    with pytest.raises(DataError, match=r"has no member 'test\.txt' \(it holds other\.txt\)"):
        resolve_vectors("test-vectors", download=True, progress=False)
    assert not (isolated / "embeddings" / "test.txt").exists()


def test_catalog_table(tmp_path: Path, isolated: Path) -> None:
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / "glove.6B.200d.txt").write_bytes(GLOVE_LINES)
    rows = {row["name"]: row for row in catalog_table(tmp_path)}
    assert set(rows) == set(VECTOR_SETS)
    assert rows["glove-6b-200d"]["available"] and rows["glove-6b-200d"]["where"].endswith("glove.6B.200d.txt")
    assert not rows["glove-6b-300d"]["available"]
    assert rows["glove-6b-300d"]["where"] == "not downloaded (https://nlp.stanford.edu/data/glove.6B.zip)"
    assert rows["word2vec-google-news-300"]["where"].startswith("download in a browser")
    assert rows["glove-840b-300d"]["lowercase"] is False and rows["glove-6b-50d"]["dim"] == 50


@pytest.mark.integration
def test_real_subset_from_the_mirror(isolated: Path) -> None:
    data = shared_data_dir()
    if data is None or not (data / "embeddings" / "glove.6B.50d.10k.txt").is_file():
        pytest.skip("the shared data mirror is not available")
    assert resolve_vectors("glove-6b-50d-10k", data) == data / "embeddings" / "glove.6B.50d.10k.txt"  # sha checked
    assert {row["name"]: row["available"] for row in catalog_table(data)}["glove-6b-50d-10k"]
