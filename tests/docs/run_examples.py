"""Run tutorial examples at their small size in ONE Python process; write a JSON report.

    python tests/docs/run_examples.py REPORT.json OUTDIR examples/ch01_*.py ...

Each example runs as ``__main__`` (``runpy``) with ``--small --out OUTDIR/<name>``, so torch,
transformers and wordconv are imported once for all of them (about 10 s of a 2-core machine's time
per process otherwise).  A failing example (an AssertionError or any other exception) is recorded
with its traceback and the next one runs.
"""

import json
import os
import runpy
import sys
import time
import traceback
from pathlib import Path


def main() -> None:
    report_path, out_root, *scripts = sys.argv[1:]
    os.environ["WORDCONV_EXAMPLE_SMALL"] = "1"
    report = {}
    for script in scripts:
        name = Path(script).stem
        argv, path = sys.argv, list(sys.path)
        sys.argv = [script, "--small", "--out", str(Path(out_root) / name)]
        start = time.perf_counter()
        try:
            runpy.run_path(script, run_name="__main__")
            report[name] = {"ok": True}
        except BaseException:  # noqa: BLE001 - the report carries the traceback; the next example still runs
            report[name] = {"ok": False, "error": traceback.format_exc()}
        finally:
            sys.argv, sys.path[:] = argv, path
            sys.modules.pop("_common", None)
        report[name]["seconds"] = round(time.perf_counter() - start, 2)
        print(f"{name}: {'ok' if report[name]['ok'] else 'FAILED'} in {report[name]['seconds']} s", flush=True)
        Path(report_path).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
