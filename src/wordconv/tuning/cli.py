"""`wordconv tune`: parse the options, call :func:`wordconv.tuning.search.tune`, print the table.

Errors the user can fix are printed as one message (no traceback) with the error's exit code, as in the
main CLI.  Several `wordconv tune` processes given the same --storage and --study share one study.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from wordconv.userio import user_errors

err = Console(stderr=True)
out = Console()
HINT = (" (the study is kept in its storage: the same command resumes it; the interrupted trial is "
        "marked failed and, on a grid, queued again)")


def tune(
    data: Annotated[Optional[str], typer.Option("--data", help="registry name (see `wordconv datasets`) or a file path")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="architecture (see `wordconv models`)")] = None,
    space: Annotated[Path, typer.Option("--space", help="YAML search space: config path -> {type: choice|int|uniform|"
                                        "loguniform, ...} (see configs/spaces/textcnn.yaml)")] = ...,
    trials: Annotated[int, typer.Option("--trials", "-n", help="trials in total for the study (all workers together)")] = 20,
    sampler: Annotated[str, typer.Option("--sampler", help="grid, random or tpe")] = "tpe",
    output: Annotated[Path, typer.Option("--output", "-o", help="directory for trials.csv, best_config.yaml, plots "
                                         "(and study.db by default)")] = ...,
    folds: Annotated[Optional[int], typer.Option("--folds", help="objective = mean dev metric over CV folds 0..K-1 "
                                                 "(MR: up to 10); default one split")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="seconds after which this worker starts no "
                                                     "more trials")] = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="SQLAlchemy URL (sqlite:///x.db, postgresql://...)"
                                                   " or a .log/.journal file; default OUTPUT/study.db")] = None,
    study: Annotated[Optional[str], typer.Option("--study", help="study name in the storage (default DATA-MODEL)")] = None,
    seed: Annotated[int, typer.Option(help="seeds the sampler and every trial's training (same for all workers)")] = 13,
    metric: Annotated[Optional[str], typer.Option("--metric", help="dev metric to optimise (default: the task's; "
                                                  "sets training.metric)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="setting for every trial, e.g. --set training.epochs=5")] = None,
    pruner: Annotated[str, typer.Option("--pruner", help="median, hyperband or none: stop trials that fall behind "
                                        "(per epoch, or per fold with --folds)")] = "median",
    save_best: Annotated[bool, typer.Option("--save-best", help="retrain the best config and save OUTPUT/best_model")] = False,
    config: Annotated[Optional[Path], typer.Option("--config", help="base JSON/YAML config for every trial")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="maximum epochs per trial")] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="local mirror of the datasets [env WORDCONV_DATA]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or per-trial lines")] = False,
) -> None:
    """Search hyperparameters (Optuna): grid, random or TPE over config paths; resumable, parallel workers."""
    from wordconv.tuning.search import tune as run

    with user_errors(err, HINT):
        result = run(data, model, space, trials=trials, sampler=sampler, output=output, folds=folds, timeout=timeout,
                     storage=storage, study_name=study, seed=seed, metric=metric, overrides=list(set_ or []),
                     pruner=pruner, save_best=save_best, config=config, data_dir=data_dir, epochs=epochs,
                     progress=not quiet, console=err)
    out.print(result.rich_table())
    if result.best_trial is None:
        out.print(f"no trial completed; the table is in [bold]{escape(str(output / 'trials.csv'))}[/]")
        return
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in result.best_params.items())
    out.print(f"best: trial {result.best_trial}, dev {result.metric} {result.best_value:.4f}: {escape(params)}",
              highlight=False, soft_wrap=True)
    out.print(f"best config: [bold]{escape(str(result.best_config))}[/] "
              f"(wordconv train --config {escape(str(result.best_config))} --output DIR)"
              + (f"; best model: [bold]{escape(str(result.best_model))}[/]" if result.best_model else ""),
              highlight=False, soft_wrap=True)
