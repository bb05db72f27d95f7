"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (usage log, pid and log files). [default: ./data]",
        envvar="LLMOPS_DATA_DIR",
        show_envvar=False,
    ),
]
Host = Annotated[str | None, typer.Option("--host", help="Address to listen on. [default: 127.0.0.1]")]
Port = Annotated[int | None, typer.Option("--port", help="Port to listen on. [default: 8000]")]
Url = Annotated[str | None, typer.Option("--url", help="Gateway URL. [default: from settings]")]

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
DEFAULT_ALERTMANAGER_URL = "http://127.0.0.1:9093"
DEFAULT_GRAFANA_URL = "http://127.0.0.1:3000"
PrometheusUrl = Annotated[
    str | None,
    typer.Option(
        "--prometheus-url",
        envvar="LLMOPS_PROMETHEUS_URL",
        help=f"Prometheus. [default: {DEFAULT_PROMETHEUS_URL}]",
    ),
]
AlertmanagerUrl = Annotated[
    str | None,
    typer.Option(
        "--alertmanager-url",
        envvar="LLMOPS_ALERTMANAGER_URL",
        help=f"Alertmanager. [default: {DEFAULT_ALERTMANAGER_URL}]",
    ),
]
GrafanaUrl = Annotated[
    str | None,
    typer.Option(
        "--grafana-url", envvar="LLMOPS_GRAFANA_URL", help=f"Grafana. [default: {DEFAULT_GRAFANA_URL}]"
    ),
]
