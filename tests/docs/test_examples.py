"""Every tutorial example (examples/chNN_*.py) runs at its small size and asserts its outcome.

The examples assert their own results (above chance, sums that add up, weights that move or stay);
this test runs them and checks that each one finished and wrote its plots.  They run in two Python
processes side by side (one torch thread each), several examples per process, so that torch and
wordconv are imported twice rather than nine times: about a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiny import shared_data_dir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("ch[0-9][0-9]_*.py"))
DATA = shared_data_dir()
# the plots each example must leave in its output folder
PLOTS = {
    "ch01_convolution": ["filter_activations.png"],
    "ch02_embeddings": ["embeddings_pca.png"],
    "ch03_textcnn_mr": ["model/learning_curve.png", "model/confusion_matrix.png"],
    "ch04_metrics": ["per_class_f1.png", "model/confusion_matrix.png"],
    "ch05_search": ["grid/optimization_history.png", "random/optimization_history.png"],
    "ch06_deep_attention": ["attention.png"],
    "ch07_finetune": ["weight_change.png"],
    "ch08_tasks": [],
    "ch09_explain_export_serve": ["attribution.png"],
}
# seconds at small size (measured on the loaded 2-core machine), to split the examples evenly over two processes
COST = {"ch01_convolution": 11, "ch02_embeddings": 10, "ch03_textcnn_mr": 10, "ch04_metrics": 9, "ch05_search": 16,
        "ch06_deep_attention": 22, "ch07_finetune": 19, "ch08_tasks": 35, "ch09_explain_export_serve": 18}
TIMEOUT_S = 900

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(DATA is None, reason="datasets mirror (../shared/data) not present")]


def _groups(scripts: list[Path], n: int = 2) -> list[list[Path]]:
    groups: list[list[Path]] = [[] for _ in range(n)]
    load = [0] * n
    for s in sorted(scripts, key=lambda s: -COST.get(s.stem, 5)):  # longest first, onto the least loaded
        i = load.index(min(load))
        groups[i].append(s)
        load[i] += COST.get(s.stem, 5)
    return [sorted(g) for g in groups if g]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, Path]:
    work = tmp_path_factory.mktemp("examples")
    env = {**os.environ, "WORDCONV_DATA": str(DATA), "WORDCONV_EXAMPLE_SMALL": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "WORDCONV_CACHE": str(work / "cache"), "MPLBACKEND": "Agg"}
    runner = ROOT / "tests" / "docs" / "run_examples.py"
    procs = []
    for i, group in enumerate(_groups(EXAMPLES)):
        log = open(work / f"runner{i}.log", "w")
        procs.append((subprocess.Popen([sys.executable, str(runner), str(work / f"report{i}.json"), str(work / "out"),
                                        *map(str, group)], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT),
                      log, work / f"report{i}.json", work / f"runner{i}.log"))
    merged: dict = {}
    for (proc, log, path, log_path), group in zip(procs, _groups(EXAMPLES)):
        try:
            proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:  # the unfinished examples are reported as not run
            proc.kill()
            proc.wait()
        finally:
            log.close()
        results = json.loads(path.read_text()) if path.exists() else {}
        tail = log_path.read_text(errors="replace")[-3000:]
        for script in group:  # an example the runner never reached (it died or timed out) fails with its log
            results.setdefault(script.stem, {"ok": False, "seconds": None,
                                             "error": f"not run (runner exit code {proc.returncode})"})
            results[script.stem]["log"] = tail
        merged.update(results)
    return merged, work / "out"


def test_every_chapter_has_an_example():
    assert [p.stem for p in EXAMPLES] == sorted(PLOTS), "examples/ and PLOTS disagree: add the new example to PLOTS"


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_example_runs_small_and_asserts(report, name):
    results, out = report
    result = results[name]
    assert result["ok"], f"{name} failed after {result['seconds']} s:\n{result.get('error')}\nlog:\n{result['log']}"
    for plot in PLOTS[name]:
        data = (out / name / plot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{name}: {plot} is not a PNG"


def test_examples_read_data_through_the_registry():
    """No hard-coded dataset paths: the registry and $WORDCONV_DATA find the data (samples go under --out)."""
    for script in EXAMPLES:
        text = script.read_text()
        assert "shared/data" not in text, f"{script.name}: use the registry / $WORDCONV_DATA, not a hard-coded path"
