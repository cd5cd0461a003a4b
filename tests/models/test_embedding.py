"""Kim's (2014) embedding modes: what trains, what stays fixed, what the encoder sees."""

import pytest
import torch

from wordconv.config import EmbeddingConfig, build_config
from wordconv.errors import ConfigError
from wordconv.models.base import WordEmbedding
from wordconv.pipeline import build_model
from wordconv.training.trainer import build_optimizer

V, E, EXTRA = 12, 4, 3  # 9 training words (incl. PAD, UNK) + 3 extra words of the vector file


def make(mode, extra=EXTRA):
    cfg = EmbeddingConfig(mode=mode, vectors=None if mode == "rand" else "v.txt", dim=E,
                          extra_words=extra if mode != "rand" else 0)
    torch.manual_seed(0)
    emb = WordEmbedding(V, cfg)
    vectors = torch.arange(V * E, dtype=torch.float32).reshape(V, E) / 10
    vectors[:2] = 0  # PAD, UNK
    if mode != "rand":
        emb.load_pretrained(vectors)
    return emb, vectors


def one_step(emb):
    trainable = [p for p in emb.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=1.0)
    ids = torch.arange(V)[None, :]  # every word once, extra words included
    emb(ids).pow(2).sum().backward()
    opt.step()


def test_pretrained_modes_start_from_the_vectors():
    ids = torch.tensor([[2, 5, 10, 0]])
    for mode in ("static", "non-static"):
        emb, vectors = make(mode)
        torch.testing.assert_close(emb(ids)[0], vectors[ids[0]])
    emb, vectors = make("multichannel")
    assert emb.dim == 2 * E
    out = emb(ids)[0]
    torch.testing.assert_close(out[:, :E], vectors[ids[0]])  # static channel
    torch.testing.assert_close(out[:, E:], vectors[ids[0]])  # fine-tuned channel, before training


def test_static_vectors_do_not_change_after_a_step():
    emb, vectors = make("static")
    assert not any(p.requires_grad for p in emb.parameters())
    cfg = build_config({"embeddings": {"mode": "static", "vectors": "v.txt", "dim": E, "extra_words": EXTRA},
                        "model": {"num_filters": 3}})
    model = build_model(cfg, V, ["a", "b"])
    model.encoder.embedding.load_pretrained(vectors)
    conv_before = model.encoder.convs[0].weight.detach().clone()
    opt = build_optimizer(model, cfg.training)
    model(ids=torch.tensor([[2, 3, 4, 10], [5, 6, 0, 0]]), labels=torch.tensor([0, 1]))["loss"].backward()
    opt.step()
    torch.testing.assert_close(model.encoder.embedding(torch.arange(V)[None])[0], vectors)  # unchanged
    assert not torch.equal(model.encoder.convs[0].weight, conv_before)  # while the filters learn


def test_non_static_vectors_change_but_extra_words_stay():
    emb, vectors = make("non-static")
    one_step(emb)
    after = emb(torch.arange(V)[None])[0].detach()
    n_train = V - EXTRA
    assert not torch.allclose(after[2:n_train], vectors[2:n_train])  # training words moved
    torch.testing.assert_close(after[n_train:], vectors[n_train:])  # extra words kept their vectors
    assert torch.equal(after[0], torch.zeros(E))  # PAD stays zero (padding_idx)


def test_multichannel_trains_one_channel_only():
    emb, vectors = make("multichannel")
    one_step(emb)
    after = emb(torch.arange(V)[None])[0].detach()
    n_train = V - EXTRA
    torch.testing.assert_close(after[:, :E], vectors)  # the static channel
    assert not torch.allclose(after[2:n_train, E:], vectors[2:n_train])  # the fine-tuned channel
    torch.testing.assert_close(after[n_train:, E:], vectors[n_train:])


def test_rand_mode_is_one_trainable_table_with_zero_pad_and_unk():
    emb, _ = make("rand")
    w = emb.table.weight
    assert w.shape == (V, E) and w.requires_grad
    assert torch.equal(w[0], torch.zeros(E)) and torch.equal(w[1], torch.zeros(E))
    assert w[2:].abs().max() <= 0.25
    with pytest.raises(ConfigError, match="rand"):
        emb.load_pretrained(torch.zeros(V, E))


def test_wrong_vector_shape_is_refused():
    emb, _ = make("static")
    with pytest.raises(ConfigError, match="shape"):
        emb.load_pretrained(torch.zeros(V, E + 1))


def test_config_requires_vectors_for_pretrained_modes_and_none_for_rand():
    with pytest.raises(ValueError, match="needs pretrained vectors"):
        EmbeddingConfig(mode="static")
    with pytest.raises(ValueError, match="mode is 'rand'"):
        EmbeddingConfig(vectors="glove.txt")
    assert EmbeddingConfig().dim == 300
    assert EmbeddingConfig(mode="static", vectors="g.txt").dim is None  # read from the file


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_lr_scale_gives_the_word_vectors_their_own_rate(scale):
    cfg = build_config({"embeddings": {"mode": "non-static", "vectors": "v.txt", "dim": E, "extra_words": EXTRA,
                                       "lr_scale": scale},
                        "model": {"num_filters": 3}, "training": {"lr": 0.01}})
    model = build_model(cfg, V, ["a", "b"])
    _, vectors = make("non-static")
    model.encoder.embedding.load_pretrained(vectors)
    opt = build_optimizer(model, cfg.training)
    table = model.encoder.embedding.table.weight
    if scale == 1.0:
        assert [g["name"] for g in opt.param_groups] == ["all"]
    else:
        assert [g["name"] for g in opt.param_groups] == ["all", "word vectors (x0.1)"]
        assert [p is table for p in opt.param_groups[1]["params"]] == [True]
        assert opt.param_groups[1]["lr"] == pytest.approx(0.001) and opt.param_groups[0]["lr"] == 0.01
    before, conv_before = table.detach().clone(), model.encoder.convs[0].weight.detach().clone()
    model(ids=torch.tensor([[2, 3, 4, 10], [5, 6, 0, 0]]), labels=torch.tensor([0, 1]))["loss"].backward()
    opt.step()
    # Adam's first step moves every weight with a gradient by ~lr: the vectors by lr x scale
    moved = (table.detach() - before).abs()[2:7]
    assert moved.max().item() == pytest.approx(0.01 * scale, rel=1e-3)
    assert (model.encoder.convs[0].weight.detach() - conv_before).abs().max().item() == pytest.approx(0.01, rel=1e-3)


def test_lr_scale_out_of_range_is_refused():
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="lr_scale"):
            EmbeddingConfig(mode="non-static", vectors="v.txt", lr_scale=bad)
