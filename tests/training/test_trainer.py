import pytest
import torch

import wordconv
from wordconv.config import build_config
from wordconv.tasks.textcat import TextClassification
from wordconv.training.trainer import _better, build_optimizer

from tiny import FAST


def test_balanced_class_weights_hand_computed():
    # 6 examples: 4 of class 0, 2 of class 1, none of class 2 -> n / (k * count)
    w = TextClassification.balanced_weights([0, 0, 0, 0, 1, 1], 3)
    assert w == pytest.approx([6 / (3 * 4), 6 / (3 * 2), 0.0])


def test_optimizer_choice():
    cfg = build_config(overrides=["training.optimizer=adadelta", "training.lr=1.0"])
    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(model, cfg.training)
    assert isinstance(opt, torch.optim.Adadelta) and opt.defaults["rho"] == 0.95
    assert isinstance(build_optimizer(model, build_config().training), torch.optim.Adam)


def test_better_direction():
    assert _better("accuracy", 0.8, 0.7) and not _better("accuracy", 0.7, 0.8)
    assert _better("loss", 0.3, 0.5) and not _better("loss", 0.5, 0.3)
    assert _better("accuracy", 0.1, None)
    assert _better("mse", 0.3, 0.5) and _better("hamming_loss", 0.1, 0.2) and _better("pearson", 0.9, 0.8)


def test_early_stopping_and_best_epoch_kept(tiny_data):
    model = wordconv.train(str(tiny_data["train"]), epochs=40,
                           overrides=FAST + [f"data.test_path={tiny_data['test']}", f"data.dev_path={tiny_data['dev']}",
                                             "training.patience=2", "training.metric=accuracy"])
    history = model.meta["training"]
    assert history["stopped_early"] and history["epochs_run"] < 40
    assert history["epochs_run"] == history["best_epoch"] + 2  # stopped after 2 epochs without improvement


def test_adadelta_and_balanced_weights_train(tiny_data):
    model = wordconv.train(str(tiny_data["train"]), epochs=4,
                           overrides=FAST + [f"data.test_path={tiny_data['test']}", "training.optimizer=adadelta",
                                             "training.lr=1.0", "training.class_weights=balanced",
                                             "training.grad_clip=1.0"])
    assert model.model.class_weights is not None
    history = model.artifact.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_class_weights_length_checked(tiny_data):
    with pytest.raises(wordconv.ConfigError, match="class_weights has 3 values for 2 labels"):
        wordconv.train(str(tiny_data["train"]), epochs=1,
                       overrides=FAST + ["training.class_weights=[1, 2, 3]"])


def test_time_budget_stops_before_an_epoch_that_would_overrun(tiny_data, monkeypatch):
    # a fake clock: every reading advances 1 s, so each epoch "takes" a few seconds
    clock = iter(range(0, 10**6))
    monkeypatch.setattr("wordconv.training.trainer.time.perf_counter", lambda: float(next(clock)))
    model = wordconv.train(str(tiny_data["train"]), epochs=50,
                           overrides=FAST + [f"data.test_path={tiny_data['test']}", f"data.dev_path={tiny_data['dev']}",
                                             "training.patience=null", "training.max_seconds=10"])
    history = model.artifact.history
    spent = sum(h["epoch_seconds"] + h["eval_seconds"] for h in history)
    last = history[-1]["epoch_seconds"] + history[-1]["eval_seconds"]
    assert 1 < len(history) < 50
    assert spent <= 10 < spent + last  # every epoch that fit ran, and the next one would not have fit
    assert model.meta["training"]["stopped_early"]
