"""TextCNN inference with its first layer folded into one lookup table E @ W (vocabulary x filter taps),
as the ONNX export does: the same features, a table that follows the weights, never used with gradients."""

from __future__ import annotations

import pytest
import torch

import wordconv
from wordconv.config import EmbeddingConfig
from wordconv.models import textcnn as textcnn_module
from wordconv.models.textcnn import TextCNN, TextCNNConfig

IDS = torch.tensor([[2, 5, 19, 7, 0, 0], [3, 18, 4, 9, 11, 2]])  # 18, 19: extra words (pretrained only)


def _model(mode: str, padding: str = "valid") -> TextCNN:
    torch.manual_seed(0)
    emb = EmbeddingConfig(dim=6, mode=mode, extra_words=3 if mode != "rand" else 0,
                          vectors=None if mode == "rand" else "vectors.vec")
    model = TextCNN(TextCNNConfig(num_filters=4, filter_widths=[2, 3], padding=padding), emb, vocab_size=20)
    if mode != "rand":
        model.embedding.load_pretrained(torch.randn(20, 6))
    return model.eval()


@pytest.mark.parametrize("mode", ["rand", "static", "non-static", "multichannel"])
@pytest.mark.parametrize("padding", ["valid", "wide"])
def test_folded_first_layer_gives_the_same_features(mode, padding):
    model = _model(mode, padding)
    with torch.no_grad():
        want = model(IDS).pooled
        model.fold_first_layer()
        got = model(IDS).pooled
    assert model._fold is not None and model._fold.shape == (20, 4 * (2 + 3))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_folded_table_follows_the_weights_and_stays_out_of_training(monkeypatch):
    model = _model("non-static")
    model.fold_first_layer()
    with torch.no_grad():
        model(IDS)
        first = model._fold
        model.convs[0].weight.add_(0.5)  # an in-place update (as an optimizer step): the table is rebuilt
        changed = model(IDS).pooled
    assert model._fold is not first
    model.fold_first_layer(False)
    with torch.no_grad():
        torch.testing.assert_close(changed, model(IDS).pooled, rtol=0, atol=1e-5)
    model.fold_first_layer()
    out = model(IDS).pooled  # gradients on (training, explanations): the plain GEMM, no table
    assert out.requires_grad and model._fold is None
    with torch.no_grad():
        model.train()(IDS)  # training mode: no table either
    assert model._fold is None
    monkeypatch.setattr(textcnn_module, "FOLD_LIMIT_BYTES", 16)  # a table over the limit is not built
    with torch.no_grad():
        model.eval()(IDS)
    assert model._fold is None


def test_a_loaded_textcnn_predicts_through_the_table(tiny_data, tmp_path):
    out = tmp_path / "m"
    wordconv.train(str(tiny_data["train"]), "textcnn", out, epochs=2, overrides=["training.progress=false"])
    pred = wordconv.load(out)
    texts = ["a gripping , funny film", "dull and long"]
    folded = pred.predict_proba(texts)
    assert pred.model.encoder._fold is not None
    pred.model.encoder.fold_first_layer(False)
    torch.testing.assert_close(torch.as_tensor(folded), torch.as_tensor(pred.predict_proba(texts)), rtol=0, atol=1e-6)


def test_a_large_batch_is_folded_in_chunks_with_the_same_result(monkeypatch):
    model = _model("multichannel")
    ids = torch.randint(1, 20, (7, 6))
    with torch.no_grad():
        want = model(ids).pooled
        model.fold_first_layer()
        monkeypatch.setattr(textcnn_module, "FOLD_CHUNK_FLOATS", 2 * 6 * 20)  # two rows per chunk
        got = model(ids).pooled
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
