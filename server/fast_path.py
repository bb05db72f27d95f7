"""The hot path: LLM endpoints served straight from ASGI, in front of FastAPI.

FastAPI wraps every request in about ten layers (error and exception middleware, telemetry,
body limits, an exit stack, the router's matching, the endpoint wrapper); measured, they cost
more than all of the gateway's own work on a call. The LLM routes do their own parsing,
errors and accounting anyway, so they are dispatched here by method and path. They stay
registered in FastAPI too, which keeps `/openapi.json` and `/docs` truthful; every other
path goes through FastAPI unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from server.errors import GatewayError
from server.http import error_body, error_response, json_response

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]


class FastPath:
    """Routes `(method, path)` pairs to their handlers directly; everything else to `app`."""

    def __init__(self, app: FastAPI, routes: dict[tuple[str, str], Handler]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope.get("method", ""), scope.get("path", "")))
            if scope["type"] == "http"
            else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        try:
            response = await handler(Request(scope, receive))
        except GatewayError as error:
            response = error_response(error)
        except Exception:
            log.exception("unhandled error in %s", scope["path"])
            response = json_response(error_body(GatewayError("internal error")), 500)
        await response(scope, receive, send)
