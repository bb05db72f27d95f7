"""`llmops serve`: the gateway in the foreground."""

from __future__ import annotations

from llmops_cli.console import fail, note
from llmops_cli.options import DataDir, Host, Port


def serve(host: Host = None, port: Port = None, data_dir: DataDir = None) -> None:
    """Run the gateway in the foreground (Ctrl-C stops it and flushes the usage log)."""
    from llmops_cli.config import ensure_secret, load_settings
    from llmops_cli.gateway_process import port_in_use, url_for

    ensure_secret("JWT_SECRET")
    settings = load_settings(data_dir, host=host, port=port)
    if port_in_use(settings.host, settings.port):
        fail(
            f"port {settings.port} on {settings.host} is already in use",
            hint="stop the other program (or `llmops down`), or pick another port with --port",
        )

    import signal
    import sys

    import uvicorn

    from server.app import create_app

    app = create_app(settings)
    note(
        f"llmops gateway on {url_for(settings.host, settings.port)} "
        f"(usage log {settings.usage_db_path}); Ctrl-C stops it"
    )
    # uvicorn drains in-flight calls on SIGTERM, then re-raises the signal: exit 0 for that clean stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
        timeout_graceful_shutdown=30,
        server_header=False,
    )
