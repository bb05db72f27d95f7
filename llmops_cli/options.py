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
Port = Annotated[
    int | None, typer.Option("--port", min=1, max=65535, help="Port to listen on. [default: 8000]")
]
Url = Annotated[str | None, typer.Option("--url", help="Gateway URL. [default: from settings]")]

# The stack's URLs default to what its settings say (LLMOPS_PROMETHEUS_PORT, LLMOPS_BIND_ADDRESS ...).
PrometheusUrl = Annotated[
    str | None, typer.Option("--prometheus-url", help="Prometheus. [default: from the stack settings]")
]
AlertmanagerUrl = Annotated[
    str | None, typer.Option("--alertmanager-url", help="Alertmanager. [default: from the stack settings]")
]
GrafanaUrl = Annotated[
    str | None, typer.Option("--grafana-url", help="Grafana. [default: from the stack settings]")
]
