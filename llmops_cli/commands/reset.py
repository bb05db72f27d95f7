"""`llmops reset`: wipe Prometheus's data and start it again on an empty TSDB."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops_cli.console import note
from llmops_cli.options import DataDir


def reset(
    usage: Annotated[bool, typer.Option("--usage", help="Also empty the usage log (asks first).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Wipe Prometheus's time series and restart it; the TSDB is empty afterwards."""
    from llmops_cli.stack_settings import load_stack_config
    from stack import reset_prometheus

    _, config = load_stack_config(data_dir)
    change = reset_prometheus(config)
    if change is None:
        note("Prometheus data wiped; Prometheus was not running (`llmops up` starts it)")
    else:
        note(f"Prometheus data wiped and Prometheus restarted: {change.url}")
    if usage:
        from llmops_cli.commands.clean import confirm_and_empty

        confirm_and_empty(data_dir, yes, "Also delete every row of {path}?")
