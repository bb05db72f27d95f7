"""The bare pass-through llmops is measured against: Starlette on uvicorn, one shared aiohttp session.

It forwards the request body to the upstream and relays status, content type and body (streamed
for SSE); no auth, no logging, no metrics. Run:
    UPSTREAM=http://127.0.0.1:18001 uvicorn passthrough_aiohttp:app --loop uvloop --http httptools
"""

import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:18001")
UPSTREAM_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-upstream"}
sessions: list[aiohttp.ClientSession] = []


async def chat_completions(request: Request) -> Response:
    upstream = await sessions[0].post(
        UPSTREAM + request.url.path, data=await request.body(), headers=UPSTREAM_HEADERS
    )
    media_type = upstream.headers.get("content-type", "application/json")
    if media_type.startswith("text/event-stream"):
        return StreamingResponse(
            upstream.content.iter_any(),
            status_code=upstream.status,
            media_type=media_type,
            background=BackgroundTask(upstream.release),
        )
    body = await upstream.read()
    upstream.release()
    return Response(body, status_code=upstream.status, media_type=media_type)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # The session must be created inside the running loop.
    sessions.append(
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256), timeout=aiohttp.ClientTimeout(total=30)
        )
    )
    yield
    await sessions.pop().close()


app = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])], lifespan=lifespan)
