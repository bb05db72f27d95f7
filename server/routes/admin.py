"""Endpoints that read other principals' data; each needs the admin scope (`llmops:admin`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from server.auth import ADMIN_SCOPE
from server.errors import Forbidden, RequestError
from server.gateway import Gateway
from server.http import json_response
from server.usage.queries import UsageFilter, recent_calls
from server.usage.store import connect

router = APIRouter()
MAX_LAST = 1000


def _recent_rows(db_path: Path, last: int, where: UsageFilter) -> list[dict[str, Any]]:
    conn = connect(db_path, readonly=True)
    try:
        return recent_calls(conn, last, where)
    finally:
        conn.close()


@router.get(
    "/admin/usage",
    summary="The newest usage-log rows of every principal (admin scope)",
    responses={
        401: {"description": "Missing or invalid bearer token."},
        403: {"description": f"The principal lacks the {ADMIN_SCOPE} scope."},
    },
)
async def admin_usage(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    # Credentials first: nothing about the query is looked at for an unauthenticated caller.
    principal = await gateway.authenticate(request.headers.get("authorization"))
    if not principal.is_admin:
        raise Forbidden(f"reading other principals' usage needs the {ADMIN_SCOPE} scope")
    raw_last = request.query_params.get("last", "20")
    if not raw_last.isdigit() or not 1 <= int(raw_last) <= MAX_LAST:
        raise RequestError(f"`last` must be an integer between 1 and {MAX_LAST}")
    where = UsageFilter(user=request.query_params.get("user"), model=request.query_params.get("model"))
    rows = await asyncio.to_thread(_recent_rows, gateway.settings.usage_db_path, int(raw_last), where)
    return json_response({"data": rows})


@router.post(
    "/admin/usage/clear",
    summary="Empty the usage log through the gateway's own writer (admin scope)",
    responses={401: {"description": "Missing or invalid bearer token."}, 403: {"description": "Not admin."}},
)
async def admin_usage_clear(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    principal = await gateway.authenticate(request.headers.get("authorization"))
    if not principal.is_admin:
        raise Forbidden(f"emptying the usage log needs the {ADMIN_SCOPE} scope")
    deleted = await asyncio.to_thread(gateway.usage_store.clear)
    return json_response({"deleted": deleted})
