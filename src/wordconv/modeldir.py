"""The model directory: wordconv's one artifact (no pickles).

    config.json        fully resolved Config (replay with `wordconv train --config DIR/config.json`)
    model.safetensors  weights
    vocab.json         word vocabulary
    labels.json        label names, in output order (regression: ["score"], its one output)
    meta.json          versions, git commit, seed, data file hashes, timings, created_at, and the
                       sha256 of config.json, model.safetensors, vocab.json, labels.json (checked on load)
    metrics.json       evaluation of the chosen split (accuracy, f1_macro, ...; multilabel: also
                       hamming_loss, f1_samples, per-label thresholds; regression: mse, pearson, ...)
    history.jsonl      one JSON line per epoch
    encoder/           a pretrained encoder's own config.json and tokenizer files (model.type
                       pretrained): with model.safetensors, all it needs to load offline
    *.png              learning curve; confusion matrix (textcat) or predicted vs gold (regression)

What a task learns besides weights lives in the weights file as buffers: a multi-label model's
per-label decision thresholds, a regression model's target mean/std/range.

Saving writes everything into a temporary sibling directory and renames it into place, so a
crash never leaves a half-written model behind.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from wordconv.config import Config, build_config
from wordconv.data.download import sha256_file
from wordconv.data.vocab import Vocab
from wordconv.errors import ConfigError, ModelError

REQUIRED_FILES = ("config.json", "model.safetensors", "vocab.json", "labels.json")
# options added to a model after directories of it were saved: (model.type, key) -> the behaviour those
# directories were trained with, applied when their config.json lacks the key (a new default must not
# change, or break, a model saved before it existed)
SAVED_BEFORE_DEFAULTS = {("qanet", "match_features"): False}


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad JSON or not UTF-8
        raise ModelError(f"{path}: cannot read JSON ({err}); the model directory is damaged — retrain or restore it") from None


def check_output_dir(path: str | Path, overwrite: bool) -> Path:
    """Fail early (before any training) when the output directory cannot be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ModelError(f"output {path} exists and is a file; choose a directory path")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise ModelError(f"output directory {path} already exists and is not empty; "
                         "choose another --output or pass --overwrite")
    parent = path.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise ModelError(f"cannot write to {parent}: permission denied")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file next to ``path``; once the block succeeds it is flushed to disk and
    renamed onto ``path``, so readers see the old file or the whole new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_directory(path: str | Path, fill: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Create ``path`` by filling a temporary sibling directory and renaming it into place."""
    path = check_output_dir(path, overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.resolve().parent))
    try:
        fill(tmp)
        for f in tmp.rglob("*"):  # flush file contents before the rename makes them visible
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"could not write model directory {path}: {err}; nothing was written there "
                         "(check free disk space and permissions)") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def git_commit() -> str | None:
    """The commit of the wordconv source tree, when it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def base_meta(seed: int) -> dict:
    from wordconv import __version__

    return {
        "wordconv_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "git_commit": git_commit(),
        "seed": seed,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass
class Artifact:
    """A trained model in memory: what a model directory holds (config, weights, vocab, labels, meta, metrics)."""

    config: Config
    model: torch.nn.Module
    vocab: Vocab
    labels: list[str]
    meta: dict
    metrics: dict | None = None
    history: list[dict] | None = None


def save_artifact(path: str | Path, art: Artifact, *, overwrite: bool = False,
                  extra: Callable[[Path], None] | None = None) -> Path:
    """Write ``art`` as a model directory at ``path``, atomically; ``extra(tmp)`` may add files (plots) first."""

    def fill(tmp: Path) -> None:
        write_json(tmp / "config.json", art.config.model_dump(mode="json"))
        save_model(art.model, str(tmp / "model.safetensors"), metadata={"format": "pt", "wordconv": "1"})
        art.vocab.save(tmp / "vocab.json")
        write_json(tmp / "labels.json", art.labels)
        # checked by load_artifact: a damaged or swapped file is refused instead of loaded silently
        write_json(tmp / "meta.json", {**art.meta, "checksums": {f: sha256_file(tmp / f) for f in REQUIRED_FILES}})
        if art.metrics is not None:
            write_json(tmp / "metrics.json", art.metrics)
        if art.history is not None:
            (tmp / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in art.history), encoding="utf-8")
        save_files = getattr(art.model.encoder, "save_files", None)
        if save_files is not None:
            save_files(tmp / "encoder")
        if extra is not None:
            extra(tmp)

    return atomic_directory(path, fill, overwrite)


def fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable (a no-op where folders cannot be opened or synced)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the files themselves are synced
    finally:
        os.close(fd)


def verify_checksums(path: Path, meta: dict) -> None:
    """Compare the files with the sha256 sums meta.json recorded at save time (directories saved before
    checksums were recorded have none, and pass)."""
    sums = meta.get("checksums")
    if not isinstance(sums, dict):
        return
    for name, expected in sums.items():
        if name not in REQUIRED_FILES:
            continue
        if sha256_file(path / name) != expected:
            raise ModelError(f"{path / name} does not match the sha256 recorded in {path / 'meta.json'} when the model "
                             "was saved: the file was changed or damaged since. Restore the directory from a copy or "
                             "retrain; a model directory is written whole by `wordconv train`, never edited")


def load_artifact(path: str | Path) -> Artifact:
    """Rebuild the model from ``config.json`` through the registry and load weights strictly.

    No code is loaded from the directory: ``model.type`` must name a registered architecture, the weights are
    safetensors (never unpickled), and the files must match the checksums recorded in ``meta.json``."""
    from wordconv.pipeline import build_model

    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"model directory {path} does not exist (train one with `wordconv train ... --output {path}`)")
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise ModelError(f"{path} is not a wordconv model directory: missing {', '.join(missing)}")
    meta = read_json(path / "meta.json") if (path / "meta.json").is_file() else {}
    verify_checksums(path, meta if isinstance(meta, dict) else {})
    raw = read_json(path / "config.json")
    model_section = raw.get("model") if isinstance(raw, dict) else None
    if isinstance(model_section, dict):
        for (kind, key), value in SAVED_BEFORE_DEFAULTS.items():
            if model_section.get("type") == kind and key not in model_section:
                model_section[key] = value
    try:
        config = build_config(raw, source=str(path / "config.json"))
    except ConfigError as err:
        raise ModelError(f"{err}\n(the model was saved by an incompatible wordconv version, or config.json was edited)") from None
    vocab = Vocab.load(path / "vocab.json")
    labels = read_json(path / "labels.json")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{path / 'labels.json'}: expected a JSON list of label names")
    source = None
    if config.model.type == "pretrained":
        source = path / "encoder"
        if not (source / "config.json").is_file():
            raise ModelError(f"{path} holds a fine-tuned pretrained model but not its encoder/ folder "
                             "(config.json and tokenizer files): the directory is incomplete — retrain or restore it")
    try:
        model = build_model(config, len(vocab), labels, source_dir=source)
    except ConfigError as err:
        raise ModelError(f"{path}: {err}") from None
    try:
        load_model(model, str(path / "model.safetensors"), strict=True)
    except (SafetensorError, RuntimeError, OSError) as err:
        raise ModelError(f"{path / 'model.safetensors'}: weights do not fit the architecture in config.json ({err})") from None
    model.eval()
    metrics = read_json(path / "metrics.json") if (path / "metrics.json").is_file() else None
    return Artifact(config, model, vocab, labels, meta, metrics)

