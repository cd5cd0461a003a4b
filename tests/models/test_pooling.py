"""TextCNN's pooling and activation options, checked on hand-built convolution outputs."""

import pytest
import torch

from wordconv.config import build_config
from wordconv.errors import ConfigError
from wordconv.models.textcnn import kmax_pool
from wordconv.pipeline import build_model

LABELS = ["neg", "pos"]


def scalar_cnn(**params):
    """A TextCNN whose conv output at word t is exactly the value of word t's id.

    One filter of width 1, weight 1, bias 0, on 1-dimensional word vectors: word id i has the
    vector [VALUES[i]], so the conv "map" is the sequence of values itself.
    """
    model = {"type": "textcnn", "filter_widths": [1], "num_filters": 1, "padding": "valid", **params}
    net = build_model(build_config({"model": model, "embeddings": {"dim": 1}}), vocab_size=8, labels=LABELS).eval()
    enc = net.encoder
    with torch.no_grad():
        enc.embedding.table.weight.copy_(VALUES[:, None])
        enc.convs[0].weight.fill_(1.0)
        enc.convs[0].bias.zero_()
    return enc


VALUES = torch.tensor([0.0, 0.0, 3.0, -1.0, 5.0, 2.0, 4.0, -3.0])  # ids 0 (PAD) and 1 (UNK) are zero


def pooled(enc, rows):
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    with torch.no_grad():
        return enc(ids).pooled


def test_kmax_picks_the_k_largest_in_text_order():
    enc = scalar_cnn(pooling="kmax", k=3, activation="identity")
    assert enc.output_dim == 3  # 1 filter x k x 1 width
    # values 3, -1, 5, 2, 4 -> the three largest are 3, 5, 4, kept in the order they occur
    assert pooled(enc, [[2, 3, 4, 5, 6]]).tolist() == [[3.0, 5.0, 4.0]]
    # a text of two negative words in a batch with a longer one: padding windows (value 0 > -1)
    # are never chosen, and the missing third value is a 0 filler at the end
    out = pooled(enc, [[3, 7], [2, 3, 4, 5, 6]])
    assert out.tolist() == [[-1.0, -3.0, 0.0], [3.0, 5.0, 4.0]]
    assert pooled(enc, [[3, 7]]).tolist() == [[-1.0, -3.0, 0.0]]  # alone: the same


def test_kmax_applies_bias_then_activation_and_fillers_stay_zero():
    enc = scalar_cnn(pooling="kmax", k=3, activation="tanh")
    with torch.no_grad():
        enc.convs[0].bias.fill_(0.5)
    out = pooled(enc, [[3, 7]])  # values -1, -3 and one filler
    expected = torch.tanh(torch.tensor([[-0.5, -2.5]]))
    torch.testing.assert_close(out[:, :2], expected)
    assert out[0, 2] == 0.0


def test_kmax_output_groups_each_filters_k_values():
    # 2 filters x k=2 x 2 widths -> 8 features
    cfg = build_config({"model": {"type": "textcnn", "filter_widths": [2, 3], "num_filters": 2,
                                  "pooling": "kmax", "k": 2}, "embeddings": {"dim": 4}})
    enc = build_model(cfg, vocab_size=10, labels=LABELS).encoder
    assert enc.output_dim == 8
    assert enc(torch.randint(2, 10, (3, 6))).pooled.shape == (3, 8)


def test_kmax_pool_directly():
    c = torch.tensor([[[1.0], [9.0], [7.0], [8.0]]])  # (B=1, L=4, F=1)
    keep = torch.tensor([[True, True, True, False]])  # the last window is padding
    values, real = kmax_pool(c, keep, k=2)
    assert values.flatten().tolist() == [9.0, 7.0] and real.all()
    values, real = kmax_pool(c, keep, k=5)  # more slots than windows: fillers at the end
    assert real.flatten().tolist() == [True, True, True, False, False]
    assert values.flatten()[:3].tolist() == [1.0, 9.0, 7.0]


def test_avg_pooling_activates_before_averaging():
    enc = scalar_cnn(pooling="avg", activation="relu")
    # relu(3), relu(-1), relu(5) = 3, 0, 5 -> mean 8/3 (averaging first would give relu(7/3))
    out = pooled(enc, [[2, 3, 4], [2, 3, 4, 5, 6, 6, 6]])
    torch.testing.assert_close(out[0], torch.tensor([8.0 / 3.0]))  # padding windows not counted
    torch.testing.assert_close(out[1], torch.tensor([(3 + 0 + 5 + 2 + 4 * 3) / 7.0]))


@pytest.mark.parametrize("activation,fn", [("relu", torch.relu), ("tanh", torch.tanh),
                                           ("sigmoid", torch.sigmoid), ("identity", lambda x: x)])
def test_max_pooling_with_each_activation(activation, fn):
    enc = scalar_cnn(activation=activation)
    with torch.no_grad():
        enc.convs[0].bias.fill_(-4.0)
    # max of 3, -1, 5 is 5; with the bias -4 -> act(1)
    torch.testing.assert_close(pooled(enc, [[2, 3, 4]]), fn(torch.tensor([[1.0]])))


def test_default_textcnn_is_unchanged():
    params = build_config({"model": {"type": "textcnn"}}).model
    assert (params.activation, params.pooling, params.filter_widths) == ("relu", "max", [3, 4, 5])


def test_unknown_pooling_is_a_config_error():
    with pytest.raises(ConfigError, match="model.pooling"):
        build_config({"model": {"type": "textcnn", "pooling": "mean"}})
