"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from server.http import json_response
from server.metrics import exposition
from server.metrics_server import UNAUTHORIZED_BODY, metrics_authorized

router = APIRouter()


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="The usage log takes writes", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> Response:
    if request.app.state.gateway.usage_store.healthy:
        return json_response({"status": "ready"})
    return json_response({"status": "unready", "reason": "usage log is not writable"}, 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={401: {"description": "LLMOPS_METRICS_TOKEN is set and was not sent."}},
)
async def metrics(request: Request) -> Response:
    settings = request.app.state.gateway.settings
    if settings.metrics_port is not None:
        return json_response(
            {"error": {"type": "not_found", "message": "/metrics is served on another address"}}, 404
        )
    token = settings.metrics_token.get_secret_value() if settings.metrics_token is not None else None
    if not metrics_authorized(request.headers.get("authorization"), token):
        request.app.state.gateway.metrics.auth_failures.labels("metrics_token").inc()
        return Response(
            UNAUTHORIZED_BODY,
            401,
            {"WWW-Authenticate": 'Bearer realm="llmops"'},
            media_type="application/json",
        )
    return Response(exposition(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
