"""Model tests run tiny models whose time is all per-op overhead."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: faster for tiny tensors, and no OpenMP spin-waiting when other
    processes share the cores (two threads made a 30-step DPCNN loop 30x slower on a busy box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
