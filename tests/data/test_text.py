"""Cleaning, tokenization and the preprocessing config."""

from __future__ import annotations

from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from wordconv.data.text import PreprocessConfig, Preprocessor, Token, strip_html, tokenize
from wordconv.errors import ConfigError


def texts(t: str) -> list[str]:
    return [tok.text for tok in tokenize(t)]


def prep(text: str, **config) -> list[str]:
    return Preprocessor(PreprocessConfig(**config))(text)


# Fragments that exercise the tricky parts, glued together at random.
FRAGMENTS = [
    "don't", "it's", "n't", "'s", "'ve", "they'd've", "’", "'", "DON'T", "won’t", "o'clock",
    "well-made", "-", "--", "3.5", "1,000", "1.", ",", ".", "e.g.", "_", "x_y", "日本語", "ひら",
    "한국", "café", "e\u0301", "\u0301", "\u0301\u0301", "ΑΣ", "Σ", "İ", "ß", "<br />", "<i>",
    "</p>", "<", ">", "&amp;", "a", "b", "The", "not", "😀", "\u200d", "\x1c", "\u00a0", " ",
    "\n", "\t", "(", ")", "!", "?", "`", "$5", "50%", "\u2028", "ǅ",
]  # fmt: skip
any_text = st.one_of(
    st.text(),
    st.lists(st.sampled_from(FRAGMENTS), max_size=20).map("".join),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=12).map("".join),
)


# --------------------------------------------------------------------------------------------
# raw tokenizer


def check_raw(text: str, tokens: list[Token]) -> None:
    end = 0
    for t in tokens:
        assert text[t.start : t.end] == t.text
        assert end <= t.start < t.end
        assert t.text.strip() == t.text and not any(c.isspace() for c in t.text)
        assert text[end : t.start].strip() == ""  # only whitespace between tokens
        end = t.end
    assert text[end:].strip() == ""
    assert "".join(t.text for t in tokens) == "".join(text.split())


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_raw_offsets_slice_back_to_the_surface(text: str) -> None:
    check_raw(text, tokenize(text))
    check_raw(text, tokenize(text, "whitespace"))


def test_clitics_are_split_like_ptb() -> None:
    assert texts("don't it's we've they're I'd you'll I'm") == [
        "do", "n't", "it", "'s", "we", "'ve", "they", "'re", "I", "'d", "you", "'ll", "I", "'m",
    ]  # fmt: skip
    assert texts("can't won't DON'T they'd've") == [
        "ca", "n't", "wo", "n't", "DO", "N'T", "they", "'d", "'ve",
    ]  # fmt: skip
    assert texts("don’t it’s") == ["do", "n’t", "it", "’s"]  # typographic apostrophe


def test_already_tokenized_input_keeps_standalone_clitics() -> None:
    assert texts("it 's a charming and often affecting journey . ") == [
        "it", "'s", "a", "charming", "and", "often", "affecting", "journey", ".",
    ]  # fmt: skip
    assert texts("does n't work , we 've seen it") == [
        "does", "n't", "work", ",", "we", "'ve", "seen", "it",
    ]  # fmt: skip


def test_words_numbers_and_punctuation() -> None:
    assert texts("a well-made, o'clock rock'n'roll film: 3.5 stars (1,000 votes)!") == [
        "a", "well-made", ",", "o'clock", "rock'n'roll", "film", ":", "3.5", "stars",
        "(", "1,000", "votes", ")", "!",
    ]  # fmt: skip
    assert texts("e.g. -- students' 'sup $5 50% x_y ...") == [
        "e", ".", "g", ".", "-", "-", "students", "'", "'", "sup", "$", "5", "50", "%",
        "x", "_", "y", ".", ".", ".",
    ]  # fmt: skip
    assert texts("don't-care y'all 'tis") == ["don't-care", "y'all", "'", "tis"]


def test_unicode_words_and_cjk_characters() -> None:
    assert texts("café naïve Übermäßig e\u0301te\u0301") == [
        "café", "naïve", "Übermäßig", "e\u0301te\u0301",
    ]  # fmt: skip
    assert texts("cafe\u0301-au-lait \u0301\u0301x") == ["cafe\u0301-au-lait", "\u0301\u0301", "x"]
    assert texts("我爱北京。ひらがな한국abc日本") == [
        "我", "爱", "北", "京", "。", "ひ", "ら", "が", "な", "한", "국", "abc", "日", "本",
    ]  # fmt: skip


def test_whitespace_tokenizer_keeps_offsets() -> None:
    text = "  it 's\tfine ,\nreally  "
    assert tokenize(text, "whitespace") == [
        Token("it", 2, 4), Token("'s", 5, 7), Token("fine", 8, 12), Token(",", 13, 14),
        Token("really", 15, 21),
    ]  # fmt: skip


def test_unknown_tokenizer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'klingon'.*'regex'"):
        tokenize("x", "klingon")


# --------------------------------------------------------------------------------------------
# the pipeline


def test_html_tags_become_spaces_and_offsets_stay_exact() -> None:
    text = "Great film.<br /><br />I <i>loved</i> it"
    assert strip_html(text) == "Great film." + " " * 12 + "I" + " " * 4 + "loved" + " " * 5 + "it"
    tokens = Preprocessor(PreprocessConfig(lowercase=False)).tokens(text)
    assert [t.text for t in tokens] == ["Great", "film", ".", "I", "loved", "it"]
    assert [text[t.start : t.end] for t in tokens] == ["Great", "film", ".", "I", "loved", "it"]
    assert tokens[3].start == text.index("I <i>")
    # off: the tags are text
    assert "br" in prep(text, strip_html=False)
    # a lone "<" is no tag
    assert prep("1 < 2 and 3 > 2") == ["1", "<", "2", "and", "3", ">", "2"]


def test_lowercase_and_typographic_apostrophes() -> None:
    p = Preprocessor(PreprocessConfig())
    text = "DON’T Stop"
    tokens = p.tokens(text)
    assert [t.text for t in tokens] == ["do", "n't", "stop"]
    assert [text[t.start : t.end] for t in tokens] == ["DO", "N’T", "Stop"]
    assert prep(text, lowercase=False) == ["DO", "N'T", "Stop"]


def test_kim_normalization_drops_non_ascii() -> None:
    text = "Café «naïve» 日本 film—great!? (really) it's 3.5 ok"
    assert prep(text, normalize="kim") == [
        "caf", "na", "ve", "film", "great", "!", "?", "(", "really", ")", "it", "'s", "3", "5", "ok",
    ]  # fmt: skip
    assert prep(text) == [
        "café", "«", "naïve", "»", "日", "本", "film", "—", "great", "!", "?", "(", "really", ")",
        "it", "'s", "3.5", "ok",
    ]  # fmt: skip
    tokens = Preprocessor(PreprocessConfig(normalize="kim")).tokens(text)
    assert [text[t.start : t.end] for t in tokens][:3] == ["Caf", "na", "ve"]


def test_remove_punct() -> None:
    assert prep("Well -- it's 3.5/5 , isn't it ?!", remove_punct=True) == [
        "well", "it", "'s", "3.5", "5", "is", "n't", "it",
    ]  # fmt: skip


def test_builtin_stopwords_keep_negations() -> None:
    text = "The film is not good, and it's no fun; I don't know nor care."
    assert prep(text, stopwords="english", remove_punct=True) == [
        "film", "not", "good", "no", "fun", "n't", "know", "nor", "care",
    ]  # fmt: skip
    # not lowercased: still matched case-insensitively, text kept as written
    assert prep("The Film", stopwords="english", lowercase=False) == ["Film"]
    words = resources.files("wordconv.data").joinpath("stopwords_en.txt").read_text("utf-8")
    listed = {w.strip() for w in words.splitlines() if w.strip() and not w.startswith("#")}
    assert 120 <= len(listed) <= 200
    assert listed.isdisjoint({"not", "no", "nor", "n't", "never", "t"})
    assert {"the", "a", "is", "of", "'s", "they"} <= listed


def test_stopwords_from_a_file(tmp_path) -> None:
    path = tmp_path / "stop.txt"
    path.write_text("# my list\nFilm\n\n  movie \n", encoding="utf-8")
    assert prep("The film is a Movie", stopwords=str(path)) == ["the", "is", "a"]


def test_missing_stopword_file_is_a_config_error(tmp_path) -> None:
    missing = tmp_path / "nope.txt"
    config = PreprocessConfig(stopwords=str(missing))
    with pytest.raises(ConfigError, match="nope.txt.*does not exist"):
        Preprocessor(config)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("head", [0, 1, 2, 3]), ("tail", [6, 7, 8, 9]), ("head+tail", [0, 7, 8, 9])],
)
def test_truncation(mode: str, expected: list[int]) -> None:
    p = Preprocessor(PreprocessConfig(max_length=4, truncation=mode))
    assert p.truncate(list(range(10))) == expected
    assert p.truncate(list(range(3))) == [0, 1, 2]
    assert p(" ".join("abcdefghij")) == ["abcdefghij"[i] for i in expected]


def test_head_plus_tail_takes_a_quarter_from_the_head() -> None:
    p = Preprocessor(PreprocessConfig(max_length=400))
    out = p.truncate(list(range(1000)))
    assert out == list(range(100)) + list(range(700, 1000))
    assert Preprocessor(PreprocessConfig(max_length=None)).truncate(list(range(1000))) == list(
        range(1000)
    )


def test_tokens_are_not_truncated() -> None:
    p = Preprocessor(PreprocessConfig(max_length=2))
    assert len(p.tokens("a b c d")) == 4
    assert p("a b c d") == ["c", "d"]  # head+tail: 2 // 4 = 0 from the head, 2 from the tail
    assert Preprocessor(PreprocessConfig(max_length=2, truncation="head"))("a b c d") == ["a", "b"]


def test_config_validation() -> None:
    for bad in ({"max_length": 0}, {"min_freq": 0}, {"max_vocab": 0}, {"tokenizer": "mecab"},
                {"normalize": "nfkc"}, {"truncation": "middle"}, {"stopwords": " "},
                {"lowercse": True}):  # fmt: skip
        with pytest.raises(ValidationError):
            PreprocessConfig(**bad)
    config = PreprocessConfig()
    with pytest.raises(ValidationError):
        config.max_length = -1
    assert PreprocessConfig(max_length=None).max_length is None


def test_greek_final_sigma_lowercases_per_token() -> None:
    text = "ΟΔΟΣ.Β ΑΣ"
    p = Preprocessor(PreprocessConfig(max_length=None))
    assert p(text) == [t.text for t in p.tokens(text)] == ["οδος", ".", "β", "ας"]


configs = st.builds(
    PreprocessConfig,
    tokenizer=st.sampled_from(["regex", "whitespace"]),
    lowercase=st.booleans(),
    strip_html=st.booleans(),
    normalize=st.sampled_from(["none", "kim"]),
    remove_punct=st.booleans(),
    stopwords=st.sampled_from([None, "english"]),
    max_length=st.none(),
)


@settings(max_examples=300, deadline=None)
@given(any_text, configs)
def test_fast_path_equals_tokens(text: str, config: PreprocessConfig) -> None:
    p = Preprocessor(config)
    tokens = p.tokens(text)
    assert p(text) == [t.text for t in tokens]
    end = 0
    for t in tokens:
        assert end <= t.start < t.end <= len(text)
        surface = text[t.start : t.end]
        assert surface.strip() == surface and surface
        if config.normalize == "none" and not config.lowercase:
            assert t.text == surface.replace("\u2019", "'")
        end = t.end


# -- Chinese word segmentation (jieba) ---------------------------------------------------------


def test_jieba_segments_chinese_into_words_with_exact_offsets():
    text = "我爱北京天安门，今天天气很好"
    toks = tokenize(text, "jieba")
    words = [t.text for t in toks]
    assert words[:4] == ["我", "爱", "北京", "天安门"]  # words, not single characters
    assert "今天天气" in words  # jieba's dictionary holds it as one word
    assert all(text[t.start:t.end] == t.text for t in toks)
    assert "".join(words) == text.replace(" ", "")
    # the regex tokenizer, by contrast, gives one token per character
    assert [t.text for t in tokenize(text, "regex")][:4] == ["我", "爱", "北", "京"]


def test_jieba_leaves_the_english_in_mixed_text_to_the_regex_tokenizer():
    text = "我用Python写的代码 don't stop!"
    words = [t.text for t in tokenize(text, "jieba")]
    assert words[-4:] == ["do", "n't", "stop", "!"]  # PTB clitics, as for English text
    assert "Python" in words and "代码" in words
    assert tokenize("plain English, isn't it?", "jieba") == tokenize("plain English, isn't it?", "regex")


def test_jieba_through_the_preprocessor_lowercases_latin_only():
    pre = Preprocessor(PreprocessConfig(tokenizer="jieba"))
    tokens = pre("北京欢迎您 Hello")
    assert tokens[0] == "北京" and tokens[-1] == "hello"
    assert "".join(tokens[:-1]) == "北京欢迎您"
