"""Property tests of the tokenizers and the Preprocessor: offsets always slice back to the token.

Texts are drawn from any Unicode (no lone surrogates: they cannot come out of a decoded file) and from fragments
chosen to hit the tricky paths: every character ``str.split()`` treats as whitespace (CR LF, U+001C..U+001F,
U+0085, U+2028, ...), characters that look blank but are not (ZWSP, BOM, word joiner), combining marks on
and off letters (also outside the BMP), emoji with ZWJ and skin tones, CJK (also extension B), Greek sigma,
dotted I, clitics with both apostrophes, HTML tags and control characters.

Every test has fixed, explicit settings (``derandomize=True``: the same examples on every run, no example
database); set ``WORDCONV_FUZZ_SCALE=N`` to run N times as many examples, randomly (a longer fuzzing session).
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from fuzzing import fuzz_settings

from wordconv.data.text import (
    PreprocessConfig,
    Preprocessor,
    Token,
    strip_html,
    tokenize,
    truncate,
)



# Example counts (RELIABILITY.md lists them as fuzz iterations).
N_RAW = 400
N_JIEBA = 150
N_LOCAL = 200
N_PREPROCESSOR = 400
N_HTML = 200
N_TRUNCATE = 200

WHITESPACE = [c for c in map(chr, range(0x3001)) if c.isspace()]  # all of str.split()'s separators
FRAGMENTS = [
    # words, clitics, joiners
    "don't", "DON'T", "won’t", "it's", "n't", "'s", "'ve", "they'd've", "o'clock", "rock'n'roll", "'", "’",
    "well-made", "-", "--", "_", "x_y", "3.5", "1,000", "1.", ".", ",", "e.g.", "$5", "50%", "(", ")", "!", "?",
    "`", "a", "The", "not",
    # line ends and other separators
    "\r\n", "\r", "\n", "\t", " ", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u2029", "\u3000",
    # not whitespace, although blank-looking
    "\u200b", "\ufeff", "\u2060", "\u180e", "\u200d", "\x00", "\x07", "\x7f", "\x9f",
    # combining marks (BMP, non-BMP, enclosing), on and off letters
    "e\u0301", "\u0301", "\u0301\u0308", "\u20dd", "a\U0001d165", "\U0001d165", "\ufe0f", "\U000e0100",
    # emoji
    "😀", "👍🏽", "👩‍💻", "🇫🇷", "#\ufe0f\u20e3",
    # CJK and friends
    "中文", "日本語", "ひらがな", "カタカナ", "ｶﾀｶﾅ", "한국어", "ᄀ", "𠀀𠀁", "々", "〇", "。", "，",
    # casing traps
    "ΑΣ", "Σ", "ΟΔΟΣ.Β", "İ", "ß", "ǅ", "ﬁ", "K",
    # HTML
    "<br />", "<i>", "</p>", "<!-- x -->", "<", ">", "&amp;",
    # right-to-left and digits of other scripts
    "שלום", "مرحبا", "٣٫٥", "१२",
]  # fmt: skip

any_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(FRAGMENTS), max_size=20).map("".join),
    st.lists(st.sampled_from(FRAGMENTS) | st.sampled_from(WHITESPACE) | st.text(max_size=3), max_size=16).map(
        "".join
    ),
)
whitespace_run = st.lists(st.sampled_from(WHITESPACE), min_size=1, max_size=3).map("".join)


def check_raw(text: str, tokens: list[Token]) -> None:
    """The documented contract of :func:`tokenize`: exact slices, in order, no overlap, only whitespace dropped."""
    end = 0
    for t in tokens:
        assert 0 <= t.start < t.end <= len(text)
        assert text[t.start : t.end] == t.text
        assert t.start >= end  # increasing, not overlapping
        assert text[end : t.start].split() == []  # only whitespace between tokens
        assert t.text.split() == [t.text]  # no whitespace inside a token
        end = t.end
    assert text[end:].split() == []
    assert "".join(t.text for t in tokens) == "".join(text.split())  # every other character kept, once


@fuzz_settings(N_RAW)
@given(any_text)
@example("a\r\nb\u2028c\x85d\x1ce")
@example("👩‍💻 e\u0301\u0301 \u0301x 𠀀中ｶ do n't it’s")
def test_regex_and_whitespace_offsets_slice_back(text: str) -> None:
    check_raw(text, tokenize(text, "regex"))
    check_raw(text, tokenize(text, "whitespace"))
    assert [t.text for t in tokenize(text, "whitespace")] == text.split()


@fuzz_settings(N_JIEBA)
@given(any_text)
@example("我用Python写的代码 don't stop!\r\n今天天气很好")
def test_jieba_offsets_slice_back(text: str) -> None:
    check_raw(text, tokenize(text, "jieba"))


def _shifted(tokens: list[Token], by: int) -> list[Token]:
    return [Token(t.text, t.start + by, t.end + by) for t in tokens]


@fuzz_settings(N_LOCAL)
@given(any_text, whitespace_run, any_text)
def test_whitespace_separates_tokenization(left: str, space: str, right: str) -> None:
    """Whitespace is a hard boundary: no token, and no rule, reaches across it."""
    for kind in ("regex", "whitespace"):
        whole = tokenize(left + space + right, kind)
        assert whole == tokenize(left, kind) + _shifted(tokenize(right, kind), len(left) + len(space))


configs = st.builds(
    PreprocessConfig,
    tokenizer=st.sampled_from(["regex", "whitespace", "jieba"]),
    lowercase=st.booleans(),
    strip_html=st.booleans(),
    normalize=st.sampled_from(["none", "kim"]),
    remove_punct=st.booleans(),
    stopwords=st.sampled_from([None, "english"]),
    max_length=st.none(),
)
_KIM_TOKEN = re.compile(r"[A-Za-z0-9'`]+|[(),!?]")


@fuzz_settings(N_PREPROCESSOR)
@given(any_text, configs)
@example("DON’T <br />Stop ΟΔΟΣ.Β İ", PreprocessConfig(max_length=None))
def test_preprocessor_offsets_give_the_normalised_token(text: str, config: PreprocessConfig) -> None:
    """``Preprocessor.tokens``: each token is its slice of the original text, normalised as documented (typographic
    apostrophe -> ASCII, lowercased when configured; under "kim", a run of ``[A-Za-z0-9'`]`` or one of ``(),!?``),
    in order, within bounds, never inside an HTML tag; and ``__call__`` gives the same strings."""
    p = Preprocessor(config)
    tokens = p.tokens(text)
    assert p(text) == [t.text for t in tokens]
    cleaned = strip_html(text) if config.strip_html else text
    end = 0
    for t in tokens:
        assert 0 <= t.start < t.end <= len(text) and t.start >= end
        surface = text[t.start : t.end]
        assert cleaned[t.start : t.end] == surface  # no token reaches into a stripped tag
        expected = surface.replace("\u2019", "'")
        assert t.text == (expected.lower() if config.lowercase else expected)
        if config.normalize == "kim":
            assert _KIM_TOKEN.fullmatch(expected)
        else:
            assert surface.split() == [surface]
        end = t.end


@fuzz_settings(N_HTML)
@given(st.lists(st.sampled_from(["<br />", "<i>", "</i>", "<a href='x'>", "<!-- c -->", "<", ">", "a", " ", "\n"])
                | any_text, max_size=8).map("".join))
def test_strip_html_keeps_length_and_text_outside_tags(text: str) -> None:
    out = strip_html(text)
    assert len(out) == len(text)
    assert all(o == c or o == " " for o, c in zip(out, text, strict=True))


@fuzz_settings(N_TRUNCATE)
@given(st.lists(st.integers(), max_size=40), st.none() | st.integers(1, 50),
       st.sampled_from(["head", "tail", "head+tail"]))
def test_truncate_keeps_a_bounded_ordered_subsequence(items: list[int], max_length: int | None, mode: str) -> None:
    kept = truncate(list(enumerate(items)), max_length, mode)
    if max_length is None or len(items) <= max_length:
        assert kept == list(enumerate(items))
        return
    assert len(kept) == max_length
    positions = [i for i, _ in kept]
    assert positions == sorted(set(positions))  # in order, each item at most once
    head = {"head": max_length, "tail": 0, "head+tail": max_length // 4}[mode]
    assert positions[:head] == list(range(head))
    assert positions[head:] == list(range(len(items) - (max_length - head), len(items)))
