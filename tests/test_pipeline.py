"""train -> model directory -> load -> predict/evaluate, through the Python API."""

import json

import pytest
import torch

import wordconv
from wordconv.data.vocab import Vocab
from wordconv.errors import ConfigError, DataError, ModelError
from wordconv.models.registry import model_config_class, model_names

from tiny import FAST, make_sentences, write_labelfirst


def train_tiny(tiny_data, out=None, model="textcnn", extra=(), epochs=15):
    fields = model_config_class(model).model_fields  # fasttext has no model.num_filters
    fast = [o for o in FAST if not o.startswith("model.") or o.split("=")[0].removeprefix("model.") in fields]
    return wordconv.train(str(tiny_data["train"]), model, out, epochs=epochs,
                          overrides=fast + [f"data.test_path={tiny_data['test']}", f"data.dev_path={tiny_data['dev']}",
                                            *extra])


def test_overfits_tiny_data_and_generalises(tiny_data):
    model = train_tiny(tiny_data, extra=["training.patience=null", "model.dropout=0.0"], epochs=30)
    rows = make_sentences(80, 1)
    preds = [p.label for p in model.predict([t for _, t in rows])]
    assert preds == [lab for lab, _ in rows]  # memorised the training set
    assert model.metrics["accuracy"] >= 0.8  # and the sentiment words carry over to unseen sentences (chance: 0.5)
    assert model.metrics["split"] == "test" and model.metrics["n"] == 20


@pytest.mark.parametrize("model_type", model_names("textcat"))
def test_model_directory_round_trip(tiny_data, tmp_path, model_type):
    out = tmp_path / "model"
    model = train_tiny(tiny_data, out, model_type, epochs=2)
    for name in ("config.json", "model.safetensors", "vocab.json", "labels.json", "meta.json", "metrics.json",
                 "history.jsonl", "learning_curve.png", "confusion_matrix.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "f1_macro"} <= set(metrics)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 13 and meta["data"]["files"]  # data file hashes recorded
    assert len((out / "history.jsonl").read_text().splitlines()) == 2
    assert not list(tmp_path.glob(".model.tmp-*"))  # no temp dir left behind

    texts = ["great fun", "a dull and boring plot", "x", "the the the " * 50]
    loaded = wordconv.load(out)
    assert loaded.labels == model.labels
    assert torch.equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert [p.label for p in loaded.predict(texts)] == [p.label for p in model.predict(texts)]


def test_config_replays_the_run(tiny_data, tmp_path):
    train_tiny(tiny_data, tmp_path / "a", epochs=2)
    again = wordconv.train(config=tmp_path / "a" / "config.json", output=tmp_path / "b")
    first = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert again.metrics["accuracy"] == first["accuracy"]
    a = Vocab.load(tmp_path / "a" / "vocab.json")
    assert a.itos == Vocab.load(tmp_path / "b" / "vocab.json").itos
    assert torch.equal(wordconv.load(tmp_path / "a").predict_proba(["good film"]), again.predict_proba(["good film"]))


def test_predict_top_k_and_probabilities(tiny_data):
    model = train_tiny(tiny_data, epochs=3)
    (p,) = model.predict("a superb story", top_k=5)
    assert len(p.top_k) == 2  # capped at the number of labels
    assert p.top_k[0][0] == p.label and p.score == pytest.approx(max(p.probabilities.values()))
    assert sum(p.probabilities.values()) == pytest.approx(1.0)
    with pytest.raises(DataError, match="text 1 is empty"):
        model.predict(["fine", "   "])


def test_evaluate_saved_model_on_file(tiny_data, tmp_path):
    train_tiny(tiny_data, tmp_path / "m", epochs=3)
    metrics = wordconv.evaluate(tmp_path / "m", str(tiny_data["test"]))
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["accuracy"] == saved["accuracy"] and metrics["n"] == 20


def test_unknown_label_at_evaluation_names_the_line(tiny_data, tmp_path):
    train_tiny(tiny_data, tmp_path / "m", epochs=1)
    bad = write_labelfirst(tmp_path / "bad.txt", [("pos", "good"), ("meh", "so so")])
    with pytest.raises(DataError, match=r"bad.txt:2.*'meh' was not seen in training"):
        wordconv.evaluate(tmp_path / "m", str(bad))


def test_existing_output_is_refused_before_training(tiny_data, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ModelError, match="already exists.*--overwrite"):
        train_tiny(tiny_data, out, epochs=1)
    assert (out / "keep.txt").read_text() == "mine"


def test_failed_save_leaves_nothing(tiny_data, tmp_path, monkeypatch):
    def no_space(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Vocab, "save", no_space)
    with pytest.raises(ModelError, match="No space left.*nothing was written"):
        train_tiny(tiny_data, tmp_path / "m", epochs=1)
    assert not (tmp_path / "m").exists()
    assert not list(tmp_path.glob(".m.tmp-*"))


def test_bad_config_fails_before_reading_data(tmp_path):
    with pytest.raises(ConfigError, match="training.learning_rate: unknown key"):
        wordconv.train(str(tmp_path / "missing.txt"), overrides=["training.learning_rate=0.1"])
    with pytest.raises(ConfigError, match="training.epochs"):
        wordconv.train(str(tmp_path / "missing.txt"), overrides=["training.epochs=many"])


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        wordconv.load(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="missing model.safetensors, vocab.json, labels.json"):
        wordconv.load(tmp_path / "half")


def test_damaged_weights_are_refused(tiny_data, tmp_path):
    train_tiny(tiny_data, tmp_path / "m", epochs=1)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["model"]["num_filters"] = 9  # architecture no longer matches the weights
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"config.json does not match the sha256 recorded in .*meta.json"):
        wordconv.load(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    del meta["checksums"]  # as a directory saved before checksums were recorded
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="weights do not fit"):
        wordconv.load(tmp_path / "m")


def test_checksums_catch_a_changed_weight_file(tiny_data, tmp_path):
    train_tiny(tiny_data, tmp_path / "m", epochs=1)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert set(meta["checksums"]) == {"config.json", "model.safetensors", "vocab.json", "labels.json"}
    wordconv.load(tmp_path / "m")  # intact: loads
    weights = tmp_path / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one flipped bit in the last weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="model.safetensors does not match the sha256"):
        wordconv.load(tmp_path / "m")


def test_tampered_config_cannot_name_arbitrary_code(tiny_data, tmp_path):
    train_tiny(tiny_data, tmp_path / "m", epochs=1)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["model"]["type"] = "os.system"  # a registry of names: never an import path
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    del meta["checksums"]  # even with the checksum gone, the type is refused
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="os.system"):
        wordconv.load(tmp_path / "m")


def test_prediction_does_not_depend_on_batch_company(tiny_data):
    model = train_tiny(tiny_data, epochs=2)
    alone = model.predict_proba(["good"])
    crowd = model.predict_proba(["good", "the plot of this film is " * 30, "dull"])
    torch.testing.assert_close(alone[0], crowd[0], rtol=1e-5, atol=1e-6)


def test_truncation_is_counted_not_silent(tiny_data):
    model = train_tiny(tiny_data, extra=["preprocessing.max_length=3"], epochs=1)
    expected = sum(len(text.split()) > 3 for _, text in make_sentences(80, 1))
    assert 0 < expected < 80
    assert model.meta["training"]["truncated_train_texts"] == expected
