"""The usage log: an interface, and its embedded SQLite implementation.

Rows are handed over with `record()` (never blocks the event loop) and written by one
background thread in batches, each batch one transaction. A failed write (database
locked by another process, disk full, read-only mount) is retried with backoff, the
store reports itself unhealthy meanwhile, and nothing is dropped. `close()` flushes
everything; rows that still cannot be written at shutdown go to a JSON-lines file
beside the database rather than disappearing.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from server.errors import StorageError
from server.usage.row import UsageRow, utc_now_iso
from server.usage.schema import COLUMNS, migrate

log = logging.getLogger(__name__)

_ROW_PLACEHOLDERS = f"({', '.join('?' * len(COLUMNS))})"
# Rows per INSERT statement: one statement per chunk, not per row, because the sqlite3 module drops
# the GIL around every step and, with the event loop busy, each re-acquisition waits a switch interval.
_ROWS_PER_INSERT = 32766 // len(COLUMNS) // 2


def _insert_sql(rows: int) -> str:
    return f"INSERT INTO usage_logs ({', '.join(COLUMNS)}) VALUES " + ", ".join([_ROW_PLACEHOLDERS] * rows)


_STOP = object()


class _Clear:
    """A request, queued behind every row recorded before it, to empty the log."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.deleted = 0


class UsageStore(Protocol):
    """What the gateway needs from a usage log; PostgreSQL can slot in behind the same calls."""

    def start(self) -> None: ...
    def record(self, row: UsageRow) -> None: ...
    def clear(self, timeout_s: float = 30.0) -> int: ...
    def close(self, timeout_s: float = 30.0) -> None: ...
    @property
    def healthy(self) -> bool: ...


def connect(path: Path, *, readonly: bool = False, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """A connection in autocommit mode with the pragmas every user of the log needs."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    return conn


def open_usage_db(path: Path) -> sqlite3.Connection:
    """Create the data directory and database if needed, switch to WAL, and migrate."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Prompts and responses live here: owner-only, and SQLite gives its -wal/-shm files the same mode.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = connect(path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn)
        # Prove the file takes writes now, not at the first request.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"usage log {path} is not writable: {exc}") from exc
    return conn


class SqliteUsageStore:
    """Batched, off-the-event-loop writer for `usage_logs` in a SQLite file."""

    def __init__(
        self,
        path: Path,
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.05,
        on_written: Callable[[list[UsageRow]], None] | None = None,
        on_write_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.path = path
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._on_written = on_written
        self._on_write_error = on_write_error
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._conn = open_usage_db(path)
        self._thread = threading.Thread(target=self._run, name="usage-log-writer", daemon=True)
        self._healthy = True
        self._closing_deadline: float | None = None

    @property
    def healthy(self) -> bool:
        return self._healthy and self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def record(self, row: UsageRow) -> None:
        self._queue.put(row)

    def clear(self, timeout_s: float = 30.0) -> int:
        """Empty `usage_logs` in the writer's own order (rows queued before it are written, then deleted).

        Blocking: call it from a thread. Returns the number of rows deleted.
        """
        request = _Clear()
        self._queue.put(request)
        if not request.done.wait(timeout_s):
            raise StorageError("the usage log writer did not empty the log in time")
        return request.deleted

    def close(self, timeout_s: float = 30.0) -> None:
        """Write every queued row, then stop the writer."""
        if not self._thread.is_alive():
            return
        self._closing_deadline = time.monotonic() + timeout_s
        self._queue.put(_STOP)
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if isinstance(first, _Clear):
                self._clear(first)
                continue
            stopping = first is _STOP
            batch: list[UsageRow] = [] if stopping else [first]  # type: ignore[list-item]
            # Gather what arrives within the flush interval; when stopping, everything queued.
            deadline = time.monotonic() + self._flush_interval_s
            while True:
                if len(batch) >= self._batch_size:
                    self._write_with_retry(batch)
                    batch = []
                remaining = deadline - time.monotonic()
                try:
                    if stopping or remaining <= 0:
                        item = self._queue.get_nowait()
                    else:
                        item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                elif isinstance(item, _Clear):
                    if batch:
                        self._write_with_retry(batch)
                        batch = []
                    self._clear(item)
                else:
                    batch.append(item)  # type: ignore[arg-type]
            if batch:
                self._write_with_retry(batch)

    def _clear(self, request: _Clear) -> None:
        try:
            request.deleted = self._conn.execute("DELETE FROM usage_logs").rowcount
        except sqlite3.Error as exc:
            log.error("could not empty the usage log: %s", exc)
        finally:
            request.done.set()

    def _write_with_retry(self, batch: list[UsageRow]) -> None:
        delay = 0.05
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for start in range(0, len(batch), _ROWS_PER_INSERT):
                        chunk = batch[start : start + _ROWS_PER_INSERT]
                        values = [value for row in chunk for value in row.as_tuple()]
                        self._conn.execute(_insert_sql(len(chunk)), values)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._healthy = False
                if self._on_write_error is not None:
                    self._on_write_error(exc)
                if self._closing_deadline is not None and time.monotonic() > self._closing_deadline:
                    self._spill(batch, exc)
                    return
                log.warning(
                    "usage log write failed (%s); %d rows kept, retrying in %.2fs", exc, len(batch), delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._healthy = True
            if self._on_written is not None:
                self._on_written(batch)
            return

    def _spill(self, batch: list[UsageRow], exc: Exception) -> None:
        spill_path = self.path.with_name(f"usage-unwritten-{utc_now_iso().replace(':', '')}.jsonl")
        try:
            with spill_path.open("a") as spill:
                for row in batch:
                    spill.write(json.dumps(row.as_dict()) + "\n")
        except OSError as spill_exc:
            log.error(
                "lost %d usage rows: database (%s) and spill file (%s) unwritable", len(batch), exc, spill_exc
            )
        else:
            log.error(
                "usage log unwritable at shutdown (%s); %d rows saved to %s", exc, len(batch), spill_path
            )
