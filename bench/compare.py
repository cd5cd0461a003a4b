"""Catch performance regressions: fresh benchmark results against bench/baseline.json, with a tolerance.

    python bench/compare.py bench/results/throughput.json                  # one results file
    python bench/compare.py bench/results/{throughput,inference_speed,memory}.json
    python bench/compare.py --tolerance 0.25 bench/results/throughput.json # a noisier machine
    python bench/compare.py --update bench/results/throughput.json         # take these values as the new baseline

Each results file is recognised by its name (``throughput``, ``inference_speed``, ``memory``; or
``--kind``) and flattened into metrics:

    throughput        its ``metrics``: peak_gflops, end_to_end_gflops / _fraction, step_only_gflops / _fraction
                      (bench/throughput.py)
    inference_speed   ``<row>/<column>`` for every row and column of sentences/s (end_to_end, model_only,
                      batch_1, prep_only) and the ``ratios`` (bench/inference_speed.py)
    memory            its ``metrics``: full_peak_rss_mib, scale_1x_peak_rss_mib, scale_1x_epoch_seconds,
                      scale_Kx_epoch_ratio, scale_Kx_rss_ratio (bench/memory.py)

bench/baseline.json lists, per kind, the metrics to check: ``{"value": v, "better": "higher" | "lower" |
"info", "tolerance": t (optional)}``.  A metric regresses when it is worse than the baseline by more than
its tolerance (``--tolerance``, default the file's ``tolerance``, 0.15: machines are noisy): for "higher",
now < value x (1 - t); for "lower", now > value x (1 + t).  "info" metrics are printed, never fail (the
matmul peak: a slower machine is not a slower wordconv; the fractions of the peak measured in the same run
are the machine-independent check).  A metric in the baseline but missing from the results is an error
naming what the results do have.

Prints one table (metric, baseline, now, change, status).  Exit codes: 0 all within tolerance, 1 a
regression, 2 an error (a missing metric, an unknown kind, an unreadable file).  This is how regressions
are caught: a script run after the benchmarks, never a timed unit test.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASELINE = Path(__file__).with_name("baseline.json")
DEFAULT_TOLERANCE = 0.15
KINDS = ("throughput", "inference_speed", "memory")
SPEED_COLUMNS = ("end_to_end", "model_only", "batch_1", "prep_only")


class CompareError(Exception):
    """A baseline metric the results lack, an unknown kind, a malformed baseline entry."""


@dataclass
class Row:
    kind: str
    metric: str
    baseline: float
    now: float
    better: str
    tolerance: float

    @property
    def change(self) -> float:
        """Relative change, now vs baseline (+0.10 = 10 % higher)."""
        return (self.now - self.baseline) / self.baseline if self.baseline else float("inf")

    @property
    def status(self) -> str:
        if self.better == "info":
            return "info"
        worse = -self.change if self.better == "higher" else self.change
        if worse > self.tolerance:
            return "REGRESSION"
        if -worse > self.tolerance:
            return "improved"
        return "ok"

    @property
    def regressed(self) -> bool:
        return self.status == "REGRESSION"


def kind_of(path: Path) -> str:
    for kind in KINDS:
        if path.stem.startswith(kind):
            return kind
    raise CompareError(f"{path}: cannot tell which benchmark wrote it; name it throughput*.json, "
                       f"inference_speed*.json or memory*.json, or pass --kind")


def flatten(kind: str, results: dict) -> dict[str, float]:
    """The comparable numbers of one results file, by metric name."""
    if kind in ("throughput", "memory"):
        if "metrics" not in results:
            raise CompareError(f"{kind} results have no 'metrics' section (written by an older script?)")
        return {k: float(v) for k, v in results["metrics"].items() if v is not None}
    if kind == "inference_speed":
        out = {}
        for row in results.get("rows", []):
            for col in SPEED_COLUMNS:
                if row.get(col) is not None:
                    out[f"{row['row']}/{col}"] = float(row[col])
        for k, v in (results.get("ratios") or {}).items():
            out[f"ratios/{k}"] = float(v)
        return out
    raise CompareError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")


def compare(kind: str, baseline: dict, current: dict[str, float], tolerance: float | None = None) -> list[Row]:
    """Rows for every metric of ``baseline`` (one kind's section); ``tolerance`` overrides the entries' own.

    Raises :class:`CompareError` naming the metrics ``current`` lacks."""
    missing = [m for m in baseline if m not in current]
    if missing:
        have = ", ".join(sorted(current)) or "nothing"
        raise CompareError(f"{kind}: the results lack {', '.join(repr(m) for m in missing)} "
                           f"(the baseline checks it); they have: {have}")
    rows = []
    for metric, entry in baseline.items():
        better = entry.get("better", "higher")
        if better not in ("higher", "lower", "info"):
            raise CompareError(f"{kind}/{metric}: 'better' is {better!r}; use higher, lower or info")
        tol = tolerance if tolerance is not None else entry.get("tolerance", DEFAULT_TOLERANCE)
        rows.append(Row(kind, metric, float(entry["value"]), current[metric], better, float(tol)))
    return rows


def format_table(rows: list[Row]) -> str:
    width = max([len(f"{r.kind}: {r.metric}") for r in rows] + [6])
    lines = [f"{'metric':<{width}}  {'baseline':>12}  {'now':>12}  {'change':>8}  {'tol':>5}  status",
             "-" * (width + 56)]
    for r in rows:
        lines.append(f"{r.kind + ': ' + r.metric:<{width}}  {r.baseline:>12,.4g}  {r.now:>12,.4g}  "
                     f"{r.change * 100:>+7.1f}%  {r.tolerance * 100:>4.0f}%  {r.status}"
                     + ("" if r.better == "info" else f" ({r.better} is better)"))
    return "\n".join(lines)


def run(paths: list[Path], baseline: dict, tolerance: float | None = None, kind: str | None = None
        ) -> list[Row]:
    """Compare every results file with its section of ``baseline``."""
    tolerance = tolerance if tolerance is not None else baseline.get("tolerance")
    rows = []
    for path in paths:
        k = kind or kind_of(path)
        section = baseline.get("metrics", {}).get(k)
        if not section:
            raise CompareError(f"{path}: the baseline has no {k!r} section")
        rows += compare(k, section, flatten(k, json.loads(path.read_text())), tolerance)
    return rows


def update(paths: list[Path], baseline: dict, kind: str | None = None) -> dict:
    """The baseline with its values replaced by those of ``paths`` (keys, directions and tolerances kept)."""
    for path in paths:
        k = kind or kind_of(path)
        current = flatten(k, json.loads(path.read_text()))
        for metric, entry in baseline.get("metrics", {}).get(k, {}).items():
            if metric not in current:
                raise CompareError(f"{path}: no {metric!r} to take as the baseline")
            entry["value"] = round(current[metric], 6)
    return baseline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
    ap.add_argument("--tolerance", type=float, default=None, help="relative, e.g. 0.15 (default: the baseline's)")
    ap.add_argument("--kind", choices=KINDS, default=None, help="for files whose name does not say")
    ap.add_argument("--update", action="store_true", help="write these results' values into the baseline")
    args = ap.parse_args(argv)
    try:
        baseline = json.loads(args.baseline.read_text())
        if args.update:
            args.baseline.write_text(json.dumps(update(args.results, baseline, args.kind), indent=1) + "\n")
            print(f"updated {args.baseline}")
            return 0
        rows = run(args.results, baseline, args.tolerance, args.kind)
    except (CompareError, OSError, json.JSONDecodeError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(rows))
    bad = [r for r in rows if r.regressed]
    if bad:
        print(f"\n{len(bad)} regression(s): " + ", ".join(f"{r.kind}: {r.metric}" for r in bad), file=sys.stderr)
        return 1
    print(f"\nall {len(rows)} metrics within tolerance (or better)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
