"""What the benchmark scripts share: the machine they ran on, and their tables in BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_isa() -> str:
    """The vector instructions torch's CPU kernels use here, e.g. "AVX2" or "AVX512 + native bf16"."""
    from wordconv.training.trainer import native_bf16

    isa = torch.backends.cpu.get_cpu_capability()
    return f"{isa} + native bf16" if native_bf16(torch.device("cpu")) else isa


def machine() -> str:
    return (f"{platform.platform()}, {cpu_model()} ({cpu_isa()}), {os.cpu_count()} cores, torch {torch.__version__} "
            f"with {torch.get_num_threads()} threads")


def write_between(md: str, begin: str, end: str, heading: str, path: Path = Path("BENCHMARKS.md")) -> None:
    """Put ``md`` between the ``begin``/``end`` markers of ``path``; append them under ``heading`` if absent."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{begin}\n{md}{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def append_run(out: Path, run: dict) -> None:
    """Append ``run`` to the ``runs`` list of the JSON results file ``out`` (created if absent or unreadable)."""
    state: dict = {"runs": []}
    if out.exists():
        try:
            state = json.loads(out.read_text())
        except json.JSONDecodeError:
            pass
    state.setdefault("runs", []).append(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(state, indent=1))
