"""Resume state of an interrupted training run: one safetensors file, no pickles.

Written atomically (temporary file, fsync, rename) at the end of every epoch and, optionally, within
an epoch, apart from the model directory.  It holds the model, the best weights so far, the
optimizer's tensors, the EMA weights, both random-number generator states and, as JSON metadata,
the epoch, history and early-stopping bookkeeping (and, within an epoch, the steps done), so a
resumed run continues exactly where the checkpoint was taken.

The previous checkpoint is kept beside the latest (``state.prev.safetensors``): when the latest is
damaged (a disk error, a truncated copy), resuming falls back to it with a warning.  Nothing is
unpickled: safetensors holds the tensors, JSON the rest (``torch.load`` is never called).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from rich.markup import escape
from safetensors.torch import load_file, save_file

from wordconv.errors import ModelError
from wordconv.modeldir import fsync_dir

META_KEY = "wordconv_checkpoint"


def _flat(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{k}": v.detach().contiguous().clone() for k, v in state.items()}


def _unflat(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    head = prefix + "/"
    return {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}


def previous(path: Path) -> Path:
    """Where the checkpoint before ``path`` is kept."""
    return path.with_name(path.stem + ".prev" + path.suffix)


def has_checkpoint(path: Path) -> bool:
    return path.is_file() or previous(path).is_file()


def save_checkpoint(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    best_state: dict | None, ema: torch.nn.Module | None, generator: torch.Generator,
                    info: dict, generator_state: torch.Tensor | None = None) -> None:
    """``generator_state``: the batch-order generator's state to store (default: its state now; a
    mid-epoch checkpoint stores the epoch's starting state, from which the epoch's order is redrawn)."""
    tensors = _flat("model", model.state_dict())
    if best_state is not None:
        tensors |= _flat("best", best_state)
    if ema is not None:
        tensors |= _flat("ema", ema.state_dict())
    opt = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for pid, pstate in opt["state"].items():
        for name, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{pid}/{name}"] = value.detach().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    tensors["rng/torch"] = torch.get_rng_state()
    tensors["rng/generator"] = generator.get_state() if generator_state is None else generator_state
    meta = dict(info, param_groups=opt["param_groups"], optim_scalars=scalars, has_best=best_state is not None)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    if path.is_file():  # keep the last good one: a damaged latest falls back to it
        os.replace(path, previous(path))
    os.replace(tmp, path)
    fsync_dir(path.parent)


def load_latest_checkpoint(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                           ema: torch.nn.Module | None, generator: torch.Generator,
                           console=None) -> tuple[dict, dict | None, Path]:
    """:func:`load_checkpoint` of ``path``, or of the previous checkpoint (with a warning on ``console``)
    when ``path`` is missing or damaged; return (info, best_state, the file used)."""
    prev = previous(path)
    if path.is_file():
        try:
            return (*load_checkpoint(path, model=model, optimizer=optimizer, ema=ema, generator=generator), path)
        except ModelError as err:
            if not prev.is_file():
                raise
            if console is not None:
                console.print(f"[yellow]warning:[/] {escape(str(err))}; resuming from the previous checkpoint "
                              f"{escape(str(prev))} instead", soft_wrap=True)  # paths stay whole in logs
    return (*load_checkpoint(prev, model=model, optimizer=optimizer, ema=ema, generator=generator), prev)


def load_checkpoint(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    ema: torch.nn.Module | None, generator: torch.Generator) -> tuple[dict, dict | None]:
    """Restore everything in place; return (info, best_state)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {})[META_KEY])
        tensors = load_file(str(path))
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError, ValueError) as err:
        raise ModelError(f"checkpoint {path} is damaged ({err}); delete it and train from the start") from None
    model.load_state_dict(_unflat("model", tensors))
    if ema is not None:
        ema.load_state_dict(_unflat("ema", tensors))
    state: dict[int, dict] = {}
    for key, value in _unflat("optim", tensors).items():
        pid, name = key.split("/", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in meta.pop("optim_scalars").items():
        state.setdefault(int(pid), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    torch.set_rng_state(tensors["rng/torch"])
    generator.set_state(tensors["rng/generator"])
    best = _unflat("best", tensors) if meta.pop("has_best") else None
    return meta, best
