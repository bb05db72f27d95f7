"""Responses that notice a client hanging up: the call is cancelled, upstream included.

Starlette only learns of a disconnect when it next sends; a slow upstream can keep
a dead call alive for minutes. Here a watcher waits on `receive()` for
`http.disconnect` and cancels the task serving the call, which closes the upstream
connection within the event loop's next turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away before the answer was complete."""


class _DisconnectWatch:
    def __init__(self, receive: Receive) -> None:
        self.disconnected = False
        self._task = asyncio.current_task()
        self._watcher = asyncio.create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if self._task is not None:
                    self._task.cancel()
                return

    def stop(self) -> None:
        self._watcher.cancel()

    def absorb(self) -> bool:
        """After a CancelledError: True when it was the hang-up's (and is now absorbed)."""
        if self.disconnected and self._task is not None:
            self._task.uncancel()
            return True
        return False


async def unless_disconnected(receive: Receive, awaitable: Awaitable[T]) -> T:
    """Await `awaitable`, or raise ClientDisconnected as soon as the client hangs up."""
    watch = _DisconnectWatch(receive)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if watch.absorb():
            raise ClientDisconnected() from None
        raise
    finally:
        watch.stop()


class EventStreamResponse(Response):
    """`text/event-stream` from an async iterator of ready-made SSE bytes; stops when the client leaves.

    The iterator is closed in every case, so its own `finally` can account for the call.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> None:
        self.events = events
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = _DisconnectWatch(receive)
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            async for event in self.events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not watch.absorb():
                raise
        except OSError:
            pass  # the client's socket closed while we were sending
        finally:
            watch.stop()
            await self.events.aclose()  # type: ignore[attr-defined]
