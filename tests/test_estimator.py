import numpy as np
import pytest

import wordconv
from wordconv import TextClassifier

from tiny import make_sentences

FAST = {"embeddings.dim": 16, "model.num_filters": 8, "training.batch_size": 8}


def test_fit_predict_score_save(tmp_path):
    rows = make_sentences(80, 1)
    texts, labels = [t for _, t in rows], [lab for lab, _ in rows]
    clf = TextClassifier(epochs=20, overrides=FAST | {"model.dropout": 0.0, "training.patience": None, "training.lr": 0.01})
    assert clf.fit(texts, labels) is clf
    assert clf.classes_ == ["neg", "pos"]
    test = make_sentences(20, 3)
    assert clf.score([t for _, t in test], [lab for lab, _ in test]) >= 0.8
    proba = clf.predict_proba(["great fun", "dull"])
    assert proba.shape == (2, 2) and np.allclose(proba.sum(1), 1.0)
    clf.save(tmp_path / "m")
    loaded = wordconv.load(tmp_path / "m")
    assert loaded.predict_proba(["great fun", "dull"]).numpy().tolist() == proba.tolist()


def test_unfitted_and_bad_input():
    clf = TextClassifier()
    with pytest.raises(wordconv.ModelError, match="not fitted yet"):
        clf.predict(["x"])
    with pytest.raises(wordconv.DataError, match="3 texts but 2 labels"):
        clf.fit(["a", "b", "c"], ["x", "y"])
    with pytest.raises(wordconv.DataError, match="train item 1: text is empty"):
        clf.fit(["a", " "], ["x", "y"])
    with pytest.raises(wordconv.ConfigError, match="training.lrr"):
        TextClassifier(overrides={"training.lrr": 1}).fit(["a b", "c d"], ["x", "y"])
