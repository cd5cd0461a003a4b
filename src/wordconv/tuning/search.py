"""Hyperparameter search with Optuna: a study over config paths, shared by any number of workers.

    space file -> Space (validated against the config before any trial)
    study (storage: SQLite file, journal file or any SQLAlchemy URL; load_if_exists: resumable, shared)
    loop:  dead workers' RUNNING trials -> FAIL (grid points enqueued again)
           while the study has fewer than N trials: one trial = fit() per fold -> dev metric
    outputs: trials.csv, best_config.yaml, best.json, plots, [best_model/]

Rules the workers keep (each worker is one ``wordconv tune`` process; they coordinate only through
the storage):

- **N trials in total.**  A study has ``trials`` trials when its complete, pruned, running and
  queued trials add up to that.  A worker checks before each trial, and a trial that finds
  ``trials`` others ahead of it (lower numbers) is dropped before it trains (it ends as FAIL with
  the user attribute ``wordconv_skipped``; tables leave it out).  Failed trials do not count, so a
  resumed study still reaches N.
- **The grid.**  Optuna's GridSampler gives trial ``i < grid size`` grid point ``i`` of its
  (seeded) shuffled grid: every worker must use the same ``seed``.  A fresh trial that gets a grid
  point another trial already holds is dropped, so no point is trained twice.  ``trials`` is capped at
  the grid size.
- **Dead workers.**  Each trial records its worker (host, pid, process start time).  Before each of
  its trials (so on start too), a worker turns the RUNNING trials of workers that are gone from
  this host into FAIL (a trial of another host is left alone: nothing here can tell whether it is
  alive) and, on a grid, queues their grid points again (``enqueue_trial``), so the grid
  completes.  Ctrl-C does the same for the trial it interrupts.
- **Pruning** (median / hyperband): with one fold, a trial reports its dev metric after every
  epoch (step = epoch); with ``folds=K`` it reports the running mean of the finished folds after
  each fold (step = fold index), so a trial whose first folds are clearly worse stops early.
- **Seeds.**  Random search and TPE draw trial ``n``'s parameters with a sampler seeded by
  ``(seed, n)``: a rerun with the same seed repeats the same parameters and two workers never draw
  the same sequence.  Every trial trains with ``training.seed = seed`` (unless ``--set`` says
  otherwise), so trials differ only in their parameters.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from wordconv.config import Config, _parse_overrides, selection_metric
from wordconv.errors import ConfigError
from wordconv.tuning.space import Space, load_space

try:  # file locks: Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover - Windows: workers on one storage are not serialised at start
    fcntl = None

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("median", "hyperband", "none")
WORKER_ATTR = "wordconv_worker"  # {host, pid, start}: who runs the trial
FAILED_ATTR = "wordconv_failed"  # why a trial failed
SKIPPED_ATTR = "wordconv_skipped"  # a trial dropped before training (the study had enough)
FOLDS_ATTR = "wordconv_fold_values"  # the dev metric of each fold trained
DRAWN_ATTR = "wordconv_params_drawn"  # the trial has all its parameters (a killed one can be retried)
RETRY_ATTR = "wordconv_retry_of"  # a queued trial: the grid point of this failed trial, again
STUDY_ATTR = "wordconv"  # what the study searches: space, metric, base config... (checked on resume)
MAX_SKIPS = 20  # consecutive dropped trials before a worker gives up (only under heavy contention)
MAX_NAN = 5  # consecutive trials with a NaN metric before a worker stops


@dataclass
class TuneResult:
    """What :func:`tune` found.

    ``table``: one dict per trial (``number``, ``state``, ``value``, ``duration_s``, ``params``,
    ``worker``, ``note``), in trial order; ``best_params``: {config path: value} of the best
    complete trial (None when no trial completed)."""

    study: Any  # optuna.Study
    best_params: dict | None
    best_value: float | None
    best_trial: int | None
    table: list[dict]
    metric: str
    direction: str
    output: Path
    best_config: Path | None = None
    best_model: Path | None = None
    notes: list[str] = field(default_factory=list)

    def rich_table(self, title: str | None = None) -> Table:
        paths = list(dict.fromkeys(p for row in self.table for p in row["params"]))
        table = Table(title=title or f"study {self.study.study_name}: dev {self.metric} "
                                     f"({'lower' if self.direction == 'minimize' else 'higher'} is better)")
        table.add_column("#", justify="right")
        table.add_column("state")
        table.add_column(self.metric, justify="right")
        table.add_column("time", justify="right")
        for p in paths:
            table.add_column(p, overflow="fold")
        table.add_column("note", overflow="fold")
        for row in self.table:
            best = row["number"] == self.best_trial
            value = "-" if row["value"] is None else f"{row['value']:.4f}"
            time_s = "-" if row["duration_s"] is None else f"{row['duration_s']:.1f}s"
            cells = [str(row["number"]), row["state"], value, time_s,
                     *(escape(_show(row["params"][p])) if p in row["params"] else "-" for p in paths),
                     escape(row["note"] or "")]
            table.add_row(*cells, style="bold green" if best else None)
        return table


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


# ---------------------------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class StorageSpec:
    """Where a study lives: ``kind`` (``journal`` or ``rdb``), the file path or SQLAlchemy URL, and the
    lock file that serialises the start-up of workers on this host (schema creation, study creation,
    the dead-worker sweep); None for server databases, which serialise themselves."""

    kind: str
    target: str
    lock: Path | None

    def open(self):
        """The Optuna storage (for an SQL database, its tables are created on first use)."""
        import optuna
        import sqlalchemy.exc

        if self.kind == "journal":
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(self.target))
        # SQLite: workers wait for each other's writes instead of failing with "database is locked"
        engine_kwargs = {"connect_args": {"timeout": 120}} if self.target.startswith("sqlite") else {}
        try:
            return optuna.storages.RDBStorage(self.target, engine_kwargs=engine_kwargs)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as err:
            raise ConfigError(f"--storage {self.target}: cannot open it: {err}") from None

    def __str__(self) -> str:
        return f"journal file {self.target}" if self.kind == "journal" else self.target


def resolve_storage(url: str | None, output: Path) -> StorageSpec:
    """Where ``--storage`` points.

    ``None``: an SQLite file ``output/study.db``.  A path ending in ``.log`` / ``.journal``: Optuna's
    journal file (``JournalStorage`` over a ``JournalFileBackend``: appends under a file lock, fine on
    NFS).  A path ending in ``.db`` / ``.sqlite`` / ``.sqlite3``: an SQLite file.  Anything with
    ``://``: an SQLAlchemy URL (``sqlite:///x.db``, ``postgresql://user@host/db``, ...)."""
    import sqlalchemy.exc

    if url is None:
        url = f"sqlite:///{(Path(output) / 'study.db').resolve()}"
    if "://" not in url:
        path = Path(url)
        if path.suffix in (".log", ".journal"):
            path.parent.mkdir(parents=True, exist_ok=True)
            return StorageSpec("journal", str(path), Path(f"{path}.wordconv-lock"))
        if path.suffix not in (".db", ".sqlite", ".sqlite3"):
            raise ConfigError(f"--storage {url!r}: give an SQLAlchemy URL (sqlite:///study.db, "
                              "postgresql://user@host/db), a .db file, or a .log/.journal file for a journal")
        url = f"sqlite:///{path.resolve()}"
    lock = None
    if url.startswith("sqlite"):
        try:
            database = sqlalchemy.engine.make_url(url).database
        except sqlalchemy.exc.ArgumentError as err:
            raise ConfigError(f"--storage {url}: {err}") from None
        if database and database != ":memory:":
            db = Path(database)
            db.parent.mkdir(parents=True, exist_ok=True)
            lock = Path(f"{db}.wordconv-lock")
    return StorageSpec("rdb", url, lock)


def open_storage(url: str | None, output: Path):
    """The Optuna storage ``--storage`` names (see :func:`resolve_storage`), opened under its lock."""
    spec = resolve_storage(url, output)
    with _locked(spec.lock):
        return spec.open()


@contextlib.contextmanager
def _locked(path: Path | None):
    """An exclusive lock on ``path`` (released by the kernel if this process dies)."""
    if path is None or fcntl is None:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------- workers


def _start_token(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process, from /proc; None where unknown.

    The start time tells a reused pid from the process that had it."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def worker_identity() -> dict:
    pid = os.getpid()
    token = _start_token(pid)
    return {"host": socket.gethostname(), "pid": pid, "start": token[1] if token else None}


def worker_alive(worker: dict) -> bool | None:
    """Whether the worker that recorded ``worker`` still runs; None when it ran on another host."""
    if worker.get("host") != socket.gethostname() or not isinstance(worker.get("pid"), int):
        return None
    pid = worker["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds the pid now: ours is gone
        return False
    token = _start_token(pid)
    if token is None:  # no /proc: the pid exists, trust it
        return True
    state, start = token
    if state in ("Z", "X"):  # killed and not yet reaped
        return False
    return worker.get("start") in (None, start)


def _fail_dead_workers(study, grid: bool, console: Console) -> list[str]:
    """Mark the RUNNING trials of dead workers on this host FAIL; on a grid, queue their points again."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    notes = []
    storage = study._storage  # Optuna has no public call to end another process's trial without sampler hooks
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get(WORKER_ATTR)
        if not isinstance(worker, dict) or worker_alive(worker) is not False:
            continue
        why = f"worker {worker['pid']} on {worker['host']} died mid-trial"
        try:
            storage.set_trial_user_attr(t._trial_id, FAILED_ATTR, why)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another worker ended it first
        note = f"trial {t.number}: {why}; marked failed"
        if grid:
            if t.user_attrs.get(DRAWN_ATTR):
                study.enqueue_trial(dict(t.params), user_attrs={RETRY_ATTR: t.number})
                note += ", its grid point queued again"
            else:
                note += " before its parameters were drawn: its grid point is not retried"
        console.print(f"[yellow]note:[/] {escape(note)}")
        notes.append(note)
    return notes


# ---------------------------------------------------------------------------------------------- the search


def _sampler(kind: str, seed: int, space: Space):
    import optuna

    if kind == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _trial_seed(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number) % 2**32


def _pruner(pruner: Any, folds: int | None):
    import optuna

    if not isinstance(pruner, str):
        return pruner  # an Optuna pruner object (Python API)
    if pruner == "median":
        # one fold: steps are epochs (from 1) and epoch 1 is not judged (a CNN's first epoch says little
        # about its last); with folds, steps are fold indices (from 0) and every fold counts
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0 if folds else 2)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto", reduction_factor=3)
    return optuna.pruners.NopPruner()


def _cv_folds(cfg: Config) -> int | None:
    """How many CV folds the configured data has (None: a standard split)."""
    from wordconv.data.registry import DATASETS, DEFAULT_FOLDS

    if cfg.data.test_path is not None:
        return None
    spec = DATASETS.get(cfg.data.name)
    return DEFAULT_FOLDS if spec is None else spec.cv_folds


class _EpochReport:
    """Trainer callback: report each epoch's dev metric to the trial; stop the trial if pruned."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric = trial, metric

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        import optuna

        value = record.get(f"dev_{self.metric}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} (dev {self.metric} {value:.4f})")


class _Skip(Exception):
    """A trial dropped before training: the study already has enough, or its grid point is taken."""


def _is_skipped(t) -> bool:
    return SKIPPED_ATTR in t.user_attrs


class _Search:
    def __init__(self, *, space: Space, kind: str, seed: int, folds: int | None, metric: str, target: int,
                 grid_size: int | None, build, console: Console):
        self.space, self.kind, self.seed, self.folds, self.metric = space, kind, seed, folds, metric
        self.target, self.grid_size, self.build, self.console = target, grid_size, build, console
        self.worker = worker_identity()
        self.splits_cache: dict[str, Any] = {}
        self.quiet = Console(quiet=True)  # fit()'s own notes would repeat for every trial
        self.last_number: int | None = None  # the trial this worker ran last

    # -- the study's state, as this worker sees it

    def counted(self, trials, below: int | None = None) -> int:
        from optuna.trial import TrialState

        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
        return sum(1 for t in trials if t.state in states and not _is_skipped(t)
                   and (below is None or t.number < below))

    def grid_ids_used(self, trials) -> set:
        from optuna.trial import TrialState

        return {t.system_attrs["grid_id"] for t in trials if "grid_id" in t.system_attrs
                and (t.state.is_finished() or t.state == TrialState.RUNNING)}

    def why_stop(self, study) -> str | None:
        """None while this worker should start another trial; else why it stops."""
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return None  # queued grid points are always run
        if self.counted(trials) >= self.target:
            return "done"
        if self.grid_size is not None and len(self.grid_ids_used(trials)) >= self.grid_size:
            return "grid exhausted"
        return None

    # -- one trial

    def objective(self, trial) -> float:
        import optuna

        self.last_number = trial.number
        trial.set_user_attr(WORKER_ATTR, self.worker)
        study = trial.study
        trials = study.get_trials(deepcopy=False)
        me = next(t for t in trials if t.number == trial.number)
        if "fixed_params" not in me.system_attrs:  # a queued trial was promised: never dropped
            if self.counted(trials, below=trial.number) >= self.target:
                trial.set_user_attr(SKIPPED_ATTR, f"the study had {self.target} trials")
                raise _Skip
            grid_id = me.system_attrs.get("grid_id")
            if grid_id is not None and any(t.number < trial.number and t.system_attrs.get("grid_id") == grid_id
                                           and not _is_skipped(t) for t in trials):
                trial.set_user_attr(SKIPPED_ATTR, f"grid point {grid_id} is another trial's")
                raise _Skip
        if self.kind in ("random", "tpe"):  # parameters of trial n depend on (seed, n) only
            study.sampler = _sampler(self.kind, _trial_seed(self.seed, trial.number), self.space)
        params = self.space.suggest(trial)
        trial.set_user_attr(DRAWN_ATTR, True)
        try:
            value = self.run(trial, params)
        except (optuna.TrialPruned, _Skip):
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(FAILED_ATTR, "interrupted")
            if self.kind == "grid":  # the point is not lost: the next run trains it
                study.enqueue_trial(dict(trial.params), user_attrs={RETRY_ATTR: trial.number})
            raise
        except Exception as err:
            trial.set_user_attr(FAILED_ATTR, f"{type(err).__name__}: {err}"[:500])
            raise
        if math.isnan(value):
            trial.set_user_attr(FAILED_ATTR, f"dev {self.metric} is NaN")
        return value

    def run(self, trial, params: dict) -> float:
        """Train a fresh model per fold with ``params``; the (mean) dev metric of the best epochs."""
        import optuna

        from wordconv.pipeline import fit, load_splits

        folds = list(range(self.folds)) if self.folds else [None]
        values = []
        for i, fold in enumerate(folds):
            cfg = self.build(params, fold)
            key = json.dumps([cfg.task, cfg.data.model_dump(mode="json")], sort_keys=True)
            if key not in self.splits_cache:
                self.splits_cache[key] = load_splits(cfg)  # every fold once per worker
            callbacks = [] if self.folds else [_EpochReport(trial, self.metric)]
            _, result = fit(cfg, self.splits_cache[key], self.quiet, callbacks=callbacks)
            if self.metric not in result.best_dev:
                raise ConfigError(f"the dev evaluation gives no {self.metric!r} (it gives "
                                  f"{', '.join(result.best_dev) or 'nothing: is the dev split empty?'})")
            values.append(float(result.best_dev[self.metric]))
            trial.set_user_attr(FOLDS_ATTR, values)
            if self.folds:
                mean = sum(values) / len(values)
                trial.report(mean, i)
                if i + 1 < len(folds) and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after {i + 1} of {len(folds)} folds "
                                             f"(mean dev {self.metric} {mean:.4f})")
        return sum(values) / len(values)


def _signature(space: Space, metric: str, direction: str, folds: int | None, kind: str, base: Config) -> dict:
    base_dump = base.model_dump(mode="json")
    base_dump["training"].pop("progress", None)
    base_dump["data"].pop("fold", None)
    return {"space": space.spec(), "metric": metric, "direction": direction, "folds": folds, "sampler": kind,
            "base": base_dump}


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _differences(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True) else \
        [f"{prefix.rstrip('.')}: {json.dumps(old)} then, {json.dumps(new)} now"]


def tune(data: str | None = None, model: str | None = None, space: str | Path | dict | Space | None = None, *,
         trials: int = 20, sampler: str = "tpe", output: str | Path = "tune", folds: int | None = None,
         timeout: float | None = None, storage: str | None = None, study_name: str | None = None,
         seed: int = 13, metric: str | None = None, overrides: list[str] | dict | None = None,
         pruner: Any = "median", save_best: bool = False, config: Config | dict | str | Path | None = None,
         data_dir: str | None = None, epochs: int | None = None, progress: bool = True,
         console: Console | None = None) -> TuneResult:
    """Search ``space`` (config path -> dimension) for the config with the best dev metric.

    ``trials``: trials in total for the study (all workers together); ``sampler``: ``grid``,
    ``random`` or ``tpe``; ``folds``: mean over CV folds 0..K-1 instead of one split; ``timeout``:
    seconds after which this worker starts no more trials; ``storage``: where the study lives
    (default ``output/study.db``; see :func:`open_storage`), shared by workers and resumed by a
    rerun; ``metric``: the dev metric (default: the task's, as ``training.metric``); ``pruner``:
    ``median``, ``hyperband``, ``none`` or an Optuna pruner; ``overrides``: dotted settings for every
    trial (``--set``); ``save_best``: retrain the best config and save it to ``output/best_model``.

    Writes ``trials.csv``, ``best_config.yaml`` (for ``wordconv train --config``), ``best.json`` and
    plots (``optimization_history.png``, ``param_importances.png``) to ``output``.

    >>> r = wordconv.tune("mr", "textcnn", "configs/spaces/textcnn.yaml", trials=20, sampler="random",
    ...                   output="runs/tune-mr")   # doctest: +SKIP
    >>> r.best_params, r.best_value                # doctest: +SKIP
    """
    import optuna

    from wordconv.evaluation.metrics import lower_is_better
    from wordconv.pipeline import load_splits, resolve_config

    console = console or Console(stderr=True)
    if space is None:
        raise ConfigError("no search space: pass a YAML file of config paths (see configs/spaces/textcnn.yaml)")
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    if isinstance(pruner, str) and pruner not in PRUNERS:
        raise ConfigError(f"unknown pruner {pruner!r}; use one of {', '.join(PRUNERS)}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be a positive integer, got {trials!r}")
    if folds is not None and (isinstance(folds, bool) or not isinstance(folds, int) or folds < 1):
        raise ConfigError(f"folds must be a positive integer, got {folds!r}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"timeout must be positive (seconds), got {timeout!r}")
    folds = folds if folds and folds > 1 else None
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file; give a directory")
    spc = load_space(space)
    sets = _parse_overrides(overrides)
    if metric is not None:
        sets["training.metric"] = metric
    if folds and "data.fold" in sets:
        raise ConfigError(f"--folds {folds} trains folds 0..{folds - 1}: drop --set data.fold")
    clash = sorted(set(sets) & set(spc.paths))
    if clash:
        raise ConfigError(f"{spc.source}: {', '.join(clash)} is both searched and fixed with --set; "
                          "drop one of the two")

    def build(params: dict, fold: int | None, quiet: bool = True) -> Config:
        return resolve_config(config, {**sets, **params}, data=data, model=model, fold=fold, seed=seed,
                              data_dir=data_dir, epochs=epochs, progress=False if quiet else None)

    first_fold = 0 if folds else None
    base = build({}, first_fold)  # bad --set values and unknown data options fail here
    spc.validate(lambda p: build(p, first_fold))
    if sampler == "grid":
        grid_size = spc.grid_size()
    else:
        grid_size = None
    metric = selection_metric(base.task, base.training)
    direction = "minimize" if lower_is_better(metric) else "maximize"
    notes: list[str] = []
    if folds:
        available = _cv_folds(base)
        if available is None:
            raise ConfigError(f"--folds {folds}: {base.data.name!r} has a standard test split, not CV folds; "
                              "drop --folds (trials use its dev set)")
        if folds > available:
            raise ConfigError(f"--folds {folds}: {base.data.name!r} has {available} CV folds")
    load_splits(base)  # a missing or bad data file fails now, not in trial 0
    target = trials
    if grid_size is not None and trials > grid_size:
        target = grid_size
        notes.append(f"the grid has {grid_size} points: {grid_size} trials, not {trials}")
        console.print(f"[yellow]note:[/] {notes[-1]}")

    study_name = study_name or f"{Path(str(base.data.name)).stem}-{base.model.type}"
    output.mkdir(parents=True, exist_ok=True)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported here, once
    try:
        spec = resolve_storage(storage, output)
        where = str(spec)
        signature = _signature(spc, metric, direction, folds, sampler, base)
        with _locked(spec.lock):  # schema and study creation, the dead-worker sweep: one worker at a time
            store = spec.open()
            try:
                study = optuna.create_study(storage=store, study_name=study_name, direction=direction,
                                            sampler=_sampler(sampler, seed, spc), pruner=_pruner(pruner, folds),
                                            load_if_exists=True)
            except (ValueError, RuntimeError) as err:
                raise ConfigError(f"cannot open study {study_name!r} in {where}: {err}") from None
            old = study.user_attrs.get(STUDY_ATTR)
            if old is None:
                study.set_user_attr(STUDY_ATTR, signature)
            elif old != json.loads(json.dumps(signature)):
                diff = _differences(old, json.loads(json.dumps(signature)))
                raise ConfigError(f"study {study_name!r} in {where} searches something else; resume it with the same "
                                  "options, or pass another --study / --output:\n  " + "\n  ".join(diff[:12]))
        search = _Search(space=spc, kind=sampler, seed=seed, folds=folds, metric=metric, target=target,
                         grid_size=grid_size, build=build, console=console)
        notes += _optimize(study, search, timeout, progress, console, spec.lock)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return _finish(study, search, output, build, where, save_best, notes, console)


def _optimize(study, search: _Search, timeout: float | None, progress: bool, console: Console,
              lock: Path | None) -> list[str]:
    from optuna.trial import TrialState

    notes: list[str] = []  # why this worker stopped early
    swept: list[str] = []  # trials of dead workers this worker ended
    start = time.monotonic()
    skips = nans = 0
    finished_states = (TrialState.COMPLETE, TrialState.PRUNED)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[best]}"), TimeElapsedColumn(), console=console, disable=not progress,
                  transient=True) as bar:
        task = bar.add_task(f"study {study.study_name}", total=search.target, best="")

        def refresh() -> None:
            done = study.get_trials(deepcopy=False, states=finished_states)
            best = _best(done, study.direction.name.lower())
            bar.update(task, completed=min(len(done), search.target),
                       best=f"best {search.metric} {best.value:.4f} (#{best.number})" if best else "")

        refresh()
        while True:
            with _locked(lock):  # before every trial: a worker that died since is noticed by the others
                swept += _fail_dead_workers(study, search.kind == "grid", bar.console)  # printed there
            why = search.why_stop(study)
            if why is not None:
                if why == "grid exhausted":
                    notes.append("every grid point has a trial; failed points are not retried "
                                 "(see trials.csv)")
                break
            if timeout is not None and time.monotonic() - start >= timeout:
                notes.append(f"--timeout {timeout:g}s reached: no more trials started by this worker")
                break
            t0 = time.monotonic()
            try:
                study.optimize(search.objective, n_trials=1, catch=(), show_progress_bar=False,
                               gc_after_trial=False)
            except _Skip:
                skips += 1
                if skips >= MAX_SKIPS:
                    notes.append(f"{skips} trials in a row were dropped (other workers took them); stopping")
                    break
                continue
            skips = 0
            t = next(x for x in study.get_trials(deepcopy=False) if x.number == search.last_number)
            if progress:
                console.print(_trial_line(t, search, time.monotonic() - t0), highlight=False)
            nans = nans + 1 if t.state == TrialState.FAIL else 0
            if nans >= MAX_NAN:
                notes.append(f"{nans} trials in a row failed (dev {search.metric} NaN); stopping")
                break
            refresh()
    for n in notes:
        console.print(f"[yellow]note:[/] {escape(n)}")
    return swept + notes


def _trial_line(t, search: _Search, seconds: float) -> str:
    params = ", ".join(f"{p.split('.')[-1]}={_show(v)}" for p, v in search.space.decode(t.params).items())
    state = t.state.name.lower()
    value = f"{search.metric} {t.value:.4f}" if t.value is not None else t.user_attrs.get(FAILED_ATTR, "")
    return escape(f"trial {t.number:>3} {state:<8} {value}  {seconds:.1f}s  {params}")


def _best(trials, direction: str):
    """The best COMPLETE trial (ties: the earliest), or None."""
    from optuna.trial import TrialState

    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None and not math.isnan(t.value)]
    if not done:
        return None
    sign = -1 if direction == "maximize" else 1
    return min(done, key=lambda t: (sign * t.value, t.number))


def trial_rows(study, space: Space, folds: int | None = None) -> list[dict]:
    """The study's trials as table rows (dropped trials left out), in trial order."""
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if _is_skipped(t):
            continue
        worker = t.user_attrs.get(WORKER_ATTR) or {}
        note = t.user_attrs.get(FAILED_ATTR) or ""
        if t.state.name == "PRUNED" and t.last_step is not None:
            note = (f"pruned after fold {t.last_step + 1} of {folds}" if folds
                    else f"pruned after epoch {t.last_step}")
        if RETRY_ATTR in t.user_attrs:
            note = (note + "; " if note else "") + f"retry of trial {t.user_attrs[RETRY_ATTR]}"
        rows.append({
            "number": t.number,
            "state": t.state.name.lower(),
            "value": t.value if t.values else None,
            "duration_s": round(t.duration.total_seconds(), 2) if t.duration is not None else None,
            "params": space.decode(t.params),
            "worker": f"{worker.get('host')}:{worker.get('pid')}" if worker else "",
            "note": note,
        })
    return rows


def _write_csv(path: Path, rows: list[dict], paths: list[str]) -> None:
    from wordconv.modeldir import atomic_path

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["number", "state", "value", "duration_s", *paths, "worker", "note"])
    for r in rows:
        w.writerow([r["number"], r["state"], "" if r["value"] is None else r["value"],
                    "" if r["duration_s"] is None else r["duration_s"],
                    *("" if p not in r["params"] else json.dumps(r["params"][p]) if not isinstance(
                        r["params"][p], str) else r["params"][p] for p in paths), r["worker"], r["note"]])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def _write_text(path: Path, text: str) -> None:
    from wordconv.modeldir import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _plots(study, output: Path, metric: str, seed: int, rows: list[dict], notes: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless: files only
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as oplt

    from wordconv.modeldir import atomic_path

    complete = [r for r in rows if r["state"] == "complete"]

    def save(ax, name: str) -> None:
        fig = ax.figure
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        with atomic_path(output / name) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if complete:
            save(oplt.plot_optimization_history(study, target_name=f"dev {metric}"), "optimization_history.png")
        varying = [p for p in dict.fromkeys(p for r in complete for p in r["params"])
                   if len({json.dumps(r["params"].get(p), sort_keys=True) for r in complete}) > 1]
        if len(complete) < 2 or not varying:
            notes.append("no param_importances.png: it needs 2 or more complete trials whose parameters differ")
            return
        from optuna.importance import FanovaImportanceEvaluator

        try:
            ax = oplt.plot_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed),
                                             target_name=f"dev {metric}")
        except (ValueError, RuntimeError) as err:
            notes.append(f"no param_importances.png: {err}")
            return
        save(ax, "param_importances.png")


def _finish(study, search: _Search, output: Path, build, where: str, save_best: bool, notes: list[str],
            console: Console) -> TuneResult:
    """Write the table, the best config, the plots (and the best model); the result."""
    rows = trial_rows(study, search.space, search.folds)
    direction = study.direction.name.lower()
    _write_csv(output / "trials.csv", rows, search.space.paths)
    best = _best(study.get_trials(deepcopy=False), direction)
    result = TuneResult(study, None, None, None, rows, search.metric, direction, output, notes=notes)
    _plots(study, output, search.metric, search.seed, rows, notes)
    if best is None:
        notes.append("no trial completed: no best config")
        return result
    result.best_params = search.space.decode(best.params)
    result.best_value = float(best.value)
    result.best_trial = best.number
    cfg = build(result.best_params, None, quiet=False)
    folds = best.user_attrs.get(FOLDS_ATTR) or []
    over = f"mean of folds 0-{len(folds) - 1}" if search.folds else "one split"
    header = (f"# The best config of study {study.study_name} ({where}):\n"
              f"# trial {best.number}, dev {search.metric} {best.value:.4f} ({over}), "
              f"{len([r for r in rows if r['state'] == 'complete'])} complete trials.\n"
              + "".join(f"#   {p}: {json.dumps(v)}\n" for p, v in result.best_params.items())
              + f"#   wordconv train --config {output / 'best_config.yaml'} --output runs/best\n")
    _write_text(output / "best_config.yaml",
                header + yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    result.best_config = output / "best_config.yaml"
    summary = {"study": study.study_name, "storage": where, "trial": best.number, "value": best.value,
               "metric": search.metric, "direction": direction, "folds": search.folds, "fold_values": folds,
               "params": result.best_params, "trials": {s: sum(r["state"] == s for r in rows)
                                                       for s in ("complete", "pruned", "fail", "running")}}
    best_json = output / "best.json"
    previous = json.loads(best_json.read_text(encoding="utf-8")) if best_json.is_file() else {}
    model_dir = output / "best_model"
    if save_best:
        if previous.get("best_model_trial") == best.number and (model_dir / "config.json").is_file():
            console.print(f"best model of trial {best.number} already in {model_dir}")
        else:
            from wordconv.pipeline import train

            console.print(f"retraining trial {best.number}'s config for {model_dir} ...")
            train(config=cfg, output=model_dir, overwrite=True, console=console)
        summary["best_model"] = str(model_dir)
        summary["best_model_trial"] = best.number
        result.best_model = model_dir
    elif previous.get("best_model_trial") is not None:
        summary.update(best_model=previous.get("best_model"), best_model_trial=previous["best_model_trial"])
    _write_text(best_json, json.dumps(summary, indent=2) + "\n")
    return result


__all__ = ["StorageSpec", "TuneResult", "open_storage", "resolve_storage", "trial_rows", "tune"]
