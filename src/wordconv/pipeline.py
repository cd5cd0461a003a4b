"""train() and evaluate(): what the CLI and the Python API both call.

    config -> data splits -> preprocess + vocab (train only) -> model (registry) -> Trainer
           -> evaluate test split -> model directory (atomic)
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from wordconv.config import Config, build_config, load_config_file, set_dotted
from wordconv.data.readers import Example
from wordconv.data.registry import DatasetSplits, load_data
from wordconv.data.text import Preprocessor
from wordconv.data.vocab import Vocab
from wordconv.errors import ConfigError, DataError
from wordconv.evaluation.metrics import headline
from wordconv.modeldir import Artifact
from wordconv.models.registry import get_model
from wordconv.tasks.textcat import EncodedTexts, TextClassification, TextClassifier
from wordconv.training.trainer import Trainer, TrainResult, seed_everything


def make_task(config: Config, labels: list[str], class_weights: list[float] | None = None) -> TextClassification:
    return TextClassification(labels, dropout=config.model.dropout, max_norm=config.model.max_norm,
                              class_weights=class_weights, label_smoothing=config.training.label_smoothing)


def build_model(config: Config, vocab_size: int, labels: list[str], class_weights: list[float] | None = None
                ) -> TextClassifier:
    """The full model (encoder from the registry + task head), freshly initialised."""
    entry = get_model(config.model.type)
    encoder = entry.build(config.model, config.embeddings, vocab_size, Vocab.pad_id)
    return make_task(config, labels, class_weights).build_model(encoder)


def resolve_config(config: Config | dict | str | Path | None = None, overrides: list[str] | dict | None = None,
                   **shortcuts: Any) -> Config:
    """A Config from a file / dict / Config, then shortcut arguments, then dotted overrides."""
    if isinstance(config, (str, Path)):
        base = load_config_file(config).model_dump(mode="json")
    elif isinstance(config, Config):
        base = config.model_dump(mode="json")
    else:
        base = json.loads(json.dumps(config or {}))  # a deep copy: the caller's dict is not changed
    sets: dict[str, Any] = {}
    mapping = {"data": "data.name", "model": "model.type", "fold": "data.fold", "epochs": "training.epochs",
               "seed": "training.seed", "data_dir": "data.data_dir", "progress": "training.progress"}
    for key, value in shortcuts.items():
        if value is not None:
            sets[mapping[key]] = value
    if "model.type" in sets and sets["model.type"] != (base.get("model") or {}).get("type"):
        base["model"] = {"type": sets.pop("model.type")}  # another architecture: its own defaults
    for key, value in sets.items():  # typed values: set directly, never re-parsed from text
        set_dotted(base, key, value)
    return build_config(base, overrides)


def load_splits(config: Config) -> DatasetSplits:
    d = config.data
    return load_data(d.name, data_dir=d.data_dir, fold=d.fold, seed=d.split_seed, dev_fraction=d.dev_fraction,
                     format=d.format, text_field=d.text_field, label_field=d.label_field,
                     test_path=d.test_path, dev_path=d.dev_path)


def _check_texts(examples: list[Example], split: str) -> None:
    if not examples:
        raise DataError(f"the {split} split is empty: check the data file(s)")


def fit(config: Config, splits: DatasetSplits, console: Console | None = None,
        checkpoint: Path | None = None, resume: bool = False) -> tuple[Artifact, TrainResult]:
    """Train on ``splits`` as ``config`` says; return the artifact (not yet saved) and the result.

    ``checkpoint``: a directory for resume state, written after every epoch; with ``resume``, a
    run interrupted earlier with the same config continues from its last finished epoch.
    """
    from wordconv.modeldir import base_meta

    console = console or Console(stderr=True)
    seed_everything(config.training.seed)
    _check_texts(splits.train, "train")
    pre = Preprocessor(config.preprocessing)
    t0 = time.perf_counter()
    train_tokens = [pre(ex.text) for ex in splits.train]
    truncated = pre.truncated  # training texts only (dev texts pass through `pre` later)
    if truncated:
        console.print(f"[yellow]note:[/] {truncated} of {len(train_tokens)} training texts were longer than "
                      f"preprocessing.max_length={config.preprocessing.max_length} tokens and were cut "
                      f"({config.preprocessing.truncation}); set preprocessing.max_length=null to keep all")
    vocab = Vocab.build(train_tokens, min_freq=config.preprocessing.min_freq, max_size=config.preprocessing.max_vocab)
    task = make_task(config, splits.labels)
    train_labels = task.label_ids(splits.train, "train")
    weights = config.training.class_weights
    if weights == "balanced":
        weights = task.balanced_weights(train_labels, len(splits.labels))
    elif weights == "none":
        weights = None
    model = build_model(config, len(vocab), splits.labels, weights)
    min_len = model.encoder.min_length
    train = EncodedTexts([vocab.encode(t) for t in train_tokens], train_labels, min_len)
    dev = task.encode(splits.dev, pre, vocab, min_len, "dev") if splits.dev else None
    prep_seconds = time.perf_counter() - t0
    if config.training.progress:
        console.print(f"[bold]{splits.name}[/]: {len(splits.train)} train / {len(splits.dev)} dev / "
                      f"{len(splits.test)} test, {len(splits.labels)} labels, vocab {len(vocab)}; "
                      f"{splits.split_note}")
        n_params = sum(p.numel() for p in model.parameters())
        console.print(f"model [bold]{config.model.type}[/] ({n_params:,} parameters), "
                      f"{config.training.optimizer} lr {config.training.lr}, batch {config.training.batch_size}")
    state_file = None
    if checkpoint is not None:
        state_file = _prepare_checkpoint(Path(checkpoint), config, resume, console)
    result = Trainer(model, task, config.training, console=console).fit(train, dev, state_file, resume)
    meta = base_meta(config.training.seed)
    meta["data"] = {"name": splits.name, "files": splits.files, "split": splits.split_note,
                    "sizes": {"train": len(splits.train), "dev": len(splits.dev), "test": len(splits.test)}}
    meta["training"] = {
        "seconds": round(result.train_seconds, 3),
        "preprocess_seconds": round(prep_seconds, 3),
        "truncated_train_texts": truncated,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "tokens_per_second": round(result.train_tokens / result.train_seconds, 1) if result.train_seconds else None,
        "threads": torch.get_num_threads(),
    }
    art = Artifact(config, model, vocab, list(splits.labels), meta, history=result.history)
    return art, result


def _prepare_checkpoint(directory: Path, config: Config, resume: bool, console: Console) -> Path:
    """The resume-state file in ``directory``; refuse to resume a run made with another config."""
    saved = directory / "config.json"
    current = config.model_dump(mode="json")
    if resume and saved.is_file():
        if json.loads(saved.read_text(encoding="utf-8")) != current:
            raise ConfigError(f"the checkpoint in {directory} was written by a run with another configuration; "
                              "resume with the same options, or delete that directory to start afresh")
    elif not resume and (directory / "state.safetensors").is_file():
        console.print(f"[yellow]note:[/] replacing the checkpoint of an earlier run in {directory} "
                      "(pass --resume to continue it instead)")
    directory.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(current, indent=2), encoding="utf-8")
    return directory / "state.safetensors"


def checkpoint_dir(output: str | Path) -> Path:
    """Where a run writing ``output`` keeps its resume state (removed once the model is saved)."""
    output = Path(output)
    return output.with_name(output.name + ".checkpoint")


def evaluate_examples(art: Artifact, examples: list[Example], split: str = "test") -> tuple[dict, list[int]]:
    _check_texts(examples, split)
    task = make_task(art.config, art.labels)
    pre = Preprocessor(art.config.preprocessing)
    data = task.encode(examples, pre, art.vocab, art.model.encoder.min_length, split)
    metrics, preds = task.evaluate(art.model, data, batch_size=max(art.config.training.batch_size, 256))
    metrics["split"] = split
    return metrics, preds


def train(data: str | None = None, model: str | None = None, output: str | Path | None = None, *,
          config: Config | dict | str | Path | None = None, overrides: list[str] | dict | None = None,
          fold: int | None = None, epochs: int | None = None, seed: int | None = None,
          data_dir: str | None = None, overwrite: bool = False, progress: bool | None = None,
          resume: bool = False, console: Console | None = None):
    """Train a model, evaluate it on the test split (or CV fold) and, with ``output``, save it.

    With ``output``, resume state is kept in ``<output>.checkpoint/`` after every epoch and
    removed once the model directory is written; ``resume=True`` continues an interrupted run.

    >>> model = wordconv.train("mr", "textcnn", "runs/mr")   # doctest: +SKIP
    >>> model.predict(["a gripping, funny film"])            # doctest: +SKIP
    """
    from wordconv.inference import Predictor
    from wordconv.modeldir import check_output_dir, save_artifact
    from wordconv.evaluation.report import plot_confusion_matrix, plot_learning_curve

    cfg = resolve_config(config, overrides, data=data, model=model, fold=fold, epochs=epochs, seed=seed,
                         data_dir=data_dir, progress=progress)
    if output is not None:
        check_output_dir(output, overwrite)  # fail before spending minutes on training
    console = console or Console(stderr=True)
    splits = load_splits(cfg)
    ckpt = checkpoint_dir(output) if output is not None else None
    art, result = fit(cfg, splits, console, ckpt, resume)
    metrics = None
    if splits.test:
        metrics, _ = evaluate_examples(art, splits.test, "test")
        metrics["dev"] = headline(result.best_dev) if result.best_dev else None
        art.metrics = metrics
    if output is not None:
        def plots(tmp: Path) -> None:
            plot_learning_curve(result.history, tmp / "learning_curve.png", cfg.training.metric)
            if metrics is not None:
                plot_confusion_matrix(metrics["confusion_matrix"], metrics["labels"], tmp / "confusion_matrix.png",
                                      title=f"{splits.name} test")

        save_artifact(output, art, overwrite=overwrite, extra=plots)
        shutil.rmtree(ckpt, ignore_errors=True)  # the run is complete: nothing left to resume
    return Predictor(art, path=Path(output) if output is not None else None)


def evaluate(model_dir: str | Path, data: str | None = None, *, split: str = "test", data_dir: str | None = None,
             fold: int | None = None, **reader: Any) -> dict:
    """Evaluate a saved model on a registry dataset's split or on a labelled file.

    A registry dataset is split exactly as at training time (same fold, seeds and dev fraction)
    unless ``fold`` says otherwise.
    """
    from wordconv.data.readers import read_examples
    from wordconv.modeldir import load_artifact

    art = load_artifact(model_dir)
    if data is not None and Path(data).exists():  # a user's labelled file: all of it is evaluated
        d = art.config.data
        examples = read_examples(data, reader.get("format"), text_field=reader.get("text_field") or d.text_field,
                                 label_field=reader.get("label_field") or d.label_field)
        metrics, _ = evaluate_examples(art, examples, str(data))
        metrics["data"] = str(data)
        return metrics
    dcfg = art.config.data.model_copy(update={k: v for k, v in
                                              {"name": data, "data_dir": data_dir, "fold": fold, **reader}.items()
                                              if v is not None})
    if data is not None and data != art.config.data.name:  # another registry set: its own standard split
        dcfg = dcfg.model_copy(update={"fold": fold, "test_path": None, "dev_path": None})
    cfg = art.config.model_copy(update={"data": dcfg})
    splits = load_splits(cfg)
    chosen = {"train": splits.train, "dev": splits.dev, "test": splits.test}.get(split)
    if chosen is None:
        raise DataError(f"unknown split {split!r}: use train, dev or test")
    metrics, _ = evaluate_examples(art, chosen, split)
    metrics["data"] = splits.name
    return metrics
