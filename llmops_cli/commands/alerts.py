"""`llmops alerts`: what Alertmanager reported to the gateway, firing first."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops_cli.console import note, out
from llmops_cli.options import DataDir


def alerts(
    firing: Annotated[bool, typer.Option("--firing", help="Only alerts firing now.")] = False,
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    data_dir: DataDir = None,
) -> None:
    """List alerts received from Alertmanager: firing ones, then resolved ones."""
    import sqlite3

    from llmops_cli.config import load_settings
    from server.alerts import list_alerts
    from server.usage.store import connect

    db_path = load_settings(data_dir).usage_db_path
    rows = []
    if db_path.exists():
        try:
            rows = list_alerts(connect(db_path, readonly=True), "firing" if firing else None, last)
        except sqlite3.OperationalError:
            rows = []  # a usage log from before alerts existed: none received yet
    if as_json:
        import json

        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        note("no alerts received" + (" firing" if firing else ""))
        return
    from rich.table import Table

    table = Table("status", "alert", "severity", "summary", "since", "resolved")
    for row in rows:
        status = "[bold red]firing[/]" if row["status"] == "firing" else "[green]resolved[/]"
        table.add_row(
            status,
            row["name"],
            row["severity"] or "-",
            row["summary"] or "-",
            (row["starts_at"] or "-")[:19],
            (row["ends_at"] or "-")[:19],
        )
    out.print(table)
