"""Text cleaning and word tokenization, with character offsets into the original text.

Two layers:

* :func:`tokenize` -- the raw word tokenizer.  Returns :class:`Token` objects whose ``text`` is
  exactly ``original[start:end]``; it drops whitespace and nothing else (every non-space character
  ends up in exactly one token).
* :class:`Preprocessor` -- the full pipeline configured by :class:`PreprocessConfig`: HTML tags
  blanked out, tokenization, optional Kim (2014) normalization, lowercasing, punctuation and
  stop-word removal, truncation.  Offsets of the tokens it returns still point into the original
  (un-cleaned) text, so predictions can be shown on the user's own text.

Adding a tokenizer (as ``"jieba"`` for Chinese was added): write a function that returns the text with
whitespace inserted between its tokens (and nothing else changed): ``str.split()`` on the result
gives the tokens (the fast path) and alignment recovers their offsets.  Register it in
``_TOKENIZERS`` and add its name to ``PreprocessConfig.tokenizer``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wordconv.errors import ConfigError

__all__ = [
    "PreprocessConfig",
    "Preprocessor",
    "Token",
    "load_stopwords",
    "strip_html",
    "tokenize",
    "truncate",
]


# --------------------------------------------------------------------------------------------
# configuration


class PreprocessConfig(BaseModel):
    """How raw text becomes a list of word tokens (and how the vocabulary is cut)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    tokenizer: Literal["regex", "whitespace", "jieba"] = "regex"
    """Word tokenizer.  "regex": Unicode words, English clitics split (PTB style), every
    punctuation character its own token, each CJK character its own token.  "whitespace": split
    on whitespace only (for already-tokenized corpora).  "jieba": Chinese word segmentation
    (jieba), with the regex tokenizer on the non-Chinese pieces."""
    lowercase: bool = True
    strip_html: bool = True
    """Blank out HTML tags such as ``<br />`` (IMDB) before tokenizing; offsets are preserved."""
    normalize: Literal["none", "kim"] = "none"
    """"kim": Kim (2014) ``clean_str`` -- keep only runs of ``[A-Za-z0-9'`]`` and the tokens
    ``( ) , ! ?``; everything else is dropped, including non-ASCII letters ("café" -> "caf")."""
    remove_punct: bool = False
    """Drop tokens that hold no letter or digit."""
    stopwords: str | None = None
    """None, "english" (the built-in list) or the path of a UTF-8 file with one word per line."""
    max_length: int | None = Field(default=400, gt=0)
    """Tokens kept per text (None: no limit)."""
    truncation: Literal["head", "tail", "head+tail"] = "head+tail"
    """Which tokens a text longer than max_length keeps.  "head+tail" (Sun et al., 2019): the
    first quarter of max_length from the start of the text, the rest from its end."""
    min_freq: int = Field(default=1, ge=1)
    """Vocabulary: drop words seen fewer times than this in the training data."""
    max_vocab: int | None = Field(default=None, gt=0)
    """Vocabulary: keep only this many most frequent words (ties broken alphabetically)."""

    @field_validator("stopwords")
    @classmethod
    def _stopwords_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError('stopwords must be null, "english" or the path of a word-list file')
        return value


# --------------------------------------------------------------------------------------------
# tokens


@dataclass(frozen=True, slots=True)
class Token:
    """One token.  ``original[start:end]`` is its surface form in the original input string;
    ``text`` is the token as the model sees it (lowercased, ...)."""

    text: str
    start: int
    end: int


# CJK scripts that do not separate words by spaces (and Hangul, by choice): one token per char.
_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3005\u3007"  # ideographic iteration mark, ideographic zero
    "\u3021-\u3029\u3038-\u303b"  # Hangzhou numerals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\ua960-\ua97f"  # Hangul Jamo extended A
    "\uac00-\ud7ff"  # Hangul syllables, Jamo extended B
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # halfwidth Katakana
    "\uffa0-\uffdc"  # halfwidth Hangul
    "\U0001b000-\U0001b16f"  # Kana supplement / extended
    "\U00020000-\U0003134f"  # CJK extensions B-G, compatibility supplement
)

# Contractions split off English words (PTB / Kim 2014): do|n't, it|'s, we|'ve ...
_SUFFIX = r"(?i:s|ve|re|d|ll|m)"
_CLITIC = rf"(?i:n['\u2019]t|['\u2019]{_SUFFIX})"
_HTML_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>", re.DOTALL)


def _ranges(codepoints: list[int]) -> str:
    """A regex character-class body covering ``codepoints`` (sorted)."""
    parts: list[str] = []
    start = prev = codepoints[0]
    for cp in codepoints[1:] + [-2]:
        if cp != prev + 1:
            parts.append(f"\\u{start:04x}" if start == prev else f"\\u{start:04x}-\\u{prev:04x}")
            start = cp
        prev = cp
    return "".join(parts)


@dataclass(frozen=True)
class _RegexPasses:
    cjk: re.Pattern[str]
    punct: re.Pattern[str]
    mark: re.Pattern[str]
    clitic: re.Pattern[str]


@functools.cache
def _regex_passes() -> _RegexPasses:
    """The regex tokenizer's patterns, compiled once (first use: ~0.1 s).

    The tokenizer only ever inserts spaces; ``str.split()`` then yields the tokens.  Each pass
    is a ``re.split`` with one capturing group, joined back with spaces: that runs in C, which
    keeps IMDB (25k long reviews) to a few seconds.
    """
    marks = [cp for cp in range(0x10000) if unicodedata.category(chr(cp))[0] == "M"]
    mark = f"[{_ranges(marks)}]"  # combining marks (BMP; others count as punctuation)
    letter = rf"[^\W_{_CJK}]"  # a letter or digit (CJK characters stand alone)
    word_end = rf"(?!{letter}|[-'\u2019]{letter})"
    # A character that is neither a letter/digit nor a combining mark nor space is punctuation,
    # and its own token -- unless it joins a word: well-made, o'clock, 3.5, 1,000, or starts a
    # clitic that stands alone ("it 's" in MR/SST).
    punct = (
        rf"([^\w\s{mark[1:-1]}]"
        rf"(?!(?<=(?:{letter}|{mark})[-'\u2019])(?={letter})"
        rf"|(?<=\d[.,])(?=\d)"
        rf"|(?<=['\u2019])(?={_SUFFIX}(?:{_CLITIC})*{word_end})))"
    )
    return _RegexPasses(
        cjk=re.compile(rf"([{_CJK}])"),
        punct=re.compile(punct),
        # combining marks with no letter before them: one token
        mark=re.compile(rf"({mark}(?<!(?:{letter}|{mark}){mark}){mark}*)"),
        # each clitic of the run that ends a token, unless it starts the token:
        # don't -> do n't, they'd've -> they 'd 've; "n't", "'s" alone stay.
        clitic=re.compile(
            rf"([nN'\u2019](?<=\S[nN'\u2019])"
            rf"(?:(?<=[nN])['\u2019][tT]|(?<=['\u2019]){_SUFFIX})(?=(?:{_CLITIC})*(?!\S)))"
        ),
    )


def _regex_spaced(text: str) -> str:
    """``text`` with spaces inserted so that ``.split()`` gives the regex tokenizer's tokens."""
    passes = _regex_passes()
    ascii_only = text.isascii()
    if "_" in text:
        text = text.replace("_", " _ ")
    if not ascii_only:
        text = " ".join(passes.cjk.split(text))
    text = " ".join(passes.punct.split(text))
    if not ascii_only:
        text = " ".join(passes.mark.split(text))
    if "'" in text or "\u2019" in text:
        text = " ".join(passes.clitic.split(text))
    return text


def _whitespace_spaced(text: str) -> str:
    return text


@functools.lru_cache(maxsize=1)
def _jieba():
    """The jieba segmenter, imported and its dictionary loaded on first use (~1 s, then cached)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict..." chatter on stderr
    jieba.initialize()
    return jieba


def _jieba_spaced(text: str) -> str:
    """Runs of Chinese characters segmented into words by jieba (its dictionary + an HMM for
    unknown words); everything between them (Latin words, numbers, punctuation) goes through the
    regex tokenizer, so the English in mixed text such as "我用Python写的" splits as usual."""
    if text.isascii():
        return _regex_spaced(text)
    out = []
    for i, piece in enumerate(_cjk_runs().split(text)):  # odd pieces are runs of CJK characters
        out.append(" ".join(_jieba().cut(piece, HMM=True)) if i % 2 else _regex_spaced(piece))
    return " ".join(out)


@functools.lru_cache(maxsize=1)
def _cjk_runs() -> re.Pattern[str]:
    return re.compile(rf"([{_CJK}]+)")


# A tokenizer is a function giving the text with spaces inserted between its tokens (it must
# insert whitespace only): str.split() on the result gives the tokens, fast (Preprocessor.__call__);
# _align recovers their offsets.
_TOKENIZERS: dict[str, Callable[[str], str]] = {
    "regex": _regex_spaced,
    "whitespace": _whitespace_spaced,
    "jieba": _jieba_spaced,
}


def _align(text: str, strings: list[str]) -> list[Token]:
    """Offsets of ``strings``, the whitespace-free pieces of ``text`` in order."""
    tokens: list[Token] = []
    append = tokens.append
    find = text.find
    end = 0
    for s in strings:
        start = find(s, end)  # only whitespace lies between two tokens
        end = start + len(s)
        append(Token(s, start, end))
    return tokens


def tokenize(text: str, kind: str = "regex") -> list[Token]:
    """Split ``text`` into raw tokens (no lowercasing, nothing dropped but whitespace).

    ``text[t.start:t.end] == t.text`` for every token; tokens are in order and do not overlap;
    together they hold every non-whitespace character of ``text``.
    """
    try:
        spaced = _TOKENIZERS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown tokenizer {kind!r}; use one of {', '.join(map(repr, _TOKENIZERS))} "
            "('jieba' segments Chinese into words)"
        ) from None
    return _align(text, spaced(text).split())


def strip_html(text: str) -> str:
    """Replace every HTML tag (``<br />``, ``<i>``, ``</p>``, comments) by as many spaces.

    The result has the length of ``text``, so offsets into it are offsets into ``text``.
    Entities (``&amp;``) are left alone.
    """
    if "<" not in text:
        return text
    return _HTML_TAG.sub(lambda m: " " * (m.end() - m.start()), text)


# --------------------------------------------------------------------------------------------
# stop words

_BUILTIN_STOPWORDS = {"english": "stopwords_en.txt"}


def _parse_wordlist(content: str) -> frozenset[str]:
    words = (line.strip() for line in content.splitlines())
    return frozenset(w.lower() for w in words if w and not w.startswith("#"))


@functools.cache
def _builtin_stopwords(name: str) -> frozenset[str]:
    resource = resources.files("wordconv.data").joinpath(_BUILTIN_STOPWORDS[name])
    return _parse_wordlist(resource.read_text(encoding="utf-8"))


def load_stopwords(spec: str) -> frozenset[str]:
    """The stop words named by ``spec``: "english" (built in) or a UTF-8 file, one word per line
    (blank lines and lines starting with ``#`` are skipped).  Words are lowercased."""
    if spec in _BUILTIN_STOPWORDS:
        return _builtin_stopwords(spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"stop-word file {str(path)!r} does not exist; set stopwords to null, "
            f"{', '.join(map(repr, _BUILTIN_STOPWORDS))} or the path of a UTF-8 file "
            "with one word per line"
        )
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"cannot read stop-word file {str(path)!r} ({err}); it must be a readable UTF-8 "
            "file with one word per line"
        ) from None
    return _parse_wordlist(content)


# --------------------------------------------------------------------------------------------
# truncation


def truncate(items: list, max_length: int | None, mode: str = "head+tail") -> list:
    """Keep at most ``max_length`` items of ``items`` (a new list).

    "head": the first ones; "tail": the last ones; "head+tail": ``max_length // 4`` from the start
    and the rest from the end (Sun et al., 2019).
    """
    n = len(items)
    if max_length is None or n <= max_length:
        return list(items)
    if mode == "head":
        return list(items[:max_length])
    if mode == "tail":
        return list(items[n - max_length :])
    if mode == "head+tail":
        head = max_length // 4
        return list(items[:head]) + list(items[n - (max_length - head) :])
    raise ConfigError(f"unknown truncation {mode!r}; use 'head', 'tail' or 'head+tail'")


# --------------------------------------------------------------------------------------------
# the pipeline

# Kim (2014) clean_str keeps [A-Za-z0-9(),!?'`] and splits ( ) , ! ? off as tokens.
_KIM = re.compile(r"[A-Za-z0-9'`]+|[(),!?]")
_KIM_DROP = re.compile(r"[^A-Za-z0-9'`(),!?\s]+")  # the same on a whole text, in two passes
_KIM_SPLIT = re.compile(r"([(),!?])")
_ALNUM = re.compile(r"[^\W_]")


def _has_alnum(s: str) -> bool:
    return s.isalnum() or _ALNUM.search(s) is not None


class Preprocessor:
    """Raw text -> tokens, as configured by a :class:`PreprocessConfig`.

    ``__call__`` (training, prediction) works on whole strings and is fast; :meth:`tokens`
    (offsets, for showing results on the original text) gives the same tokens, with offsets.
    """

    def __init__(self, config: PreprocessConfig):
        self.config = config
        self._spaced = _TOKENIZERS[config.tokenizer]
        self.stopwords: frozenset[str] = (
            load_stopwords(config.stopwords) if config.stopwords is not None else frozenset()
        )
        self.truncated = 0  # texts cut to max_length so far (reported, never silent)

    def __repr__(self) -> str:
        return f"Preprocessor({self.config!r})"

    def _clean(self, text: str) -> str:
        """Same-length cleaning: offsets into the result are offsets into ``text``."""
        if self.config.strip_html:
            text = strip_html(text)
        return text.replace("\u2019", "'")  # typographic apostrophe: "don’t" reads as "don't"

    def _keep(self, strings: list[str]) -> list[bool] | None:
        """Which of the (normalized, lowercased) ``strings`` survive punct/stop-word removal."""
        cfg = self.config
        if not (cfg.remove_punct or self.stopwords):
            return None
        stop = self.stopwords
        keep = [True] * len(strings)
        for i, s in enumerate(strings):
            if cfg.remove_punct and not _has_alnum(s):
                keep[i] = False
            elif stop and (s if cfg.lowercase else s.lower()) in stop:
                keep[i] = False
        return keep

    def tokens(self, text: str) -> list[Token]:
        """All tokens of ``text`` after cleaning (no truncation), offsets into ``text``."""
        cfg = self.config
        clean = self._clean(text)
        raw = _align(clean, self._spaced(clean).split())
        if cfg.normalize == "kim":
            raw = [
                Token(m.group(), t.start + m.start(), t.start + m.end())
                for t in raw
                for m in _KIM.finditer(t.text)
            ]
        strings = [t.text.lower() for t in raw] if cfg.lowercase else [t.text for t in raw]
        keep = self._keep(strings)
        return [
            Token(s, t.start, t.end)
            for s, t, k in zip(strings, raw, keep or [True] * len(raw))
            if k
        ]

    def __call__(self, text: str) -> list[str]:
        """The token strings of ``text`` (``[t.text for t in self.tokens(text)]``), truncated."""
        cfg = self.config
        # Work on the whole text, tokens separated by whitespace, as long as possible.
        spaced = self._spaced(self._clean(text))
        if cfg.normalize == "kim":
            spaced = " ".join(_KIM_SPLIT.split(_KIM_DROP.sub(" ", spaced)))
        if cfg.lowercase:
            spaced = spaced.lower()  # == per-token lower(): whitespace even ends a Greek final sigma
        strings = spaced.split()
        if cfg.remove_punct:
            strings = [s for s in strings if s.isalnum() or _ALNUM.search(s)]
        if self.stopwords:
            stop = self.stopwords
            if cfg.lowercase:
                strings = [s for s in strings if s not in stop]
            else:
                strings = [s for s in strings if s.lower() not in stop]
        if cfg.max_length is not None and len(strings) > cfg.max_length:
            self.truncated += 1
        return self.truncate(strings)

    def truncate(self, items: list) -> list:
        """Keep at most ``max_length`` of ``items`` per the configured truncation mode."""
        return truncate(items, self.config.max_length, self.config.truncation)
