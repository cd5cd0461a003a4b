"""Shared fixtures: tiny, generated labelled data (unit tests never need the real datasets)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tiny import make_sentences, write_labelfirst

# two threads at most: CI has 2 cores, and small models are faster without oversubscription
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny_data(tmp_path) -> dict[str, Path]:
    """train/dev/test files in label-first format: 80 / 20 / 20 sentences."""
    d = tmp_path / "tiny"
    d.mkdir()
    return {
        "train": write_labelfirst(d / "train.txt", make_sentences(80, 1)),
        "dev": write_labelfirst(d / "dev.txt", make_sentences(20, 2)),
        "test": write_labelfirst(d / "test.txt", make_sentences(20, 3)),
    }


