"""Typed, validated run configuration.

A :class:`Config` is plain data: it is validated when built (unknown keys and wrong types are
rejected, every problem reported at once), saved in full with every model, and replayable with
``wordconv train --config model_dir/config.json``.  Dotted overrides (``training.lr=0.01``)
change single values.

The ``model`` section's fields depend on ``model.type``: each registered architecture brings its
own config class (see :mod:`wordconv.models.registry`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from wordconv.data.text import PreprocessConfig
from wordconv.errors import ConfigError


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    name: str = "mr"  # a registry name (`wordconv datasets`) or a path to a user file
    data_dir: str | None = None  # local mirror of the registry files; default $WORDCONV_DATA
    fold: int | None = None  # CV fold for sets without a test split (MR: 10 folds, Kim 2014); None = 0
    split_seed: int = 13  # seeds the fold assignment and the dev carve-out
    dev_fraction: float = Field(0.1, gt=0.0, lt=1.0)  # dev carved from train where there is none
    format: str | None = None  # reader format; None = detected from the file name
    text_field: str = "text"  # CSV/TSV/JSONL column holding the text
    label_field: str = "label"  # CSV/TSV/JSONL column holding the label
    # task multilabel: splits a label cell/string into labels ("a,b"); a JSONL label may also be a list
    label_separator: str = Field(",", min_length=1)
    test_path: str | None = None  # a user's own test file (then no CV)
    dev_path: str | None = None  # a user's own dev file (then no dev carve-out)
    # corpora larger than memory: tokenise the training file once into memory-mapped token-id shards
    # (cached under cache_dir, keyed by the file's bytes and the tokenizer settings) and stream batches
    # from them; a file path as data.name, with data.dev_path / data.test_path for dev and test
    stream: bool = False
    cache_dir: str | None = None  # the shard cache; None: $WORDCONV_CACHE, else the user cache dir / shards
    shard_tokens: int = Field(4_000_000, gt=0)  # tokens per shard: what one shard's batches hold in memory


class EmbeddingConfig(Section):
    # Kim (2014): "rand" (random vectors, trained), "static" (pretrained, kept fixed),
    # "non-static" (pretrained, fine-tuned), "multichannel" (a static and a fine-tuned copy side
    # by side, each with its own filter weights)
    mode: Literal["rand", "static", "non-static", "multichannel"] = "rand"
    vectors: str | None = None  # a vector file (word2vec .bin/.txt, GloVe, fastText .vec) or a catalog name
    vectors_format: Literal["word2vec", "word2vec-bin", "glove"] | None = None  # None: detected
    # vector size; None: 300 with random vectors (Kim 2014, the word2vec size), else the file's
    dim: int | None = Field(None, gt=0)
    init_scale: float = Field(0.25, gt=0.0)  # U[-a, a] init as in Kim's code (a = 0.25), also for words without a vector
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # dropout on word vectors (training only)
    # a word missing from the file takes the vector of its lowercase form; when the text is lowercased,
    # also that of a cased form in the file ("film" <- "Film", for cased vectors such as GoogleNews)
    lowercase_fallback: bool = True
    # pretrained words the training data never had, added to the vocabulary (kept fixed) so that a
    # test text's unseen words still get their vectors; the file's first (most frequent) words.
    # A saved model records how many were actually added.
    extra_words: int = Field(20000, ge=0)
    # the word vectors' learning rate as a fraction of training.lr (modes rand, non-static and
    # multichannel's fine-tuned channel): pretrained vectors fine-tuned at a smaller rate drift less
    # from what the large corpus taught them while the filters adapt (cf. ULMFiT's discriminative rates)
    lr_scale: float = Field(1.0, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> "EmbeddingConfig":
        if self.mode == "rand":
            if self.vectors is not None:
                raise ValueError(f"vectors={self.vectors!r} is set but mode is 'rand' (random vectors); "
                                 "use mode static, non-static or multichannel to load them")
            if self.dim is None:
                self.dim = 300
        elif self.vectors is None:
            raise ValueError(f"mode {self.mode!r} needs pretrained vectors: set embeddings.vectors to a "
                             "vector file or a name from `wordconv embeddings list`")
        return self


class TrainingConfig(Section):
    epochs: int = Field(10, gt=0)  # upper bound; the best epoch on dev is kept
    batch_size: int = Field(50, gt=0)  # Kim (2014): mini-batches of 50
    # Adam beat Adadelta on 4 of 5 sets here; adamw (decoupled weight decay) for fine-tuning encoders
    optimizer: Literal["adam", "adamw", "adadelta"] = "adam"
    lr: float = Field(1e-3, gt=0.0)  # Adam default; use 1.0 with adadelta
    weight_decay: float = Field(0.0, ge=0.0)
    # learning-rate schedule over all steps: constant; linear warm-up over `warmup` of the steps then
    # linear decay to 0 (BERT); slanted triangular (ULMFiT: a short linear rise over `warmup` of the
    # steps, cut_frac 0.1, then a long linear fall to lr / slanted_ratio)
    schedule: Literal["constant", "linear", "slanted"] = "constant"
    warmup: float = Field(0.1, ge=0.0, lt=1.0)  # fraction of all steps (slanted: ULMFiT's cut_frac)
    slanted_ratio: float = Field(32.0, ge=1.0)  # ULMFiT: how much smaller the lowest lr is than the peak
    # bf16 autocast for training and inference; None = on for pretrained encoders on hardware with
    # native bf16 (CPUs with AVX-512 BF16 or AMX, CUDA GPUs that support it), off otherwise
    bf16: bool | None = None
    device: str = "auto"  # "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...
    adadelta_rho: float = Field(0.95, gt=0.0, lt=1.0)  # Kim's code: rho 0.95
    # exponential moving average of the weights, evaluated and saved instead of the raw weights;
    # smooths the noisy last steps of small-data training. None = off
    ema_decay: float | None = Field(None, gt=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0)  # max global grad norm; None = off
    # word tables get sparse gradients and a lazy Adam step (only the rows a batch used move:
    # wordconv.training.lazy_adam): several times faster steps on a CPU with a large vocabulary.
    # adam/adamw only, no grad_clip, one process; off by default, so results match dense Adam's
    sparse_embeddings: bool = False
    class_weights: Literal["none", "balanced"] | list[float] = "none"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    # dev metric that picks the best epoch (and drives early stopping); None = the task's default
    # (DEFAULT_METRIC); the ones each task allows are in TASK_METRICS
    metric: str | None = None
    patience: int | None = Field(2, gt=0)  # early stopping: epochs without dev improvement
    # time budget in seconds for training: no epoch starts that would (at the last epoch's pace) end after it
    max_seconds: float | None = Field(None, gt=0)
    seed: int = 13  # model init, dropout and batch order
    threads: int | None = Field(None, gt=0)  # torch intra-op threads; None = torch's default
    progress: bool = True  # rich progress bar
    # resume state within an epoch (besides every epoch's end), when training writes a model directory:
    # every N steps, and/or when this many seconds passed since the last save; None = off
    checkpoint_every: int | None = Field(None, gt=0)
    checkpoint_seconds: float | None = Field(300.0, gt=0)


TASKS = ("textcat", "multilabel", "regression", "ner", "qa")

# dev metrics a task can select the best epoch by (lower is better for loss, mse, mae, rmse and
# hamming_loss: wordconv.evaluation.metrics.lower_is_better)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "textcat": ("accuracy", "f1_macro", "f1_micro", "f1_weighted", "loss"),
    # accuracy = subset accuracy (every label of a text right)
    "multilabel": ("accuracy", "f1_micro", "f1_macro", "f1_samples", "hamming_loss", "loss"),
    # accuracy = the rounded prediction equals the integer gold level (SST-1's 0..4)
    "regression": ("mse", "mae", "rmse", "pearson", "spearman", "loss", "accuracy"),
    # entity-level (conlleval: exact span and type), micro-averaged over the types
    "ner": ("f1", "precision", "recall", "token_accuracy", "loss"),
    # the official SQuAD v1.1 measures: token F1 and exact match of the normalised answer, best gold answer
    "qa": ("f1", "exact_match", "loss"),
}
DEFAULT_METRIC = {
    "textcat": "accuracy",
    # micro F1 pools every (text, label) decision: stable with rare labels, unlike macro F1, and
    # not all-or-nothing per text like subset accuracy
    "multilabel": "f1_micro",
    # the error of the predicted values themselves; pearson/spearman ignore shift and scale, so
    # they could keep an epoch whose scores are all off by a constant
    "regression": "mse",
    "ner": "f1",
    "qa": "f1",
}


# the model a task gets when the config names none (textcat, multilabel, regression: textcnn)
TASK_DEFAULT_MODEL = {"ner": "tagger", "qa": "qanet"}


def selection_metric(task: str, training: TrainingConfig) -> str:
    """The dev metric that picks the best epoch: ``training.metric`` or the task's default."""
    return training.metric or DEFAULT_METRIC[task]


class ModelParams(Section):
    """Base of every architecture's config; subclasses set ``type`` to their registered name."""

    type: str


class QAConfig(Section):
    """Task qa (extractive question answering): how questions are read and answers decoded."""

    max_answer_tokens: int = Field(30, gt=0)  # the longest answer considered, in the reader's tokens
    n_best: int = Field(20, gt=0)  # start and end candidates kept per window before pairing them
    max_question_tokens: int = Field(64, gt=0)  # longer questions are cut (their first tokens kept)
    # pretrained reader: a paragraph longer than a window is read in windows sharing this many sub-tokens
    # (at most half a window's paragraph part)
    doc_stride: int = Field(128, gt=0)


class DistillConfig(Section):
    """Knowledge distillation (``wordconv distill``): a fine-tuned teacher's logits train a student.

    Ignored by ``wordconv train``; a distilled model keeps it in its config.json as the record of how
    it was made."""

    # mse: mean-squared error between student and teacher logits (Tang et al. 2019);
    # kl: KL(teacher || student) of the softmaxes at ``temperature``, times T^2 (Hinton et al. 2015)
    loss: Literal["mse", "kl"] = "mse"
    temperature: float = Field(1.0, gt=0.0)  # kl only
    # weight of cross-entropy on the gold label, where the text has one (the training texts; augmented and
    # unlabelled texts have none); the teacher term has weight 1 - alpha
    alpha: float = Field(0.0, ge=0.0, le=1.0)
    # Tang et al.'s augmentation: this many perturbed copies of every labelled training text
    augment: int = Field(0, ge=0)
    p_mask: float = Field(0.1, ge=0.0, le=1.0)  # a word becomes [MASK]
    p_replace: float = Field(0.1, ge=0.0, le=1.0)  # a word becomes a neighbour (or a unigram draw)
    p_ngram: float = Field(0.25, ge=0.0, le=1.0)  # the copy is cut to a random n-gram of it
    ngram_max: int = Field(5, gt=0)
    # word vectors whose nearest neighbours replace words (a vector file or catalog name);
    # None: a word drawn from the training texts' unigram distribution
    neighbours: str | None = None
    neighbours_k: int = Field(10, gt=0)
    # unlabelled in-domain text (a corpus `wordconv embeddings train` reads: a dataset name, a text or
    # CSV/JSONL file, a folder or .tar.gz of .txt files with ``unlabeled_subdir``)
    unlabeled: str | None = None
    unlabeled_subdir: str | None = None
    unlabeled_max: int | None = Field(None, gt=0)  # keep this many (a seeded sample)
    unlabeled_sentences: bool = True  # split documents into sentences (for sentence-level tasks)
    # the seed of the transfer set (augmentation, unlabelled sample); None: training.seed.  Fix it so
    # that students trained with several seeds share one transfer set, and its cached teacher outputs
    transfer_seed: int | None = None
    teacher_batch_size: int = Field(64, gt=0)
    cache_dir: str | None = None  # teacher outputs; None: $WORDCONV_CACHE/teacher or the user cache dir


class Config(Section):
    # textcat: one label per text (softmax); multilabel: any subset of the labels (sigmoid, per-label
    # thresholds tuned on dev); regression: a number per text (e.g. a sentiment intensity);
    # ner: one tag per word of a tokenized sentence (named entities, CoNLL files); qa: the answer to a
    # question as a span of a given paragraph (SQuAD)
    task: Literal["textcat", "multilabel", "regression", "ner", "qa"] = "textcat"
    data: DataConfig = DataConfig()
    preprocessing: PreprocessConfig = PreprocessConfig()
    embeddings: EmbeddingConfig = EmbeddingConfig()
    model: SerializeAsAny[ModelParams] = Field(default_factory=lambda: _model_params({"type": "textcnn"}))
    training: TrainingConfig = TrainingConfig()
    qa: QAConfig = QAConfig()
    distill: DistillConfig = DistillConfig()

    @model_validator(mode="after")
    def _model_training_defaults(self) -> "Config":
        """An architecture may bring its own training defaults (a pretrained encoder fine-tunes for 3
        epochs at lr 5e-5, not 10 at 1e-3); a value the user set is never changed."""
        defaults = getattr(self.model, "training_defaults", {})
        updates = {k: v for k, v in defaults.items() if k not in self.training.model_fields_set}
        if updates:  # a new section: the shared default instance is never changed
            self.training = TrainingConfig.model_validate(self.training.model_dump(exclude_unset=True) | updates)
        return self

    @field_validator("model", mode="before")
    @classmethod
    def _resolve_model(cls, value: Any) -> ModelParams:
        if isinstance(value, ModelParams):
            value = value.model_dump()
        if not isinstance(value, dict):
            raise ValueError("model must be a mapping with a 'type' key, e.g. {type: textcnn}")
        return _model_params(value)

    @model_validator(mode="after")
    def _check_task_options(self) -> "Config":
        problems = []
        t = self.training
        allowed = TASK_METRICS[self.task]
        if t.metric is not None and t.metric not in allowed:
            problems.append(f"training.metric: {t.metric!r} does not apply to task {self.task!r}; use one of "
                            f"{', '.join(allowed)} (or null for the default, {DEFAULT_METRIC[self.task]})")
        if self.task != "textcat":
            if t.class_weights != "none":
                problems.append(f"training.class_weights applies to task textcat only (task is {self.task!r}); "
                                "remove it")
            if t.label_smoothing:
                problems.append(f"training.label_smoothing applies to task textcat only (task is {self.task!r}); "
                                "set it to 0")
        from wordconv.models.registry import get_model, model_names

        if self.task not in get_model(self.model.type).tasks:
            problems.append(f"model.type: {self.model.type!r} does not serve task {self.task!r}; models that do: "
                            f"{', '.join(model_names(self.task))}")
        if self.task != "multilabel" and self.data.label_separator != ",":
            problems.append(f"data.label_separator applies to task multilabel only (task is {self.task!r}); "
                            "set task=multilabel or remove it")
        if self.task != "qa" and self.qa != QAConfig():
            problems.append(f"the qa section applies to task qa only (task is {self.task!r}); set task=qa or remove it")
        if problems:
            raise ValueError("\n  ".join(problems))
        return self


def _model_params(value: dict) -> ModelParams:
    from wordconv.models.registry import model_config_class

    value = dict(value)
    name = value.setdefault("type", "textcnn")
    return model_config_class(name).model_validate(value)


def _format_errors(err: ValidationError, prefix: str = "") -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        loc = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "(config)"
        if not e["loc"] and e["type"] == "value_error":  # a check across sections: its message names the keys
            lines.append(f"  {e['msg'].removeprefix('Value error, ')}")
        elif e["type"] == "extra_forbidden":
            lines.append(f"  {loc}: unknown key (check the spelling; `wordconv train --help` lists sections)")
        else:
            lines.append(f"  {loc}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def build_config(data: dict | None = None, overrides: list[str] | dict[str, Any] | None = None,
                 source: str = "config") -> Config:
    """Validate a nested dict plus dotted overrides into a :class:`Config`.

    Every problem is reported at once in one :class:`ConfigError`.
    """
    data = json.loads(json.dumps(data or {}))  # deep copy, plain types only
    for key, value in _parse_overrides(overrides).items():
        set_dotted(data, key, value)
    model = data.get("model")
    if data.get("task") in TASK_DEFAULT_MODEL and (model is None or (isinstance(model, dict) and "type" not in model)):
        data.setdefault("model", {})["type"] = TASK_DEFAULT_MODEL[data["task"]]  # textcnn serves neither
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid {source}:\n{_format_errors(err)}") from None
    except ConfigError as err:  # unknown model type, raised from the model validator
        raise ConfigError(f"invalid {source}: {err}") from None


def _parse_overrides(overrides: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. training.lr=0.001)")
        key, raw = item.split("=", 1)
        try:  # YAML gives numbers, booleans, null and [lists] their types
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {'.'.join(parts[: i + 1])} is a value, not a section")
        node = child
    node[parts[-1]] = value


def load_config_file(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a JSON or YAML config file (e.g. a model directory's ``config.json``)."""
    path = Path(path)
    if path.is_dir() and (path / "config.json").exists():
        path = path / "config.json"
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (pass a .json/.yaml file or a model directory)")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, RecursionError, yaml.YAMLError) as err:  # ValueError: JSON, or bytes that are not UTF-8
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (data, model, training, ...)")
    return build_config(data, overrides, source=str(path))

