"""A stand-in for Grafana's HTTP API (health, datasources, datasource health) on 127.0.0.1.

Grafana itself runs in the stack's container; what `llmops doctor` asks of it is three documented
endpoints, answered here the way Grafana 11 answers them.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class GrafanaStandIn:
    def __init__(self, password: str, datasource_ok: bool) -> None:
        self.password = password
        self.datasource_ok = datasource_ok
        self.requests: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: object) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                stand_in.requests.append(self.path)
                if self.path == "/api/health":
                    return self._send(200, {"database": "ok", "version": "11.6.1"})
                expected = "Basic " + base64.b64encode(f"admin:{stand_in.password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._send(401, {"message": "invalid username or password"})
                if self.path == "/api/datasources":
                    return self._send(
                        200,
                        [
                            {
                                "uid": "llmops-prometheus",
                                "name": "Prometheus (llmops)",
                                "type": "prometheus",
                                "url": "http://127.0.0.1:9090",
                            }
                        ],
                    )
                if self.path == "/api/datasources/uid/llmops-prometheus/health":
                    if stand_in.datasource_ok:
                        return self._send(
                            200, {"status": "OK", "message": "Successfully queried the Prometheus API."}
                        )
                    return self._send(
                        400,
                        {
                            "status": "ERROR",
                            "message": 'Post "http://127.0.0.1:9090/api/v1/query": dial tcp 127.0.0.1:9090: '
                            "connect: connection refused",
                        },
                    )
                return self._send(404, {"message": "Not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GrafanaStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
