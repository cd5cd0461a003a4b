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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from wordconv.config import TrainingConfig
from wordconv.errors import ConfigError
from wordconv.evaluation.metrics import headline, lower_is_better
from wordconv.tasks.base import Task, TaskData
from wordconv.training.checkpoint import load_checkpoint, save_checkpoint


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a generator for batch order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def build_optimizer(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adadelta":
        # Kim's code: Adadelta with rho 0.95, eps 1e-6
        return torch.optim.Adadelta(params, lr=config.lr, rho=config.adadelta_rho, eps=1e-6,
                                    weight_decay=config.weight_decay)
    # fused Adam does the whole update in one kernel: ~30% faster steps on CPU (DESIGN.md)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)


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


class Trainer:
    def __init__(self, model: torch.nn.Module, task: Task, config: TrainingConfig, console: Console | None = None):
        self.model, self.task, self.config = model, task, config
        self.metric = config.metric or task.default_metric  # the dev metric that picks the best epoch
        self.console = console or Console(stderr=True)

    def fit(self, train: TaskData, dev: TaskData | None, checkpoint: Path | None = None,
            resume: bool = False) -> TrainResult:
        """Train; with ``checkpoint``, save resume state there after every epoch, and with
        ``resume`` continue from it when it exists (same config, same data: same final weights)."""
        cfg = self.config
        generator = seed_everything(cfg.seed)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        model = self.model
        optimizer = build_optimizer(model, cfg)
        constrain = getattr(model, "apply_constraints", None)
        ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
               if cfg.ema_decay else None)
        scored = ema.module if ema is not None else model  # the weights that are evaluated and kept
        history: list[dict] = []
        best_value: float | None = None
        best_state, best_epoch, best_dev = None, 0, {}
        bad_epochs, stopped_early, start = 0, False, 1
        if resume and checkpoint is not None and checkpoint.is_file():
            info, best_state = load_checkpoint(checkpoint, model=model, optimizer=optimizer, ema=ema,
                                               generator=generator)
            history, best_value, best_epoch = info["history"], info["best_value"], info["best_epoch"]
            best_dev, bad_epochs, stopped_early = info["best_dev"], info["bad_epochs"], info["stopped_early"]
            start = info["epoch"] + 1
            if cfg.progress:
                self.console.print(f"resuming from {checkpoint} after epoch {info['epoch']}")
        tokens_per_epoch = train.num_tokens()
        steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
        t_start = time.perf_counter()
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), TimeRemainingColumn(),
                      console=self.console, disable=not cfg.progress, transient=True) as progress:
            for epoch in range(start, cfg.epochs + 1):
                if stopped_early:  # a resumed run that had already stopped
                    break
                if cfg.max_seconds is not None and history:
                    spent = sum(h["epoch_seconds"] + h.get("eval_seconds", 0.0) for h in history)
                    last = history[-1]["epoch_seconds"] + history[-1].get("eval_seconds", 0.0)
                    if spent + last > cfg.max_seconds:
                        if cfg.progress:
                            self.console.print(f"time budget: {spent:.0f}s spent, another epoch (~{last:.0f}s) would "
                                               f"pass training.max_seconds={cfg.max_seconds:g}; stopping")
                        stopped_early = True
                        break
                model.train()
                bar = progress.add_task(f"epoch {epoch}/{cfg.epochs}", total=steps_per_epoch, loss=float("nan"))
                t0 = time.perf_counter()
                total, count = 0.0, 0
                for batch in train.batches(cfg.batch_size, shuffle=True, generator=generator):
                    loss = model(**batch)["loss"]
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    optimizer.step()
                    if constrain is not None:
                        constrain()
                    if ema is not None:
                        ema.update_parameters(model)
                    n = len(batch["index"])
                    total += float(loss.detach()) * n
                    count += n
                    progress.update(bar, advance=1, loss=total / count)
                progress.remove_task(bar)
                record = {"epoch": epoch, "train_loss": total / max(count, 1),
                          "epoch_seconds": round(time.perf_counter() - t0, 3)}
                t_eval = time.perf_counter()
                if dev is not None and len(dev):
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
                stopped_early = cfg.patience is not None and bad_epochs >= cfg.patience
                if checkpoint is not None:
                    save_checkpoint(checkpoint, model=model, optimizer=optimizer, best_state=best_state, ema=ema,
                                    generator=generator,
                                    info={"epoch": epoch, "history": history, "best_value": best_value,
                                          "best_epoch": best_epoch, "best_dev": best_dev,
                                          "bad_epochs": bad_epochs, "stopped_early": stopped_early})
                if stopped_early:
                    break
        seconds = time.perf_counter() - t_start
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        return TrainResult(history, best_epoch, best_dev, seconds, tokens_per_epoch * len(history), stopped_early)

    def _log_epoch(self, record: dict) -> None:
        if not self.config.progress:
            return
        parts = [f"epoch {record['epoch']:>2}", f"train loss {record['train_loss']:.4f}"]
        if "dev_loss" in record:
            parts.append(f"dev loss {record['dev_loss']:.4f}")
            parts.append(f"dev {self.metric} {record.get('dev_' + self.metric, float('nan')):.4f}")
        parts.append(f"{record['epoch_seconds']:.1f}s")
        if record["best"]:
            parts.append("[green]*best")
        self.console.print("  ".join(parts))
