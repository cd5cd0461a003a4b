"""Each new architecture learns a tiny separable task, and goes through the one Trainer and model directory."""

import pytest
import torch

import wordconv
from wordconv.config import build_config
from wordconv.data.batching import pad_batch
from wordconv.pipeline import build_model

from tiny import FAST, make_sentences

# case -> (model type, small settings)
CASES = {
    "dpcnn": ("dpcnn", {"num_filters": 8}),
    "cnn-attention": ("cnn-attention", {"num_filters": 8}),
    "cnn-attention-multihead": ("cnn-attention", {"num_filters": 8, "attention": "multihead"}),
    "fasttext": ("fasttext", {"buckets": 1000}),
    "textcnn-kmax": ("textcnn", {"num_filters": 8, "pooling": "kmax", "k": 2}),
    "textcnn-avg": ("textcnn", {"num_filters": 8, "pooling": "avg", "activation": "tanh"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_overfits_forty_sentences(name):
    rows = make_sentences(40, seed=5)
    words = sorted({w for _, text in rows for w in text.split()})
    index = {w: i + 2 for i, w in enumerate(words)}  # 0 PAD, 1 UNK
    labels = torch.tensor([int(label == "pos") for label, _ in rows])
    model_type, params = CASES[name]
    cfg = build_config({"model": {"type": model_type, **params}, "embeddings": {"dim": 16}})
    torch.manual_seed(0)
    model = build_model(cfg, vocab_size=len(words) + 2, labels=["neg", "pos"])
    ids, _ = pad_batch([[index[w] for w in text.split()] for _, text in rows], min_length=model.encoder.min_length)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    accuracy = 0.0
    for step in range(1, 201):
        model.train()
        loss = model(ids=ids, labels=labels)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.apply_constraints()
        if step % 10 == 0:
            model.eval()
            with torch.no_grad():
                accuracy = (model(ids=ids)["logits"].argmax(dim=1) == labels).float().mean().item()
            if accuracy == 1.0:
                break
    assert accuracy == 1.0, f"{name}: training accuracy {accuracy} after {step} steps"


@pytest.mark.parametrize("name", ["dpcnn", "cnn-attention", "fasttext"])
def test_train_save_load_through_the_pipeline(name, tiny_data, tmp_path):
    sets = [f"model.{k}={v}" for k, v in CASES[name][1].items()]
    model = wordconv.train(str(tiny_data["train"]), name, epochs=2,
                           overrides=[o for o in FAST if not o.startswith("model.")] + sets)
    model.save(tmp_path / "m")  # the model directory, without train()'s plots
    loaded = wordconv.load(tmp_path / "m")
    assert loaded.artifact.config.model.type == name
    texts = ["a superb story", "the plot was dull and the actors weak", "good"]
    assert torch.equal(loaded.predict_proba(texts), model.predict_proba(texts))
