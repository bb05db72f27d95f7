"""`llmops up`, `llmops down`, `llmops status`: the gateway in the background (and, later, the stack)."""

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
) -> None:
    """Start the gateway in the background; does nothing when it is already up."""
    from llmops_cli.config import ensure_secret, load_settings
    from llmops_cli.gateway_process import GatewayProcessError, read_state, start, url_for

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
    out.print(url)


def down(data_dir: DataDir = None) -> None:
    """Stop the gateway (in-flight calls finish and the usage log is flushed); keeps all data."""
    from llmops_cli.config import load_settings
    from llmops_cli.gateway_process import stop

    settings = load_settings(data_dir)
    pid = stop(settings.data_dir)
    note(f"gateway stopped (pid {pid})" if pid else "gateway was not running")


def status(data_dir: DataDir = None) -> None:
    """Show each component: state, health, URL."""
    from rich.table import Table

    from llmops_cli.config import load_settings
    from llmops_cli.gateway_process import read_state

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
