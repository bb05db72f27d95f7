"""What every LLM endpoint does around its own work: auth, the call's one row, errors, hang-ups."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.errors import GatewayError
from server.gateway import Call, Gateway
from server.http import error_body, error_response, json_response, read_json_object, request_id
from server.streaming import ClientDisconnected, EventStreamResponse

log = logging.getLogger(__name__)

Answerer = Callable[[Gateway, Call, dict[str, Any], Request], Awaitable[Response]]


async def serve_llm_call(request: Request, endpoint: str, answer: Answerer) -> Response:
    """Authenticate, open the call's row, let `answer` do the work, and close the row exactly once.

    A stream's row is closed by the stream itself when it ends (see server/routes/openai.py).
    """
    gateway: Gateway = request.app.state.gateway
    principal = await gateway.authenticate(request.headers.get("authorization"))
    rid = request_id(request)
    call = gateway.start_call(rid, principal, request.headers.get("x-user-id"), endpoint)
    streaming = False
    try:
        body = await read_json_object(request, gateway.settings.max_body_bytes)
        requested = body.get("model")
        call.row.requested_model = (
            requested[:200] if isinstance(requested, str) else gateway.registry.default_model
        )
        response = await answer(gateway, call, body, request)
        streaming = isinstance(response, EventStreamResponse)
        return response
    except ClientDisconnected:
        return Response(status_code=499)  # nobody is listening; the row says "cancelled"
    except GatewayError as error:
        gateway.fail_call(call, error)
        return error_response(error)
    except Exception as exc:
        internal = GatewayError(f"internal error ({type(exc).__name__})")
        gateway.fail_call(call, internal)
        log.exception("unhandled error in %s (request %s)", endpoint, rid)
        return json_response(error_body(internal), 500)
    finally:
        if not streaming:
            gateway.finish_call(call)
