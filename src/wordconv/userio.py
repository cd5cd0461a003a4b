"""How the command-line tools report errors a user can fix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from wordconv.errors import WordconvError


@contextlib.contextmanager
def user_errors(console: Console, interrupt_hint: str = "") -> Iterator[None]:
    """A :class:`WordconvError` becomes one red line on stderr and its exit code (no traceback);
    Ctrl-C exits with 130 and ``interrupt_hint``."""
    try:
        yield
    except WordconvError as e:
        console.print("[bold red]error:[/] " + escape(str(e)), highlight=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]" + escape(interrupt_hint))
        raise typer.Exit(130) from None
