"""Shared plumbing for the tutorial examples: arguments, output folder, data subsets, plots.

Every example runs as ``python examples/chNN_*.py [--small] [--out DIR]``.  ``--small`` (or the
environment variable ``WORDCONV_EXAMPLE_SMALL=1``) shrinks data, models and epochs so that the test
suite can run it in seconds; without it the example runs at a size that shows the real effect.
Datasets come from the registry (``$WORDCONV_DATA`` is the local mirror); nothing is copied into the
repository: subsets a chapter needs as files are written under its output folder.
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path


def parse_args(description: str) -> argparse.Namespace:
    """``--small`` and ``--out``; ``args.small`` is also true when WORDCONV_EXAMPLE_SMALL=1."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--small", action="store_true", help="tiny data, models and epochs (what the tests run)")
    parser.add_argument("--out", default=None, help="output folder for plots and models (default: runs/examples/<name>)")
    args, _ = parser.parse_known_args()
    args.small = args.small or os.environ.get("WORDCONV_EXAMPLE_SMALL", "") not in ("", "0")
    return args


def out_dir(args: argparse.Namespace, name: str) -> Path:
    """The example's output folder (created)."""
    path = Path(args.out) if args.out else Path("runs") / "examples" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def sample(items: list, n: int | None, seed: int = 13) -> list:
    """A seeded sample of ``n`` items (all of them when n is None or larger), in their original order."""
    if n is None or n >= len(items):
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in keep]


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_png(path: Path) -> Path:
    """Assert that ``path`` is a non-empty PNG file."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, f"{path} is not a PNG plot"
    return Path(path)
