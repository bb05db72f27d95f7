"""`llmops serve`: the gateway in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops_cli.console import fail, note
from llmops_cli.options import DataDir, Host, Port

METRICS_DIR = "prometheus-multiproc"


def serve(
    host: Host = None,
    port: Port = None,
    data_dir: DataDir = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes sharing the port.")] = 1,
) -> None:
    """Run the gateway in the foreground (Ctrl-C stops it and flushes the usage log)."""
    import os
    import shutil
    import signal
    import sys

    from llmops_cli.config import ensure_secret, load_settings
    from llmops_cli.gateway_process import port_in_use, url_for

    ensure_secret("JWT_SECRET")
    settings = load_settings(data_dir, host=host, port=port)
    if port_in_use(settings.host, settings.port):
        fail(
            f"port {settings.port} on {settings.host} is already in use",
            hint="stop the other program (or `llmops down`), or pick another port with --port",
        )
    uvicorn_options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "http": "httptools",
        "loop": "uvloop",
        "timeout_graceful_shutdown": 30,
        "server_header": False,
    }
    where = f"{url_for(settings.host, settings.port)} (usage log {settings.usage_db_path})"
    # uvicorn drains in-flight calls on SIGTERM, then re-raises the signal: exit 0 for that clean stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    if workers == 1:
        import uvicorn

        from server.app import create_app

        app = create_app(settings)
        note(f"llmops gateway on {where}; Ctrl-C stops it")
        uvicorn.run(app, **uvicorn_options)  # type: ignore[arg-type]
        return

    # Several workers: each builds its app from the environment, and metrics are shared through
    # prometheus_client's multiprocess files, so any worker's /metrics shows the sum of all of them.
    from server.app import preflight

    preflight(settings)
    metrics_dir = settings.data_dir.resolve() / METRICS_DIR
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ.update(
        {
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "LLMOPS_HOST": settings.host,
            "LLMOPS_PORT": str(settings.port),
            "LLMOPS_DATA_DIR": str(settings.data_dir.resolve()),
        }
    )
    import uvicorn
    from prometheus_client import CollectorRegistry

    from server.metrics_server import metrics_server_for

    # A separate /metrics listener (LLMOPS_METRICS_PORT) runs once, here, not in every worker.
    metrics_server = metrics_server_for(settings, CollectorRegistry())
    if metrics_server is not None:
        metrics_server.start()
    note(f"llmops gateway on {where}, {workers} workers; Ctrl-C stops it")
    try:
        uvicorn.run("server.asgi:app_from_environment", factory=True, workers=workers, **uvicorn_options)  # type: ignore[arg-type]
    finally:
        if metrics_server is not None:
            metrics_server.close()
