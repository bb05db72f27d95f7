"""`llmops shell`: an interactive shell in a stack container, or sqlite3 on the usage log."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, NoReturn

import typer

from llmops_cli.console import fail
from llmops_cli.options import DataDir


class ShellTarget(StrEnum):
    prometheus = "prometheus"
    grafana = "grafana"
    alertmanager = "alertmanager"
    db = "db"


def shell(
    target: Annotated[
        ShellTarget, typer.Argument(help="A stack container, or db for sqlite3 on the usage log.")
    ] = ShellTarget.prometheus,
    data_dir: DataDir = None,
) -> None:
    """Open an interactive shell (a real terminal) in a container, or sqlite3 on the usage log."""
    if target is ShellTarget.db:
        _sqlite_shell(data_dir)
    from llmops_cli.stack_settings import load_stack_config
    from stack import open_shell

    _, config = load_stack_config(data_dir)
    raise typer.Exit(open_shell(config, target.value))


def _sqlite_shell(data_dir: DataDir) -> NoReturn:
    import os
    import shutil

    from llmops_cli.config import load_settings

    path = load_settings(data_dir).usage_db_path
    if not path.exists():
        fail(f"no usage log at {path}", hint="the gateway creates it on start (`llmops up`)")
    sqlite3 = shutil.which("sqlite3")
    if sqlite3 is None:
        fail("the sqlite3 program is not installed", hint="install it, e.g. `apt-get install sqlite3`")
    # The gateway may be writing: wait for its short transactions instead of failing with "locked".
    os.execv(sqlite3, [sqlite3, "-cmd", ".timeout 5000", str(path)])
