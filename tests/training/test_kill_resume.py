"""Crash safety: `wordconv train` killed with SIGKILL at seeded random steps (mid-epoch, and in the middle of
writing a checkpoint) resumes with --resume to bit-identical final weights; a damaged latest checkpoint
falls back to the previous one with a warning."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tiny import make_sentences, write_labelfirst

# the child: wordconv's CLI, with a SIGKILL wired to the N-th training forward pass or the N-th
# checkpoint write (after the temporary file is written, before the rename)
CHILD = '''
import os, signal, sys
from wordconv.tasks import textcat
import wordconv.training.checkpoint as ckpt
mode, at = sys.argv[1], int(sys.argv[2])
calls = 0
forward, save_file = textcat.TextClassifier.forward, ckpt.save_file
def killing_forward(self, *args, **kwargs):
    global calls
    if self.training and mode == "step":
        calls += 1
        if calls == at:
            os.kill(os.getpid(), signal.SIGKILL)
    return forward(self, *args, **kwargs)
def killing_save(tensors, filename, metadata=None):
    global calls
    save_file(tensors, filename, metadata=metadata)
    if mode == "save":
        calls += 1
        if calls == at:
            os.kill(os.getpid(), signal.SIGKILL)
textcat.TextClassifier.forward = killing_forward
ckpt.save_file = killing_save
from wordconv.cli import main
sys.argv = ["wordconv"] + sys.argv[3:]
main()
'''

EPOCHS, STEPS_PER_EPOCH = 3, 15  # 120 texts, batch 8


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("killdata")
    write_labelfirst(d / "train.txt", make_sentences(120, seed=1))
    write_labelfirst(d / "dev.txt", make_sentences(30, seed=2))
    write_labelfirst(d / "test.txt", make_sentences(30, seed=3))
    (d / "child.py").write_text(CHILD, encoding="utf-8")
    return d


def _train(data: Path, out: Path, mode: str = "none", at: int = 0, resume: bool = False) -> subprocess.CompletedProcess:
    args = [sys.executable, str(data / "child.py"), mode, str(at), "train", "--data", str(data / "train.txt"),
            "--dev", str(data / "dev.txt"), "--test", str(data / "test.txt"), "--model", "textcnn",
            "--epochs", str(EPOCHS), "--seed", "3", "-o", str(out), "--set", "embeddings.dim=16",
            "--set", "model.num_filters=8", "--set", "training.batch_size=8", "--set", "training.patience=null",
            "--set", "training.checkpoint_every=4", "--set", "training.threads=1"]
    if resume:
        args.append("--resume")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model.safetensors"))


def _history(out: Path) -> list[dict]:
    timing = {"epoch_seconds", "eval_seconds"}
    return [{k: v for k, v in json.loads(line).items() if k not in timing}
            for line in (out / "history.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "model"
    proc = _train(data, out)
    assert proc.returncode == 0, proc.stderr
    return out


def _assert_same(out: Path, reference: Path) -> None:
    a, b = _weights(reference), _weights(out)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resuming"
    assert _history(out) == _history(reference)


def test_sigkill_at_random_steps_then_resume_is_bit_identical(data, reference, tmp_path):
    out = tmp_path / "model"
    rng = random.Random(2026)
    total = EPOCHS * STEPS_PER_EPOCH
    # three kills in a row: at a random training step, again at a random step of the resumed run,
    # and in the middle of writing a checkpoint; then the run finishes
    # (the first after the first checkpoint, at step 4, so that every resume has one to start from)
    kills = [("step", rng.randint(5, total // 3)), ("step", rng.randint(2, total // 3)), ("save", rng.randint(1, 3))]
    for i, (mode, at) in enumerate(kills):
        proc = _train(data, out, mode, at, resume=i > 0)
        assert proc.returncode == -signal.SIGKILL, (mode, at, proc.stderr)
        assert not out.exists()  # no half-written model directory
        if i > 0:
            assert "resuming from" in proc.stderr
    proc = _train(data, out, resume=True)
    assert proc.returncode == 0, proc.stderr
    _assert_same(out, reference)
    assert not (out.parent / "model.checkpoint").exists()


def test_damaged_latest_checkpoint_falls_back_to_the_previous(data, reference, tmp_path):
    out = tmp_path / "model"
    proc = _train(data, out, "step", 2 * STEPS_PER_EPOCH - 3)  # well after several checkpoints
    assert proc.returncode == -signal.SIGKILL
    state = out.parent / "model.checkpoint" / "state.safetensors"
    assert state.is_file() and (state.parent / "state.prev.safetensors").is_file()
    state.write_bytes(b"\x00garbage" * 100)
    proc = _train(data, out, resume=True)
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "state.prev.safetensors" in proc.stderr  # the path is not wrapped
    _assert_same(out, reference)
