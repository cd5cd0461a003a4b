"""Static word vectors read off a pretrained sentence encoder: each word alone through the encoder.

Offline there are no GloVe or GoogleNews vectors to download, but the encoder wordconv fine-tunes is on disk.
A sentence encoder (the packaged all-MiniLM-L6-v2: trained on a billion sentence pairs of web text, questions
and answers) maps a single word to a vector too, and those vectors carry its general-domain knowledge into a
word CNN that then runs without the encoder.  This is the idea of Model2Vec (Tulkens & van Dongen, 2024): pass
every vocabulary item through the encoder once and keep its mean-pooled output as a static vector.

The words come from a corpus (counted with wordconv's own tokenizer, most frequent first, so a model's
``extra_words`` are the commonest ones) or from a list.  The vectors are centred (single words share one large
common direction in an encoder's output) and scaled to the spread of Kim's ``U[-0.25, 0.25]`` for unknown
words, then written in word2vec text format, words in frequency order, atomically.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from wordconv.data.text import PreprocessConfig, Preprocessor
from wordconv.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = ["UNIFORM_STD", "corpus_words", "encoder_word_vectors", "read_word_list"]

UNIFORM_STD = 0.25 / 3 ** 0.5  # the standard deviation of U[-0.25, 0.25], Kim's draw for unknown words


def corpus_words(texts: Iterable[str], *, preprocessing: PreprocessConfig | None = None, min_count: int = 5,
                 max_words: int | None = None) -> list[str]:
    """The distinct tokens of ``texts`` that occur at least ``min_count`` times, most frequent first (ties in
    order of first occurrence), at most ``max_words`` of them."""
    if min_count < 1:
        raise ConfigError(f"min_count={min_count!r} must be 1 or more")
    if max_words is not None and max_words < 1:
        raise ConfigError(f"max_words={max_words!r} must be 1 or more (or None for no limit)")
    preprocessor = Preprocessor((preprocessing or PreprocessConfig()).model_copy(update={"max_length": None}))
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(preprocessor(text))
    words = [w for w, c in counts.most_common() if c >= min_count]  # most_common keeps first-seen order on ties
    if not words:
        raise DataError(f"no word occurs {min_count} or more times in the corpus ({sum(counts.values()):,} tokens); "
                        "lower --min-count or use a larger corpus")
    return words[:max_words] if max_words is not None else words


def read_word_list(path: str | Path) -> list[str]:
    """Words from ``path``: a vector file (its words, in file order) or a text file with one word per line."""
    from wordconv.embeddings.vectors import iter_vectors

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"word list {str(path)!r} does not exist; pass a vector file or a file with one word per line")
    try:
        words = [word for word, _ in iter_vectors(path)]
    except (DataError, ConfigError):
        words = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            word = line.strip()
            if not word:
                continue
            if len(word.split()) != 1:
                raise DataError(f"{path}:{number}: {word[:60]!r} is not one word; a word list holds one word per line")
            words.append(word)
    if not words:
        raise DataError(f"{path} holds no words")
    seen: set[str] = set()
    return [w for w in words if not (w in seen or seen.add(w))]


def encoder_word_vectors(words: list[str], output: str | Path, *, encoder: str | None = None, batch_size: int = 256,
                         center: bool = True, std: float | None = UNIFORM_STD, join: str | Path | None = None,
                         progress: bool = True, device: str | None = None) -> dict:
    """Encode each of ``words`` alone with a sentence encoder and write the vectors to ``output``.

    ``encoder``: the packaged MiniLM (default) or a local Hugging Face folder, mean-pooled as sentence-transformers
    does (see :class:`wordconv.retrieval.SentenceEncoder`).  ``center`` subtracts the mean vector; ``std`` rescales
    so the average per-dimension standard deviation is ``std`` (None: keep the unit-length vectors).  The output
    is word2vec text (``.bin``: binary; ``.gz``: compressed), written atomically.

    ``join``: a vector file (e.g. word2vec trained on in-domain text) whose vector of each word is put in front of
    the encoder's, as is, so that one embedding carries both (a concatenated "meta-embedding", Yin & Schuetze
    2016); words that file lacks are left out.

    Returns ``{"words", "dim", "encoder", "seconds", "output", "format", "joined_dim", "left_out"}``.
    """
    from gensim.models import KeyedVectors

    from wordconv.embeddings.word2vec import _save
    from wordconv.retrieval import SentenceEncoder

    if not words:
        raise DataError("no words to encode")
    bad = [w for w in words if not w or len(w.split()) != 1]
    if bad:
        raise DataError(f"{len(bad)} entries are not single words (e.g. {bad[0]!r}); a vector file's words hold no "
                        "spaces")
    if std is not None and std <= 0:
        raise ConfigError(f"std={std!r} must be positive (or None to keep unit-length vectors)")
    started = time.perf_counter()
    front = None
    left_out = 0
    if join is not None:
        from wordconv.embeddings.vectors import load_vectors

        pv = load_vectors(join, words, zero_rows=(), lowercase_fallback=False, progress=progress)
        left_out = int((~pv.found).sum())  # load_vectors raises a DataError when it finds none
        words = [w for w, ok in zip(words, pv.found) if ok]
        front = pv.matrix[pv.found]
    model = SentenceEncoder(encoder, batch_size=batch_size, device=device)
    vectors = model.encode(words, progress=progress, description="encoding words").astype(np.float64)
    if center:
        vectors -= vectors.mean(axis=0, keepdims=True)
    if std is not None:
        spread = float(vectors.std(axis=0).mean())
        if spread > 0:
            vectors *= std / spread
    if front is not None:
        vectors = np.concatenate([front.astype(np.float64), vectors], axis=1)
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(words, vectors.astype(np.float32))
    kv.allocate_vecattrs(attrs=["count"], types=[np.int64])
    kv.expandos["count"][:] = np.arange(len(words), 0, -1)  # frequency order, as the words came
    output = Path(output)
    fmt = _save(kv, output)
    stats = {"words": len(words), "dim": int(vectors.shape[1]), "encoder": model.name,
             "seconds": round(time.perf_counter() - started, 3), "output": str(output), "format": fmt,
             "joined_dim": 0 if front is None else int(front.shape[1]), "left_out": left_out}
    log.info("encoder word vectors: %s", stats)
    return stats
