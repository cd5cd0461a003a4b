"""The attention-pooled CNN: weights over real words only, states per word, heads kept."""

import pytest
import torch
from safetensors.torch import load_model, save_model

from wordconv.config import build_config
from wordconv.errors import ConfigError
from wordconv.pipeline import build_model

LABELS = ["neg", "pos"]


def attention_cnn(**params):
    model = {"type": "cnn-attention", "num_filters": 8, **params}
    torch.manual_seed(0)
    return build_model(build_config({"model": model, "embeddings": {"dim": 8}}), vocab_size=30, labels=LABELS).eval()


def batch_of(*lengths):
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(2, 30, (n,))
    return ids


@pytest.mark.parametrize("attention", ["additive", "multihead"])
def test_weights_sum_to_one_over_real_words_and_are_zero_on_padding(attention):
    enc = attention_cnn(attention=attention).encoder
    lengths = torch.tensor([1, 4, 9])
    ids = batch_of(*lengths.tolist())
    with torch.no_grad():
        out = enc(ids)
    real = torch.arange(9)[None, :] < lengths[:, None]
    assert out.attention.shape == (3, 9)
    assert torch.equal(out.mask, real)
    torch.testing.assert_close(out.attention.sum(dim=1), torch.ones(3))
    assert torch.all(out.attention[~real] == 0.0)  # exactly zero, not merely small
    assert torch.all(out.attention[real] > 0.0)
    assert out.states.shape == (3, 9, 24)  # one feature vector per word: 8 filters x 3 widths
    assert torch.all(out.states[~real] == 0.0)
    # the pooled vector is the attention-weighted sum of the word states
    torch.testing.assert_close(out.pooled, torch.einsum("bt,bth->bh", out.attention, out.states))


def test_weights_of_a_text_do_not_depend_on_its_batch():
    enc = attention_cnn(attention="multihead").encoder
    ids = batch_of(4, 20)
    with torch.no_grad():
        alone, together = enc(ids[:1, :4]), enc(ids)
    torch.testing.assert_close(alone.attention, together.attention[:1, :4])
    torch.testing.assert_close(alone.pooled, together.pooled[:1])


def test_multihead_keeps_per_head_maps():
    enc = attention_cnn(attention="multihead", heads=4).encoder
    with torch.no_grad():
        enc(batch_of(3, 6))
    maps = enc.head_attention
    assert maps.shape == (2, 4, 6, 6)  # (B, heads, query, key)
    torch.testing.assert_close(maps.sum(dim=-1), torch.ones(2, 4, 6))
    assert torch.all(maps[0, :, :, 3:] == 0.0)  # no head looks at the first text's padding


def test_each_feature_belongs_to_its_word():
    # width 1: the state at t depends on word t alone; width 3: on words t-1, t, t+1
    enc = attention_cnn(filter_widths=[1, 3]).encoder
    a = batch_of(5)
    b = a.clone()
    b[0, 0] = 2 if a[0, 0] != 2 else 3  # change only the first word
    with torch.no_grad():
        sa, sb = enc(a).states, enc(b).states
    width1 = slice(0, 8)  # the first 8 features come from the width-1 filters
    assert not torch.equal(sa[0, 0, width1], sb[0, 0, width1])
    assert torch.equal(sa[0, 1:, width1], sb[0, 1:, width1])
    width3 = slice(8, 16)  # width 3 is centred: word 0 reaches position 1, not position 2
    assert not torch.equal(sa[0, 1, width3], sb[0, 1, width3])
    assert torch.equal(sa[0, 2:, width3], sb[0, 2:, width3])


def test_heads_must_divide_the_features():
    with pytest.raises(ConfigError, match="heads=7 must divide"):  # 3 x 100 features
        build_config({"model": {"type": "cnn-attention", "attention": "multihead", "heads": 7}})
    build_config({"model": {"type": "cnn-attention", "heads": 7}})  # additive: heads unused


def test_multihead_save_load_identical(tmp_path):
    model = attention_cnn(attention="multihead")
    ids = batch_of(3, 7)
    expected = model(ids=ids)["logits"]
    save_model(model, str(tmp_path / "m.safetensors"))
    again = attention_cnn(attention="multihead")
    torch.nn.init.normal_(again.encoder.self_attention.in_proj_weight)
    load_model(again, str(tmp_path / "m.safetensors"), strict=True)
    assert torch.equal(again(ids=ids)["logits"], expected)
