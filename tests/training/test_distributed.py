"""Data-parallel training: batch sharding, and `wordconv train` under torchrun (2 CPU processes, gloo,
127.0.0.1) against the single-process run with the same global batch and seed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tiny import make_sentences, write_labelfirst
from wordconv.errors import ConfigError
from wordconv.training import distributed
from wordconv.training.distributed import World, shard_batch


def _batch(n: int) -> dict[str, torch.Tensor]:
    return {"ids": torch.arange(n * 3).view(n, 3), "lengths": torch.full((n,), 3), "labels": torch.arange(n) % 2,
            "index": torch.arange(10, 10 + n)}


def test_shard_batch_splits_rows_contiguously_and_weights_them():
    batch = _batch(5)
    parts = [shard_batch(batch, World(rank=r, size=2)) for r in range(2)]
    assert parts[0][0]["index"].tolist() == [10, 11]
    assert parts[1][0]["index"].tolist() == [12, 13, 14]
    assert parts[1][0]["ids"].tolist() == batch["ids"][2:].tolist()
    # the shares make the averaged gradient that of the whole batch: (1/2) * sum(share_r * mean_r) = mean
    assert [p[1] for p in parts] == [pytest.approx(2 * 2 / 5), pytest.approx(3 * 2 / 5)]
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    averaged = sum(f * losses[p["index"] - 10].mean() for p, f in parts) / 2
    assert float(averaged) == pytest.approx(float(losses.mean()))


def test_shard_batch_keeps_a_zero_weight_row_for_a_rank_without_rows():
    part, share = shard_batch(_batch(1), World(rank=0, size=2))
    assert share == 0.0 and part["index"].tolist() == [10]  # takes part in the all-reduce, changes nothing
    part, share = shard_batch(_batch(1), World(rank=1, size=2))
    assert share == 2.0 and part["index"].tolist() == [10]


def test_setup_without_master_address_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ConfigError, match="torchrun"):
        distributed.setup(torch.device("cpu"))


def test_single_process_is_not_distributed(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    w = distributed.setup(torch.device("cpu"))
    assert w == World() and w.main and not w.distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(cmd_prefix: list[str], tmp: Path, out: Path) -> subprocess.CompletedProcess:
    args = ["-m", "wordconv.cli", "train", "--data", str(tmp / "train.txt"), "--dev", str(tmp / "dev.txt"),
            "--test", str(tmp / "test.txt"), "--model", "textcnn", "--epochs", "3", "--seed", "5", "-o", str(out),
            "--quiet", "--set", "embeddings.dim=16", "--set", "model.num_filters=8", "--set", "model.dropout=0.0",
            "--set", "training.batch_size=10", "--set", "training.threads=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    proc = subprocess.run(cmd_prefix + args, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_torchrun_two_processes_match_one_process(tmp_path):
    write_labelfirst(tmp_path / "train.txt", make_sentences(57, seed=1))  # 57: the last batch is uneven
    write_labelfirst(tmp_path / "dev.txt", make_sentences(20, seed=2))
    write_labelfirst(tmp_path / "test.txt", make_sentences(20, seed=3))
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _train([sys.executable], tmp_path, single)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    proc = _train(torchrun, tmp_path, ddp)
    assert proc.stdout.count("model saved to") == 1  # rank 0 reports, the other rank stays quiet
    a, b = load_file(str(single / "model.safetensors")), load_file(str(ddp / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-4, rtol=1e-4, msg=key)
    hist = [[json.loads(line) for line in (d / "history.jsonl").read_text().splitlines()] for d in (single, ddp)]
    assert len(hist[0]) == len(hist[1]) == 3
    for h1, h2 in zip(*hist):  # the loss summed over both ranks' rows equals the single run's
        assert h2["train_loss"] == pytest.approx(h1["train_loss"], rel=1e-4)
        assert h2["dev_accuracy"] == pytest.approx(h1["dev_accuracy"])
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (single, ddp))
    assert m2["accuracy"] == pytest.approx(m1["accuracy"])
    assert not (tmp_path / "ddp.checkpoint").exists()  # rank 0 removed the resume state after saving
