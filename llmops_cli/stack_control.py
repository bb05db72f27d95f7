"""The Docker stack's part of `llmops up`, `down` and `status`.

The gateway works without Docker, so a Docker engine that does not answer is a note with a hint here,
not an error; any other stack failure (an unhealthy container, a name conflict) is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llmops_cli.console import note, out

if TYPE_CHECKING:
    from rich.table import Table

    from server.settings import Settings
    from stack import ComponentChange, ComponentStatus

_NO_DOCKER_HINT = (
    "the gateway runs without it; for Prometheus, Alertmanager and Grafana start Docker "
    "(e.g. `sudo systemctl start docker`) and run `llmops up` again"
)


def stack_enabled() -> bool:
    """False when LLMOPS_STACK=off: the commands then manage the gateway only."""
    from llmops_cli.stack_settings import StackSettings

    return StackSettings().stack


def stack_up(gateway: Settings) -> list[ComponentChange] | None:
    """Bring the stack in line with the settings; None when Docker does not answer (after saying so)."""
    from llmops_cli.config import ensure_secret
    from llmops_cli.stack_settings import GRAFANA_PASSWORD_VARIABLE, StackSettings
    from stack import DockerUnavailable, up

    ensure_secret(GRAFANA_PASSWORD_VARIABLE)
    config = StackSettings().to_config(gateway)
    try:
        changes = up(config)
    except DockerUnavailable as exc:
        note(f"{exc.message}: {_NO_DOCKER_HINT}")
        return None
    for change in changes:
        note(f"{change.component}: {change.action}")
    note(f"Grafana login: {config.grafana_admin_user}, password in .env ({GRAFANA_PASSWORD_VARIABLE})")
    return changes


def stack_down(data_dir: Path | None) -> None:
    """Stop the stack's containers (data kept); a note when Docker does not answer."""
    from llmops_cli.stack_settings import load_stack_config
    from stack import DockerUnavailable, down

    _, config = load_stack_config(data_dir)
    try:
        stopped = down(config)
    except DockerUnavailable as exc:
        note(f"{exc.message}: the stack was not checked")
        return
    note(f"stopped {', '.join(stopped)}" if stopped else "stack was not running")


def stack_status(data_dir: Path | None) -> list[ComponentStatus] | None:
    """State and health of each stack component; None when Docker does not answer (after saying so)."""
    from llmops_cli.stack_settings import load_stack_config
    from stack import DockerUnavailable, status

    _, config = load_stack_config(data_dir)
    try:
        return status(config)
    except DockerUnavailable as exc:
        note(f"{exc.message}: the stack's state is unknown")
        return None


def print_urls(gateway_url: str, changes: list[ComponentChange] | None) -> None:
    """The closing table of `llmops up`: every component and where to open it."""
    from rich.table import Table

    table = Table("component", "state", "url")
    table.add_row("gateway", "running", gateway_url)
    for change in changes or []:
        table.add_row(change.component, f"running ({change.action})", change.url)
    out.print(table)


def add_status_rows(table: Table, rows: list[ComponentStatus]) -> None:
    """`llmops status` rows for the stack components."""
    for row in rows:
        state = row.state if row.state == "running" else f"[dim]{row.state}[/]"
        health = {True: "healthy", False: "[red]unhealthy[/]", None: "-"}[row.healthy]
        table.add_row(row.component, state, health, row.url if row.state == "running" else "-")
