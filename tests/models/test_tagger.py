"""The NER tagger's character CNN reads each distinct word of a batch once."""

from __future__ import annotations

import torch

from wordconv.models import tagger
from wordconv.models.tagger import CharCNN, _unique_rows


def _rows() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    words = torch.randint(1, 40, (7, 5), generator=g)
    words[:, 3:] = 0  # short words end in padding
    words[0] = 0  # a padding word
    pick = torch.randint(0, 7, (60,), generator=g)
    return words[pick]  # 60 rows, at most 7 distinct


def test_unique_rows_is_exact_with_or_without_hash_collisions(monkeypatch) -> None:
    rows = _rows()
    unique, where = _unique_rows(rows)
    assert torch.equal(unique[where], rows)
    assert len(unique) == len(torch.unique(rows, dim=0))
    monkeypatch.setattr(tagger, "_HASH_BASE", 0)  # every row hashes to 0: the row-wise fallback answers
    unique, where = _unique_rows(rows)
    assert torch.equal(unique[where], rows) and len(unique) == len(torch.unique(rows, dim=0))
    empty, none = _unique_rows(rows[:0])
    assert empty.shape == (0, 5) and none.shape == (0,)


def test_char_cnn_equals_the_per_word_computation() -> None:
    torch.manual_seed(0)
    cnn = CharCNN(buckets=40, dim=6, filters=4, width=3)
    chars = _rows().view(6, 10, 5)
    got = cnn(chars)
    x = cnn.conv(cnn.embed(chars.view(60, 5)).transpose(1, 2))  # every word, repeats included
    want = x.masked_fill(chars.view(60, 1, 5) == 0, float("-inf")).amax(dim=2)
    want = torch.nan_to_num(want, neginf=0.0).view(6, 10, 4)
    torch.testing.assert_close(got, want)
    assert (got.view(60, 4)[(chars.view(60, 5) == 0).all(1)] == 0).all()  # padding words give zeros
    got.sum().backward()  # gradients reach the shared rows
    assert cnn.embed.weight.grad is not None and cnn.embed.weight.grad.abs().sum() > 0


def test_precomputed_character_features_give_the_same_states() -> None:
    """A corpus's distinct words through CharCNN.words once, looked up per batch (char_states), is the
    per-batch character CNN."""
    from wordconv.config import EmbeddingConfig
    from wordconv.models.tagger import ConvTagger, TaggerConfig

    torch.manual_seed(0)
    model = ConvTagger(TaggerConfig(char_dim=6, char_filters=4, char_buckets=40, num_filters=8),
                       EmbeddingConfig(dim=5), vocab_size=30).eval()
    table = _rows()[:7]  # the distinct words (row 0 all padding) as character ids
    types = torch.randint(1, 7, (3, 9))
    types[1, 6:] = 0  # padding words
    ids = torch.randint(2, 30, (3, 9)).masked_fill(types == 0, 0)
    case = torch.randint(1, 7, (3, 9)).masked_fill(types == 0, 0)
    with torch.no_grad():
        want = model(ids, chars=table[types], case=case).states
        got = model(ids, case=case, char_states=model.chars.words(table)[types]).states
    torch.testing.assert_close(got, want)


def test_char_features_by_length_equal_the_masked_computation() -> None:
    """Without gradients, CharCNN.words convolves each group of same-length words unpadded; it equals
    the padded, masked computation (which training uses)."""
    torch.manual_seed(0)
    cnn = CharCNN(buckets=40, dim=6, filters=4, width=3)
    words = _rows()
    masked = cnn.words(words)  # gradients on: the masked path
    with torch.no_grad():
        grouped = cnn.words(words)
        empty = cnn.words(torch.zeros(3, 5, dtype=torch.long))
    torch.testing.assert_close(grouped, masked.detach())
    assert masked.requires_grad and not grouped.requires_grad
    assert torch.equal(empty, torch.zeros(3, 4))
