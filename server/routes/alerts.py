"""POST /alerts/webhook: Alertmanager's default receiver when the user configured none."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from server.alerts import parse_webhook, record_alerts
from server.auth import bearer_matches
from server.errors import AuthError, GatewayError
from server.gateway import Gateway
from server.http import json_response, read_json_object

router = APIRouter()


class WebhookDisabled(GatewayError):
    """The webhook is off (no token configured): as if the route did not exist."""

    status_code = 404
    error_type = "not_found"


@router.post(
    "/alerts/webhook",
    summary="Receive alerts from Alertmanager (webhook receiver)",
    responses={
        400: {"description": "Not an Alertmanager webhook payload."},
        401: {"description": "Missing or wrong webhook bearer."},
        404: {"description": "The webhook is off (LLMOPS_ALERTS_WEBHOOK_TOKEN unset)."},
        413: {"description": "Body too large."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["alerts"],
                        "properties": {"alerts": {"type": "array", "items": {"type": "object"}}},
                    }
                }
            },
        }
    },
)
async def alerts_webhook(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    expected = gateway.settings.alerts_webhook_token
    if expected is None:
        raise WebhookDisabled("the alerts webhook is off: set LLMOPS_ALERTS_WEBHOOK_TOKEN (llmops up does)")
    if not bearer_matches(request.headers.get("authorization"), expected.get_secret_value()):
        gateway.metrics.auth_failures.labels("webhook").inc()
        raise AuthError("the alerts webhook needs its own bearer token", reason="webhook")
    rows = parse_webhook(await read_json_object(request, gateway.settings.max_body_bytes))
    await asyncio.to_thread(record_alerts, gateway.settings.usage_db_path, rows)
    return json_response({"received": len(rows)})
