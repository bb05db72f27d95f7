"""The CLI's two consoles and its single way out on failure."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer
from rich.console import Console

# Piped output is not cut to the 80 columns Rich assumes without a terminal.
_piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
out = Console(highlight=False, width=140 if _piped else None)
err = Console(stderr=True, highlight=False)


def debug_enabled() -> bool:
    return os.environ.get("LLMOPS_DEBUG", "") not in ("", "0", "false")


def print_error(message: str, hint: str | None = None) -> None:
    """`error: ...` and `hint: ...` on stderr."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True, highlight=False)
    if hint:
        err.print(f"[yellow]hint:[/] {hint}", soft_wrap=True)


def fail(message: str, hint: str | None = None, code: int = 1) -> NoReturn:
    """Print `error: ...` (and `hint: ...`) to stderr and exit with `code`."""
    print_error(message, hint)
    raise typer.Exit(code)


def note(message: str) -> None:
    """A status line on stderr, so stdout stays clean for what commands print."""
    err.print(message, soft_wrap=True)
