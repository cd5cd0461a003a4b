"""bench/compare.py on hand-made results: no benchmark is run and nothing is timed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "compare.py"
_spec = importlib.util.spec_from_file_location("bench_compare", _PATH)
compare_mod = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = compare_mod  # dataclasses look their module up there
_spec.loader.exec_module(compare_mod)

BASELINE = {
    "tolerance": 0.15,
    "metrics": {
        "throughput": {
            "peak_gflops": {"value": 190.0, "better": "info"},
            "end_to_end_fraction": {"value": 0.50, "better": "higher"},
            "step_only_gflops": {"value": 110.0, "better": "higher"},
        },
        "memory": {"full_peak_rss_mib": {"value": 1500.0, "better": "lower", "tolerance": 0.10}},
        "inference_speed": {"TextCNN, ONNX fp32/end_to_end": {"value": 10000.0, "better": "higher"}},
    },
}


def statuses(rows):
    return {r.metric: r.status for r in rows}


def test_within_tolerance_is_ok():
    rows = compare_mod.compare("throughput", BASELINE["metrics"]["throughput"],
                               {"peak_gflops": 120.0, "end_to_end_fraction": 0.46, "step_only_gflops": 120.0})
    assert statuses(rows) == {"peak_gflops": "info", "end_to_end_fraction": "ok", "step_only_gflops": "ok"}
    assert not any(r.regressed for r in rows)  # a slower machine's peak is information, not a regression


def test_lower_throughput_beyond_tolerance_is_a_regression():
    rows = compare_mod.compare("throughput", BASELINE["metrics"]["throughput"],
                               {"peak_gflops": 190.0, "end_to_end_fraction": 0.40, "step_only_gflops": 130.0})
    assert statuses(rows)["end_to_end_fraction"] == "REGRESSION"  # -20 % > 15 %
    assert statuses(rows)["step_only_gflops"] == "improved"  # +18 %


def test_higher_memory_beyond_its_own_tolerance_is_a_regression():
    section = BASELINE["metrics"]["memory"]
    assert compare_mod.compare("memory", section, {"full_peak_rss_mib": 1600.0})[0].status == "ok"  # +6.7 %
    row = compare_mod.compare("memory", section, {"full_peak_rss_mib": 1700.0})[0]  # +13 % > 10 %
    assert row.regressed and row.change == pytest.approx(0.1333, abs=1e-3)
    assert compare_mod.compare("memory", section, {"full_peak_rss_mib": 1000.0})[0].status == "improved"


def test_tolerance_override():
    section = BASELINE["metrics"]["throughput"]
    current = {"peak_gflops": 190.0, "end_to_end_fraction": 0.40, "step_only_gflops": 110.0}
    assert not any(r.regressed for r in compare_mod.compare("throughput", section, current, tolerance=0.25))


def test_missing_key_is_a_clear_error():
    with pytest.raises(compare_mod.CompareError, match="lack 'step_only_gflops'.*they have: end_to_end_fraction"):
        compare_mod.compare("throughput", BASELINE["metrics"]["throughput"],
                            {"end_to_end_fraction": 0.5, "peak_gflops": 190.0})


def test_inference_rows_are_flattened():
    flat = compare_mod.flatten("inference_speed", {
        "rows": [{"row": "TextCNN, ONNX fp32", "end_to_end": 9000.0, "model_only": 30000.0, "batch_1": 2000.0,
                  "prep_only": 40000.0}],
        "ratios": {"onnx_vs_eager": 3.0}})
    assert flat["TextCNN, ONNX fp32/end_to_end"] == 9000.0 and flat["ratios/onnx_vs_eager"] == 3.0


def test_main_exit_codes(tmp_path, capsys):
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(BASELINE))
    good, bad, broken = tmp_path / "memory.json", tmp_path / "memory-bad.json", tmp_path / "throughput.json"
    good.write_text(json.dumps({"metrics": {"full_peak_rss_mib": 1450.0}}))
    bad.write_text(json.dumps({"metrics": {"full_peak_rss_mib": 2000.0}}))
    broken.write_text(json.dumps({"metrics": {"peak_gflops": 190.0}}))
    assert compare_mod.main([str(good), "--baseline", str(base)]) == 0
    assert compare_mod.main([str(bad), "--baseline", str(base)]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert compare_mod.main([str(broken), "--baseline", str(base)]) == 2
    assert "lack" in capsys.readouterr().err
    assert compare_mod.main([str(tmp_path / "other.json"), "--baseline", str(base)]) == 2


def test_update_keeps_directions(tmp_path):
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(BASELINE))
    res = tmp_path / "memory.json"
    res.write_text(json.dumps({"metrics": {"full_peak_rss_mib": 1234.5}}))
    assert compare_mod.main([str(res), "--baseline", str(base), "--update"]) == 0
    entry = json.loads(base.read_text())["metrics"]["memory"]["full_peak_rss_mib"]
    assert entry == {"value": 1234.5, "better": "lower", "tolerance": 0.10}


def test_the_shipped_baseline_is_well_formed():
    baseline = json.loads((_PATH.parent / "baseline.json").read_text())
    for kind, section in baseline["metrics"].items():
        assert kind in compare_mod.KINDS
        for metric, entry in section.items():
            assert entry["better"] in ("higher", "lower", "info") and entry["value"] > 0, (kind, metric)
