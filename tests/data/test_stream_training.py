"""`data.stream`: `wordconv train` on a training file tokenised into memory-mapped shards (cached) instead of
being held in memory."""

import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from tiny import FAST, make_sentences, write_labelfirst
from wordconv.cli import app

runner = CliRunner()


def train(tmp_path, out, *sets):
    args = ["train", "--data", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "dev.txt"), "--test",
            str(tmp_path / "test.txt"), "--output", str(out), "--epochs", "6"]
    for s in FAST + ["model.dropout=0.0", f"data.cache_dir={tmp_path / 'cache'}", *sets]:
        args += ["--set", s]
    result = runner.invoke(app, args)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def files(tmp_path):
    write_labelfirst(tmp_path / "train.txt", make_sentences(200, seed=1))
    write_labelfirst(tmp_path / "dev.txt", make_sentences(40, seed=2))
    write_labelfirst(tmp_path / "test.txt", make_sentences(40, seed=3))
    return tmp_path


def test_streamed_training_learns_and_reuses_its_cache(files):
    r = train(files, files / "streamed", "data.stream=true", "data.shard_tokens=300")
    assert r.exit_code == 0, r.output
    metrics = json.loads((files / "streamed" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.9  # the sentiment word decides the label: learnable from the shards
    meta = json.loads((files / "streamed" / "meta.json").read_text())
    assert meta["data"]["sizes"]["train"] == 200 and "shards" in meta["data"]["split"]
    (shard_dir,) = [p for p in (files / "cache").iterdir() if not p.name.startswith(".")]
    manifest = json.loads((shard_dir / "manifest.json").read_text())
    assert len(manifest["shards"]) > 1  # 300 tokens per shard: several shards streamed in turn
    stamp = (shard_dir / "manifest.json").stat().st_mtime_ns
    r = train(files, files / "again", "data.stream=true", "data.shard_tokens=300")
    assert r.exit_code == 0, r.output
    assert (shard_dir / "manifest.json").stat().st_mtime_ns == stamp  # tokenised once, reused
    # the same weights from the same shards and seed (tensors compared: the file header's key order may vary)
    a, b = (load_file(str(files / d / "model.safetensors")) for d in ("streamed", "again"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stream_refuses_what_it_cannot_stream(files):
    r = train(files, files / "x", "data.stream=true", "task=ner", "model.type=tagger")
    assert r.exit_code != 0 and "data.stream" in r.output
    r = runner.invoke(app, ["train", "--data", "mr", "--output", str(files / "y"), "--set", "data.stream=true"])
    assert r.exit_code != 0 and "data.stream" in r.output and "file" in r.output
