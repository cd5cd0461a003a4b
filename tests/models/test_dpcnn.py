"""DPCNN: the pyramid's depth, its shapes on long inputs, and the block structure."""

import pytest
import torch

from wordconv.config import build_config
from wordconv.errors import ConfigError
from wordconv.pipeline import build_model

LABELS = ["neg", "pos"]


def dpcnn(**params):
    cfg = build_config({"model": {"type": "dpcnn", "num_filters": 8, **params}, "embeddings": {"dim": 8}})
    torch.manual_seed(0)
    return build_model(cfg, vocab_size=30, labels=LABELS).eval()


def count_calls(modules):
    calls = []
    for i, m in enumerate(modules):
        m.register_forward_hook(lambda mod, args, out, i=i: calls.append(i))
    return calls


def test_until_one_position_on_a_long_input():
    model = dpcnn(max_blocks=None)
    assert len(model.encoder.blocks) == 1  # open-ended depth: one shared block
    calls = count_calls(model.encoder.blocks)
    ids = torch.randint(2, 30, (2, 300))
    with torch.no_grad():
        out = model.encoder(ids)
    assert out.pooled.shape == (2, 8) and torch.isfinite(out.pooled).all()
    # 300 -> 150 -> 75 -> 38 -> 19 -> 10 -> 5 -> 3 -> 2 -> 1: nine downsampling blocks
    assert len(calls) == 9


def test_paper_depth_is_six_blocks_with_their_own_weights():
    model = dpcnn()  # max_blocks 6 (Johnson & Zhang 2017: 15 weight layers)
    enc = model.encoder
    assert len(enc.blocks) == 6
    assert enc.blocks[0].conv1.conv.weight.data_ptr() != enc.blocks[1].conv1.conv.weight.data_ptr()
    calls = count_calls(enc.blocks)
    with torch.no_grad():
        assert enc(torch.randint(2, 30, (3, 300))).pooled.shape == (3, 8)
    assert calls == [0, 1, 2, 3, 4, 5]  # 300 -> ... -> 5 positions left, then global max pooling
    calls.clear()
    with torch.no_grad():
        enc(torch.randint(2, 30, (1, 5)))
    assert calls == [0, 1, 2]  # a five-word text: 5 -> 3 -> 2 -> 1, then it stops


def test_short_text_skips_blocks_inside_a_long_batch():
    # the five-word text stops after 3 blocks even though its batch neighbour needs 9
    model = dpcnn(max_blocks=None)
    text = torch.randint(2, 30, (5,))
    batch = torch.zeros(2, 300, dtype=torch.long)
    batch[0, :5], batch[1] = text, torch.randint(2, 30, (300,))
    with torch.no_grad():
        torch.testing.assert_close(model(ids=batch)["logits"][:1], model(ids=text[None])["logits"])


def test_no_downsampling_blocks():
    model = dpcnn(max_blocks=0)
    with torch.no_grad():
        assert model(ids=torch.randint(2, 30, (2, 9)))["logits"].shape == (2, 2)


def test_even_kernel_is_rejected():
    with pytest.raises(ConfigError, match="kernel_size must be odd"):
        build_config({"model": {"type": "dpcnn", "kernel_size": 4}})


def test_default_hyperparameters_are_the_papers():
    params = build_config({"model": {"type": "dpcnn"}}).model
    assert (params.num_filters, params.kernel_size, params.max_blocks, params.dropout) == (250, 3, 6, 0.5)
