"""train() and evaluate(): what the CLI and the Python API both call.

    config -> data splits -> preprocess + vocab (train only) -> model (registry encoder + task head)
           -> Trainer -> task.after_training (e.g. thresholds) -> evaluate test split
           -> model directory (atomic)

Every task (``config.task``: textcat, multilabel, regression) goes through this one path.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from sys import intern
from typing import Any

import torch
from rich.console import Console

from wordconv.config import Config, build_config, load_config_file, selection_metric, set_dotted
from wordconv.data.readers import Example
from wordconv.data.registry import DatasetSplits, load_data
from wordconv.data.text import Preprocessor
from wordconv.data.vocab import Vocab
from wordconv.errors import ConfigError, DataError
from wordconv.evaluation.metrics import headline
from wordconv.modeldir import Artifact
from wordconv.models.registry import get_model
from wordconv.finetune import FreezeSchedule
from wordconv.tasks.base import EncodedTexts, Task, text_ids
from wordconv.tasks.multilabel import MultiLabelClassification
from wordconv.tasks.regression import Regression
from wordconv.tasks.textcat import TextClassification
from wordconv.training import distributed
from wordconv.training.checkpoint import has_checkpoint, previous
from wordconv.training.trainer import Trainer, TrainResult, autocast, seed_everything, use_bf16


def make_task(config: Config, labels: list[str], class_weights: list[float] | None = None) -> Task:
    """The task object ``config.task`` names (its head keeps ``model.dropout`` and ``model.max_norm``)."""
    if config.task == "ner":
        from wordconv.tasks.ner import NamedEntityRecognition

        m = config.model
        return NamedEntityRecognition(labels, scheme=getattr(m, "tag_scheme", "iob2"), crf=getattr(m, "crf", False),
                                      dropout=m.dropout, lowercase=config.preprocessing.lowercase,
                                      char_buckets=getattr(m, "char_buckets", 512),
                                      max_word_chars=getattr(m, "max_word_chars", 20))
    if config.task == "qa":
        from wordconv.tasks.qa import QuestionAnswering

        m, q = config.model, config.qa
        return QuestionAnswering(max_answer_tokens=q.max_answer_tokens, n_best=q.n_best,
                                 max_question_tokens=q.max_question_tokens, doc_stride=q.doc_stride,
                                 lowercase=config.preprocessing.lowercase, tokenizer=config.preprocessing.tokenizer,
                                 char_buckets=getattr(m, "char_buckets", 512),
                                 max_word_chars=getattr(m, "max_word_chars", 16),
                                 max_context_tokens=getattr(m, "max_context_tokens", 400))
    head = {"dropout": config.model.dropout, "max_norm": config.model.max_norm}
    if config.task == "multilabel":
        return MultiLabelClassification(labels, separator=config.data.label_separator, **head)
    if config.task == "regression":
        return Regression(labels, metric=config.training.metric, **head)
    return TextClassification(labels, class_weights=class_weights, label_smoothing=config.training.label_smoothing,
                              **head)


def build_model(config: Config, vocab_size: int, labels: list[str], class_weights: list[float] | None = None,
                source_dir: Path | None = None) -> torch.nn.Module:
    """The full model (encoder from the registry + task head), freshly initialised.

    ``source_dir``: a saved model's ``encoder/`` folder, for architectures that keep files besides
    the weights (a pretrained encoder's config and tokenizer); its weights are loaded after."""
    entry = get_model(config.model.type)
    extra = {"source_dir": source_dir} if source_dir is not None else {}
    encoder = entry.build(config.model, config.embeddings, vocab_size, Vocab.pad_id, **extra)
    return make_task(config, labels, class_weights).build_model(encoder)


def is_subword(config: Config) -> bool:
    """Whether the model tokenizes for itself (a pretrained encoder): no word vocabulary, no vectors."""
    return config.model.type == "pretrained"


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
               "seed": "training.seed", "data_dir": "data.data_dir", "progress": "training.progress",
               "task": "task"}
    for key, value in shortcuts.items():
        if value is not None:
            sets[mapping[key]] = value
    if "model.type" in sets and sets["model.type"] != (base.get("model") or {}).get("type"):
        base["model"] = {"type": sets.pop("model.type")}  # another architecture: its own defaults
    for key, value in sets.items():  # typed values: set directly, never re-parsed from text
        set_dotted(base, key, value)
    return build_config(base, overrides)


def load_splits(config: Config) -> DatasetSplits:
    """The dataset's splits (with ``data.stream``: dev and test read, the training file tokenised into shards)."""
    d = config.data
    if d.stream:
        return load_streamed(config)
    return load_data(d.name, data_dir=d.data_dir, fold=d.fold, seed=d.split_seed, dev_fraction=d.dev_fraction,
                     format=d.format, text_field=d.text_field, label_field=d.label_field,
                     test_path=d.test_path, dev_path=d.dev_path, task=config.task, label_separator=d.label_separator)


def shard_cache_dir(config: Config) -> Path:
    if config.data.cache_dir:
        return Path(config.data.cache_dir).expanduser()
    if os.environ.get("WORDCONV_CACHE"):
        return Path(os.environ["WORDCONV_CACHE"]).expanduser() / "shards"
    import platformdirs

    return Path(platformdirs.user_cache_dir("wordconv")) / "shards"


def load_streamed(config: Config) -> DatasetSplits:
    """``data.stream``: the training file tokenised once into memory-mapped shards (reused while the file and
    the tokenizer settings stay the same), never held in memory; dev and test files read as usual."""
    from wordconv.data.readers import iter_examples, read_examples
    from wordconv.data.registry import _label_order
    from wordconv.data.shards import TokenTable, label_names, shard_cache, tokenizer_settings

    d = config.data
    if config.task not in ("textcat", "multilabel", "regression") or is_subword(config):
        raise ConfigError(f"data.stream streams word-id shards for word-level models on textcat, multilabel or "
                          f"regression; task {config.task} with model {config.model.type} reads its data in memory "
                          "(set data.stream=false)")
    path = Path(d.name).expanduser()
    if not path.is_file():
        raise ConfigError(f"data.stream: data.name must be a training file (label-first, JSONL, CSV/TSV); "
                          f"{d.name!r} is not one. For a registry dataset, pass its file under $WORDCONV_DATA")
    multilabel = config.task == "multilabel"
    read = {"format": d.format, "text_field": d.text_field, "label_field": d.label_field,
            "multilabel": multilabel, "label_separator": d.label_separator}

    def read_split(split_path: str | None) -> list[Example]:
        return read_examples(split_path, **read) if split_path else []

    dev, test = read_split(d.dev_path), read_split(d.test_path)
    settings = {"tokenizer": tokenizer_settings(config.preprocessing), "read": read}
    shards = shard_cache([path], settings, lambda: iter_examples(path, **read), TokenTable(Preprocessor(
        config.preprocessing)), shard_cache_dir(config), shard_tokens=d.shard_tokens)
    labels = ["score"] if config.task == "regression" else sorted(label_names(shards), key=_label_order)
    files = {"train": str(path), **({"dev": d.dev_path} if d.dev_path else {}),
             **({"test": d.test_path} if d.test_path else {})}
    note = (f"train streamed from shards in {shards}; dev {'from ' + d.dev_path if d.dev_path else 'none'}; "
            f"test {'from ' + d.test_path if d.test_path else 'none'}")
    return DatasetSplits(str(path), [], dev, test, labels, files, note, train_shards=str(shards))


def _check_texts(examples: list[Example], split: str) -> None:
    if not examples:
        raise DataError(f"the {split} split is empty: check the data file(s)")


def fit(config: Config, splits: DatasetSplits, console: Console | None = None,
        checkpoint: Path | None = None, resume: bool = False, callbacks: list | None = None,
        transfer: Any = None) -> tuple[Artifact, TrainResult]:
    """Train on ``splits`` as ``config`` says; return the artifact (not yet saved) and the result.

    ``transfer``: a :class:`wordconv.distillation.TransferSet` (distillation): the model trains on its texts,
    teacher logits and gold labels (-1 where none) instead of ``splits.train`` (word-level textcat only).

    ``callbacks``: more trainer callbacks (``on_epoch_start(epoch)`` / ``on_epoch_end(epoch, record)``),
    e.g. a hyperparameter search reporting each epoch's dev metric to its pruner.

    ``checkpoint``: a directory for resume state, written after every epoch; with ``resume``, a
    run interrupted earlier with the same config continues from its last finished epoch.
    """
    from wordconv.modeldir import base_meta

    console = console or Console(stderr=True)
    seed_everything(config.training.seed)
    streamed = splits.train_shards is not None  # data.stream: training texts come from memory-mapped shards
    if not streamed:
        _check_texts(splits.train, "train")
    pre = Preprocessor(config.preprocessing)
    t0 = time.perf_counter()
    subword = is_subword(config)
    ner = config.task == "ner"
    qa = config.task == "qa"
    if subword:  # the encoder's own tokenizer; the word vocabulary stays empty (specials only)
        train_tokens, vocab = None, Vocab.build([])
    elif streamed:  # the vocabulary from the shards' word counts
        from wordconv.data.shards import token_counts, vocab_from_counts

        train_tokens = None
        vocab = vocab_from_counts(token_counts(splits.train_shards), min_freq=config.preprocessing.min_freq,
                                  max_size=config.preprocessing.max_vocab)
    elif ner:  # tokenized sentences: the words as given (lowercased as configured)
        lower = config.preprocessing.lowercase
        train_tokens = [[w.lower() if lower else w for w in ex.tokens or ()] for ex in splits.train]
        vocab = Vocab.build(train_tokens, min_freq=config.preprocessing.min_freq,
                            max_size=config.preprocessing.max_vocab)
    elif qa:  # the words of the paragraphs and questions, offsets kept (no cleaning that moves characters)
        train_tokens = make_task(config, splits.labels).vocabulary_tokens(splits.train)
        vocab = Vocab.build(train_tokens, min_freq=config.preprocessing.min_freq,
                            max_size=config.preprocessing.max_vocab)
    else:
        # interned: one string object per word type, not per token (IMDB's token lists: 277 MiB -> 43 MiB)
        train_tokens = [[intern(w) for w in pre(t)]
                        for t in (transfer.texts if transfer is not None else (ex.text for ex in splits.train))]
        vocab = Vocab.build(train_tokens, min_freq=config.preprocessing.min_freq,
                            max_size=config.preprocessing.max_vocab)
    run_config = config  # as the user gave it: what a resumed run must match
    vectors = None
    if config.embeddings.mode != "rand":
        config, vocab, vectors, vectors_meta = attach_vectors(config, vocab, console)
    task = make_task(config, splits.labels)
    if streamed:  # min_length is set once the model is built
        from wordconv.data.shards import ShardedTexts, read_manifest

        train = ShardedTexts(splits.train_shards, vocab=vocab, targets=lambda exs: task.targets(exs, "train"))
        train_labels = train.labels
    else:
        train_labels = (None if ner or qa else list(transfer.gold) if transfer is not None
                        else task.targets(splits.train, "train"))
    weights = config.training.class_weights  # textcat only (the config refuses it for other tasks)
    if weights == "balanced":
        weights = task.balanced_weights(train_labels, len(splits.labels))
    elif weights == "none":
        weights = None
    model = build_model(config, len(vocab), splits.labels, weights)
    if vectors is not None:
        model.encoder.embedding.load_pretrained(vectors)
    min_len = model.encoder.min_length
    to_ids = text_ids(model.encoder, pre, vocab)
    if streamed:
        train.min_length = min_len
        truncated = read_manifest(splits.train_shards).get("truncated") or 0
        limit = (f"preprocessing.max_length={config.preprocessing.max_length} tokens and were cut "
                 f"({config.preprocessing.truncation}) when the shards were written")
    elif qa:
        train = task.encode(splits.train, to_ids, min_len, "train")
        truncated = task.skipped
        limit = ("what the reader reads (model.max_context_tokens words of a paragraph): their answers lie past "
                 "it and they are left out of training" if not subword else
                 "a window can hold: left out of training")
    elif ner:
        train = task.encode(splits.train, to_ids, min_len, "train")
        truncated = getattr(model.encoder, "truncated", 0)
        limit = (f"model.max_length={getattr(model.encoder, 'max_length', None)} sub-tokens: their last words are "
                 "not scored and are predicted O")
    elif subword:
        train = EncodedTexts(to_ids.encode_many([ex.text for ex in splits.train]), train_labels, min_len,
                             to_ids.pad_id)
        truncated = model.encoder.truncated
        limit = (f"model.max_length={model.encoder.max_length} subword tokens and were cut "
                 f"({config.model.truncation}); model.truncation=window reads long texts whole")
    else:
        train = EncodedTexts([vocab.encode(t) for t in train_tokens], train_labels, min_len)
        train_tokens = None  # the ids are what training reads: free the token lists before it starts
        if transfer is not None:  # the teacher's logits ride along in every batch
            train.teacher = transfer.logits
            model.distill = dict(transfer.loss)
        truncated = pre.truncated
        limit = (f"preprocessing.max_length={config.preprocessing.max_length} tokens and were cut "
                 f"({config.preprocessing.truncation}); set preprocessing.max_length=null to keep all")
    if truncated:  # training texts only (dev texts are encoded after this)
        console.print(f"[yellow]note:[/] {truncated} of {len(train)} training texts were longer than {limit}")
    dev = task.encode(splits.dev, to_ids, min_len, "dev") if splits.dev else None
    prep_seconds = time.perf_counter() - t0
    if config.training.progress:
        what = ("regression" if config.task == "regression" else
                "questions on paragraphs (extractive QA)" if qa else
                f"entity types {', '.join(splits.labels)} ({task.scheme} tags"
                f"{', CRF' if task.crf else ''})" if ner else f"{len(splits.labels)} labels")
        if config.task == "multilabel":
            what += " (multi-label)"
        console.print(f"[bold]{splits.name}[/]: {len(train)} train / {len(splits.dev)} dev / "
                      f"{len(splits.test)} test, {what}, "
                      + (f"subword vocab {len(model.encoder.tokenizer)}" if subword else f"vocab {len(vocab)}")
                      + f"; {splits.split_note}")
        n_params = sum(p.numel() for p in model.parameters())
        console.print(f"model [bold]{config.model.type}[/] ({n_params:,} parameters), "
                      f"{config.training.optimizer} lr {config.training.lr}, batch {config.training.batch_size}")
    state_file = None
    if checkpoint is not None:
        state_file = _prepare_checkpoint(Path(checkpoint), run_config, resume, console)
    task.before_training(model, train)
    trainer = Trainer(model, task, config.training, console=console,
                      callbacks=[FreezeSchedule(model), *(callbacks or [])])
    if config.training.progress and subword:
        p = config.model
        console.print(f"fine-tuning: strategy {p.strategy}, pooling {model.encoder.pooling}, schedule "
                      f"{config.training.schedule}, {'bf16' if trainer.bf16 else 'fp32'} on {trainer.device}"
                      + (f", lr decay {p.lr_decay} per layer" if p.lr_decay else ""))
    result = trainer.fit(train, dev, state_file, resume)
    if transfer is not None:
        model.distill = None  # an ordinary classifier from here on
    with autocast(trainer.device, trainer.bf16):
        tuned = task.after_training(model, dev, max(config.training.batch_size, 256))
    meta = base_meta(config.training.seed)
    meta["task"] = config.task
    meta["data"] = {"name": splits.name, "files": splits.files, "split": splits.split_note,
                    "sizes": {"train": len(train), "dev": len(splits.dev), "test": len(splits.test)}}
    if vectors is not None:
        meta["embeddings"] = vectors_meta
    meta["training"] = {
        "seconds": round(result.train_seconds, 3),
        "preprocess_seconds": round(prep_seconds, 3),
        "truncated_train_texts": truncated,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        # training steps only (dev scoring excluded)
        "tokens_per_second": round(result.train_tokens / loop, 1) if (loop := sum(h["epoch_seconds"] for h in
                                                                                   result.history)) else None,
        "threads": torch.get_num_threads(),
        "device": str(trainer.device),
        "bf16": trainer.bf16,
        "metric": selection_metric(config.task, config.training),
        **tuned,
    }
    art = Artifact(config, model, vocab, list(splits.labels), meta, history=result.history)
    return art, result


def attach_vectors(config: Config, vocab: Vocab, console: Console) -> tuple[Config, Vocab, torch.Tensor, dict]:
    """Read the pretrained vectors of the vocabulary's words (streaming the file once).

    Returns the config with ``embeddings.dim`` and the number of extra words actually added
    filled in (what a saved model is rebuilt from), the vocabulary with the extra words
    appended, the (len(vocab), dim) vectors and a summary for meta.json.
    """
    from wordconv.data.download import sha256_file
    from wordconv.embeddings.catalog import resolve_vectors
    from wordconv.embeddings.vectors import load_vectors

    emb = config.embeddings
    path = resolve_vectors(emb.vectors, config.data.data_dir, download=True)
    pv = load_vectors(path, vocab.itos, counts=vocab.counts, format=emb.vectors_format,
                      lowercase_fallback=emb.lowercase_fallback, extra=emb.extra_words,
                      lowercase_extra=config.preprocessing.lowercase,
                      casefold_file=config.preprocessing.lowercase and emb.lowercase_fallback, init_scale=emb.init_scale,
                      seed=config.training.seed, zero_rows=(Vocab.pad_id, Vocab.unk_id),
                      progress=config.training.progress)
    if emb.dim is not None and emb.dim != pv.dim:
        raise ConfigError(f"embeddings.dim is {emb.dim} but the vectors in {path} have {pv.dim} dimensions; "
                          "leave embeddings.dim unset to take the file's")
    if config.training.progress:
        console.print(f"vectors [bold]{path.name}[/] ({pv.dim}d, {emb.mode}): {pv.coverage}; "
                      f"{len(pv.extra_words):,} more words of the file added to the vocabulary")
    vocab = Vocab(vocab.itos + list(pv.extra_words), counts=vocab.counts)
    matrix = torch.from_numpy(pv.matrix)
    if len(pv.extra_words):
        matrix = torch.cat([matrix, torch.from_numpy(pv.extra_matrix)])
    config = config.model_copy(deep=True)
    config.embeddings.dim = pv.dim
    config.embeddings.extra_words = len(pv.extra_words)
    cov = pv.coverage
    meta = {"vectors": str(emb.vectors), "path": str(path), "format": pv.format, "dim": pv.dim,
            "sha256": sha256_file(path),
            "coverage": {"types_total": cov.types_total, "types_found": cov.types_found,
                         "tokens_total": cov.tokens_total, "tokens_found": cov.tokens_found,
                         "lowercase_hits": cov.lowercase_hits},
            "extra_words": len(pv.extra_words)}
    return config, vocab, matrix, meta


def _prepare_checkpoint(directory: Path, config: Config, resume: bool, console: Console) -> Path:
    """The resume-state file in ``directory``; refuse to resume a run made with another config.

    Under torchrun only rank 0 checks and writes (a mismatch stops it, and torchrun stops the rest)."""
    if not distributed.is_main():
        return directory / "state.safetensors"
    saved = directory / "config.json"
    current = config.model_dump(mode="json")
    if resume and saved.is_file():
        if json.loads(saved.read_text(encoding="utf-8")) != current:
            raise ConfigError(f"the checkpoint in {directory} was written by a run with another configuration; "
                              "resume with the same options, or delete that directory to start afresh")
    elif not resume and has_checkpoint(directory / "state.safetensors"):
        console.print(f"[yellow]note:[/] replacing the checkpoint of an earlier run in {directory} "
                      "(pass --resume to continue it instead)")
        for old in (directory / "state.safetensors", previous(directory / "state.safetensors")):
            old.unlink(missing_ok=True)  # a later fallback must never reach the earlier run's state
    directory.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_name(saved.name + ".tmp")  # atomic: a resume never reads half a config
    tmp.write_text(json.dumps(current, indent=2), encoding="utf-8")
    os.replace(tmp, saved)
    return directory / "state.safetensors"


def checkpoint_dir(output: str | Path) -> Path:
    """Where a run writing ``output`` keeps its resume state (removed once the model is saved)."""
    output = Path(output)
    return output.with_name(output.name + ".checkpoint")


def model_device(art: Artifact) -> tuple[torch.device, bool]:
    """Where the artifact's model lives and whether it runs under bf16 autocast (as in training)."""
    device = next(art.model.parameters()).device
    return device, use_bf16(art.config.training, art.model, device)


def evaluate_examples(art: Artifact, examples: list[Example], split: str = "test") -> tuple[dict, list]:
    """(metrics, predictions in example order): class ids (textcat), lists of label ids
    (multilabel) or values (regression)."""
    _check_texts(examples, split)
    task = make_task(art.config, art.labels)
    to_ids = text_ids(art.model.encoder, Preprocessor(art.config.preprocessing), art.vocab)
    data = task.encode(examples, to_ids, art.model.encoder.min_length, split)
    device, bf16 = model_device(art)
    data.device = device
    with autocast(device, bf16):
        metrics, preds = task.evaluate(art.model, data, batch_size=max(art.config.training.batch_size, 256))
    metrics["split"] = split
    metrics["task"] = art.config.task
    return metrics, preds


def train(data: str | None = None, model: str | None = None, output: str | Path | None = None, *,
          config: Config | dict | str | Path | None = None, overrides: list[str] | dict | None = None,
          fold: int | None = None, epochs: int | None = None, seed: int | None = None,
          data_dir: str | None = None, overwrite: bool = False, progress: bool | None = None,
          resume: bool = False, console: Console | None = None, task: str | None = None):
    """Train a model, evaluate it on the test split (or CV fold) and, with ``output``, save it.

    ``task``: ``textcat`` (default), ``multilabel`` or ``regression`` (sets ``config.task``).

    With ``output``, resume state is kept in ``<output>.checkpoint/`` after every epoch and
    removed once the model directory is written; ``resume=True`` continues an interrupted run.

    >>> model = wordconv.train("mr", "textcnn", "runs/mr")   # doctest: +SKIP
    >>> model.predict(["a gripping, funny film"])            # doctest: +SKIP
    """
    from wordconv.modeldir import check_output_dir

    cfg = resolve_config(config, overrides, data=data, model=model, fold=fold, epochs=epochs, seed=seed,
                         data_dir=data_dir, progress=progress, task=task)
    if output is not None:
        check_output_dir(output, overwrite)  # fail before spending minutes on training
    console = console or Console(stderr=True)
    if not distributed.is_main():  # under torchrun only rank 0 talks
        console = Console(stderr=True, quiet=True)
    splits = load_splits(cfg)
    ckpt = checkpoint_dir(output) if output is not None else None
    art, result = fit(cfg, splits, console, ckpt, resume)
    return finish(cfg, splits, art, result, output, overwrite, ckpt)


def finish(cfg: Config, splits: DatasetSplits, art: Artifact, result: TrainResult, output: str | Path | None,
           overwrite: bool, ckpt: Path | None):
    """After :func:`fit`: evaluate the test split, save the model directory (with its plots) when
    ``output`` is given, drop the checkpoint; return the :class:`~wordconv.inference.Predictor`."""
    from wordconv.inference import Predictor
    from wordconv.modeldir import save_artifact
    from wordconv.evaluation.report import plot_confusion_matrix, plot_learning_curve, plot_predicted_vs_gold

    if not distributed.is_main():  # under torchrun rank 0 evaluates and writes; the others are done
        distributed.cleanup()
        return Predictor(art, path=None)
    metrics = preds = None
    if splits.test:
        metrics, preds = evaluate_examples(art, splits.test, "test")
        metrics["dev"] = headline(result.best_dev) if result.best_dev else None
        art.metrics = metrics
    if output is not None:
        def plots(tmp: Path) -> None:
            plot_learning_curve(result.history, tmp / "learning_curve.png", selection_metric(cfg.task, cfg.training))
            if metrics is None:
                return
            if cfg.task == "textcat":
                plot_confusion_matrix(metrics["confusion_matrix"], metrics["labels"], tmp / "confusion_matrix.png",
                                      title=f"{splits.name} test")
            elif cfg.task == "regression":
                gold = make_task(cfg, art.labels).targets(splits.test, "test")
                plot_predicted_vs_gold(gold, preds, tmp / "predicted_vs_gold.png", title=f"{splits.name} test")

        save_artifact(output, art, overwrite=overwrite, extra=plots)
        if ckpt is not None:
            shutil.rmtree(ckpt, ignore_errors=True)  # the run is complete: nothing left to resume
    distributed.cleanup()
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
        if art.config.task == "qa":
            from wordconv.data.squad import read_qa_file

            examples = read_qa_file(data)
            metrics, _ = evaluate_examples(art, examples, str(data))
            metrics["data"] = str(data)
            return metrics
        if art.config.task == "ner":
            examples = read_examples(data, reader.get("format") or "conll")
            metrics, _ = evaluate_examples(art, examples, str(data))
            metrics["data"] = str(data)
            return metrics
        examples = read_examples(data, reader.get("format"), text_field=reader.get("text_field") or d.text_field,
                                 label_field=reader.get("label_field") or d.label_field,
                                 multilabel=art.config.task == "multilabel", label_separator=d.label_separator)
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
