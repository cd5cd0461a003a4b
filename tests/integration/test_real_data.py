"""Small real-data checks on ../shared/data (skipped when the mirror is absent).

Full-size accuracy runs live in bench/ (BENCHMARKS.md); these only prove the real path works.
"""

import json

import pytest

import wordconv
from tiny import shared_data_dir

DATA = shared_data_dir()
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(DATA is None, reason="datasets mirror (../shared/data) not present")]


def test_trec_small_cnn_learns(tmp_path):
    out = tmp_path / "trec"
    model = wordconv.train("trec", "textcnn", out, epochs=4, data_dir=str(DATA),
                           overrides=["embeddings.dim=64", "model.num_filters=50", "training.progress=false"])
    assert model.labels == ["DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"]
    assert model.metrics["n"] == 500
    assert model.metrics["accuracy"] > 0.80  # 6 classes; a majority guess gets 0.276
    meta = json.loads((out / "meta.json").read_text())
    assert any(path.endswith("TREC.test.all") for path in meta["data"]["files"])
    again = wordconv.evaluate(out, "trec", data_dir=str(DATA))
    assert again["accuracy"] == model.metrics["accuracy"]


def test_mr_fold_split_is_reproduced_at_evaluation(tmp_path):
    out = tmp_path / "mr"
    model = wordconv.train("mr", "textcnn", out, fold=3, epochs=1, data_dir=str(DATA),
                           overrides=["embeddings.dim=32", "model.num_filters=20", "training.progress=false"])
    assert model.metrics["n"] in (1066, 1067)
    # evaluate picks the same fold, seeds and dev carve-out from the saved config
    assert wordconv.evaluate(out, data_dir=str(DATA))["accuracy"] == model.metrics["accuracy"]
    assert model.predict("a charming , funny and moving film")[0].label in ("positive", "negative")


def test_sst1_regression_learns_in_one_epoch(tmp_path):
    out = tmp_path / "sst1-reg"
    model = wordconv.train("sst1", "textcnn", out, epochs=1, data_dir=str(DATA), task="regression",
                           overrides=["embeddings.dim=32", "model.num_filters=20", "training.lr=0.004",
                                      "training.batch_size=100", "training.progress=false"])
    assert model.labels == ["score"] and model.metrics["n"] == 2210
    assert model.metrics["pearson"] > 0.2  # 1 small epoch; a constant guess gets no correlation
    assert 0.0 <= model.metrics["accuracy"] <= 1.0  # rounded levels 0..4 vs the gold levels, as SST-1 classes
    assert (out / "predicted_vs_gold.png").is_file()
