"""Architectures by registered name.

A config names a model type by a short name (``textcnn``, ``dpcnn``, ``fasttext``); loading a saved model
looks the name up here and never imports a path written in a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from wordconv.errors import ConfigError

if TYPE_CHECKING:
    from wordconv.config import ModelParams


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config_class: type
    # (params, embeddings_config, vocab_size, pad_id[, source_dir]) -> Encoder; source_dir: a saved
    # model's encoder/ folder, for architectures that keep files besides the weights (pretrained)
    build: Callable
    description: str
    tasks: tuple[str, ...] = ("textcat", "multilabel", "regression")  # the tasks the encoder can serve


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, config_class: type, description: str, tasks: tuple[str, ...] | None = None):
    """Decorator registering an encoder builder under ``name`` (``tasks``: default, the text tasks)."""

    def deco(build):
        extra = {"tasks": tasks} if tasks is not None else {}
        _REGISTRY[name] = ModelEntry(name, config_class, build, description, **extra)
        return build

    return deco


def _load_builtin() -> None:
    # importing the modules runs their @register_model decorators
    from wordconv.models import attention, dpcnn, fasttext, pretrained, qanet, stacked, tagger, textcnn  # noqa: F401


def model_names(task: str | None = None) -> list[str]:
    """Registered model types; with ``task``, only those that can serve it (``tagger``: ner only)."""
    _load_builtin()
    return sorted(name for name, entry in _REGISTRY.items() if task is None or task in entry.tasks)


def get_model(name: str) -> ModelEntry:
    """The registered model ``name`` (``textcnn``, ``dpcnn``, ...); a ConfigError lists the known names."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"model.type: unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}") from None


def model_config_class(name: str) -> type[ModelParams]:
    return get_model(name).config_class
