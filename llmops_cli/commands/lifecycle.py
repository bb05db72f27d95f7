"""`llmops up`, `llmops down`, `llmops status`: the gateway in the background, and the Docker stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops_cli.console import fail, note, out
from llmops_cli.options import DataDir, Host, Port


def up(
    host: Host = None,
    port: Port = None,
    data_dir: DataDir = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 30.0,
    stack: Annotated[
        bool, typer.Option("--stack/--no-stack", help="Also run Prometheus, Alertmanager, Grafana in Docker.")
    ] = True,
) -> None:
    """Start the gateway in the background, then the Docker stack; changes only what is not up yet."""
    from llmops_cli.config import ensure_secret, load_settings
    from llmops_cli.gateway_process import GatewayProcessError, read_state, start, url_for
    from llmops_cli.stack_control import print_urls, stack_enabled, stack_up

    ensure_secret("JWT_SECRET")
    ensure_secret("LLMOPS_ALERTS_WEBHOOK_TOKEN")
    settings = load_settings(data_dir, host=host, port=port)
    settings.require_jwt_secret()
    url = url_for(settings.host, settings.port)
    state = read_state(settings.data_dir)
    if state.running and state.url == url:
        note(f"gateway already running (pid {state.pid}), nothing to do")
    elif state.running:
        fail(
            f"a gateway from {settings.data_dir} already runs at {state.url}",
            hint="`llmops down` first to move it",
        )
    else:
        try:
            state = start(settings.data_dir, settings.host, settings.port, timeout)
        except GatewayProcessError as exc:
            fail(str(exc), hint=exc.hint)
        note(f"gateway started (pid {state.pid}), log: {settings.data_dir / 'gateway.log'}")
    if stack and stack_enabled():
        from stack.errors import StackError

        try:
            changes = stack_up(settings)
        except StackError as exc:
            out.print(url)
            fail(
                f"the gateway runs at {url}, but the Docker stack did not start: {exc.message}",
                hint=f"{exc.hint + '; ' if exc.hint else ''}`llmops up --no-stack` runs the gateway alone",
            )
        print_urls(url, changes)
    else:
        out.print(url)


def down(data_dir: DataDir = None) -> None:
    """Stop the gateway (in-flight calls finish, the usage log is flushed) and the stack; keeps all data."""
    from llmops_cli.config import load_settings
    from llmops_cli.gateway_process import stop
    from llmops_cli.stack_control import stack_down, stack_enabled

    settings = load_settings(data_dir)
    pid = stop(settings.data_dir)
    note(f"gateway stopped (pid {pid})" if pid else "gateway was not running")
    if stack_enabled():
        stack_down(data_dir)


def status(data_dir: DataDir = None) -> None:
    """Show each component: state, health, URL."""
    from rich.table import Table

    from llmops_cli.config import load_settings
    from llmops_cli.gateway_process import read_state
    from llmops_cli.stack_control import add_status_rows, stack_enabled, stack_status

    settings = load_settings(data_dir)
    state = read_state(settings.data_dir)
    table = Table("component", "state", "health", "url")
    if state.running:
        table.add_row(
            "gateway",
            f"running (pid {state.pid})",
            "ready" if state.ready else "[red]unready[/]",
            state.url or "",
        )
    else:
        table.add_row("gateway", "[dim]stopped[/]", "-", "-")
    stack_rows = stack_status(data_dir) if stack_enabled() else None
    add_status_rows(table, stack_rows or [])
    out.print(table)
    firing = _firing_alerts(settings.usage_db_path)
    if firing:
        out.print(f"[bold red]{firing} alert(s) firing[/]: `llmops alerts` lists them")
    else:
        out.print("alerts firing: 0")


def _firing_alerts(db_path: Path) -> int:
    import sqlite3

    from server.alerts import firing_count
    from server.usage.store import connect

    if not db_path.exists():
        return 0
    try:
        return firing_count(connect(db_path, readonly=True))
    except sqlite3.OperationalError:
        return 0
