"""The same bare pass-through as passthrough_aiohttp.py with one shared httpx.AsyncClient instead.

Kept to show what the HTTP client alone costs: httpcore's pool checks every pooled connection
on each request, which dominates at concurrency 50. Run:
    UPSTREAM=http://127.0.0.1:18001 uvicorn passthrough_httpx:app --loop uvloop --http httptools
"""

import contextlib
import os
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:18001")
UPSTREAM_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-upstream"}
client = httpx.AsyncClient(
    base_url=UPSTREAM, timeout=30.0, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256)
)


async def chat_completions(request: Request) -> Response:
    upstream_request = client.build_request(
        "POST", request.url.path, content=await request.body(), headers=UPSTREAM_HEADERS
    )
    upstream = await client.send(upstream_request, stream=True)
    media_type = upstream.headers.get("content-type", "application/json")
    if media_type.startswith("text/event-stream"):
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            media_type=media_type,
            background=BackgroundTask(upstream.aclose),
        )
    body = await upstream.aread()
    await upstream.aclose()
    return Response(body, status_code=upstream.status_code, media_type=media_type)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await client.aclose()


app = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])], lifespan=lifespan)
