"""`llmops logs`: the gateway's request log, pretty and filtered, or a stack container's log."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llmops_cli.console import fail, out
from llmops_cli.options import DataDir

if TYPE_CHECKING:
    from rich.text import Text

    from llmops_cli.gateway_log import LogLine


class LogSource(StrEnum):
    gateway = "gateway"
    prometheus = "prometheus"
    grafana = "grafana"
    alertmanager = "alertmanager"


_STATUS_STYLES = {"ok": "green", "error": "red", "rejected": "yellow", "cancelled": "magenta"}


def logs(
    source: Annotated[LogSource, typer.Argument(help="Whose log.")] = LogSource.gateway,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=0, help="Only the last N lines. [default: all]")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Gateway: only this principal's requests.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Gateway: only requests with this status (ok, error, ...) or HTTP code."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Gateway: only requests since, e.g. 15m, 2h, 2026-01-31T12:00.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Gateway: the raw JSON request lines.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Show a log: the gateway's requests (pretty-printed JSON lines) or a container's output."""
    if source is not LogSource.gateway:
        if user or status or since or as_json:
            fail("--user, --status, --since and --json apply to the gateway log only")
        _container_logs(source.value, follow, tail, data_dir)
        return
    _gateway_logs(follow, tail, user, status, since, as_json, data_dir)


def _gateway_logs(
    follow: bool,
    tail: int | None,
    user: str | None,
    status: str | None,
    since: str | None,
    as_json: bool,
    data_dir: Any,
) -> None:
    from datetime import datetime

    from llmops_cli.config import load_settings
    from llmops_cli.durations import parse_since
    from llmops_cli.gateway_log import RequestFilter, follow_log, read_log
    from llmops_cli.gateway_process import LOG_FILE

    try:
        moment = datetime.fromisoformat(parse_since(since).replace("Z", "+00:00")) if since else None
    except ValueError as exc:
        fail(str(exc))
    keep = RequestFilter(user=user, status=status, since=moment)
    path = load_settings(data_dir).data_dir / LOG_FILE
    if not path.exists():
        fail(f"no gateway log at {path}", hint="the gateway writes it once started with `llmops up`")
    lines, position = read_log(path, keep, tail)
    for line in lines:
        _print_line(line, as_json)
    if follow:
        try:
            for line in follow_log(path, keep, position):
                _print_line(line, as_json)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


def _print_line(line: LogLine, as_json: bool) -> None:
    if line.request is None:
        if not as_json:
            out.print(line.text, markup=False, highlight=False, soft_wrap=True)
        return
    if as_json:
        typer.echo(line.text)
    else:
        out.print(render_request(line.request), soft_wrap=True)


def render_request(entry: dict[str, Any]) -> Text:
    """One request entry as a single coloured line."""
    from rich.text import Text

    status = str(entry.get("status", "?"))
    answered, requested = entry.get("model"), entry.get("requested_model")
    model = str(answered or requested or "-")
    if answered and requested and requested != answered:
        model = f"{requested}->{answered}"  # a fallback answered
    principal = str(entry.get("user") or "-")
    if entry.get("end_user"):
        principal += f"/{entry['end_user']}"
    latency = entry.get("latency_ms")
    tokens = f"{entry.get('prompt_tokens') or 0}+{entry.get('completion_tokens') or 0} tok"
    text = Text.assemble(
        (str(entry.get("ts", "")), "dim"),
        " ",
        (f"{status:<9}", _STATUS_STYLES.get(status, "")),
        f"{entry.get('http_status', '')!s:<4}",
        (f"{principal} ", "bold"),
        f"{entry.get('endpoint', '')} {model} ",
        f"{latency:.0f} ms " if isinstance(latency, int | float) else "",
        tokens,
        (f"  {entry.get('request_id', '')}", "dim"),
    )
    if entry.get("error"):
        text.append(f"  {entry['error']}", style="red")
    return text


def _container_logs(component: str, follow: bool, tail: int | None, data_dir: Any) -> None:
    from llmops_cli.stack_settings import load_stack_config
    from stack import read_logs

    _, config = load_stack_config(data_dir)
    try:
        for line in read_logs(config, component, follow=follow, tail=tail):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
