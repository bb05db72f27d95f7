"""`llmops clean`: empty the usage log, safely whether or not the gateway runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops_cli.console import fail, note
from llmops_cli.options import DataDir


def confirm_and_empty(data_dir: Path | None, yes: bool, question: str) -> None:
    """Ask (unless `yes`), then empty the usage log and say how many rows went."""
    from llmops_cli.config import load_settings
    from llmops_cli.usage_log_reset import UsageLogResetError, empty_usage_log

    settings = load_settings(data_dir)
    if not yes and not typer.confirm(question.format(path=settings.usage_db_path), default=False):
        fail("usage log kept")
    try:
        deleted, how = empty_usage_log(settings.data_dir, settings.require_jwt_secret())
    except UsageLogResetError as exc:
        fail(str(exc), hint=exc.hint)
    note(f"usage log emptied {how}: {deleted} rows deleted")


def clean(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Delete every row of the usage log (the schema, API keys and alerts stay)."""
    confirm_and_empty(data_dir, yes, "Delete every row of {path}?")
