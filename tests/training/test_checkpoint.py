"""An interrupted run resumes from its last finished epoch and ends with the same weights."""

import pytest
import torch
from safetensors.torch import load_file

import wordconv
import wordconv.training.trainer as trainer_module
from wordconv.pipeline import checkpoint_dir

from tiny import FAST


def run(tiny_data, out, extra=(), resume=False):
    return wordconv.train(str(tiny_data["train"]), "textcnn", out, epochs=4, resume=resume,
                          overrides=FAST + [f"data.test_path={tiny_data['test']}", f"data.dev_path={tiny_data['dev']}",
                                            "training.patience=null", *extra])


def interrupt_after(epoch, monkeypatch):
    real = trainer_module.save_checkpoint

    def save_then_die(path, **kwargs):
        real(path, **kwargs)
        if kwargs["info"]["epoch"] == epoch:
            raise KeyboardInterrupt  # as if the job were killed right after this checkpoint

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_die)


@pytest.mark.parametrize("extra", [[], ["training.ema_decay=0.9"], ["training.sparse_embeddings=true"]],
                         ids=["plain", "ema", "sparse"])
def test_resume_gives_identical_weights(tiny_data, tmp_path, monkeypatch, extra):
    full = run(tiny_data, tmp_path / "full", extra)
    assert not checkpoint_dir(tmp_path / "full").exists()  # removed once the model is saved

    with monkeypatch.context() as m:
        interrupt_after(2, m)
        with pytest.raises(KeyboardInterrupt):
            run(tiny_data, tmp_path / "cut", extra)
    assert not (tmp_path / "cut").exists()  # no half-written model directory
    assert (checkpoint_dir(tmp_path / "cut") / "state.safetensors").is_file()

    resumed = run(tiny_data, tmp_path / "cut", extra, resume=True)
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    timing = {"epoch_seconds", "eval_seconds"}
    strip = [{k: v for k, v in h.items() if k not in timing} for h in resumed.artifact.history]
    assert strip == [{k: v for k, v in h.items() if k not in timing} for h in full.artifact.history]
    assert resumed.metrics["accuracy"] == full.metrics["accuracy"]


def test_resume_refuses_another_config(tiny_data, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        interrupt_after(1, m)
        with pytest.raises(KeyboardInterrupt):
            run(tiny_data, tmp_path / "m")
    with pytest.raises(wordconv.ConfigError, match="another configuration"):
        run(tiny_data, tmp_path / "m", ["training.lr=0.01"], resume=True)


def test_damaged_checkpoint_is_reported(tiny_data, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        interrupt_after(1, m)
        with pytest.raises(KeyboardInterrupt):
            run(tiny_data, tmp_path / "m")
    (checkpoint_dir(tmp_path / "m") / "state.safetensors").write_bytes(b"garbage")
    with pytest.raises(wordconv.ModelError, match="damaged.*delete it"):
        run(tiny_data, tmp_path / "m", resume=True)
