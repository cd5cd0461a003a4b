"""Every registered model: build -> forward shapes -> tiny inputs -> save -> load -> same outputs."""

import pytest
import torch
from safetensors.torch import load_model, save_model

from wordconv.config import build_config
from wordconv.models.registry import get_model, model_names
from wordconv.pipeline import build_model

LABELS = ["neg", "pos", "other"]


@pytest.fixture(params=model_names("textcat"))
def model_type(request):
    return request.param


# small settings that keep each model's test fast; everything else stays at its default
SMALL = {"dpcnn": {"num_filters": 8}, "cnn-attention": {"num_filters": 8}, "fasttext": {"buckets": 1000}}


@pytest.fixture(scope="module", autouse=True)
def tiny_pretrained(tmp_path_factory):
    """The pretrained type runs on a tiny random BERT written here (its ids 2..29 are real tokens)."""
    from tiny_hf import write_tiny_bert

    SMALL["pretrained"] = {"encoder": str(write_tiny_bert(tmp_path_factory.mktemp("hf") / "bert", positions=128))}
    yield
    SMALL.pop("pretrained")


def padded(model, rows: int, width: int) -> torch.Tensor:
    """An all-padding batch in the encoder's padding id (0 for word ids, -1 for a pretrained encoder)."""
    return torch.full((rows, width), getattr(model.encoder, "pad_id", 0), dtype=torch.long)


def small_config(model_type, **params):
    model = {"type": model_type, **SMALL.get(model_type, {}), **params}
    return build_config({"model": model, "embeddings": {"dim": 16}})


def test_registry_has_the_issue_models():
    assert {"textcnn", "stacked", "dpcnn", "cnn-attention", "fasttext"} <= set(model_names())
    assert model_names("ner") == ["pretrained", "tagger"]
    assert "tagger" not in model_names("textcat") and "pretrained" in model_names("textcat")


# every architecture and every pooling / activation / depth option that changes how padding is handled
VARIANTS = [
    ("pretrained", {}),
    ("pretrained", {"pooling": "cnn"}),
    ("pretrained", {"pooling": "cls"}),
    ("textcnn", {}),
    ("textcnn", {"pooling": "avg"}),
    ("textcnn", {"pooling": "avg", "activation": "sigmoid", "padding": "valid"}),
    ("textcnn", {"pooling": "kmax", "k": 3}),
    ("textcnn", {"pooling": "kmax", "k": 6, "activation": "tanh"}),  # more slots than a short text has windows
    ("textcnn", {"pooling": "kmax", "k": 2, "activation": "identity", "padding": "valid"}),
    ("textcnn", {"activation": "sigmoid"}),
    ("stacked", {"activation": "tanh", "num_filters": 8, "hidden_dim": 8}),
    ("dpcnn", {}),
    ("dpcnn", {"max_blocks": None, "activation": "sigmoid"}),
    ("dpcnn", {"max_blocks": 2, "kernel_size": 5}),
    ("cnn-attention", {}),
    ("cnn-attention", {"attention": "multihead", "filter_widths": [2, 3], "activation": "tanh"}),
    ("fasttext", {}),
    ("fasttext", {"word_ngrams": 1}),
]


@pytest.mark.parametrize("model_type,params", VARIANTS, ids=lambda v: v if isinstance(v, str) else
                         ",".join(f"{k}={x}" for k, x in v.items()) or "defaults")
def test_batch_padding_invariance(model_type, params):
    """A text alone and the same text in a batch with a much longer one get the same logits."""
    torch.manual_seed(0)
    model = build_model(small_config(model_type, **params), vocab_size=30, labels=LABELS).eval()
    min_len = model.encoder.min_length
    long = torch.randint(2, 30, (max(70, min_len + 40),))
    for n in (1, 2, 3, 4, 5, 8, 13):  # odd and even lengths: DPCNN halves them differently
        text = torch.randint(2, 30, (n,))
        alone = padded(model, 1, max(n, min_len))
        alone[0, :n] = text
        batch = padded(model, 2, len(long))
        batch[0, :n], batch[1] = text, long
        with torch.no_grad():
            a, b = model(ids=alone)["logits"], model(ids=batch)["logits"][:1]
        torch.testing.assert_close(a, b, msg=lambda m: f"length {n}: {m}")


def test_forward_shapes_and_shortest_input(model_type):
    torch.manual_seed(0)
    model = build_model(small_config(model_type), vocab_size=30, labels=LABELS).eval()
    min_len = model.encoder.min_length
    ids = torch.randint(2, 30, (4, min_len + 3))
    out = model(ids=ids, labels=torch.tensor([0, 1, 2, 0]))
    assert out["logits"].shape == (4, 3)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    # one real word, padded up to the widest filter, must work (and gives the same answer
    # whatever extra padding follows it)
    one = padded(model, 1, min_len)
    one[0, 0] = 5
    longer = padded(model, 1, min_len + 7)
    longer[0, 0] = 5
    a, b = model(ids=one)["logits"], model(ids=longer)["logits"]
    assert a.shape == (1, 3)
    torch.testing.assert_close(a, b)  # windows over padding are masked: batch padding cannot matter


def test_too_short_input_is_rejected_by_the_layer(model_type):
    model = build_model(small_config(model_type), vocab_size=30, labels=LABELS).eval()
    if model.encoder.min_length == 1:
        pytest.skip("no minimum length")
    with pytest.raises((RuntimeError, ValueError)):
        model(ids=torch.ones(1, model.encoder.min_length - 2 if model.encoder.min_length > 2 else 0, dtype=torch.long))


def test_save_load_identical(model_type, tmp_path):
    torch.manual_seed(1)
    cfg = small_config(model_type)
    model = build_model(cfg, vocab_size=30, labels=LABELS).eval()
    ids = torch.randint(2, 30, (3, model.encoder.min_length + 5))
    expected = model(ids=ids)["logits"]
    save_model(model, str(tmp_path / "m.safetensors"))
    torch.manual_seed(99)  # a different init, overwritten by the load
    again = build_model(cfg, vocab_size=30, labels=LABELS).eval()
    assert not torch.equal(again(ids=ids)["logits"], expected)
    load_model(again, str(tmp_path / "m.safetensors"), strict=True)
    assert torch.equal(again(ids=ids)["logits"], expected)


def test_max_norm_constraint_rescales_output_rows():
    model = build_model(small_config("textcnn"), vocab_size=30, labels=LABELS)
    with torch.no_grad():
        model.output.weight.mul_(100.0)
    model.apply_constraints()
    norms = model.output.weight.norm(dim=1)
    assert torch.all(norms <= 3.0 + 1e-4)
    assert torch.allclose(norms, torch.full_like(norms, 3.0), atol=1e-4)  # all were above: now exactly 3


def test_descriptions_exist():
    for name in model_names():
        assert get_model(name).description


@pytest.mark.parametrize("widths,pad", [((3, 4, 5), 0), ((3, 4, 5), 4), ((3, 4, 5), 2), ((1, 2), 1), ((2,), 0),
                                        ((3,), 5), ((5,), 1)])
def test_multi_width_conv_equals_conv1d(widths, pad):
    from wordconv.models.ops import multi_width_conv

    torch.manual_seed(0)
    x = torch.randn(3, 7, 6, requires_grad=True)
    weights = [torch.randn(4, 6, w, requires_grad=True) for w in widths]
    ours = multi_width_conv(x, weights, pad)
    ref = [torch.nn.functional.conv1d(x.transpose(1, 2), w, padding=pad).transpose(1, 2) for w in weights]
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    probe = [torch.randn_like(r) for r in ref]  # a random upstream gradient
    g_ours = torch.autograd.grad(sum((a * p).sum() for a, p in zip(ours, probe)), [x, *weights], retain_graph=True)
    g_ref = torch.autograd.grad(sum((b * p).sum() for b, p in zip(ref, probe)), [x, *weights], retain_graph=True)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    from wordconv.models.ops import _shift_sum_padded  # the form traced for ONNX export

    stacked = torch.cat([w.permute(1, 2, 0).reshape(6, -1) for w in weights], dim=1)
    for a, b in zip(_shift_sum_padded(x @ stacked, tuple(widths), 4, pad), ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # only the first width's output used: the others get no gradient and add nothing
    g_first = torch.autograd.grad((ours[0] * probe[0]).sum(), [x, weights[0]])
    g_first_ref = torch.autograd.grad((ref[0] * probe[0]).sum(), [x, weights[0]])
    for a, b in zip(g_first, g_first_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="fewer than the widest filter"):
        multi_width_conv(x[:, : max(widths) - 1], weights, 0)


def test_wide_padding_lets_every_filter_see_edge_words():
    from wordconv.models.base import window_mask

    lengths = torch.tensor([1, 3, 0])
    # widest filter 5 -> 4 zeros at both ends; a width-3 window at start s covers [s, s+3)
    mask = window_mask(lengths, steps=9, width=3, pad=4)
    # text of 1 word sits at slot 4: windows starting at 2, 3, 4 overlap it
    assert mask[0].nonzero().flatten().tolist() == [2, 3, 4]
    assert mask[1].nonzero().flatten().tolist() == [2, 3, 4, 5, 6]  # words at 4, 5, 6
    assert mask[2].nonzero().flatten().tolist() == [2, 3, 4]  # an empty text keeps the first slot's windows
    valid = window_mask(torch.tensor([2, 6]), steps=4, width=3)
    assert valid.tolist() == [[True, False, False, False], [True, True, True, True]]


def test_valid_padding_textcnn_needs_widest_filter():
    cfg = build_config({"model": {"type": "textcnn", "padding": "valid"}, "embeddings": {"dim": 8}})
    model = build_model(cfg, vocab_size=30, labels=LABELS)
    assert model.encoder.min_length == 5
    cfg = build_config({"model": {"type": "textcnn"}, "embeddings": {"dim": 8}})
    assert build_model(cfg, vocab_size=30, labels=LABELS).encoder.min_length == 1


def test_unknown_word_vector_starts_at_zero(model_type):
    # no training token maps to UNK when min_freq is 1: a random UNK vector would be pure noise
    model = build_model(small_config(model_type), vocab_size=30, labels=LABELS)
    if not hasattr(model.encoder, "embedding"):
        pytest.skip("a pretrained encoder has its own subword embeddings (no word vocabulary)")
    table = model.encoder.embedding.table.weight
    assert torch.count_nonzero(table[0]) == 0 and torch.count_nonzero(table[1]) == 0  # PAD, UNK
    assert torch.count_nonzero(table[2:]) > 0
