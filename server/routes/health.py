"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from server.http import json_response
from server.metrics import exposition

router = APIRouter()


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="The usage log takes writes", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> Response:
    if request.app.state.gateway.usage_store.healthy:
        return json_response({"status": "ready"})
    return json_response({"status": "unready", "reason": "usage log is not writable"}, 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(exposition(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
