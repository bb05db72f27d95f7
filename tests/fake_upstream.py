"""A paid LLM's stand-in: a real HTTP server on 127.0.0.1 speaking OpenAI's and Ollama's APIs.

Each upstream model name has a script of `Behaviour`s, consumed one per request (the last
one repeats), so a test can say "500, then answer" or "cut the stream after 2 chunks".
Every request is recorded (path, headers, body), and so is every client hang-up.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.harness import free_port


@dataclass
class Behaviour:
    status: int = 200
    error_message: str = "simulated upstream error"
    retry_after: str | None = None
    delay_s: float = 0.0  # before the response headers
    first_chunk_delay_s: float = 0.0  # streams: after the headers, before the first chunk
    chunk_delay_s: float = 0.0
    text: str = "hello from upstream"
    prompt_tokens: int = 11
    completion_tokens: int | None = None  # default: words in `text`
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    usage: str = "final_chunk"  # streams: final_chunk (with choices) | separate_chunk | none
    gzip: bool = False
    cut_after_chunks: int | None = None  # streams: drop the connection after this many chunks
    split_lines: bool = False  # ollama streams: each NDJSON line sent in two network writes
    finish_reason: str = "stop"


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class HangUp:
    model: str
    at: float  # time.monotonic()


@dataclass
class FakeUpstream:
    port: int = field(default_factory=free_port)
    scripts: dict[str, list[Behaviour]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    hangups: list[HangUp] = field(default_factory=list)

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def ollama_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, model: str, *behaviours: Behaviour) -> None:
        self.scripts[model] = list(behaviours)

    def requests_for(self, model: str) -> list[Recorded]:
        return [r for r in self.requests if r.body.get("model") == model]

    def _next(self, model: str) -> Behaviour:
        script = self.scripts.get(model) or [Behaviour()]
        return script.pop(0) if len(script) > 1 else script[0]

    # -- server ---------------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._main(ready))

    async def _main(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/api/chat", self._ollama)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        ready.set()
        await self._stop.wait()
        await runner.cleanup()

    async def _receive(self, request: web.Request) -> tuple[dict[str, Any], Behaviour]:
        body = orjson.loads(await request.read())
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        return body, self._next(body.get("model", ""))

    def _hung_up(self, model: str) -> None:
        self.hangups.append(HangUp(model, time.monotonic()))

    def _error(self, b: Behaviour, ollama: bool) -> web.Response:
        payload = (
            {"error": b.error_message}
            if ollama
            else {"error": {"message": b.error_message, "type": "server_error", "code": None}}
        )
        headers = {"Retry-After": b.retry_after} if b.retry_after else None
        return web.json_response(payload, status=b.status, headers=headers)

    # -- OpenAI dialect ---------------------------------------------------------------------------

    def _usage(self, b: Behaviour) -> dict[str, Any]:
        completion = b.completion_tokens if b.completion_tokens is not None else len(b.text.split())
        usage: dict[str, Any] = {
            "prompt_tokens": b.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": b.prompt_tokens + completion,
        }
        if b.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": b.cached_tokens}
        if b.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": b.reasoning_tokens}
        return usage

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        model = "?"
        try:
            body, b = await self._receive(request)
            model = body.get("model", "")
            await asyncio.sleep(b.delay_s)
            if b.status != 200:
                return self._error(b, ollama=False)
            if body.get("stream"):
                return await self._openai_stream(request, body, b)
            payload = {
                "id": "chatcmpl-upstream",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": b.text, "refusal": None},
                        "finish_reason": b.finish_reason,
                        "logprobs": None,
                    }
                ],
            }
            if b.usage != "none":
                payload["usage"] = self._usage(b)
            raw = orjson.dumps(payload)
            if b.gzip:
                return web.Response(
                    body=gzip.compress(raw),
                    content_type="application/json",
                    headers={"Content-Encoding": "gzip"},
                )
            return web.Response(body=raw, content_type="application/json")
        except (asyncio.CancelledError, ConnectionResetError):
            self._hung_up(model)
            raise

    async def _openai_stream(
        self, request: web.Request, body: dict[str, Any], b: Behaviour
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {
            "id": "chatcmpl-upstream",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
        }
        words = b.text.split()
        chunks = [
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                ],
            }
        ]
        chunks += [
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"content": (" " if i else "") + w}, "finish_reason": None}
                ],
            }
            for i, w in enumerate(words)
        ]
        final = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": b.finish_reason}]}
        if b.usage == "final_chunk":
            final["usage"] = self._usage(b)
        chunks.append(final)
        if b.usage == "separate_chunk":
            chunks.append({**base, "choices": [], "usage": self._usage(b)})
        if b.first_chunk_delay_s:
            await asyncio.sleep(b.first_chunk_delay_s)
        for i, chunk in enumerate(chunks):
            if b.cut_after_chunks is not None and i == b.cut_after_chunks:
                assert request.transport is not None
                request.transport.close()  # a broken connection, no [DONE]
                return response
            if i and b.chunk_delay_s:
                await asyncio.sleep(b.chunk_delay_s)
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # -- Ollama dialect ---------------------------------------------------------------------------

    async def _ollama(self, request: web.Request) -> web.StreamResponse:
        model = "?"
        try:
            body, b = await self._receive(request)
            model = body.get("model", "")
            await asyncio.sleep(b.delay_s)
            if b.status != 200:
                return self._error(b, ollama=True)
            completion = b.completion_tokens if b.completion_tokens is not None else len(b.text.split())
            final = {
                "model": model,
                "created_at": "2026-01-01T00:00:00Z",
                "done": True,
                "done_reason": b.finish_reason,
                "prompt_eval_count": b.prompt_tokens,
                "eval_count": completion,
            }
            if not body.get("stream", True):
                return web.json_response({**final, "message": {"role": "assistant", "content": b.text}})
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
            words = b.text.split()
            lines = [
                {
                    "model": model,
                    "message": {"role": "assistant", "content": (" " if i else "") + w},
                    "done": False,
                }
                for i, w in enumerate(words)
            ]
            lines.append({**final, "message": {"role": "assistant", "content": ""}})
            for i, line in enumerate(lines):
                if b.cut_after_chunks is not None and i == b.cut_after_chunks:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if i and b.chunk_delay_s:
                    await asyncio.sleep(b.chunk_delay_s)
                raw = orjson.dumps(line) + b"\n"
                if b.split_lines:
                    half = len(raw) // 2
                    await response.write(raw[:half])
                    await asyncio.sleep(0.01)
                    await response.write(raw[half:])
                else:
                    await response.write(raw)
            await response.write_eof()
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            self._hung_up(model)
            raise
