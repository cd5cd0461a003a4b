"""Multi-label classification: trains through the one Trainer, tunes thresholds, saves and loads them."""

import json

import pytest
import torch

import wordconv
from wordconv.config import build_config
from wordconv.errors import DataError
from wordconv.pipeline import build_model, make_task
from wordconv.tasks.base import EncodedTexts

from tiny import FAST, make_multilabel

# two topics signalled by single words: learnable in a few seconds with a higher lr and no dropout
SETTINGS = FAST + ["training.patience=3", "model.dropout=0.0", "training.lr=0.02"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps({"text": text, "label": labels}) + "\n" for labels, text in rows))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("multilabel")
    files = {name: write_jsonl(d / f"{name}.jsonl", make_multilabel(n, seed))
             for name, n, seed in (("train", 80, 1), ("dev", 40, 2), ("test", 40, 3))}
    out = d / "model"
    model = wordconv.train(str(files["train"]), "textcnn", out, task="multilabel", epochs=15,
                           overrides=SETTINGS + [f"data.test_path={files['test']}", f"data.dev_path={files['dev']}"])
    return model, out, files


def test_learns_label_sets_including_none(trained):
    model, out, _ = trained
    assert model.labels == ["food", "sport"]  # the sorted union of the training labels
    assert model.metrics["task"] == "multilabel" and model.metrics["n"] == 40
    assert model.metrics["accuracy"] >= 0.9  # subset accuracy on unseen sentences (chance: 0.25)
    assert model.metrics["f1_micro"] >= 0.95
    preds = model.predict(["the coach liked the pizza", "a quite dull story of this film", "the striker and the team"])
    assert [set(p.labels) for p in preds] == [{"food", "sport"}, set(), {"sport"}]
    both = preds[0]
    assert both.labels == sorted(both.labels, key=lambda lab: -both.probabilities[lab])  # most probable first
    assert all(0.0 <= v <= 1.0 for p in preds for v in p.probabilities.values())
    assert set(preds[0].to_dict()) == {"labels", "probabilities"}


def test_thresholds_are_tuned_saved_and_loaded(trained):
    model, out, _ = trained
    tuned = model.model.thresholds.clone()
    assert tuned.shape == (2,) and not torch.equal(tuned, torch.full((2,), 0.5))  # tuned on dev, not the default
    assert model.meta["training"]["thresholds"] == pytest.approx(dict(zip(model.labels, tuned.tolist())))
    saved = json.loads((out / "metrics.json").read_text())
    assert [saved["per_class"][k]["threshold"] for k in model.labels] == pytest.approx(tuned.tolist())
    loaded = wordconv.load(out)
    assert torch.equal(loaded.model.thresholds, tuned)  # a persistent buffer: in model.safetensors
    texts = ["pizza", "the team ate soup", "nothing here", "goal " * 30]
    assert torch.equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert [p.labels for p in loaded.predict(texts)] == [p.labels for p in model.predict(texts)]
    assert loaded.evaluate(texts, [["food"], "food,sport", [], ["sport"]])["n"] == 4


def test_evaluate_file_and_unknown_label(trained, tmp_path):
    model, out, files = trained
    again = wordconv.evaluate(out, str(files["test"]))
    assert again["accuracy"] == model.metrics["accuracy"] and again["hamming_loss"] == model.metrics["hamming_loss"]
    bad = write_jsonl(tmp_path / "bad.jsonl", [(["food"], "soup"), (["food", "music"], "a song")])
    with pytest.raises(DataError, match=r"bad.jsonl:2: label 'music' was not seen in training"):
        wordconv.evaluate(out, str(bad))


def test_threshold_tuning_on_dev_and_fallbacks():
    cfg = build_config({"task": "multilabel"}, FAST)
    labels = ["a", "b"]
    task = make_task(cfg, labels)
    model = build_model(cfg, 10, labels).eval()
    model.thresholds.fill_(0.9)
    notes = task.after_training(model, None, 8)  # no dev set: every label at 0.5
    assert model.thresholds.tolist() == [0.5, 0.5] and "no dev set" in notes["thresholds_tuned"]
    dev = EncodedTexts([[2], [3], [4], [5]], [[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]], model.encoder.min_length)
    probs, _ = task.predict_proba(model, dev, 8)
    notes = task.after_training(model, dev, 8)
    assert model.thresholds[1] == 0.5 and "0.5 kept for b" in notes["thresholds_tuned"]  # b has no positive
    a = probs[:, 0]  # with the best threshold for a, its two positives are called and F1 is the best possible
    best_f1 = max(2 * int(((a >= t) & (torch.arange(4) < 2)).sum()) / (int((a >= t).sum()) + 2) for t in a.tolist())
    called = a >= model.thresholds[0]
    assert 2 * int(called[:2].sum()) / (int(called.sum()) + 2) == pytest.approx(best_f1)
