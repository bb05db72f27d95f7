"""`llmops usage`: read the usage log, whether the gateway runs or not."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops_cli.console import fail, note, out
from llmops_cli.options import DataDir


def usage(
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="How many of the newest calls.")] = 20,
    user: Annotated[str | None, typer.Option(help="Only this principal.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model (requested or answering).")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only calls since, e.g. 1h, 2d, 2026-01-31T12:00.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV instead of a table.")] = False,
    summary: Annotated[bool, typer.Option("--summary", help="Totals per user and model.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Show the newest calls, or totals per user and model."""
    import sqlite3

    from llmops_cli.config import load_settings
    from llmops_cli.durations import parse_since
    from server.usage.queries import UsageFilter, recent_calls, usage_summary
    from server.usage.store import connect

    if as_json and as_csv:
        fail("--json and --csv exclude each other")
    try:
        where = UsageFilter(user=user, model=model, since=parse_since(since) if since else None)
    except ValueError as exc:
        fail(str(exc))
    db_path = load_settings(data_dir).usage_db_path
    if not db_path.exists():
        note(f"no usage log yet at {db_path}: start the gateway (`llmops up`) and send a request")
        if as_json:
            typer.echo("[]")
        return
    try:
        conn = connect(db_path, readonly=True)
        rows = usage_summary(conn, where) if summary else recent_calls(conn, last, where)
    except sqlite3.Error as exc:
        fail(f"cannot read the usage log {db_path}: {exc}", hint="is it a llmops usage.db?")
    if as_json:
        import json

        typer.echo(json.dumps(rows, indent=2))
    elif as_csv:
        _print_csv(rows)
    elif summary:
        _print_summary(rows)
    else:
        _print_recent(rows)


def _print_csv(rows: list[dict[str, object]]) -> None:
    import csv
    import sys

    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def _cost(value: object) -> str:
    return "-" if value is None else f"${value:.6f}".rstrip("0").rstrip(".")


def _print_recent(rows: list[dict[str, object]]) -> None:
    from rich.table import Table

    if not rows:
        note("no calls match")
        return
    table = Table("time (UTC)", "user", "model", "status", "ms", "tokens", "cost", "prompt")
    for column in table.columns[:-1]:
        column.no_wrap = True
    table.columns[-1].overflow = "ellipsis"
    table.columns[-1].no_wrap = True
    table.columns[-1].max_width = 32
    for row in rows:
        model = str(row["model"] or row["requested_model"] or "-")
        if row["fallback"]:
            model = f"{row['requested_model']} → {row['model']}"
        status = str(row["status"])
        if status != "ok":
            status = f"[red]{status} {row['http_status']}[/]"
        prompt = str(row["prompt"] or "")
        table.add_row(
            str(row["ts"])[5:19].replace("T", " "),
            str(row["user"]),
            model,
            status,
            f"{row['latency_ms']:.0f}",
            f"{row['prompt_tokens']}/{row['completion_tokens']}",
            _cost(row["cost_usd"]),
            prompt,
        )
    out.print(table)


def _print_summary(rows: list[dict[str, object]]) -> None:
    from rich.table import Table

    if not rows:
        note("no calls match")
        return
    table = Table("user", "model", "calls", "errors", "fallbacks", "tokens", "cost", "p95 ms")
    for column in table.columns:
        column.no_wrap = True
    for row in rows:
        p95 = row["p95_latency_ms"]
        table.add_row(
            str(row["user"]),
            str(row["model"]),
            str(row["calls"]),
            str(row["errors"]),
            str(row["fallbacks"]),
            str(row["tokens"]),
            _cost(row["cost_usd"]),
            "-" if p95 is None else f"{p95:.1f}",
        )
    out.print(table)
