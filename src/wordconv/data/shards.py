"""Corpora larger than memory: token ids in sharded, memory-mapped files, streamed in batches.

Tokenize once.  :func:`write_shards` reads examples from an iterator (e.g.
:func:`~wordconv.data.readers.iter_examples`, which streams a file), encodes them a chunk at a time and
writes shards of flat token ids; nothing holds the whole corpus.  :class:`ShardedTexts` is the
:class:`~wordconv.tasks.base.TaskData` over such a directory: it maps one shard at a time and yields
the same batches as :class:`~wordconv.tasks.base.EncodedTexts`, so the one Trainer trains on it.

Word-level models choose their vocabulary from the training counts, so the ids are stored in one of
two spaces:

* ``"types"`` (written with a :class:`TokenTable`): id ``i`` is ``types.json[i]``, the ``i``-th new word
  seen.  The vocabulary is built afterwards from the counts (:func:`token_counts`,
  :func:`vocab_from_counts`) and :class:`ShardedTexts` maps the stored ids to it batch by batch.  So the
  text is tokenized once, and the cache does not depend on ``min_freq``, ``max_vocab`` or words
  added from pretrained vectors.
* ``"model"`` (written with any other ``encode_many``: :class:`~wordconv.tasks.base.WordIds` over a
  fixed vocabulary, a pretrained encoder's subword tokenizer): the ids are the model's own.

Labels are stored the same way: each distinct label (or label set) once in the manifest, each text
with the index of its own; :class:`ShardedTexts` turns them into targets with the task's own
``targets`` (its errors name the first line holding a bad label).

A cache directory::

    manifest.json             counts, settings, cache key, shard list; written last, so it marks a complete cache
    types.json                the token types ("types" space only)
    counts.npy                int64 [ids]: how often each stored id occurs
    shard-00000.ids.npy       int32 [tokens]: the ids of the shard's texts, one text after another
    shard-00000.offsets.npy   int64 [texts + 1]: text i is ids[offsets[i]:offsets[i + 1]]
    shard-00000.labels.npy    int32 [texts]: index into the manifest's label values (-1: unlabelled)

A directory is written in a hidden temporary folder next to it and renamed into place when complete,
so an interrupted tokenization leaves no cache behind.  :func:`shard_cache` names the directory by
:func:`cache_key` (the data files' bytes and the settings) and reuses it when it is complete.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from wordconv.data.batching import bucket_batches
from wordconv.data.readers import Example
from wordconv.data.text import PreprocessConfig, Preprocessor
from wordconv.data.vocab import Vocab
from wordconv.errors import ConfigError, DataError
from wordconv.modeldir import fsync_dir
from wordconv.tasks.base import TaskData

__all__ = [
    "DEFAULT_SHARD_TOKENS",
    "ShardedTexts",
    "TokenTable",
    "cache_key",
    "label_names",
    "read_manifest",
    "shard_cache",
    "token_counts",
    "tokenizer_settings",
    "vocab_from_counts",
    "write_shards",
]

log = logging.getLogger(__name__)

FORMAT = "wordconv-shards"
VERSION = 1  # bump when the layout changes: it is part of every cache key
MANIFEST = "manifest.json"
TYPES = "types.json"
COUNTS = "counts.npy"
# 4M int32 ids = 16 MiB per shard: what one shard maps into memory while its batches are made
DEFAULT_SHARD_TOKENS = 1 << 22
_CHUNK = 1 << 20  # bytes read at a time when hashing a data file
_FIX = "delete the folder and run again to rebuild it (shard_cache rebuilds a damaged cache by itself)"


# --------------------------------------------------------------------------------------------
# encoding


class TokenTable:
    """Texts to ids of token types: a word's id is the number of distinct words seen before it.

    The ``encode_many`` of a word-level corpus whose vocabulary is not chosen yet; :func:`write_shards`
    saves :attr:`types` so that the ids can be mapped to any vocabulary later."""

    def __init__(self, preprocessor: Preprocessor):
        self.preprocessor = preprocessor
        self.index: dict[str, int] = {}  # dicts keep insertion order: the keys are the types by id

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        index, pre = self.index, self.preprocessor
        new_id = index.setdefault  # len(index) is read before a new word is added: the next id
        out = []
        for text in texts:
            tokens = pre(text)
            try:  # most texts hold only words seen before: plain lookups are ~3x faster
                out.append([index[token] for token in tokens])
            except KeyError:
                out.append([new_id(token, len(index)) for token in tokens])
        return out

    @property
    def types(self) -> list[str]:
        return list(self.index)


def tokenizer_settings(config: PreprocessConfig) -> dict[str, Any]:
    """What in ``config`` changes the tokens of a text, for :func:`cache_key`.

    The vocabulary cuts (``min_freq``, ``max_vocab``) are left out: they are applied after the cache.
    A stop-word file counts by its contents, jieba by its version."""
    settings = config.model_dump(exclude={"min_freq", "max_vocab"})
    if config.stopwords is not None and Path(config.stopwords).expanduser().is_file():
        settings["stopwords_sha256"] = _sha256_file(Path(config.stopwords).expanduser())
    if config.tokenizer == "jieba":
        from importlib.metadata import PackageNotFoundError, version

        try:
            settings["jieba_version"] = version("jieba")
        except PackageNotFoundError:
            settings["jieba_version"] = None
    return settings


# --------------------------------------------------------------------------------------------
# writing


def write_shards(
    examples: Iterable[Example],
    to_ids: Any,
    directory: str | os.PathLike[str],
    *,
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    chunk_size: int = 1024,
    settings: Mapping[str, Any] | None = None,
    key: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Encode ``examples`` into a shard directory; return ``directory``.

    ``examples`` is consumed once, ``chunk_size`` at a time, each chunk encoded with
    ``to_ids.encode_many(texts)`` (a :class:`TokenTable`, :class:`~wordconv.tasks.base.WordIds`, a
    pretrained encoder).  A shard is closed when it holds ``shard_tokens`` ids (a text counts at least
    1; a text longer than that gets a shard of its own).  ``settings`` and ``key`` are recorded in
    the manifest (see :func:`shard_cache`).

    The directory appears complete or not at all: an exception or an interrupt while reading or
    encoding leaves no trace.  An existing ``directory`` is a ConfigError unless ``overwrite``.
    """
    _check_positive("shard_tokens", shard_tokens)
    _check_positive("chunk_size", chunk_size)
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise ConfigError(f"{directory}: already exists; pick a new folder or delete it to write the shards again")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        manifest = _write(examples, to_ids, tmp, shard_tokens, chunk_size)
        manifest.update(key=key, settings=dict(settings or {}))
        _write_json(tmp / MANIFEST, manifest)  # last: a folder without it is never a cache
        fsync_dir(tmp)
        _replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _write(examples: Iterable[Example], to_ids: Any, tmp: Path, shard_tokens: int, chunk_size: int) -> dict:
    """Write the shards, counts and types into ``tmp``; the manifest's contents (without key and settings)."""
    shards = _ShardWriter(tmp, shard_tokens)
    labels = _LabelTable()
    truncated_before = _truncated(to_ids)
    iterator = iter(examples)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        ids = to_ids.encode_many([ex.text for ex in chunk])
        if len(ids) != len(chunk):
            raise DataError(f"the encoder gave {len(ids)} id lists for {len(chunk)} texts (at {chunk[0].source})")
        shards.add(ids, [labels.add(ex) for ex in chunk], chunk[0].source)
    shards.close()
    if not shards.examples:
        raise DataError("no examples to write into shards: check the data file(s)")
    types = getattr(to_ids, "types", None)
    if types is not None:
        _write_json(tmp / TYPES, types)
    _save(tmp / COUNTS, shards.counts)
    truncated_after = _truncated(to_ids)
    return {
        "format": FORMAT,
        "version": VERSION,
        "id_space": "types" if types is not None else "model",
        "examples": shards.examples,
        "tokens": shards.tokens,
        "id_count": len(shards.counts),
        "truncated": None if truncated_before is None else truncated_after - truncated_before,
        "labels": labels.to_json(),
        "shards": shards.shards,
    }


class _ShardWriter:
    """Buffers encoded texts and writes them out a shard at a time."""

    def __init__(self, directory: Path, shard_tokens: int):
        self.directory, self.shard_tokens = directory, shard_tokens
        self.shards: list[dict] = []  # manifest entries
        self.examples = self.tokens = 0  # written so far, all shards
        self.counts = np.zeros(0, dtype=np.int64)
        self._ids: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._size = 0  # of the open shard: ids, each text counting at least 1

    def add(self, ids: list[list[int]], label_ids: list[int], source: str) -> None:
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        if flat.size and (flat.min() < 0 or flat.max() > np.iinfo(np.int32).max):
            raise DataError(f"the encoder gave id {int(flat.min() if flat.min() < 0 else flat.max())} for a text "
                            f"of the chunk starting at {source}; ids must lie in 0..2**31-1")
        counts = np.bincount(flat, minlength=len(self.counts))
        counts[: len(self.counts)] += self.counts
        self.counts = counts
        starts = np.concatenate(([0], np.cumsum(lengths)))
        labels = np.asarray(label_ids, dtype=np.int32)
        sizes = np.maximum(lengths, 1)
        i, n = 0, len(ids)
        while i < n:
            room = self.shard_tokens - self._size
            take = int(np.searchsorted(np.cumsum(sizes[i:]), room, side="right"))
            if take == 0 and not self._lengths:
                take = 1  # a text longer than a whole shard: a shard of its own
            if take:
                self._ids.append(flat[starts[i] : starts[i + take]].astype(np.int32))
                self._lengths.append(lengths[i : i + take])
                self._labels.append(labels[i : i + take])
                self._size += int(sizes[i : i + take].sum())
                i += take
            if take == 0 or self._size >= self.shard_tokens:
                self._flush()

    def close(self) -> None:
        if self._lengths:
            self._flush()

    def _flush(self) -> None:
        name = f"shard-{len(self.shards):05d}"
        ids = np.concatenate(self._ids)
        lengths = np.concatenate(self._lengths)
        _save(self.directory / f"{name}.ids.npy", ids)
        _save(self.directory / f"{name}.offsets.npy", np.concatenate(([0], np.cumsum(lengths))).astype(np.int64))
        _save(self.directory / f"{name}.labels.npy", np.concatenate(self._labels))
        self.shards.append({"name": name, "start": self.examples, "examples": len(lengths), "tokens": len(ids)})
        self.examples += len(lengths)
        self.tokens += len(ids)
        self._ids, self._lengths, self._labels, self._size = [], [], [], 0


class _LabelTable:
    """Each distinct label (a string) or label set (a list) once, with how often and where first seen."""

    def __init__(self):
        self.index: dict[str | tuple[str, ...], int] = {}
        self.counts: list[int] = []
        self.sources: list[str] = []
        self.unlabelled, self.first_unlabelled = 0, None

    def add(self, example: Example) -> int:
        value = example.labels if example.labels is not None else example.label
        if value is None:
            self.unlabelled += 1
            self.first_unlabelled = self.first_unlabelled or example.source
            return -1
        i = self.index.setdefault(value, len(self.index))
        if i == len(self.counts):
            self.counts.append(0)
            self.sources.append(example.source)
        self.counts[i] += 1
        return i

    def to_json(self) -> dict:
        values = [list(v) if isinstance(v, tuple) else v for v in self.index]
        return {"values": values, "counts": self.counts, "sources": self.sources,
                "unlabelled": self.unlabelled, "first_unlabelled": self.first_unlabelled}


def _truncated(to_ids: Any) -> int | None:
    """Texts cut to length by ``to_ids`` so far (its preprocessor's count, or an encoder's), if it counts them."""
    value = getattr(getattr(to_ids, "preprocessor", to_ids), "truncated", None)
    return value if isinstance(value, int) else None


# --------------------------------------------------------------------------------------------
# the cache


def cache_key(files: Iterable[str | os.PathLike[str]], settings: Mapping[str, Any]) -> str:
    """The hex sha256 of the data and everything that changes its stored ids and labels.

    ``files``: data files or folder trees, hashed by their bytes (streamed; a folder by each file's
    relative path and bytes), so a moved file keeps its cache and an edited one gets a new one.
    ``settings``: JSON values; for word-level ids :func:`tokenizer_settings` plus how the files are
    read (format, fields, encoding, multilabel), for a pretrained tokenizer its name and settings.
    The wordconv version and the layout version are included: a new tokenizer may split differently.
    """
    from wordconv import __version__

    digest = hashlib.sha256()
    header = {"format": FORMAT, "version": VERSION, "wordconv": __version__, "settings": settings}
    try:
        digest.update(json.dumps(header, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode())
    except TypeError as err:
        raise ConfigError(f"cache settings must be JSON values (strings, numbers, lists, dicts): {err}") from None
    for path in files:
        _hash_path(digest, Path(path))
    return digest.hexdigest()


def shard_cache(
    files: Iterable[str | os.PathLike[str]],
    settings: Mapping[str, Any],
    examples: Callable[[], Iterable[Example]],
    to_ids: Any,
    cache_dir: str | os.PathLike[str],
    *,
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    chunk_size: int = 1024,
) -> Path:
    """The shard directory of ``files`` under ``cache_dir``: reused when complete, else (re)built.

    Named by :func:`cache_key` of ``files`` and ``settings``.  ``examples()`` is called only to build,
    and must stream the examples of ``files`` as ``settings`` says; ``to_ids`` encodes them (see
    :func:`write_shards`; for word-level models a fresh ``TokenTable(preprocessor)``).  A cache that
    is damaged (unreadable manifest, missing or wrong-sized files) is logged and rebuilt.
    """
    files = list(files)
    key = cache_key(files, settings)
    directory = Path(cache_dir) / key[:32]
    if directory.exists():
        try:
            manifest = read_manifest(directory)
            if manifest.get("key") == key:
                return directory
            problem = f"its manifest has key {manifest.get('key')!r}, not {key!r}"
        except DataError as err:
            problem = str(err)
        log.warning("%s: rebuilding the shard cache (%s)", directory, problem)
    return write_shards(examples(), to_ids, directory, shard_tokens=shard_tokens, chunk_size=chunk_size,
                        settings=settings, key=key, overwrite=True)


def read_manifest(directory: str | os.PathLike[str]) -> dict:
    """The manifest of a complete shard directory, checked against the files (their headers only).

    DataError naming the directory and the fix for a missing, damaged or inconsistent cache."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        what = "does not exist" if not directory.exists() else "has no manifest.json, so it is not a shard cache"
        raise DataError(f"{directory}: {what}; write it with write_shards or shard_cache")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot be read ({err}); the cache is damaged: {_FIX}") from None
    try:
        _check_manifest(manifest, directory)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: not a valid shard manifest ({type(err).__name__}: {err}); {_FIX}") from None
    return manifest


def _check_manifest(manifest: dict, directory: Path) -> None:
    """KeyError/TypeError/ValueError for a manifest that is not this layout; DataError for files that do not match."""
    if manifest["format"] != FORMAT or manifest["version"] != VERSION:
        raise ValueError(f"format {manifest['format']!r} version {manifest['version']!r}, "
                         f"this wordconv reads {FORMAT!r} version {VERSION}")
    if manifest["id_space"] not in ("types", "model"):
        raise ValueError(f"id_space {manifest['id_space']!r}")
    start = tokens = 0
    for shard in manifest["shards"]:
        if shard["start"] != start:
            raise ValueError(f"shard {shard['name']!r} starts at text {shard['start']}, expected {start}")
        for part, shape, dtype in (("ids", (shard["tokens"],), np.int32),
                                   ("offsets", (shard["examples"] + 1,), np.int64),
                                   ("labels", (shard["examples"],), np.int32)):
            _check_array(directory / f"{shard['name']}.{part}.npy", shape, dtype)
        start += shard["examples"]
        tokens += shard["tokens"]
    if (start, tokens) != (manifest["examples"], manifest["tokens"]):
        raise ValueError(f"the shards hold {start} texts and {tokens} ids, the manifest says "
                         f"{manifest['examples']} and {manifest['tokens']}")
    _check_array(directory / COUNTS, (manifest["id_count"],), np.int64)
    labels = manifest["labels"]
    if not len(labels["values"]) == len(labels["counts"]) == len(labels["sources"]):
        raise ValueError("the label values, counts and sources differ in length")
    if manifest["id_space"] == "types" and not (directory / TYPES).is_file():
        raise DataError(f"{directory / TYPES}: missing, but the cache stores token types; {_FIX}")


def _check_array(path: Path, shape: tuple[int, ...], dtype: type) -> None:
    """DataError unless ``path`` is a .npy file of ``shape`` and ``dtype`` (reads its header only)."""
    try:
        with open(path, "rb") as handle:
            major, _ = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if major == 1
                           else np.lib.format.read_array_header_2_0)
            found_shape, _, found_dtype = read_header(handle)
            data_bytes = os.fstat(handle.fileno()).st_size - handle.tell()
    except FileNotFoundError:
        raise DataError(f"{path}: missing from the shard cache; {_FIX}") from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable .npy file ({err}); {_FIX}") from None
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if found_shape != shape or found_dtype != np.dtype(dtype) or data_bytes != expected:
        raise DataError(f"{path}: holds {found_dtype} {found_shape} in {data_bytes} bytes, the manifest expects "
                        f"{np.dtype(dtype)} {shape}; the file is damaged or from another cache: {_FIX}")


# --------------------------------------------------------------------------------------------
# vocabulary and labels, from the cache


def token_counts(directory: str | os.PathLike[str]) -> Counter[str]:
    """How often each word occurs in a ``"types"`` cache: what the vocabulary is chosen from."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest["id_space"] != "types":
        raise ConfigError(f"{directory}: stores the model's own ids (written without a TokenTable), not words; "
                          "its vocabulary is the model's")
    types = _read_types(directory, manifest)
    counts = np.load(directory / COUNTS)
    return Counter(dict(zip(types, counts.tolist())))


def vocab_from_counts(counts: Mapping[str, int], min_freq: int = 1, max_size: int | None = None) -> Vocab:
    """:meth:`Vocab.build` from word counts instead of token lists (the same words, order and counts)."""
    return Vocab.build([counts], min_freq=min_freq, max_size=max_size)  # Counter.update adds a mapping's counts


def label_names(directory: str | os.PathLike[str]) -> list[str]:
    """The distinct labels of a cache (of a label set: each label in it), in the order first seen."""
    names: dict[str, None] = {}
    for value in read_manifest(directory)["labels"]["values"]:
        names.update(dict.fromkeys([value] if isinstance(value, str) else value))
    return list(names)


def _read_types(directory: Path, manifest: dict) -> list[str]:
    path = directory / TYPES
    try:
        types = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot be read ({err}); the cache is damaged: {_FIX}") from None
    if not isinstance(types, list) or len(types) != manifest["id_count"]:
        raise DataError(f"{path}: expected a list of {manifest['id_count']} token types; {_FIX}")
    return types


# --------------------------------------------------------------------------------------------
# reading


class _Rows(NamedTuple):
    """Some texts of a batch: their ids one after another, lengths, label indices, corpus positions."""

    ids: np.ndarray  # int64 [sum(lengths)]
    lengths: np.ndarray  # int64 [n]
    labels: np.ndarray  # int32 [n]
    index: np.ndarray  # int64 [n]

    @staticmethod
    def join(parts: list[_Rows]) -> _Rows:
        return _Rows(*(np.concatenate(arrays) for arrays in zip(*parts)))

    def head(self, n: int) -> _Rows:
        cut = int(self.lengths[:n].sum())
        return _Rows(self.ids[:cut], self.lengths[:n], self.labels[:n], self.index[:n])

    def tail(self, n: int) -> _Rows:
        """Everything after the first ``n`` texts."""
        cut = int(self.lengths[:n].sum())
        return _Rows(self.ids[cut:], self.lengths[n:], self.labels[n:], self.index[n:])


class ShardedTexts(TaskData):
    """The texts of a shard directory as task data: batches streamed one shard at a time.

    ``vocab``: the vocabulary the stored token types are mapped to (required for a ``"types"`` cache,
    refused for a ``"model"`` one).  ``targets``: turns examples into training targets, e.g.
    ``lambda examples: task.targets(examples, "train")``; it is called once, on one stand-in example
    per distinct label (whose ``source`` is the line where that label first appears).  Without it,
    batches have no ``labels``.  ``min_length``, ``pad_id`` and ``device`` are as in
    :class:`~wordconv.tasks.base.EncodedTexts`.

    Batches: with ``shuffle`` the shard order and each shard's texts are shuffled with ``generator``
    and length-bucketed within the shard (:func:`~wordconv.data.batching.bucket_batches`); without,
    shards in order, each sorted by length.  Each shard's short last batch is carried over and
    filled from the next shards, so an epoch has ``ceil(len / batch_size)`` batches, as the trainer's
    schedule assumes.  ``index`` is the text's position in the whole corpus.
    """

    def __init__(self, directory: str | os.PathLike[str], *, vocab: Vocab | None = None,
                 targets: Callable[[Sequence[Example]], list] | None = None, min_length: int = 1, pad_id: int = 0):
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 0:
            raise ConfigError(f"min_length is {min_length!r}; it must be an integer >= 0")  # as pad_batch says
        self.min_length, self.pad_id = min_length, pad_id
        self.device: torch.device | None = None
        self.id_map: np.ndarray | None = None  # stored id -> model id
        if self.manifest["id_space"] == "types":
            if vocab is None:
                raise ConfigError(f"{self.directory}: stores word types; pass the vocabulary to map them to "
                                  "(vocab_from_counts(token_counts(directory)) for the training data)")
            types = _read_types(self.directory, self.manifest)
            self.id_map = np.fromiter(map(vocab.index, types), dtype=np.int64, count=len(types))
        elif vocab is not None:
            raise ConfigError(f"{self.directory}: stores the model's own ids, which no vocabulary maps; "
                              "leave vocab unset")
        self.target_table = None if targets is None else self._target_table(targets)

    def __len__(self) -> int:
        return self.manifest["examples"]

    def num_tokens(self) -> int:
        return self.manifest["tokens"]

    @property
    def labels(self) -> list | None:
        """Every text's target, in corpus order (as ``EncodedTexts.labels``), for metrics and
        ``Task.before_training``; None without ``targets``.  Reads the small label files of all shards."""
        if self.target_table is None:
            return None
        parts = [np.load(self._path(s, "labels")) for s in self.manifest["shards"]]
        return self.target_table[np.concatenate(parts)].tolist() if parts else []

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
                ) -> Iterator[dict[str, torch.Tensor]]:
        shards = self.manifest["shards"]
        order = torch.randperm(len(shards), generator=generator).tolist() if shuffle else range(len(shards))
        carry: list[_Rows] = []  # the short batches' texts, until they fill a batch
        carried = 0
        for s in order:
            shard = shards[s]
            ids, offsets, labels = self._open(shard)
            for idx in bucket_batches(np.diff(offsets).tolist(), batch_size, shuffle=shuffle, generator=generator):
                rows = self._take(ids, offsets, labels, np.asarray(idx, dtype=np.int64), shard["start"])
                if len(idx) == batch_size:
                    yield self._batch(rows)
                    continue
                carry.append(rows)
                carried += len(idx)
                if carried >= batch_size:
                    rows = _Rows.join(carry)
                    yield self._batch(rows.head(batch_size))
                    carry, carried = [rows.tail(batch_size)], carried - batch_size
            del ids, offsets, labels  # unmap the shard before the next one
        if carried:
            yield self._batch(_Rows.join(carry))

    def _open(self, shard: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A shard's (ids, offsets, label indices); the ids memory-mapped, the rest read (8 bytes a text)."""
        # an empty array cannot be mapped: a shard of empty texts has no ids
        ids = np.load(self._path(shard, "ids"), mmap_mode="r") if shard["tokens"] else np.zeros(0, np.int32)
        return np.asarray(ids), np.load(self._path(shard, "offsets")), np.load(self._path(shard, "labels"))

    def _take(self, ids: np.ndarray, offsets: np.ndarray, labels: np.ndarray, idx: np.ndarray, start: int
              ) -> _Rows:
        """The texts ``idx`` of a shard (starting at corpus position ``start``), ids mapped to the model's."""
        begins = offsets[idx]
        lengths = offsets[idx + 1] - begins
        # element j of text r sits at begins[r] + j in the shard, at row_starts[r] + j in the flat result
        row_starts = np.cumsum(lengths) - lengths
        flat = ids[np.arange(int(lengths.sum())) + np.repeat(begins - row_starts, lengths)]
        flat = self.id_map[flat] if self.id_map is not None else flat.astype(np.int64)
        return _Rows(flat, lengths, labels[idx], idx + start)

    def _batch(self, rows: _Rows) -> dict[str, torch.Tensor]:
        """The padded batch of ``rows``: as :func:`~wordconv.data.batching.pad_batch` pads (right, with
        ``pad_id``, to ``max(longest, min_length)``), done at once over the flat ids."""
        lengths = rows.lengths
        width = max(int(lengths.max(initial=0)), self.min_length)
        ids = np.full((len(lengths), width), self.pad_id, dtype=np.int64)
        row_starts = np.cumsum(lengths) - lengths
        ids[np.repeat(np.arange(len(lengths)), lengths), np.arange(len(rows.ids)) - np.repeat(row_starts, lengths)] \
            = rows.ids
        batch = {"ids": torch.from_numpy(ids), "lengths": torch.from_numpy(lengths)}
        if self.target_table is not None:
            batch["labels"] = torch.from_numpy(self.target_table[rows.labels])
        if self.device is not None and self.device.type != "cpu":
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        batch["index"] = torch.from_numpy(rows.index)
        return batch

    def _path(self, shard: dict, part: str) -> Path:
        return self.directory / f"{shard['name']}.{part}.npy"

    def _target_table(self, targets: Callable[[Sequence[Example]], list]) -> np.ndarray:
        """The target of each distinct label, as the rows of an array (int64 class ids, float32 numbers/rows)."""
        labels = self.manifest["labels"]
        if labels["unlabelled"]:
            raise DataError(f"{labels['first_unlabelled']}: the text has no label ({labels['unlabelled']} texts of "
                            f"{self.directory} have none), but training and scoring need one per text; label them")
        stand_ins = [Example("", value, source) if isinstance(value, str) else
                     Example("", None, source, tuple(value))
                     for value, source in zip(labels["values"], labels["sources"])]
        table = np.asarray(targets(stand_ins))
        if table.dtype.kind in "iub":
            return table.astype(np.int64)  # as torch.tensor makes class ids
        return table.astype(np.float32)  # as torch.tensor makes Python floats


# --------------------------------------------------------------------------------------------
# files


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} is {value!r}; it must be an integer >= 1")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    _hash_path(digest, path)
    return digest.hexdigest()


def _hash_path(digest: Any, path: Path) -> None:
    """Feed a file's bytes (or a folder's files: relative path and bytes each) into ``digest``."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        digest.update(f"dir {len(files)}\n".encode())
        for file in files:
            digest.update(f"{file.relative_to(path).as_posix()}\n".encode())
            _hash_path(digest, file)
        return
    try:
        with open(path, "rb") as handle:
            digest.update(f"file {os.fstat(handle.fileno()).st_size}\n".encode())
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file. Check the path (relative paths start at the current directory).") \
            from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror}). Check its permissions.") from None


def _save(path: Path, array: np.ndarray) -> None:
    """``np.save``, flushed to disk (the folder is renamed into place only when everything is durable)."""
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(path: Path, value: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, ensure_ascii=False, separators=(",", ":"))
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _replace_dir(tmp: Path, directory: Path) -> None:
    """Rename the finished ``tmp`` onto ``directory``; an old ``directory`` is moved aside first, then removed."""
    old = None
    if directory.exists():
        old = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".old"))
        os.replace(directory, old / "cache")
    os.replace(tmp, directory)
    fsync_dir(directory.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
