"""Who may read /metrics, and where it is served.

- `LLMOPS_METRICS_TOKEN`: /metrics wants `Authorization: Bearer <that token>` (compared in
  constant time); Prometheus sends it with `authorization: {credentials_file: ...}`.
- `LLMOPS_METRICS_PORT` (and `LLMOPS_METRICS_HOST`, default 127.0.0.1): /metrics is served on
  that address by a small WSGI server in a daemon thread, and the gateway's own port has none,
  so the LLM port can face clients while the scrape port stays on a private interface. With
  `llmops serve --workers N` the parent process runs this listener, once, and it shows the sum
  over the workers like any worker's /metrics would (refused scrapes there are not counted in
  llmops_auth_failures_total: the parent has no metrics of its own; Prometheus shows them as
  `up == 0` with a 401).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer

from server.auth import bearer_matches
from server.errors import ConfigError
from server.metrics import exposition
from server.settings import Settings

UNAUTHORIZED_BODY = b'{"error":{"type":"authentication_error","message":"/metrics needs its bearer token"}}'


def metrics_authorized(authorization: str | None, token: str | None) -> bool:
    """Whether an `Authorization` header value may read /metrics (always, when no token is set)."""
    return token is None or bearer_matches(authorization, token)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


class MetricsServer:
    """/metrics on an address of its own; binds at construction so a taken port fails before startup."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        token: str | None,
        on_refused: Callable[[], None] = lambda: None,
    ) -> None:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != "/metrics":
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found: scrape /metrics\n"]
            if not metrics_authorized(environ.get("HTTP_AUTHORIZATION"), token):
                on_refused()
                start_response(
                    "401 Unauthorized",
                    [("Content-Type", "application/json"), ("WWW-Authenticate", 'Bearer realm="llmops"')],
                )
                return [UNAUTHORIZED_BODY]
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [exposition(registry)]

        try:
            self._server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
        except OSError as exc:
            raise ConfigError(f"cannot serve /metrics on {host}:{port}: {exc}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def metrics_server_for(
    settings: Settings, registry: CollectorRegistry, on_refused: Callable[[], None] = lambda: None
) -> MetricsServer | None:
    """The /metrics listener `settings` ask for (LLMOPS_METRICS_PORT), or None."""
    if settings.metrics_port is None:
        return None
    token = settings.metrics_token.get_secret_value() if settings.metrics_token is not None else None
    return MetricsServer(registry, settings.metrics_host, settings.metrics_port, token, on_refused)
