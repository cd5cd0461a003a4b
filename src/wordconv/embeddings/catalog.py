"""Named sets of pretrained word vectors, and finding one on disk (or downloading it) by name.

A vector set lives at ``embeddings/<file>`` in the local data mirror (``--data-dir`` / ``$WORDCONV_DATA``) or in
the wordconv cache (``$WORDCONV_CACHE``).  Sets published inside a zip archive are extracted from it (the
archive may sit in either place, or be downloaded); the vector file appears atomically, complete or not at all.

Checksums are recorded only where they are actually known (``sha256`` is that of the file at ``url``); the
others are downloaded unchecked, as the publishers give no checksums.
"""

from __future__ import annotations

import logging
import os
import shutil
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from wordconv.data.download import cache_dir, part_file, sha256_file
from wordconv.data.download import download as _download
from wordconv.data.registry import resolve_data_dir
from wordconv.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["VECTOR_SETS", "VectorSet", "catalog_table", "resolve_vectors"]

_GLOVE = (
    "Jeffrey Pennington, Richard Socher and Christopher D. Manning. 2014. GloVe: Global Vectors for Word "
    "Representation. EMNLP 2014."
)
_WORD2VEC = (
    "Tomas Mikolov, Ilya Sutskever, Kai Chen, Greg Corrado and Jeffrey Dean. 2013. Distributed Representations of "
    "Words and Phrases and their Compositionality. NIPS 2013."
)
_FASTTEXT = (
    "Tomas Mikolov, Edouard Grave, Piotr Bojanowski, Christian Puhrsch and Armand Joulin. 2018. Advances in "
    "Pre-Training Distributed Word Representations. LREC 2018."
)
_GLOVE_6B = "https://nlp.stanford.edu/data/glove.6B.zip"


@dataclass(frozen=True)
class VectorSet:
    """One named set of pretrained vectors and where to get it.

    ``file`` is the vector file's name (looked for at ``embeddings/<file>`` in the mirror and the cache);
    ``member`` is its name inside the zip archive at ``url``, or None when ``url`` is the file itself.
    ``lowercase`` says whether the vocabulary is uncased (then lowercase the text before looking words up).
    ``browser_only``: the URL needs a browser (Google Drive), so wordconv cannot download it.
    """

    name: str
    description: str
    url: str
    file: str
    member: str | None
    dim: int
    format: str
    lowercase: bool
    sha256: str | None
    citation: str
    browser_only: bool = False

    @property
    def archive(self) -> str | None:
        """The file name of the zip archive at ``url``, or None when the URL is the vector file itself."""
        return self.url.rsplit("/", 1)[-1] if self.member is not None else None


def _glove_6b(dim: int) -> VectorSet:
    return VectorSet(
        name=f"glove-6b-{dim}d",
        description=f"GloVe 6B (Wikipedia 2014 + Gigaword 5), 400K uncased words, {dim}d",
        url=_GLOVE_6B,
        file=f"glove.6B.{dim}d.txt",
        member=f"glove.6B.{dim}d.txt",
        dim=dim,
        format="glove",
        lowercase=True,
        sha256=None,
        citation=_GLOVE,
    )


VECTOR_SETS: dict[str, VectorSet] = {
    entry.name: entry
    for entry in (
        VectorSet(
            name="glove-6b-50d-10k",
            description="GloVe 6B 50d, the 10,000 most frequent words only (for tests and small experiments)",
            url=(
                "https://raw.githubusercontent.com/noallynoclan/data/b93ca71d83563ebb519af4a01b9aa82b9bbe64a7/"
                "glove.6B.50d.10k.txt"
            ),
            file="glove.6B.50d.10k.txt",
            member=None,
            dim=50,
            format="glove",
            lowercase=True,
            sha256="f6ff508f0c7eb106528d58e3d2d23048fbbf167b05887988304fd1299b26ac3a",
            citation=_GLOVE,
        ),
        *(_glove_6b(dim) for dim in (50, 100, 200, 300)),
        VectorSet(
            name="glove-840b-300d",
            description="GloVe 840B (Common Crawl), 2.2M cased words, 300d",
            url="https://nlp.stanford.edu/data/glove.840B.300d.zip",
            file="glove.840B.300d.txt",
            member="glove.840B.300d.txt",
            dim=300,
            format="glove",
            lowercase=False,
            sha256=None,
            citation=_GLOVE,
        ),
        VectorSet(
            name="word2vec-google-news-300",
            description=(
                "word2vec GoogleNews (100B tokens), 3M cased words and phrases, 300d -- the vectors of Kim (2014). "
                "Google Drive needs a browser: download the file yourself and pass its path"
            ),
            url="https://drive.google.com/file/d/0B7XkCwpI5KDYNlNUTTlSS21pQmM",
            file="GoogleNews-vectors-negative300.bin.gz",
            member=None,
            dim=300,
            format="word2vec-bin",
            lowercase=False,
            sha256=None,
            citation=_WORD2VEC,
            browser_only=True,
        ),
        VectorSet(
            name="fasttext-crawl-300d-2m",
            description="fastText Common Crawl (600B tokens), 2M cased words, 300d",
            url="https://dl.fbaipublicfiles.com/fasttext/vectors-english/crawl-300d-2M.vec.zip",
            file="crawl-300d-2M.vec",
            member="crawl-300d-2M.vec",
            dim=300,
            format="word2vec",
            lowercase=False,
            sha256=None,
            citation=_FASTTEXT,
        ),
        VectorSet(
            name="fasttext-wiki-news-300d-1m",
            description="fastText Wikipedia 2017 + UMBC + statmt.org news (16B tokens), 1M cased words, 300d",
            url="https://dl.fbaipublicfiles.com/fasttext/vectors-english/wiki-news-300d-1M.vec.zip",
            file="wiki-news-300d-1M.vec",
            member="wiki-news-300d-1M.vec",
            dim=300,
            format="word2vec",
            lowercase=False,
            sha256=None,
            citation=_FASTTEXT,
        ),
    )
}


def _places(entry: VectorSet, mirror: Path | None) -> list[Path]:
    """Where the vector file of ``entry`` may be: the mirror, then the cache."""
    places = [cache_dir() / "embeddings" / entry.file]
    if mirror is not None:
        places.insert(0, mirror / "embeddings" / entry.file)
    return places


def _local(entry: VectorSet, mirror: Path | None) -> Path | None:
    return next((place for place in _places(entry, mirror) if place.is_file()), None)


def _how_to_get(entry: VectorSet) -> str:
    """The sentence telling the user how to get ``entry`` by hand."""
    what = f"{entry.member} from the zip archive {entry.url}" if entry.member else f"{entry.file} from {entry.url}"
    if entry.browser_only:
        return (
            f"Download {what} in a browser (Google Drive does not allow scripted downloads) and pass its path, or "
            f"put it at <dir>/embeddings/{entry.file} and pass --data-dir <dir>."
        )
    return (
        f"Download {what} and pass the file's path, put it at <dir>/embeddings/{entry.file} and pass --data-dir "
        f"<dir> (or set WORDCONV_DATA=<dir>), or allow downloading."
    )


def resolve_vectors(
    name_or_path: str | Path, data_dir: str | Path | None = None, *, download: bool = False, progress: bool = True
) -> Path:
    """The local path of a vector file given by path or by :data:`VECTOR_SETS` name.

    An existing path wins.  A name is looked for in the data mirror (``<data_dir>/embeddings/<file>``, where
    ``data_dir`` defaults to ``$WORDCONV_DATA``), then in the cache; a set published in a zip archive is also
    extracted from an archive found there.  Otherwise, with ``download=True``, it is downloaded into the cache
    (and extracted).  Raises DataError saying where to get the file when none of this works.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise DataError(f"{path}: is a directory; pass the vector file itself (e.g. {path}/glove.6B.300d.txt).")
    entry = VECTOR_SETS.get(str(name_or_path))
    if entry is None:
        raise DataError(
            f"{str(name_or_path)!r} is neither an existing file nor a named vector set. Pass the path of a vector "
            f"file (word2vec, GloVe or fastText .vec), or one of: {', '.join(VECTOR_SETS)}."
        )
    mirror = resolve_data_dir(data_dir)
    if mirror is not None and not mirror.is_dir():
        raise DataError(f"data directory {mirror} does not exist; fix --data-dir / WORDCONV_DATA or unset it.")
    local = _local(entry, mirror)
    if local is not None:
        if entry.sha256 is not None and entry.member is None:
            _verify(local, entry)
        return local
    cached = cache_dir() / "embeddings" / entry.file
    if entry.archive is not None:
        for archive in _archive_places(entry, mirror):
            if archive.is_file():
                return _extract(archive, entry, cached, owned=archive.parent == cached.parent)
    if not download or entry.browser_only:
        looked = " and ".join(str(place) for place in _places(entry, mirror))
        why = "" if download else " and downloading is off"
        raise DataError(f"{entry.name} is not available locally (looked at {looked}){why}. {_how_to_get(entry)}")
    if entry.archive is None:
        return _download(entry.url, cached, entry.sha256, progress=progress)
    archive = _download(entry.url, cached.parent / entry.archive, entry.sha256, progress=progress)
    return _extract(archive, entry, cached, owned=True)


def _archive_places(entry: VectorSet, mirror: Path | None) -> list[Path]:
    assert entry.archive is not None
    places = [cache_dir() / "embeddings" / entry.archive]
    if mirror is not None:
        places.insert(0, mirror / "embeddings" / entry.archive)
    return places


def _verify(path: Path, entry: VectorSet) -> None:
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise DataError(
            f"{path}: sha256 {actual} differs from the registered {entry.sha256} of {entry.name}; the file is damaged "
            f"or a different version. Delete it and fetch it again from {entry.url}."
        )


def _extract(archive: Path, entry: VectorSet, dest: Path, *, owned: bool) -> Path:
    """Extract ``entry.member`` of the zip ``archive`` to ``dest`` atomically (temp file + os.replace).

    ``owned``: the archive is in the cache (downloaded by us): a damaged one is deleted so that the next try
    downloads it again, and it is deleted after extraction unless another set still needs it.
    """
    assert entry.member is not None
    handle = part_file(dest)
    temp = Path(handle.name)
    try:
        with handle, zipfile.ZipFile(archive) as zipped:
            try:
                member = zipped.open(entry.member)
            except KeyError:
                raise DataError(
                    f"{archive}: has no member {entry.member!r} (it holds {', '.join(zipped.namelist()[:10])}). "
                    f"It is not the archive of {entry.name}; delete it or fetch {entry.url} again."
                ) from None
            log.info("extracting %s from %s", entry.member, archive)
            with member:
                shutil.copyfileobj(member, handle, 1 << 20)
        os.replace(temp, dest)
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
        if owned:
            archive.unlink(missing_ok=True)
        raise DataError(
            f"{archive}: cannot extract {entry.member} ({err}); the archive is damaged or incomplete"
            + (" and was deleted; try again." if owned else f". Replace it with a fresh copy of {entry.url}.")
        ) from None
    finally:
        temp.unlink(missing_ok=True)
    if owned and not any(
        other.url == entry.url and other is not entry and _local(other, None) is None for other in VECTOR_SETS.values()
    ):
        archive.unlink(missing_ok=True)  # every set of this archive is extracted: free the space
    return dest


def catalog_table(data_dir: str | Path | None = None) -> list[dict]:
    """One row per named vector set for ``wordconv embeddings list``.

    Keys: ``name``, ``dim``, ``format``, ``lowercase``, ``description``, ``url``, ``available`` (the vector file
    is in the mirror or the cache) and ``where`` (its path, or how to get it).
    """
    mirror = resolve_data_dir(data_dir)
    rows = []
    for entry in VECTOR_SETS.values():
        local = _local(entry, mirror)
        if local is not None:
            where = str(local)
        elif entry.browser_only:
            where = f"download in a browser: {entry.url}"
        else:
            where = f"not downloaded ({entry.url})"
        rows.append(
            {
                "name": entry.name,
                "dim": entry.dim,
                "format": entry.format,
                "lowercase": entry.lowercase,
                "description": entry.description,
                "url": entry.url,
                "available": local is not None,
                "where": where,
            }
        )
    return rows
