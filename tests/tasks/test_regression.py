"""Regression: a score per text through the one Trainer, standardised targets saved with the weights."""

import json

import pytest
import torch

import wordconv
from wordconv.errors import ConfigError, DataError, ModelError

from tiny import FAST, make_scored, write_labelfirst

SETTINGS = FAST + ["training.patience=3", "model.dropout=0.0", "training.lr=0.02"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("regression")
    rows = {name: make_scored(n, seed) for name, n, seed in (("train", 80, 1), ("dev", 40, 2), ("test", 40, 3))}
    files = {name: write_labelfirst(d / f"{name}.txt", r) for name, r in rows.items()}
    out = d / "model"
    model = wordconv.train(str(files["train"]), "textcnn", out, task="regression", epochs=15,
                           overrides=SETTINGS + [f"data.test_path={files['test']}", f"data.dev_path={files['dev']}"])
    return model, out, rows


def test_learns_scores_given_by_words(trained):
    model, out, rows = trained
    train = rows["train"]
    metrics = model.evaluate([t for _, t in train], [level for level, _ in train])
    assert metrics["pearson"] > 0.9 and metrics["task"] == "regression"
    assert model.metrics["pearson"] > 0.8  # unseen sentences
    assert {"mse", "mae", "rmse", "spearman", "accuracy", "f1_macro"} <= set(model.metrics)
    values = model.predict_values(["a superb film", "the plot was awful"])
    assert values[0] > 3 and values[1] < 1  # on the user's scale, not the standardised one
    (p,) = model.predict("an okay story")
    assert p.to_dict() == {"value": pytest.approx(float(model.predict_values("an okay story")[0]))}
    with pytest.raises(ModelError, match="predicts values, not probabilities"):
        model.predict_proba(["x"])


def test_standardisation_saved_and_loaded(trained):
    model, out, _ = trained
    m = model.model
    levels = torch.tensor([i % 5 for i in range(80)], dtype=torch.float64)
    assert float(m.target_mean) == pytest.approx(2.0) and float(m.target_std) == pytest.approx(float(levels.std(correction=0)))
    assert (float(m.target_min), float(m.target_max)) == (0.0, 4.0)
    assert json.loads((out / "labels.json").read_text()) == ["score"]
    assert (out / "predicted_vs_gold.png").is_file() and not (out / "confusion_matrix.png").exists()
    loaded = wordconv.load(out)
    for name in ("target_mean", "target_std", "target_min", "target_max"):
        assert torch.equal(getattr(loaded.model, name), getattr(m, name)), name
    texts = ["brilliant", "a weak and tedious plot", "x", "nice " * 40]
    assert torch.equal(loaded.predict_values(texts), model.predict_values(texts))
    saved = json.loads((out / "metrics.json").read_text())
    assert wordconv.evaluate(out, str(out.parent / "test.txt"))["mse"] == pytest.approx(saved["mse"])


def test_non_numeric_label_names_the_line(tmp_path):
    train = write_labelfirst(tmp_path / "train.txt", [(3, "good film"), (1, "bad film"), ("high", "great film")])
    with pytest.raises(DataError, match=r"train.txt:3: label 'high' is not a number.*--task textcat"):
        wordconv.train(str(train), task="regression", epochs=1, overrides=FAST + [f"data.test_path={train}"])


def test_level_accuracy_as_metric_needs_integer_levels(tmp_path):
    train = write_labelfirst(tmp_path / "train.txt", [(0.5, "good film"), (1, "bad film")] * 5)
    with pytest.raises(DataError, match=r"train.txt:1: score '0.5' is not an integer level.*training.metric=accuracy"):
        wordconv.train(str(train), task="regression", epochs=1,
                       overrides=FAST + [f"data.test_path={train}", f"data.dev_path={train}", "training.metric=accuracy"])
    with pytest.raises(ConfigError, match="training.class_weights applies to task textcat only"):
        wordconv.train(str(train), task="regression", overrides=["training.class_weights=balanced"])
