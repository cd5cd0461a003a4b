"""THE training loop: every task and every model trains here.

The loop reads only ``loss`` from the model output.  Evaluation goes through the task; keeping
the best epoch, early stopping and progress display are done here once for everyone.  The dev
metric is ``training.metric`` or the task's default; whether lower is better comes from
:func:`wordconv.evaluation.metrics.lower_is_better`.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from wordconv.config import TrainingConfig
from wordconv.errors import ConfigError
from wordconv.evaluation.metrics import headline, lower_is_better
from wordconv.tasks.base import Task, TaskData
from wordconv.training import distributed
from wordconv.training.checkpoint import has_checkpoint, load_latest_checkpoint, save_checkpoint
from wordconv.training.lazy_adam import LazyAdam, sparse_tables


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a generator for batch order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def build_optimizer(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    """The optimizer over :func:`wordconv.finetune.optimizer_groups` (one group for a word CNN;
    head and layer groups, each at its own rate, for a fine-tuned encoder)."""
    from wordconv.finetune import optimizer_groups

    groups = optimizer_groups(model, config.lr)
    if config.sparse_embeddings:
        if config.optimizer == "adadelta":
            raise ConfigError("training.sparse_embeddings needs training.optimizer adam or adamw (a lazy Adam "
                              "step), not adadelta: set one of them, or sparse_embeddings=false")
        if config.grad_clip:
            raise ConfigError("training.grad_clip measures a dense gradient norm; it cannot be combined with "
                              "training.sparse_embeddings: unset one of them")
        return LazyAdam(groups, lr=config.lr, weight_decay=config.weight_decay,
                        decoupled=config.optimizer == "adamw")
    if config.optimizer == "adadelta":
        # Kim's code: Adadelta with rho 0.95, eps 1e-6
        return torch.optim.Adadelta(groups, lr=config.lr, rho=config.adadelta_rho, eps=1e-6,
                                    weight_decay=config.weight_decay)
    # fused Adam does the whole update in one kernel: ~30% faster steps on CPU (DESIGN.md)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay, fused=True)


def lr_factor(schedule: str, step: int, total: int, warmup: float, ratio: float) -> float:
    """The multiplier of every group's ``base_lr`` at ``step`` (0-based) of ``total``.

    linear: rise over the first ``warmup`` fraction, then fall linearly to 0 at ``total``.
    slanted (Howard & Ruder 2018, eq. 3): cut = floor(total * cut_frac); p = t / cut before the
    cut, 1 - (t - cut) / (cut * (1 / cut_frac - 1)) after; factor = (1 + p (ratio - 1)) / ratio.
    """
    if schedule == "constant" or total <= 0:
        return 1.0
    if schedule == "linear":
        rise = int(total * warmup)
        if step < rise:
            return (step + 1) / rise
        return max(0.0, (total - step) / max(1, total - rise))
    cut = max(1, math.floor(total * warmup))
    if step < cut:
        p = step / cut
    else:
        p = 1 - (step - cut) / (cut * (1 / warmup - 1)) if warmup > 0 else 1.0
    return (1 + max(p, 0.0) * (ratio - 1)) / ratio


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"training.device: {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"training.device={name!r} but no CUDA GPU is available; use auto or cpu")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (else autocast would emulate it, slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def use_bf16(config: TrainingConfig, model: torch.nn.Module, device: torch.device) -> bool:
    """``training.bf16``, or when unset: on for a pretrained encoder on hardware with native bf16."""
    if config.bf16 is not None:
        return config.bf16
    return hasattr(getattr(model, "encoder", None), "layer_groups") and native_bf16(device)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on ``device`` when ``enabled`` (a no-op context otherwise)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


@dataclass
class TrainResult:
    history: list[dict]
    best_epoch: int
    best_dev: dict
    train_seconds: float
    train_tokens: int  # real tokens processed in training (all epochs)
    stopped_early: bool = False


def _better(metric: str, new: float, old: float | None) -> bool:
    if old is None or math.isnan(old):
        return not math.isnan(new)
    return new < old if lower_is_better(metric) else new > old


def _ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` under DistributedDataParallel (gradients all-reduced in the backward pass)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


class Trainer:
    def __init__(self, model: torch.nn.Module, task: Task, config: TrainingConfig, console: Console | None = None,
                 callbacks: list | None = None):
        """``callbacks``: objects with ``on_epoch_start(epoch)`` (e.g. :class:`wordconv.finetune.FreezeSchedule`)
        and/or ``on_epoch_end(epoch, record)`` (``record``: the epoch's history line with its dev
        metrics, e.g. a hyperparameter search's pruner; an exception raised there ends training)."""
        self.model, self.task, self.config = model, task, config
        self.metric = config.metric or task.default_metric  # the dev metric that picks the best epoch
        self.console = console or Console(stderr=True)
        self.callbacks = list(callbacks or [])
        self.device = resolve_device(config.device)
        # under torchrun (WORLD_SIZE > 1): join the process group; one GPU per process
        self.world = distributed.setup(self.device)
        if self.world.distributed and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", self.world.local_rank)
        self.bf16 = use_bf16(config, model, self.device)
        self.main = self.world.main  # only rank 0 writes, logs and shows progress

    def fit(self, train: TaskData, dev: TaskData | None, checkpoint: Path | None = None,
            resume: bool = False) -> TrainResult:
        """Train; with ``checkpoint``, save resume state there after every epoch (and within an epoch
        every ``training.checkpoint_every`` steps or ``training.checkpoint_seconds``), and with ``resume``
        continue from the latest one (same config, same data: bit-identical final weights on CPU)."""
        cfg = self.config
        generator = seed_everything(cfg.seed)  # the same batch order on every rank
        world = self.world
        if world.distributed:  # rank 0 keeps the single-process dropout stream; the others draw their own
            torch.manual_seed(cfg.seed + 1_000_003 * world.rank)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        model = self.model.to(self.device)
        train.device = self.device
        if dev is not None:
            dev.device = self.device
        for cb in self.callbacks:  # the state of epoch 1, so that the optimizer sees it
            if hasattr(cb, "on_epoch_start"):
                cb.on_epoch_start(1)
        tables = sparse_tables(model) if cfg.sparse_embeddings else []
        if tables and world.distributed:
            raise ConfigError("training.sparse_embeddings is single-process: DistributedDataParallel all-reduces "
                              "dense gradients; set sparse_embeddings=false under torchrun")
        for table in tables:  # sparse gradients from the lookups (restored when training ends)
            table.sparse = True
        optimizer = build_optimizer(model, cfg)
        constrain = getattr(model, "apply_constraints", None)
        ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
               if cfg.ema_decay else None)
        scored = ema.module if ema is not None else model  # the weights that are evaluated and kept
        history: list[dict] = []
        best_value: float | None = None
        best_state, best_epoch, best_dev = None, 0, {}
        bad_epochs, stopped_early, start = 0, False, 1
        net, trainable = model, None  # net: what the forward pass runs through (DDP under torchrun)
        partial = None  # a mid-epoch checkpoint's place: {"epoch", "done" (steps), "total", "count", "seconds"}
        if resume and checkpoint is not None and has_checkpoint(checkpoint):
            info, best_state, used = load_latest_checkpoint(checkpoint, model=model, optimizer=optimizer, ema=ema,
                                                            generator=generator, console=self.console)
            history, best_value, best_epoch = info["history"], info["best_value"], info["best_epoch"]
            best_dev, bad_epochs, stopped_early = info["best_dev"], info["bad_epochs"], info["stopped_early"]
            start, partial = info["epoch"] + 1, info.get("partial")
            if cfg.progress and self.main:
                where = (f"at step {partial['done']} of epoch {partial['epoch']}" if partial
                         else f"after epoch {info['epoch']}")
                self.console.print(f"resuming from {escape(str(used))} {where}", soft_wrap=True)
        tokens_per_epoch = train.num_tokens()
        steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
        total_steps = steps_per_epoch * cfg.epochs
        sync_every = 1 if self.device.type == "cpu" else 25  # a GPU runs ahead between loss read-outs
        t_start = time.perf_counter()
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), TimeRemainingColumn(),
                      console=self.console, disable=not (cfg.progress and self.main), transient=True) as progress:
            for epoch in range(start, cfg.epochs + 1):
                if stopped_early:  # a resumed run that had already stopped
                    break
                if cfg.max_seconds is not None and history:
                    spent = sum(h["epoch_seconds"] + h.get("eval_seconds", 0.0) for h in history)
                    last = history[-1]["epoch_seconds"] + history[-1].get("eval_seconds", 0.0)
                    if spent + last > cfg.max_seconds:
                        if cfg.progress and self.main:
                            self.console.print(f"time budget: {spent:.0f}s spent, another epoch (~{last:.0f}s) would "
                                               f"pass training.max_seconds={cfg.max_seconds:g}; stopping")
                        stopped_early = True
                        break
                for cb in self.callbacks:
                    if hasattr(cb, "on_epoch_start"):
                        cb.on_epoch_start(epoch)
                if world.distributed:  # (re)wrap when a freeze schedule changed what trains
                    now = tuple(p.requires_grad for p in model.parameters())
                    if now != trainable:
                        net, trainable = _ddp(model, self.device), now
                model.train()
                bar = progress.add_task(f"epoch {epoch}/{cfg.epochs}", total=steps_per_epoch, loss=float("nan"))
                t0 = time.perf_counter()
                total, count, skip = 0.0, 0, 0
                epoch_rng = generator.get_state()  # what draws this epoch's batch order: a mid-epoch resume redraws it
                if partial is not None and partial["epoch"] == epoch:  # resumed within this epoch: skip what was done
                    skip, total, count = partial["done"], partial["total"], partial["count"]
                    t0 -= partial["seconds"]
                    progress.update(bar, advance=skip)
                partial, last_save = None, time.perf_counter()
                for i, batch in enumerate(train.batches(cfg.batch_size, shuffle=True, generator=generator)):
                    if i < skip:
                        continue
                    # the schedule is a function of the step: resumable
                    step = (epoch - 1) * steps_per_epoch + i
                    factor = lr_factor(cfg.schedule, step, total_steps, cfg.warmup, cfg.slanted_ratio)
                    for group in optimizer.param_groups:
                        group["lr"] = group["base_lr"] * factor
                    step += 1
                    n = len(batch["index"])
                    if world.distributed:  # this rank's slice; the factor makes the mean gradient the batch's
                        batch, share = distributed.shard_batch(batch, world)
                        n = round(share * n / world.size)
                    with autocast(self.device, self.bf16):
                        loss = net(**batch)["loss"]
                    optimizer.zero_grad(set_to_none=True)
                    (loss * share if world.distributed else loss).backward()
                    if cfg.grad_clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    optimizer.step()
                    if constrain is not None:
                        constrain()
                    if ema is not None:
                        ema.update_parameters(model)
                    total = total + loss.detach().double() * n  # stays on the device: no sync per step
                    count += n
                    if sync_every == 1 or step % sync_every == 0:
                        progress.update(bar, advance=1, loss=float(total) / count)
                    else:
                        progress.update(bar, advance=1)
                    done = i + 1
                    if (checkpoint is not None and self.main and done < steps_per_epoch
                            and ((cfg.checkpoint_every and done % cfg.checkpoint_every == 0)
                                 or (cfg.checkpoint_seconds and time.perf_counter() - last_save >= cfg.checkpoint_seconds))):
                        # rank 0 only and no barrier: the other ranks carry on (they sync at the next all-reduce)
                        save_checkpoint(checkpoint, model=model, optimizer=optimizer, best_state=best_state, ema=ema,
                                        generator=generator, generator_state=epoch_rng,
                                        info={"epoch": epoch - 1, "history": history, "best_value": best_value,
                                              "best_epoch": best_epoch, "best_dev": best_dev, "bad_epochs": bad_epochs,
                                              "stopped_early": False,
                                              "partial": {"epoch": epoch, "done": done, "total": float(total),
                                                          "count": count, "seconds": time.perf_counter() - t0}})
                        last_save = time.perf_counter()
                progress.remove_task(bar)
                if world.distributed:  # the epoch's training loss over all ranks' rows
                    sums = torch.stack([torch.as_tensor(total, dtype=torch.float64).cpu(),
                                        torch.tensor(float(count), dtype=torch.float64)])
                    torch.distributed.all_reduce(sums)
                    total, count = sums[0], int(sums[1])
                record = {"epoch": epoch, "train_loss": float(total) / max(count, 1),
                          "epoch_seconds": round(time.perf_counter() - t0, 3)}
                t_eval = time.perf_counter()
                if dev is not None and len(dev):
                    with autocast(self.device, self.bf16):
                        metrics, _ = self.task.evaluate(scored, dev, cfg.batch_size)
                    record.update({f"dev_{k}": v for k, v in headline(metrics).items()})
                    if self.metric not in metrics:
                        raise ConfigError(f"training.metric: the {self.task.name} evaluation gives no "
                                          f"{self.metric!r}; it gives {', '.join(headline(metrics))}")
                    value = metrics[self.metric]
                else:  # no dev set: the last epoch is the one kept
                    metrics, value = {}, None
                record["eval_seconds"] = round(time.perf_counter() - t_eval, 3)
                improved = value is None or _better(self.metric, value, best_value)
                if improved:
                    best_value, best_epoch, best_dev = value, epoch, metrics
                    best_state = copy.deepcopy(scored.state_dict())
                    bad_epochs = 0
                else:
                    bad_epochs += 1
                record["best"] = improved
                history.append(record)
                self._log_epoch(record)
                for cb in self.callbacks:
                    if hasattr(cb, "on_epoch_end"):
                        cb.on_epoch_end(epoch, record)
                stopped_early = cfg.patience is not None and bad_epochs >= cfg.patience
                if checkpoint is not None and self.main:
                    save_checkpoint(checkpoint, model=model, optimizer=optimizer, best_state=best_state, ema=ema,
                                    generator=generator,
                                    info={"epoch": epoch, "history": history, "best_value": best_value,
                                          "best_epoch": best_epoch, "best_dev": best_dev,
                                          "bad_epochs": bad_epochs, "stopped_early": stopped_early})
                distributed.barrier()  # the others wait for rank 0's checkpoint
                if stopped_early:
                    break
        seconds = time.perf_counter() - t_start
        for table in tables:
            table.sparse = False
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        return TrainResult(history, best_epoch, best_dev, seconds, tokens_per_epoch * len(history), stopped_early)

    def _log_epoch(self, record: dict) -> None:
        if not (self.config.progress and self.main):
            return
        parts = [f"epoch {record['epoch']:>2}", f"train loss {record['train_loss']:.4f}"]
        if "dev_loss" in record:
            parts.append(f"dev loss {record['dev_loss']:.4f}")
            parts.append(f"dev {self.metric} {record.get('dev_' + self.metric, float('nan')):.4f}")
        parts.append(f"{record['epoch_seconds']:.1f}s")
        if record["best"]:
            parts.append("[green]*best")
        self.console.print("  ".join(parts))
