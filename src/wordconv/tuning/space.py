"""Search spaces over config paths, read from a YAML file and checked before any trial runs.

    model.num_filters: {type: int, low: 50, high: 300, step: 50}
    model.filter_widths: {type: choice, values: [[3, 4, 5], [2, 3, 4], [3, 5, 7]]}
    training.lr: {type: loguniform, low: 1.0e-4, high: 3.0e-3}
    model.dropout: {type: uniform, low: 0.3, high: 0.7}

Each key is a dotted config path (as in ``--set``); each value names a dimension type:

- ``choice``: ``values`` (any YAML values, lists included: ``[[3, 4, 5], [2, 3, 4]]``)
- ``int``: ``low``, ``high`` (both included), optional ``step`` (default 1) and ``log`` (default false)
- ``uniform``: ``low`` < ``high``
- ``loguniform``: 0 < ``low`` < ``high``

Optuna's parameter names are the config paths. Choices that are not plain scalars (lists, mappings)
or that repeat are given to Optuna as their JSON text, so that every sampler (the grid sampler
included) and every storage can hold them; :meth:`Space.decode` turns them back into values.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wordconv.errors import ConfigError

KINDS = ("choice", "int", "uniform", "loguniform")
_FIELDS = {
    "choice": ({"values"}, set()),
    "int": ({"low", "high"}, {"step", "log"}),
    "uniform": ({"low", "high"}, set()),
    "loguniform": ({"low", "high"}, set()),
}
# paths a study fixes for all its trials: the architecture (one study per model type; each brings its
# own model fields) and the CV fold (--folds decides which folds a trial trains on)
FIXED_PATHS = {"model.type": "tune one architecture per study (--model); run another study for another type",
               "data.fold": "the fold is chosen by tune (fold 0, or folds 0..K-1 with --folds K)"}
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Dimension:
    """One searched config path."""

    path: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: int = 1
    log: bool = False
    values: tuple = ()  # choice: the values as the config takes them
    encoded: tuple = ()  # choice: the same values as Optuna holds them (scalars, or JSON text)

    def decode(self, raw: Any) -> Any:
        """The config value of Optuna's parameter value ``raw``."""
        if self.kind == "choice":
            return self.values[self.encoded.index(raw)]
        return raw

    def suggest(self, trial) -> Any:
        """Ask an Optuna trial for this dimension's value; returns the config value."""
        if self.kind == "choice":
            return self.decode(trial.suggest_categorical(self.path, list(self.encoded)))
        if self.kind == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), step=self.step, log=self.log)
        return trial.suggest_float(self.path, float(self.low), float(self.high), log=self.kind == "loguniform")

    def grid(self) -> list:
        """The dimension's points for the grid sampler (in Optuna's representation)."""
        if self.kind == "choice":
            return list(self.encoded)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step))
        raise ConfigError(f"{self.path}: a {self.kind} dimension has no grid")

    def probes(self) -> list:
        """Config values that must all be valid: the bounds, or every choice."""
        return list(self.values) if self.kind == "choice" else [self.low, self.high]

    def spec(self) -> dict:
        """The dimension as written in a space file (normalised): what a study remembers."""
        if self.kind == "choice":
            return {"type": "choice", "values": list(self.values)}
        out: dict[str, Any] = {"type": self.kind, "low": self.low, "high": self.high}
        if self.kind == "int":
            out.update(step=self.step, log=self.log)
        return out

    def describe(self) -> str:
        if self.kind == "choice":
            return f"one of {len(self.values)}: " + ", ".join(json.dumps(v) for v in self.values)
        extra = (f" step {self.step}" if self.kind == "int" and self.step != 1 else "") + (" log" if self.log else "")
        return f"{self.kind} {self.low:g} .. {self.high:g}{extra}"


@dataclass(frozen=True)
class Space:
    """The searched dimensions, in file order, and where they came from."""

    dims: tuple[Dimension, ...]
    source: str = "search space"

    @property
    def paths(self) -> list[str]:
        return [d.path for d in self.dims]

    def suggest(self, trial) -> dict[str, Any]:
        """{config path: value} for an Optuna trial."""
        return {d.path: d.suggest(trial) for d in self.dims}

    def decode(self, params: dict[str, Any]) -> dict[str, Any]:
        """Optuna's parameters of a trial -> {config path: value} (the parameters it has)."""
        by_path = {d.path: d for d in self.dims}
        return {p: by_path[p].decode(v) if p in by_path else v for p, v in params.items()}

    def spec(self) -> dict:
        return {d.path: d.spec() for d in self.dims}

    def grid_problems(self) -> list[str]:
        return [f"{d.path}: a {d.kind} dimension is continuous; the grid sampler needs choice or int dimensions "
                "(give a list with {type: choice, values: [...]} or use --sampler random / tpe)"
                for d in self.dims if d.kind not in ("choice", "int")]

    def grid(self) -> dict[str, list]:
        """The grid sampler's search space; refuses continuous dimensions."""
        problems = self.grid_problems()
        if problems:
            raise ConfigError(f"{self.source}: cannot search this space on a grid:\n  " + "\n  ".join(problems))
        return {d.path: d.grid() for d in self.dims}

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    def grid_points(self) -> list[tuple]:
        """Every point of the grid, as a tuple of Optuna values in ``paths`` order."""
        return list(itertools.product(*self.grid().values()))

    def key(self, params: dict[str, Any]) -> tuple | None:
        """A trial's grid point (Optuna values in ``paths`` order); None if it lacks a parameter."""
        try:
            return tuple(params[p] for p in self.paths)
        except KeyError:
            return None

    def validate(self, build: Callable[[dict[str, Any]], Any]) -> None:
        """Build a config with each dimension's bounds and each of its choices (the other dimensions
        left at the base config), so that an unknown path or a value the config refuses is
        reported before any trial runs.  ``build``: {path: value} -> Config, raising ConfigError."""
        problems = []
        for d in self.dims:
            for value in d.probes():
                try:
                    build({d.path: value})
                except ConfigError as err:
                    reason = str(err).split(":", 1)[-1].strip() if str(err).startswith("invalid ") else str(err)
                    problems.append(f"{d.path} = {json.dumps(value)}: the config refuses it:\n      "
                                    + reason.replace("\n", "\n    "))
                    break  # one bad value per dimension is enough to act on
        if problems:
            raise ConfigError(f"{self.source}: invalid search space (nothing was trained):\n  " + "\n  ".join(problems)
                              + "\n  fix the key's spelling (a dotted config path as in --set, e.g. model.num_filters)"
                              " or its range; `wordconv train --help` and configs/*.yaml show the keys")


def parse_space(data: Any, source: str = "search space") -> Space:
    """A :class:`Space` from a mapping {config path: dimension}; every problem reported at once."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{source}: a search space is a mapping of config paths to dimensions, e.g.\n"
                          "  model.dropout: {type: uniform, low: 0.3, high: 0.7}")
    dims, problems = [], []
    for path, spec in data.items():
        path = str(path)
        try:
            dims.append(_dimension(path, spec))
        except ValueError as err:
            problems.append(f"{path}: {err}")
    if problems:
        raise ConfigError(f"{source}: invalid search space (nothing was trained):\n  " + "\n  ".join(problems))
    return Space(tuple(dims), source)


def load_space(space: str | Path | dict | Space) -> Space:
    """A space from a YAML/JSON file, a mapping, or a :class:`Space`."""
    if isinstance(space, Space):
        return space
    if isinstance(space, dict):
        return parse_space(space)
    path = Path(space)
    if not path.is_file():
        raise ConfigError(f"search space file {path} does not exist (a YAML mapping of config paths to dimensions)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return parse_space(data, str(path))


def _number(spec: dict, key: str, integer: bool = False) -> float | int:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        # YAML reads 1e-4 (no dot) as text: say how to write it
        hint = " (YAML needs a dot in exponent numbers: 1.0e-4, not 1e-4)" if isinstance(value, str) else ""
        raise ValueError(f"{key} must be {'an integer' if integer else 'a number'}, got {value!r}{hint}")
    if not math.isfinite(value):
        raise ValueError(f"{key} must be finite, got {value!r}")
    return value


def _dimension(path: str, spec: Any) -> Dimension:
    if not path or any(not part for part in path.split(".")):
        raise ValueError("not a dotted config path (e.g. model.num_filters)")
    if path in FIXED_PATHS:
        raise ValueError(f"cannot be searched: {FIXED_PATHS[path]}")
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError("a dimension is a mapping with a type, e.g. {type: choice, values: [...]}; types: "
                         + ", ".join(KINDS))
    kind = spec["type"]
    if kind not in KINDS:
        raise ValueError(f"unknown type {kind!r}; use one of {', '.join(KINDS)}")
    required, optional = _FIELDS[kind]
    missing = sorted(required - set(spec))
    unknown = sorted(set(spec) - required - optional - {"type"})
    if missing or unknown:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        if unknown:
            parts.append(f"unknown field(s) {', '.join(unknown)} for type {kind} "
                         f"(it takes {', '.join(sorted(required | optional))})")
        raise ValueError("; ".join(parts))
    if kind == "choice":
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise ValueError("values must be a non-empty list")
        texts = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(texts)) < len(texts):
            raise ValueError(f"values repeat: {values!r}")
        # scalars go to Optuna as they are, unless two of them are one value to Optuna (1, 1.0, True)
        plain = all(isinstance(v, _SCALARS) for v in values) and len(set(values)) == len(values)
        return Dimension(path, kind, values=tuple(values), encoded=tuple(values if plain else texts))
    integer = kind == "int"
    low, high = _number(spec, "low", integer), _number(spec, "high", integer)
    if kind == "int":
        step = spec.get("step", 1)
        log = spec.get("log", False)
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValueError(f"step must be a positive integer, got {step!r}")
        if not isinstance(log, bool):
            raise ValueError(f"log must be true or false, got {log!r}")
        if low > high:
            raise ValueError(f"low ({low}) is greater than high ({high})")
        if (high - low) % step:
            raise ValueError(f"high - low ({high - low}) is not a multiple of step ({step}); "
                             f"use high: {low + (high - low) // step * step}")
        if log and (step != 1 or low < 1):
            raise ValueError("log needs low >= 1 and step 1 (Optuna samples log-scaled integers without a step)")
        return Dimension(path, kind, low, high, step, log)
    if low >= high:
        raise ValueError(f"low ({low}) must be less than high ({high})"
                         + ("; for a single value set it with --set instead" if low == high else ""))
    if kind == "loguniform" and low <= 0:
        raise ValueError(f"loguniform needs low > 0, got {low}")
    return Dimension(path, kind, float(low), float(high))
