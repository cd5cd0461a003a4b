"""The documentation builds offline with warnings as errors, and quotes BENCHMARKS.md faithfully."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BENCHMARKS = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")


def test_mkdocs_build_strict(tmp_path):
    """mkdocs + mkdocstrings (griffe reads src/ statically): every page, link and docstring, no warning."""
    env = {**os.environ, "NO_COLOR": "1"}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(key, None)
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    site = tmp_path / "site"
    assert (site / "tutorial" / "04-metrics.html").is_file()
    assert "harmonic mean" in (site / "tutorial" / "04-metrics.html").read_text(encoding="utf-8")
    assert "class TextClassifier" in (site / "api" / "predict.html").read_text(encoding="utf-8") or \
        "TextClassifier" in (site / "api" / "predict.html").read_text(encoding="utf-8")
    assert "77.33" in (site / "benchmarks.html").read_text(encoding="utf-8")  # BENCHMARKS.md included


def _nav_files(nav) -> list[str]:
    out = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        out += _nav_files(value) if isinstance(value, list) else [value]
    return out


def test_every_docs_page_is_in_the_nav():
    nav = _nav_files(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages


def test_each_tutorial_page_names_an_existing_example():
    for page in sorted((DOCS / "tutorial").glob("*.md")):
        names = re.findall(r"examples/(ch\d\d_\w+\.py)", page.read_text(encoding="utf-8"))
        assert names, f"{page.name} names no example"
        for name in names:
            assert (ROOT / "examples" / name).is_file(), f"{page.name}: examples/{name} does not exist"


def _prose(text: str) -> str:
    """The text without fenced code blocks (example output there comes from small runs, not benchmarks)."""
    return re.sub(r"```.*?```", "", text, flags=re.S)


# measured numbers: decimals (77.33, 0.96, 8.19) and thousands (29,458); a few non-measurements are allowed
NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.,])\d+\.\d+(?![\w])")
NOT_MEASURED = {"0.5", "0.25", "0.6", "0.75", "0.95", "2.6", "1.5", "0.7", "0.3", "3.0", "3e-3"}


def _numbers(path: Path) -> set[str]:
    return set(NUMBER.findall(_prose(path.read_text(encoding="utf-8")))) - NOT_MEASURED


def test_quoted_numbers_are_the_benchmarks():
    """Every decimal or thousands-separated number in the tutorial pages and the READMEs is in BENCHMARKS.md."""
    pages = sorted(DOCS.rglob("*.md")) + [ROOT / "README.md", ROOT / "README.zh-CN.md"]
    missing = {str(p.relative_to(ROOT)): sorted(n for n in _numbers(p) if n not in BENCHMARKS) for p in pages}
    missing = {k: v for k, v in missing.items() if v}
    assert not missing, f"numbers not found in BENCHMARKS.md: {missing}"
