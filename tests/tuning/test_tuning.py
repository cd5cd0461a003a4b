"""`wordconv tune`: grid / random / pruning contracts, bad spaces, shared studies, killed workers.

Every trial is tiny (generated data, FAST settings, 1-3 epochs); the multi-process tests run one worker
as a subprocess (`python -m wordconv.cli tune`) and the other in this process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
import yaml
from tiny import FAST
from typer.testing import CliRunner

from wordconv.cli import app
from wordconv.errors import ConfigError
from wordconv.tuning import load_space, parse_space, tune
from wordconv.tuning.search import DRAWN_ATTR, FAILED_ATTR, open_storage

runner = CliRunner()
# num_filters is searched below, so it is not among the fixed settings
SETS = [s for s in FAST if not s.startswith("model.num_filters")] + ["training.threads=1", "training.lr=0.05"]
GRID = {"model.num_filters": {"type": "int", "low": 4, "high": 8, "step": 4},
        "model.filter_widths": {"type": "choice", "values": [[2, 3], [3], [2]]}}  # 6 points


def data_sets(tiny_data) -> list[str]:
    return SETS + [f"data.dev_path={tiny_data['dev']}", f"data.test_path={tiny_data['test']}"]


def run_tune(tiny_data, out, space=None, **kw):
    kw.setdefault("epochs", 1)
    kw.setdefault("progress", False)
    kw.setdefault("overrides", data_sets(tiny_data))
    kw.setdefault("pruner", "none")  # every trial runs to its end: the contracts below count complete trials
    return tune(str(tiny_data["train"]), "textcnn", space or GRID, output=out, **kw)


def cli_args(tiny_data, space_file, out, *extra) -> list[str]:
    args = ["tune", "--data", str(tiny_data["train"]), "--model", "textcnn", "--space", str(space_file),
            "--output", str(out), "--epochs", "1", "--quiet", "--pruner", "none", *extra]
    for s in data_sets(tiny_data):
        args += ["--set", s]
    return args


def write_space(path: Path, space: dict) -> Path:
    path.write_text(yaml.safe_dump(space), encoding="utf-8")
    return path


def grid_key(row) -> str:
    return json.dumps(row["params"], sort_keys=True)


def load(storage: str, out: Path, name: str = "train-textcnn"):
    return optuna.load_study(study_name=name, storage=open_storage(storage, out))


def test_grid_visits_every_point_once(tiny_data, tmp_path):
    r = run_tune(tiny_data, tmp_path / "out", trials=50, sampler="grid")
    assert [row["state"] for row in r.table] == ["complete"] * 6
    points = {grid_key(row) for row in r.table}
    assert len(points) == 6
    assert {json.dumps(row["params"]["model.filter_widths"]) for row in r.table} == {"[2, 3]", "[3]", "[2]"}
    assert "the grid has 6 points" in " ".join(r.notes)
    # outputs: table, best config, best summary, plots
    out = tmp_path / "out"
    csv_lines = (out / "trials.csv").read_text().splitlines()
    assert csv_lines[0].startswith("number,state,value,duration_s,model.num_filters,model.filter_widths")
    assert len(csv_lines) == 7
    assert (out / "optimization_history.png").stat().st_size > 1000
    best = json.loads((out / "best.json").read_text())
    assert best["trial"] == r.best_trial and best["params"] == r.best_params
    # a rerun resumes the finished study: nothing more to train
    again = run_tune(tiny_data, tmp_path / "out", trials=50, sampler="grid")
    assert len(again.table) == 6


def test_random_search_with_a_seed_is_repeatable(tiny_data, tmp_path):
    space = {"training.lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-1},
             "model.dropout": {"type": "uniform", "low": 0.1, "high": 0.6}}
    sets = [s for s in data_sets(tiny_data) if not s.startswith("training.lr")]
    runs = [tune(str(tiny_data["train"]), "textcnn", space, output=tmp_path / name, overrides=sets, trials=2,
                 sampler="random", seed=seed, epochs=1, progress=False) for name, seed in (("a", 7), ("b", 7), ("c", 8))]
    a, b, c = ([row["params"] for row in r.table] for r in runs)
    assert a == b and len(a) == 2 and len({json.dumps(p) for p in a}) == 2
    assert a != c
    assert all(1e-3 <= p["training.lr"] <= 1e-1 and 0.1 <= p["model.dropout"] <= 0.6 for p in a)
    assert [row["value"] for row in runs[0].table] == [row["value"] for row in runs[1].table]


@pytest.mark.parametrize("space,pattern", [
    ({"model.num_filtres": {"type": "int", "low": 4, "high": 8}}, r"model\.num_filtres.*unknown key"),
    ({"model.dropout": {"type": "uniform", "low": 0.7, "high": 0.3}}, r"model\.dropout: low \(0\.7\) must be less"),
    ({"model.num_filters": {"type": "int", "low": 8, "high": 4}}, r"low \(8\) is greater than high \(4\)"),
    ({"model.dropout": {"type": "gaussian", "low": 0.1, "high": 0.3}}, r"unknown type 'gaussian'"),
    ({"model.dropout": {"type": "uniform", "low": 0.5, "high": 1.5}}, r"model\.dropout = 1\.5.*less than 1"),
    ({"training.lr": {"type": "loguniform", "low": 0.0, "high": 0.1}}, r"loguniform needs low > 0"),
    ({"training.lr": {"type": "loguniform", "low": "1e-4", "high": 0.1}}, r"1\.0e-4"),
    ({"model.filter_widths": {"type": "choice", "values": [[3, 4], [0]]}}, r"filter_widths = \[0\]"),
    ({"model.num_filters": {"type": "int", "low": 4, "high": 9, "step": 2}}, r"not a multiple of step"),
    ({"model.dropout": {"type": "choice", "vals": [0.1]}}, r"missing values; unknown field\(s\) vals"),
    ({"model.type": {"type": "choice", "values": ["dpcnn"]}}, r"one architecture per study"),
])
def test_bad_space_fails_before_any_trial(tiny_data, tmp_path, space, pattern):
    import re

    with pytest.raises(ConfigError) as err:
        run_tune(tiny_data, tmp_path / "out", space, trials=2, sampler="random")
    assert re.search(pattern, str(err.value), re.DOTALL), str(err.value)
    assert not (tmp_path / "out" / "study.db").exists()  # nothing was started


def test_grid_refuses_continuous_dimensions_and_the_cli_says_so(tiny_data, tmp_path):
    space = write_space(tmp_path / "space.yaml", {**GRID, "model.dropout": {"type": "uniform", "low": 0.1, "high": 0.5}})
    r = runner.invoke(app, cli_args(tiny_data, space, tmp_path / "out", "--sampler", "grid"))
    assert r.exit_code == 3, r.output
    assert "space.yaml" in r.output and "model.dropout" in r.output and "grid sampler" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "out" / "study.db").exists()
    assert set(load_space(space).paths) == {"model.filter_widths", "model.num_filters", "model.dropout"}
    with pytest.raises(ConfigError, match="both searched and fixed"):
        run_tune(tiny_data, tmp_path / "out2", {"training.lr": {"type": "loguniform", "low": 1.0e-3, "high": 0.1}})


def test_list_choices_are_held_as_text_and_decoded(tmp_path):
    space = parse_space({"model.filter_widths": {"type": "choice", "values": [[3, 4, 5], [2, 3, 4]]},
                         "embeddings.mode": {"type": "choice", "values": ["rand"]}})
    dims = {d.path: d for d in space.dims}
    assert dims["model.filter_widths"].grid() == ["[3, 4, 5]", "[2, 3, 4]"]
    assert dims["embeddings.mode"].grid() == ["rand"]
    assert space.decode({"model.filter_widths": "[2, 3, 4]"}) == {"model.filter_widths": [2, 3, 4]}


def test_pruning_stops_a_hopeless_trial(tiny_data, tmp_path):
    """Trial 0 (lr 0.05) learns; trial 1 (lr 1e-7) does not, and the median pruner stops it after epoch 1."""
    out = tmp_path / "out"
    out.mkdir()
    url = f"sqlite:///{out / 'study.db'}"
    study = optuna.create_study(study_name="train-textcnn", storage=url, direction="maximize")
    study.enqueue_trial({"training.lr": 0.05})
    study.enqueue_trial({"training.lr": 1e-7})
    space = {"training.lr": {"type": "choice", "values": [0.05, 1e-7]}}
    sets = [s for s in data_sets(tiny_data) if not s.startswith("training.lr")] + ["training.patience=null"]
    r = tune(str(tiny_data["train"]), "textcnn", space, output=out, overrides=sets, trials=2, sampler="random",
             epochs=4, progress=False, pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    good, bad = r.table
    assert good["params"] == {"training.lr": 0.05} and good["state"] == "complete", good
    assert bad["params"] == {"training.lr": 1e-7} and bad["state"] == "pruned", bad
    assert bad["note"] == "pruned after epoch 1"
    assert r.best_trial == 0


def test_best_config_round_trips_through_train(tiny_data, tmp_path):
    space = {"model.num_filters": {"type": "choice", "values": [4, 6]}}
    space_file = write_space(tmp_path / "space.yaml", space)
    out = tmp_path / "out"
    r = runner.invoke(app, cli_args(tiny_data, space_file, out, "--trials", "2", "--sampler", "grid", "--save-best"))
    assert r.exit_code == 0, r.output
    assert "best: trial" in r.output and "best_config.yaml" in r.output
    best = yaml.safe_load((out / "best_config.yaml").read_text())
    summary = json.loads((out / "best.json").read_text())
    assert best["model"]["num_filters"] == summary["params"]["model.num_filters"]
    assert best["training"]["epochs"] == 1 and best["embeddings"]["dim"] == 16
    assert (out / "best_model" / "model.safetensors").is_file()
    r = runner.invoke(app, ["train", "--config", str(out / "best_config.yaml"), "--output", str(tmp_path / "again")])
    assert r.exit_code == 0, r.output
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    saved = json.loads((out / "best_model" / "config.json").read_text())
    assert again == saved


def wait_for_running_trial(storage: str, out: Path, proc: subprocess.Popen, deadline: float = 90.0):
    """Poll the shared study until the subprocess worker is inside a trial (its parameters drawn)."""
    t0 = time.monotonic()
    store = open_storage(storage, out)
    while time.monotonic() - t0 < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            study = optuna.load_study(study_name="train-textcnn", storage=store)
        except KeyError:  # the worker has not created the study yet
            time.sleep(0.2)
            continue
        running = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
                   if t.user_attrs.get(DRAWN_ATTR)]
        if running:
            return running[0]
        time.sleep(0.05)
    raise AssertionError("the worker never started a trial")


def start_worker(tiny_data, space_file, out, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "wordconv.cli", *cli_args(tiny_data, space_file, out, *extra)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_workers_share_a_journal_and_an_sqlite_study(tiny_data, tmp_path):
    """One worker per storage runs as a subprocess; once it is inside a trial, this process joins as the
    second worker.  Together they run the 6 grid points once each, and stop at 6 trials."""
    space_file = write_space(tmp_path / "space.yaml", GRID)
    urls = {"journal": str(tmp_path / "study.log"), "sqlite": f"sqlite:///{tmp_path / 'sqlite' / 'study.db'}"}
    procs = {kind: start_worker(tiny_data, space_file, tmp_path / kind, "--trials", "6", "--sampler", "grid",
                                "--storage", url)
             for kind, url in urls.items()}
    try:
        for kind, url in urls.items():
            out = tmp_path / kind
            wait_for_running_trial(url, out, procs[kind])
            r = run_tune(tiny_data, out, trials=6, sampler="grid", storage=url)
            assert len(r.table) == 6 and (out / "trials.csv").is_file()
        for proc in procs.values():
            _, stderr = proc.communicate(timeout=120)
            assert proc.returncode == 0, stderr
    finally:
        for proc in procs.values():
            proc.kill()
    for kind, url in urls.items():
        trials = load(url, tmp_path / kind).trials
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(done) == 6, kind
        assert len({json.dumps(t.params, sort_keys=True) for t in done}) == 6, kind  # no grid point twice
        workers = {t.user_attrs["wordconv_worker"]["pid"] for t in done}
        assert workers == {procs[kind].pid, os.getpid()}, (kind, workers)  # both did some of the work


def test_killed_worker_then_rerun_completes_the_study(tiny_data, tmp_path):
    out = tmp_path / "out"
    url = f"sqlite:///{out / 'study.db'}"
    space_file = write_space(tmp_path / "space.yaml", GRID)
    proc = start_worker(tiny_data, space_file, out, "--trials", "6", "--sampler", "grid")
    try:
        victim = wait_for_running_trial(url, out, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    study = load(url, out)
    assert study.trials[victim.number].state == optuna.trial.TrialState.RUNNING  # left behind by the dead worker
    # the same command again (here from Python): the dead trial is failed, its grid point queued again
    r = run_tune(tiny_data, out, trials=6, sampler="grid")
    study = load(url, out)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 6
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.number for t in failed] == [victim.number]
    assert "died mid-trial" in failed[0].user_attrs[FAILED_ATTR]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len({json.dumps(t.params, sort_keys=True) for t in done}) == 6
    assert any(f"retry of trial {victim.number}" in row["note"] for row in r.table)
    assert any("died mid-trial" in n for n in r.notes)


def test_a_study_resumed_with_another_space_is_refused(tiny_data, tmp_path):
    run_tune(tiny_data, tmp_path / "out", {"model.num_filters": {"type": "choice", "values": [4]}}, trials=1,
             sampler="grid")
    with pytest.raises(ConfigError, match="searches something else"):
        run_tune(tiny_data, tmp_path / "out", {"model.num_filters": {"type": "choice", "values": [4, 6]}},
                 trials=2, sampler="grid")


def test_folds_objective_is_the_mean_over_cv_folds(tiny_data, tmp_path):
    sets = [s for s in data_sets(tiny_data) if not s.startswith("data.test_path")]  # no test file: 10-fold CV
    r = run_tune(tiny_data, tmp_path / "out", {"model.num_filters": {"type": "choice", "values": [4]}}, trials=1,
                 sampler="grid", folds=2, overrides=sets)
    (trial,) = r.study.trials
    folds = trial.user_attrs["wordconv_fold_values"]
    assert len(folds) == 2 and r.best_value == pytest.approx(sum(folds) / 2)
    assert json.loads((tmp_path / "out" / "best.json").read_text())["fold_values"] == folds
    with pytest.raises(ConfigError, match="standard test split"):  # a test file: no folds to average
        run_tune(tiny_data, tmp_path / "out2", {"model.num_filters": {"type": "choice", "values": [4]}}, folds=2)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_workers_starting_at_once_on_a_fresh_storage(tmp_path, kind):
    """Creating the tables and the study is serialised by a lock file: no "table already exists"."""
    import threading

    url = f"sqlite:///{tmp_path / 'fresh.db'}" if kind == "sqlite" else str(tmp_path / "fresh.journal")
    barrier, errors = threading.Barrier(4), []

    def start() -> None:
        barrier.wait()
        try:
            optuna.create_study(storage=open_storage(url, tmp_path), study_name="s", load_if_exists=True)
        except (ConfigError, sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.OptunaError) as err:
            errors.append(err)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [s.study_name for s in optuna.get_all_study_summaries(open_storage(url, tmp_path))] == ["s"]


def test_shipped_example_space_is_valid_for_textcnn():
    from pathlib import Path

    from wordconv.config import build_config

    space = load_space(Path(__file__).parents[2] / "configs" / "spaces" / "textcnn.yaml")
    space.validate(lambda params: build_config({"model": {"type": "textcnn"}}, params))
    assert len(space.paths) >= 3
