"""Training word2vec (skip-gram or CBOW) on a corpus of your own, with gensim, and nearest neighbours.

The corpus is tokenized with wordconv's own :class:`~wordconv.data.text.Preprocessor`, so the trained vectors
match the tokens a wordconv model sees; it is tokenized once into memory (50,000 IMDB reviews take a few hundred
MB) and handed to :class:`gensim.models.Word2Vec`.  The vectors are written in word2vec text format with a
header line (fastText ``.vec`` compatible), or in binary when the output name ends in ``.bin``; a ``.gz``
suffix compresses either.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sized
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wordconv.data.readers import _folder_members, detect_format, read_examples, read_text_bytes
from wordconv.data.registry import DATASETS, load_data, resolve_data_dir
from wordconv.data.text import PreprocessConfig, Preprocessor
from wordconv.embeddings.vectors import iter_vectors
from wordconv.errors import ConfigError, DataError

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

log = logging.getLogger(__name__)

__all__ = ["CORPUS_FORMATS", "nearest_neighbours", "read_corpus", "train_word2vec"]

CORPUS_FORMATS = ("lines", "labelfirst", "csv", "tsv", "jsonl", "folder")
# gensim's C code silently cuts sentences after 10,000 tokens (MAX_WORDS_IN_BATCH); longer documents are
# passed in pieces of this size instead, so nothing is lost.
_MAX_SENTENCE = 10_000


# --------------------------------------------------------------------------------------------
# corpora


def read_corpus(
    spec: str | Path,
    data_dir: str | Path | None = None,
    *,
    text_field: str = "text",
    format: str | None = None,
    subdir: str | None = None,
) -> list[str]:
    """The texts of a corpus for word2vec training, one string per document.

    ``spec`` is a registered dataset name (its train and dev texts: the test split is never used), or a path
    (also looked up relative to the data mirror ``data_dir`` / ``$WORDCONV_DATA``):

    * a directory or ``.tar.gz``/``.tgz`` archive: every ``*.txt`` file in it (or under its folder ``subdir``)
      is one document; the archive is streamed, not extracted.  E.g. ``aclImdb_v1_unsup.tar.gz`` with
      ``subdir="aclImdb/train/unsup"`` (the 50,000 reviews, without the ``urls_unsup.txt`` list next to them);
    * a ``.csv``/``.tsv``/``.jsonl`` file: the ``text_field`` column/key of each row;
    * any other file: one document per line (``format="labelfirst"`` drops a label in front of each line).

    ``format`` (one of :data:`CORPUS_FORMATS`) overrides the choice by suffix.  Raises DataError for a missing
    or empty corpus.
    """
    if format is not None and format not in CORPUS_FORMATS:
        raise ConfigError(f"unknown corpus format {format!r}; use one of {', '.join(CORPUS_FORMATS)}.")
    path = Path(spec).expanduser()
    mirror = resolve_data_dir(data_dir)
    if not path.exists() and str(spec) in DATASETS:
        splits = load_data(str(spec), data_dir=data_dir)
        texts = [example.text for example in splits.train + splits.dev]
        return _nonempty(texts, str(spec))
    if not path.exists() and mirror is not None and (mirror / path).exists():
        path = mirror / path
    if not path.exists():
        raise DataError(
            f"corpus {str(spec)!r} is neither an existing file or folder"
            + (f" (also looked in {mirror})" if mirror is not None else "")
            + f" nor a registered dataset ({', '.join(DATASETS)}). Pass a text file (one document per line), a "
            f"CSV/TSV/JSONL file, a folder or .tar.gz of .txt files, or a dataset name."
        )
    kind = format or _corpus_format(path)
    if subdir is not None and kind != "folder":
        raise ConfigError(f"{path}: subdir applies to a folder or .tar.gz corpus only, not to a {kind} file.")
    if kind == "folder":
        prefix = f"{subdir.strip('/')}/" if subdir and subdir.strip("/") else ""

        def document(name: str) -> bool | None:
            """True for the files that are documents (None, not False, skips a file: _folder_members' contract)."""
            return True if name.endswith(".txt") and name.startswith(prefix) else None

        texts = [read_text_bytes(data, f"{path}:{name}").strip() for name, _, data in _folder_members(path, document)]
        if not texts:
            raise DataError(
                f"{path}: no .txt files{f' under {prefix}' if prefix else ''}. A folder corpus holds one document per "
                f".txt file; check the path{' and the subdir' if prefix else ''}."
            )
    elif kind == "lines":
        texts = [example.text for example in read_examples(path, "labelfirst", require_labels=False)]
    elif kind == "labelfirst":
        texts = [example.text for example in read_examples(path, "labelfirst")]
    else:
        texts = [example.text for example in read_examples(path, kind, text_field=text_field, require_labels=False)]
    return _nonempty(texts, str(path))


def _corpus_format(path: Path) -> str:
    detected = detect_format(path)
    return "lines" if detected == "labelfirst" else detected


def _nonempty(texts: list[str], where: str) -> list[str]:
    texts = [text for text in texts if text.strip()]
    if not texts:
        raise DataError(f"{where}: the corpus has no text. Pass a corpus with at least one non-empty document.")
    return texts


# --------------------------------------------------------------------------------------------
# training


def _check_options(**options: float) -> None:
    """ConfigError for out-of-range training options (all are reported at once)."""
    problems = [
        f"{name} must be 1 or more, got {value}" for name, value in options.items() if name != "sample" and value < 1
    ]
    if not 0 <= options["sample"] < 1:
        problems.append(f"sample must be in [0, 1), got {options['sample']}")
    if problems:
        raise ConfigError("bad word2vec options: " + "; ".join(problems) + ".")


def train_word2vec(
    texts: Iterable[str] | Callable[[], Iterable[str]],
    output: str | Path,
    *,
    preprocessing: PreprocessConfig | None = None,
    dim: int = 300,  # the size of GoogleNews word2vec, which Kim (2014) used
    window: int = 5,  # gensim's and word2vec's default context window
    min_count: int = 5,  # word2vec's default: rarer words get no vector (they would get a poor one)
    sg: bool = True,  # skip-gram: better vectors for rare words than CBOW (Mikolov et al. 2013)
    negative: int = 5,  # negative samples, 5-20 recommended for small corpora (Mikolov et al. 2013)
    epochs: int = 5,
    sample: float = 1e-3,  # downsampling of frequent words
    workers: int = 2,
    seed: int = 13,
    progress: bool = True,
) -> dict:
    """Train word2vec on ``texts`` and write the vectors to ``output`` atomically; return statistics.

    ``texts`` is an iterable of documents, or a function returning one.  Documents are tokenized with a
    :class:`Preprocessor` for ``preprocessing`` (default: wordconv's defaults) without truncation.  The output is
    word2vec text with an ``N D`` header (``.bin``: binary; ``.gz``: compressed), words in frequency order.  With
    ``workers=1`` the output is fully determined by ``seed``; more workers make it vary from run to run.

    Returns ``{"words", "tokens", "documents", "dim", "epochs", "seconds", "output", "format"}``.
    """
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    _check_options(dim=dim, window=window, min_count=min_count, negative=negative, epochs=epochs, workers=workers,
                   sample=sample)
    output = Path(output)
    config = (preprocessing or PreprocessConfig()).model_copy(update={"max_length": None})
    preprocessor = Preprocessor(config)
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=True) as bar:
        source = texts() if callable(texts) else texts
        total = len(source) if isinstance(source, Sized) else None
        task = bar.add_task("tokenizing", total=total)
        sentences, documents, tokens = _tokenize(source, preprocessor, lambda: bar.advance(task))
        if tokens == 0:
            raise DataError("the corpus has no tokens after preprocessing. Pass a corpus with text in it.")

        model = Word2Vec(
            vector_size=dim, window=window, min_count=min_count, sg=int(sg), negative=negative, hs=0,
            sample=sample, epochs=epochs, workers=workers, seed=seed,
        )
        task = bar.add_task("building the vocabulary", total=1)
        model.build_vocab(corpus_iterable=sentences)
        bar.advance(task)
        if len(model.wv) == 0:
            raise DataError(
                f"no word occurs {min_count} or more times in the corpus ({tokens:,} tokens in {documents:,} "
                f"documents), so there is nothing to train. Lower --min-count or use a larger corpus."
            )

        class EpochBar(CallbackAny2Vec):
            def on_epoch_end(self, model: Word2Vec) -> None:
                bar.advance(task)

        task = bar.add_task(f"training {'skip-gram' if sg else 'CBOW'} ({len(model.wv):,} words)", total=epochs)
        model.train(
            corpus_iterable=sentences, total_examples=model.corpus_count, epochs=model.epochs, callbacks=[EpochBar()]
        )
    fmt = _save(model.wv, output)
    stats = {
        "words": len(model.wv),
        "tokens": tokens,
        "documents": documents,
        "dim": dim,
        "epochs": epochs,
        "seconds": round(time.perf_counter() - started, 3),
        "output": str(output),
        "format": fmt,
    }
    log.info("word2vec: %s", stats)
    return stats


def _tokenize(
    texts: Iterable[str], preprocessor: Preprocessor, advance: Callable[[], None]
) -> tuple[list[list[str]], int, int]:
    """(sentences of at most 10,000 tokens, documents, tokens); each distinct token string is stored once."""
    sentences: list[list[str]] = []
    shared: dict[str, str] = {}
    documents = tokens = 0
    for text in texts:
        if not isinstance(text, str):
            raise DataError(f"document {documents + 1} of the corpus is a {type(text).__name__}, not a string.")
        words = [shared.setdefault(word, word) for word in preprocessor(text)]
        documents += 1
        tokens += len(words)
        sentences.extend(words[start : start + _MAX_SENTENCE] for start in range(0, len(words), _MAX_SENTENCE))
        advance()
    return sentences, documents, tokens


def _save(vectors: KeyedVectors, output: Path) -> str:
    """Write ``vectors`` to ``output`` via a temporary file in the same folder; return the format written."""
    name = output.name.lower()
    compressed = name.endswith(".gz")
    binary = name.removesuffix(".gz").endswith(".bin")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        # gensim (smart_open) compresses by the file name's suffix, so the temporary name keeps ".gz"
        descriptor, temp_name = tempfile.mkstemp(
            dir=output.parent, prefix=f".{output.name}.", suffix=".tmp.gz" if compressed else ".tmp"
        )
    except OSError as err:
        raise DataError(f"cannot write to {output.parent} ({err.strerror}); pick another --output.") from None
    os.close(descriptor)
    temp = Path(temp_name)
    try:
        vectors.save_word2vec_format(str(temp), binary=binary, write_header=True)
        os.replace(temp, output)
    finally:
        temp.unlink(missing_ok=True)
    return "word2vec-bin" if binary else "word2vec"


# --------------------------------------------------------------------------------------------
# neighbours


def nearest_neighbours(
    path: str | Path, word: str, k: int = 10, *, format: str | None = None, limit: int | None = None
) -> list[tuple[str, float]]:
    """The ``k`` words of a vector file closest to ``word`` by cosine similarity, most similar first.

    Reads the whole file (or its first ``limit`` rows) into memory.  ``word`` falls back to its lowercase form
    when only that is in the file.  Raises DataError for a word the file does not have.
    """
    from gensim.models import KeyedVectors

    if k < 1:
        raise ConfigError(f"k must be 1 or more, got {k}.")
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    for key, vector in iter_vectors(path, format, limit=limit):
        if key not in seen:  # the first occurrence of a word wins
            seen.add(key)
            words.append(key)
            rows.append(vector)
    query = word if word in seen else word.lower()
    if query not in seen:
        raise DataError(
            f"{path}: has no vector for {word!r}"
            + ("" if limit is None else f" among its first {limit:,} words")
            + ". Try another word (a lowercase one for uncased vectors such as GloVe 6B)."
        )
    vectors = KeyedVectors(vector_size=rows[0].shape[0], dtype=np.float32)
    vectors.add_vectors(words, np.stack(rows))
    return [(other, float(score)) for other, score in vectors.most_similar(query, topn=k)]
