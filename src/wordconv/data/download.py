"""Checksummed downloads into the wordconv cache.

A file is streamed to a temporary file next to its destination, its sha256 is checked, and only then is it
moved into place with :func:`os.replace`, so the destination is either absent or complete and verified.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import platformdirs
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from wordconv import __version__
from wordconv.errors import DataError

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_MIRROR_HINT = (
    "Without network access, put a copy of the data in a local mirror (the layout of the dataset registry, "
    "e.g. <dir>/mr/rt-polarity.all) and pass --data-dir <dir> or set WORDCONV_DATA=<dir>."
)


def cache_dir() -> Path:
    """The wordconv cache: ``$WORDCONV_CACHE`` if set, else the platform's user cache dir for wordconv."""
    override = os.environ.get("WORDCONV_CACHE")
    return Path(override) if override else Path(platformdirs.user_cache_dir("wordconv"))


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def part_file(dest: Path):
    """An open temporary file next to ``dest`` (``.<name>.*.part``), to be renamed onto it when complete."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False)
    except OSError as err:
        raise DataError(
            f"cannot write to {dest.parent} ({err.strerror}); set WORDCONV_CACHE to a writable directory."
        ) from None


def download(url: str, dest: Path, sha256: str | None, *, progress: bool = True, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``; skipped when ``dest`` already has the right checksum.

    The data is checked against ``sha256`` (when given) before it is moved into place; a mismatch, an HTTP
    error or a network error raises DataError and leaves neither ``dest`` nor a temporary file behind.
    """
    dest = Path(dest)
    if dest.is_file():
        if sha256 is None or sha256_file(dest) == sha256.lower():
            return dest
        log.warning("%s: checksum differs from the expected one; downloading it again from %s", dest, url)
    handle = part_file(dest)
    temp = Path(handle.name)
    try:
        with handle:
            digest = _fetch(url, handle, progress=progress, timeout=timeout)
        if sha256 is not None and digest != sha256.lower():
            raise DataError(
                f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {digest}. The file was not "
                f"saved; the server copy differs from the registered one. {_MIRROR_HINT}"
            )
        os.replace(temp, dest)
    finally:
        temp.unlink(missing_ok=True)
    return dest


def _fetch(url: str, handle: IO[bytes], *, progress: bool, timeout: float) -> str:
    """Stream ``url`` into the open binary ``handle`` with an optional progress bar; return the hex sha256."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": f"wordconv/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=True) as bar:
                task = bar.add_task(f"downloading {url.rsplit('/', 1)[-1]}", total=total)
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.advance(task, len(chunk))
    except urllib.error.HTTPError as err:
        raise DataError(f"download of {url} failed: HTTP {err.code} {err.reason}. {_MIRROR_HINT}") from None
    except urllib.error.URLError as err:
        raise DataError(f"download of {url} failed: {err.reason}. {_MIRROR_HINT}") from None
    except (OSError, http.client.HTTPException) as err:
        raise DataError(f"download of {url} failed: {err!r}. {_MIRROR_HINT}") from None
    except ValueError as err:
        raise DataError(f"cannot download {url!r}: {err}. Use an http(s) URL. {_MIRROR_HINT}") from None
    if total is not None and received != total:
        raise DataError(f"download of {url} stopped after {received} of {total} bytes. Try again. {_MIRROR_HINT}")
    return digest.hexdigest()
