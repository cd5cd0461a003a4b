"""Training with pretrained word vectors, end to end: vectors in, model directory out, same answers after load."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import wordconv
from wordconv.cli import app
from wordconv.data.vocab import Vocab
from wordconv.errors import ConfigError

from tiny import FAST, FILLER, NEG, POS

DIM = 6


@pytest.fixture
def vectors(tmp_path):
    """A GloVe-style file (no header): sentiment words point one way or the other, filler words are noise;
    plus words the training data never has ("splendid", "dreadful") and one in upper case only ("Film")."""
    rng = np.random.default_rng(0)
    rows = []
    for w in POS + ["splendid"]:
        rows.append((w, np.r_[1.0, rng.normal(0, 0.1, DIM - 1)]))
    for w in NEG + ["dreadful"]:
        rows.append((w, np.r_[-1.0, rng.normal(0, 0.1, DIM - 1)]))
    for w in FILLER:
        rows.append(("Film" if w == "film" else w, np.r_[0.0, rng.normal(0, 0.1, DIM - 1)]))
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"{w} {' '.join(f'{x:.5f}' for x in v)}\n" for w, v in rows), encoding="utf-8")
    return path, dict(rows)


def train(tiny_data, mode, vectors_path, out=None, extra=()):
    fast = [o for o in FAST if not o.startswith("embeddings.dim")]
    return wordconv.train(str(tiny_data["train"]), "textcnn", out, epochs=3, overrides=[
        *fast, f"data.test_path={tiny_data['test']}", f"data.dev_path={tiny_data['dev']}",
        f"embeddings.mode={mode}", f"embeddings.vectors={vectors_path}", *extra])


@pytest.mark.parametrize("mode", ["static", "non-static", "multichannel"])
def test_pretrained_modes_round_trip(tiny_data, vectors, tmp_path, mode):
    path, table = vectors
    out = tmp_path / "model"
    model = train(tiny_data, mode, path, out)
    config = json.loads((out / "config.json").read_text())
    assert config["embeddings"]["dim"] == DIM  # taken from the file
    vocab = Vocab.load(out / "vocab.json")
    # the file's words the training data never had are in the vocabulary, at the end
    assert {"splendid", "dreadful"} <= set(vocab.itos)
    assert config["embeddings"]["extra_words"] == len(vocab) - len(model.artifact.vocab.counts) - 2
    meta = json.loads((out / "meta.json").read_text())
    cov = meta["embeddings"]["coverage"]
    assert cov["types_found"] == cov["types_total"]  # every training word has a vector ("film" by lowercase)
    assert cov["lowercase_hits"] == 1
    emb = model.model.encoder.embedding
    ids = torch.tensor([[vocab.index("splendid"), vocab.index("good")]])
    static_part = emb(ids)[0, :, :DIM]
    torch.testing.assert_close(static_part[0], torch.tensor(table["splendid"], dtype=torch.float32))
    if mode != "non-static":  # the fixed (static) channel still holds the file's vector after training
        torch.testing.assert_close(static_part[1], torch.tensor(table["good"], dtype=torch.float32))
    texts = ["a splendid film", "dreadful plot", "good", "the the"]
    loaded = wordconv.load(out)
    assert torch.equal(loaded.predict_proba(texts), model.predict_proba(texts))


def test_unseen_word_uses_its_vector_at_test_time(tiny_data, vectors):
    path, _ = vectors
    model = train(tiny_data, "static", path, extra=["training.patience=null", "model.dropout=0.0"])
    # never in the training data: known only through the vector file
    assert model.predict("splendid")[0].label == "pos"
    assert model.predict("dreadful")[0].label == "neg"


def test_extra_words_can_be_turned_off(tiny_data, vectors):
    path, _ = vectors
    model = train(tiny_data, "static", path, extra=["embeddings.extra_words=0"])
    assert "splendid" not in model.artifact.vocab.stoi
    assert model.config.embeddings.extra_words == 0


def test_dimension_given_and_file_disagree(tiny_data, vectors):
    path, _ = vectors
    with pytest.raises(ConfigError, match=r"embeddings.dim is 16 but .* 6 dimensions"):
        train(tiny_data, "static", path, extra=["embeddings.dim=16"])


def test_missing_vector_file_is_a_clear_error(tiny_data, tmp_path):
    with pytest.raises(wordconv.errors.DataError, match="nope.txt"):
        train(tiny_data, "static", tmp_path / "nope.txt")


def test_embed_gives_the_pooled_vectors(tiny_data, tmp_path):
    model = wordconv.train(str(tiny_data["train"]), "textcnn", tmp_path / "m", epochs=1, overrides=[
        *FAST, f"data.test_path={tiny_data['test']}", f"data.dev_path={tiny_data['dev']}"])
    texts = ["great fun", "a dull and boring plot", "x"]
    vecs = model.embed(texts)
    assert vecs.shape == (3, model.model.encoder.output_dim)
    # the output layer reads exactly these vectors
    logits = model.model.output(vecs)
    torch.testing.assert_close(torch.softmax(logits, -1), model.predict_proba(texts))
    torch.testing.assert_close(model.embed(texts[1:2])[0], vecs[1])  # batch company does not matter

    inp = tmp_path / "texts.txt"
    inp.write_text("\n".join(texts) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["embed", str(tmp_path / "m"), "--input", str(inp), "-o", str(tmp_path / "v.npy")])
    assert result.exit_code == 0, result.output
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "v.npy")), vecs)
    result = CliRunner().invoke(app, ["embed", str(tmp_path / "m"), "--input", str(inp)])
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["text"] for x in lines] == texts and len(lines[0]["vector"]) == vecs.shape[1]
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    result = CliRunner().invoke(app, ["embed", str(tmp_path / "m"), "--input", str(empty)])
    assert result.exit_code != 0 and "Traceback" not in result.output
