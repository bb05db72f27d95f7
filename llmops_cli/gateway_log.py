"""The gateway's log file: JSON request lines (one per call) mixed with uvicorn's plain lines.

Reading, filtering and following it; `llmops logs gateway` renders what comes out.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

_FOLLOW_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class LogLine:
    """One line of the log; ``request`` holds the parsed entry when it is a JSON request line."""

    text: str
    request: dict[str, Any] | None


@dataclass(frozen=True)
class RequestFilter:
    """Which request lines to keep; with any filter set, plain lines are dropped."""

    user: str | None = None
    status: str | None = None
    """A request status (ok, error, rejected, cancelled) or an HTTP status code such as 429."""
    since: datetime | None = None

    @property
    def active(self) -> bool:
        return any(value is not None for value in (self.user, self.status, self.since))

    def keeps(self, line: LogLine) -> bool:
        if not self.active:
            return True
        entry = line.request
        if entry is None:
            return False
        if self.user is not None and entry.get("user") != self.user:
            return False
        if self.status is not None:
            field = "http_status" if self.status.isdigit() else "status"
            if str(entry.get(field)) != self.status:
                return False
        if self.since is not None:
            moment = parse_timestamp(entry.get("ts"))
            if moment is None or moment < self.since:
                return False
        return True


def parse_line(text: str) -> LogLine:
    """A log line, recognising the gateway's JSON request entries."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            entry = json.loads(stripped)
        except ValueError:
            entry = None
        if isinstance(entry, dict) and entry.get("event") == "request":
            return LogLine(text, entry)
    return LogLine(text, None)


def parse_timestamp(value: Any) -> datetime | None:
    """The entry's ``ts`` (UTC ISO-8601, e.g. 2026-01-31T12:00:00.000Z) as an aware datetime."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def read_log(path: Path, keep: RequestFilter, tail: int | None = None) -> tuple[list[LogLine], int]:
    """The lines of ``path`` that ``keep`` keeps (only the last ``tail`` of them when given), and the
    byte offset where reading stopped, from which `follow_log` carries on."""
    kept: deque[LogLine] = deque(maxlen=tail)
    with path.open("rb") as log:
        for raw in log:
            line = parse_line(raw.rstrip(b"\n").decode("utf-8", errors="replace"))
            if keep.keeps(line):
                kept.append(line)
        return list(kept), log.tell()


def follow_log(path: Path, keep: RequestFilter, position: int) -> Iterator[LogLine]:
    """Lines written to ``path`` after byte offset ``position``, as they come (until interrupted).

    A file that shrinks (truncated or replaced by rotation) is read again from its start.
    """
    pending = b""
    while True:
        size = path.stat().st_size if path.exists() else 0
        if size < position:
            position, pending = 0, b""
        if size == position:
            time.sleep(_FOLLOW_POLL_SECONDS)
            continue
        # Bytes, not text: a chunk may end inside a multi-byte character.
        with path.open("rb") as log:
            log.seek(position)
            pending += log.read()
            position = log.tell()
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            line = parse_line(raw.decode("utf-8", errors="replace"))
            if keep.keeps(line):
                yield line
