"""The errors wordconv raises on purpose.

Every error a user can cause is a :class:`WordconvError`: the CLI prints its message (no traceback)
and exits with a non-zero code.  Messages name the file/line/key at fault and say the fix.
"""

from __future__ import annotations


class WordconvError(Exception):
    """Base class of every error wordconv raises on purpose."""

    exit_code = 1


class DataError(WordconvError):
    """Bad or missing input data: a file, a line, a field, a label."""

    exit_code = 2


class ConfigError(WordconvError):
    """A bad configuration: unknown key, wrong type, value out of range."""

    exit_code = 3


class ModelError(WordconvError):
    """A model directory that cannot be loaded or saved, or a model used wrongly."""

    exit_code = 4
