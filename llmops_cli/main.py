"""The `llmops` command: a thin root that wires one command per module and maps errors to exit codes.

Command modules import their heavy dependencies inside the command, so `llmops --help` stays fast.
"""

from __future__ import annotations

import typer

from llmops_cli.commands import (
    alerts,
    clean,
    doctor,
    keys,
    lifecycle,
    logs,
    nuke,
    reset,
    serve,
    shell,
    simulate,
    smoke_test,
    token,
    usage,
)
from llmops_cli.console import debug_enabled, print_error

app = typer.Typer(
    name="llmops",
    help="An LLM gateway with its operations tooling: auth, usage log, metrics, dashboards, alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command()(serve.serve)
app.command()(lifecycle.up)
app.command()(lifecycle.down)
app.command()(lifecycle.status)
app.add_typer(token.app, name="token")
app.add_typer(keys.app, name="keys")
app.command()(simulate.simulate)
app.command()(usage.usage)
app.command()(alerts.alerts)
app.command()(logs.logs)
app.command()(shell.shell)
app.command()(reset.reset)
app.command()(nuke.nuke)
app.command()(clean.clean)
app.command("smoke-test")(smoke_test.smoke_test)
app.command()(doctor.doctor)


def run() -> None:
    """Entry point: run the app; known errors become one `error:` line and exit 1."""
    try:
        app()
    except Exception as exc:  # the one place errors turn into messages
        if debug_enabled():
            raise
        print_error(_describe(exc), hint=getattr(exc, "hint", None) or _hint_for(exc))
        raise SystemExit(1) from None


def _hint_for(exc: Exception) -> str:
    from pydantic import ValidationError

    from server.errors import ConfigError, StorageError

    if isinstance(exc, ValidationError | ConfigError):
        return "fix that setting in .env or the environment (the README's Configuration table lists them)"
    if isinstance(exc, StorageError | OSError):
        return "check the data directory (--data-dir / LLMOPS_DATA_DIR): it must be a writable directory"
    return "set LLMOPS_DEBUG=1 to see the traceback"


def _describe(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        from server.errors import validation_problems

        return f"invalid setting: {validation_problems(exc)}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    message = getattr(exc, "message", None) or str(exc)
    from server.errors import GatewayError
    from stack.errors import StackError

    return message if isinstance(exc, GatewayError | StackError) else f"{type(exc).__name__}: {message}"
