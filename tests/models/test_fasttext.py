"""The fastText-style baseline: a mean of word and hashed-bigram vectors."""

import torch

from wordconv.config import build_config
from wordconv.models.fasttext import bigram_ids
from wordconv.pipeline import build_model

LABELS = ["neg", "pos"]


def fasttext(**params):
    cfg = build_config({"model": {"type": "fasttext", "buckets": 50, **params}, "embeddings": {"dim": 6}})
    torch.manual_seed(0)
    return build_model(cfg, vocab_size=30, labels=LABELS).eval().encoder


def test_word_order_matters_only_with_bigrams():
    forward, backward = torch.tensor([[5, 6, 7, 8]]), torch.tensor([[8, 7, 6, 5]])
    with torch.no_grad():
        words = fasttext(word_ngrams=1)
        torch.testing.assert_close(words(forward).pooled, words(backward).pooled)
        bigrams = fasttext(word_ngrams=2)
        assert not torch.allclose(bigrams(forward).pooled, bigrams(backward).pooled)


def test_pooled_is_the_mean_of_words_and_real_bigrams():
    enc = fasttext()
    ids = torch.tensor([[5, 6, 7, 0, 0], [9, 0, 0, 0, 0]])  # 3 words, 1 word, padded
    with torch.no_grad():
        out = enc(ids).pooled
        w, g = enc.embedding.table.weight, enc.bigrams.weight
        buckets = bigram_ids(torch.tensor([[5, 6, 7]]), 50)[0]
        first = (w[5] + w[6] + w[7] + g[buckets[0]] + g[buckets[1]]) / 5  # 3 words + 2 bigrams
    torch.testing.assert_close(out[0], first)
    torch.testing.assert_close(out[1], w[9])  # one word: no bigram, padding pairs never count


def test_bigram_hash_stays_in_range_and_is_ordered():
    ids = torch.randint(0, 10**6, (4, 20))
    b = bigram_ids(ids, 1000)
    assert b.shape == (4, 19) and b.min() >= 0 and b.max() < 1000
    assert bigram_ids(torch.tensor([[3, 4]]), 10**6) != bigram_ids(torch.tensor([[4, 3]]), 10**6)


def test_bigram_table_follows_the_embedding_width():
    enc = fasttext()
    assert enc.bigrams.weight.shape == (50, enc.embedding.dim) and enc.output_dim == enc.embedding.dim
    assert fasttext(word_ngrams=1).bigrams is None  # words only: no bigram parameters at all


def test_defaults_are_a_linear_model():
    params = build_config({"model": {"type": "fasttext"}}).model
    assert (params.word_ngrams, params.buckets, params.dropout, params.max_norm) == (2, 100_000, 0.0, None)
