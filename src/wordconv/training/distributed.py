"""Data-parallel training across processes and machines, on ``torch.distributed``.

Launch the ordinary command under ``torchrun``; nothing else changes::

    torchrun --nproc_per_node 2 -m wordconv.cli train --data mr --model textcnn --output runs/mr-ddp

    # two machines, 4 processes each (run on both; --node_rank 0 on the first, 1 on the second)
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 4 --master_addr 10.0.0.1 --master_port 29500 \\
        -m wordconv.cli train --data imdb --model textcnn --output runs/imdb

How it works:

- ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
  :func:`setup` joins the process group (``gloo`` on CPU, ``nccl`` on GPUs, one GPU per process).
- ``training.batch_size`` stays the **global** batch: every process builds the same batch order
  from the same seed and takes its own contiguous slice of each batch (the role of PyTorch's
  ``DistributedSampler``, over wordconv's length-bucketed batches).  Each slice's loss is scaled by
  its share of the batch, so the all-reduced gradient is exactly the gradient of the whole batch:
  N processes follow the single-process run with the same config (up to float summation order).
  Dropout masks are drawn per process, so runs with dropout agree in distribution, not bit for bit.
- Only rank 0 writes (checkpoints, the model directory, logs, progress bars); the others wait at
  a barrier.  The training loss is summed across ranks; dev metrics are computed on every rank
  from the same weights, so every rank takes the same keep / stop decisions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from wordconv.errors import ConfigError

__all__ = ["World", "setup", "world", "is_main", "barrier", "cleanup", "shard_batch"]


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


_OWNED = False  # whether setup() created the process group (and cleanup() should destroy it)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer (it is set by torchrun)") from None


def world() -> World:
    """This process's place: from the process group when one exists, else from torchrun's variables."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
    return World(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))


def is_main() -> bool:
    return world().main


def setup(device: torch.device) -> World:
    """Join the process group when launched by torchrun with ``WORLD_SIZE > 1``; a no-op otherwise.

    ``device``: the training device (``cuda`` gives NCCL and this process's GPU ``LOCAL_RANK``)."""
    global _OWNED
    w = world()
    if not w.distributed or (dist.is_available() and dist.is_initialized()):
        return w
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise ConfigError(f"WORLD_SIZE={w.size} but {name} is not set: launch with `torchrun --nproc_per_node N "
                              "-m wordconv.cli train ...` (it sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(w.local_rank)
    dist.init_process_group(backend=backend, rank=w.rank, world_size=w.size)
    _OWNED = True
    return world()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group if :func:`setup` made it (after a last barrier)."""
    global _OWNED
    if _OWNED and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _OWNED = False


def shard_batch(batch: dict[str, torch.Tensor], w: World) -> tuple[dict[str, torch.Tensor], float]:
    """This rank's contiguous slice of a global batch, and the factor to scale its mean loss by.

    Every tensor whose first dimension is the batch size is sliced; the factor ``n_rank * size / n``
    makes the all-reduced (averaged) gradient equal to that of the whole batch's mean loss.  A rank
    whose slice would be empty (a last batch smaller than the world) keeps one row at factor 0, so it
    still takes part in the gradient all-reduce without changing it.
    """
    n = len(batch["index"])
    bounds = [n * r // w.size for r in range(w.size + 1)]
    lo, hi = bounds[w.rank], bounds[w.rank + 1]
    factor = (hi - lo) * w.size / n if n else 0.0
    if hi == lo:
        lo, hi = 0, min(1, n)
    out = {k: (v[lo:hi] if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == n else v)
           for k, v in batch.items()}
    return out, factor
