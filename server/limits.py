"""Per-principal rate limits and daily budgets: the `Limiter` interface and its SQLite implementation.

Four limits, each unlimited when unset or 0:

    rpm            requests per minute      leaky bucket of capacity `rpm`, drains rpm/60 per second
    tpm            tokens per minute        leaky bucket of capacity `tpm`, drains tpm/60 per second
    daily_tokens   tokens per UTC day       resets at 00:00 UTC
    daily_usd      spend per UTC day        resets at 00:00 UTC (calls to unpriced models cost 0)

Defaults come from settings (LLMOPS_LIMIT_RPM, LLMOPS_LIMIT_TPM, LLMOPS_BUDGET_DAILY_TOKENS,
LLMOPS_BUDGET_DAILY_USD); a limits file overrides them per principal (server/limits_config.py).

A call reserves its estimate (prompt estimate + max_tokens) before it goes upstream; the check and the
reservation are one transaction, so concurrent calls cannot overrun a limit. When the call finishes it
settles to what its usage-log row says it used.

State lives in `<data>/limits.db` and every change is a `BEGIN IMMEDIATE` transaction, so gateway
processes sharing a data directory share their limits. The transactions run on one thread of the
limiter's own (never on the event loop), which applies whatever has queued up in one transaction.
The file holds only derived state: the first process to open it rebuilds today's budgets from the
usage log, so budgets survive a restart and a crashed process's unsettled reservations do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from server.errors import RateLimited, StorageError
from server.limits_config import Limits, LimitsPolicy, load_policy
from server.usage.queries import spend_since

log = logging.getLogger(__name__)

# limits.db is derived state: a new layout drops and rebuilds it instead of migrating it.
STATE_VERSION = 1
_STOP = object()


# -- the arithmetic, shared by every implementation -----------------------------------------------


@dataclass(slots=True)
class Estimate:
    """What a call may use at most, reserved before it goes upstream."""

    tokens: int
    cost_usd: float


@dataclass(slots=True)
class Reservation:
    """An admitted call's hold on its principal's limits, until it settles."""

    principal: str
    tokens: int
    cost_usd: float
    day: str


@dataclass(slots=True)
class PrincipalState:
    """One principal's counters: the two bucket levels at `updated`, and today's totals."""

    updated: float = 0.0
    requests: float = 0.0
    tokens: float = 0.0
    day: str = ""
    day_tokens: int = 0
    day_cost_usd: float = 0.0

    def drain(self, limits: Limits, now: float) -> None:
        """Let the minute buckets leak for the time since the last change, and roll the day over."""
        elapsed = max(0.0, now - self.updated)
        if limits.rpm:
            self.requests = max(0.0, self.requests - elapsed * limits.rpm / 60)
        if limits.tpm:
            self.tokens = max(0.0, self.tokens - elapsed * limits.tpm / 60)
        self.updated = now
        today = utc_day(now)
        if self.day != today:
            self.day, self.day_tokens, self.day_cost_usd = today, 0, 0.0


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def usd(amount: float) -> str:
    return "$" + (f"{amount:.6f}".rstrip("0").rstrip(".") or "0")


def seconds_to_midnight(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - moment).total_seconds()


class LimitExceeded(RateLimited):
    """A call refused by one of the principal's limits; `limit` is one of LIMIT_NAMES."""

    def __init__(self, limit: str, message: str, retry_after_s: float) -> None:
        super().__init__(message, retry_after_s)
        self.limit = limit


def admit(
    state: PrincipalState, limits: Limits, principal: str, estimate: Estimate, now: float
) -> Reservation:
    """Reserve `estimate` on `state`, or raise LimitExceeded without changing it."""
    state.drain(limits, now)
    if limits.rpm and state.requests + 1 > limits.rpm:
        wait = (state.requests + 1 - limits.rpm) * 60 / limits.rpm
        raise LimitExceeded("rpm", f"rate limit of {limits.rpm} requests per minute reached", wait)
    if limits.tpm:
        if estimate.tokens > limits.tpm:
            raise LimitExceeded(
                "tpm",
                f"this call reserves {estimate.tokens} tokens (prompt estimate + max_tokens), more than the "
                f"limit of {limits.tpm} tokens per minute; lower max_tokens",
                60.0,
            )
        if state.tokens + estimate.tokens > limits.tpm:
            wait = (state.tokens + estimate.tokens - limits.tpm) * 60 / limits.tpm
            raise LimitExceeded(
                "tpm",
                f"rate limit of {limits.tpm} tokens per minute reached (this call reserves "
                f"{estimate.tokens} tokens: prompt estimate + max_tokens)",
                wait,
            )
    if limits.daily_tokens and state.day_tokens + estimate.tokens > limits.daily_tokens:
        raise LimitExceeded(
            "daily_tokens",
            f"daily budget of {limits.daily_tokens} tokens reached ({state.day_tokens} used today, this call "
            f"reserves {estimate.tokens}); it resets at 00:00 UTC",
            seconds_to_midnight(now),
        )
    if limits.daily_usd and state.day_cost_usd + estimate.cost_usd > limits.daily_usd:
        raise LimitExceeded(
            "daily_usd",
            f"daily budget of {usd(limits.daily_usd)} reached ({usd(state.day_cost_usd)} spent today, "
            f"this call reserves up to {usd(estimate.cost_usd)}); it resets at 00:00 UTC",
            seconds_to_midnight(now),
        )
    state.requests += 1
    state.tokens += estimate.tokens
    state.day_tokens += estimate.tokens
    state.day_cost_usd += estimate.cost_usd
    return Reservation(principal, estimate.tokens, estimate.cost_usd, state.day)


def settle(
    state: PrincipalState,
    limits: Limits,
    reservation: Reservation,
    tokens: int,
    cost_usd: float | None,
    now: float,
) -> None:
    """Replace the reserved amounts by what the call used (an unpriced call costs 0)."""
    state.drain(limits, now)
    state.tokens = max(0.0, state.tokens + tokens - reservation.tokens)
    # A call counts for the day it started on, like its usage-log row.
    if state.day == reservation.day:
        state.day_tokens = max(0, state.day_tokens + tokens - reservation.tokens)
        state.day_cost_usd = max(0.0, state.day_cost_usd + (cost_usd or 0.0) - reservation.cost_usd)


# -- the interface and its embedded implementation ------------------------------------------------


class Limiter(Protocol):
    """What the gateway needs from a limiter; a Redis one can slot in behind the same calls."""

    policy: LimitsPolicy

    def start(self) -> None: ...
    async def reserve(self, principal: str, estimate: Estimate) -> Reservation | None:
        """Hold `estimate` for the call, None when the principal has no limits; raise LimitExceeded."""
        ...

    def settle(self, reservation: Reservation, tokens: int, cost_usd: float | None) -> None:
        """Replace a reservation by the call's real usage (never blocks)."""
        ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS limit_state (
    principal    TEXT PRIMARY KEY,
    updated      REAL NOT NULL,
    requests     REAL NOT NULL,
    tokens       REAL NOT NULL,
    day          TEXT NOT NULL,
    day_tokens   INTEGER NOT NULL,
    day_cost_usd REAL NOT NULL
)
"""


@dataclass(slots=True)
class _Reserve:
    principal: str
    estimate: Estimate
    deliver: Callable[[Reservation | BaseException], None]


@dataclass(slots=True)
class _Settle:
    reservation: Reservation
    tokens: int
    cost_usd: float | None


class SqliteLimiter:
    """Limits shared by every process using `path`, applied by one thread in grouped transactions."""

    def __init__(self, path: Path, usage_db_path: Path, policy: LimitsPolicy) -> None:
        self.path = path
        self.policy = policy
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="limiter", daemon=True)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Held shared for the process's life; whoever gets it exclusively is alone and rebuilds.
            self._lock_fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 5000")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._open_shared(usage_db_path)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"limits store {path} is not usable: {exc}") from exc

    def _open_shared(self, usage_db_path: Path) -> None:
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alone = False
        else:
            alone = True
        if alone:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                if version != STATE_VERSION:
                    self._conn.execute("DROP TABLE IF EXISTS limit_state")
                    self._conn.execute(f"PRAGMA user_version = {STATE_VERSION}")
                self._conn.execute(_SCHEMA)
                rebuilt = self._rebuild_budgets(usage_db_path)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            log.info("limits: rebuilt today's budgets of %d principals from the usage log", rebuilt)
        # Waits while another process that is alone rebuilds; shared from then on.
        fcntl.flock(self._lock_fd, fcntl.LOCK_SH)

    def _rebuild_budgets(self, usage_db_path: Path) -> int:
        now = time.time()
        today = utc_day(now)
        self._conn.execute("UPDATE limit_state SET day = ?, day_tokens = 0, day_cost_usd = 0", (today,))
        if not usage_db_path.exists():
            return 0
        usage = sqlite3.connect(f"file:{usage_db_path}?mode=ro", uri=True)
        try:
            usage.execute("PRAGMA busy_timeout = 5000")
            spent = spend_since(usage, f"{today}T00:00:00.000Z")
        finally:
            usage.close()
        for principal, (tokens, cost_usd) in spent.items():
            self._conn.execute(
                "INSERT INTO limit_state VALUES (?, ?, 0, 0, ?, ?, ?) ON CONFLICT (principal) DO UPDATE SET "
                "day = excluded.day, day_tokens = excluded.day_tokens, day_cost_usd = excluded.day_cost_usd",
                (principal, now, today, tokens, cost_usd),
            )
        return len(spent)

    # -- the interface ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    async def reserve(self, principal: str, estimate: Estimate) -> Reservation | None:
        limits = self.policy.for_principal(principal)
        if limits.unlimited:
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reservation] = loop.create_future()

        def resolve(outcome: Reservation | BaseException) -> None:
            if future.cancelled():
                # The caller went away while its reservation was being made: hand it straight back.
                if isinstance(outcome, Reservation):
                    self.settle(outcome, 0, None)
            elif isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        def deliver(outcome: Reservation | BaseException) -> None:
            # RuntimeError: the loop closed meanwhile, and nobody waits for this answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(resolve, outcome)

        self._queue.put(_Reserve(principal, estimate, deliver))
        return await future

    def settle(self, reservation: Reservation, tokens: int, cost_usd: float | None) -> None:
        self._queue.put(_Settle(reservation, tokens, cost_usd))

    def close(self) -> None:
        """Apply every queued settlement, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._conn.close()
        os.close(self._lock_fd)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        retry: list[object] = []
        while True:
            first = self._queue.get()
            batch = [*retry, first]
            retry = []
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(op is _STOP for op in batch)
            ops = [op for op in batch if op is not _STOP]
            if ops:
                retry = self._apply(ops)
            if stopping:
                if retry:
                    log.error("limits: %d settlements could not be written at shutdown", len(retry))
                return
            if retry:
                time.sleep(0.05)

    def _apply(self, ops: list[object]) -> list[object]:
        """Apply `ops` in one transaction; returns the settlements to try again when it failed."""
        states: dict[str, PrincipalState] = {}
        outcomes: list[tuple[_Reserve, Reservation | BaseException]] = []
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for op in ops:
                    outcome = self._apply_one(states, op)
                    if isinstance(op, _Reserve):
                        assert outcome is not None
                        outcomes.append((op, outcome))
                self._conn.executemany(
                    "INSERT OR REPLACE INTO limit_state VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (p, s.updated, s.requests, s.tokens, s.day, s.day_tokens, s.day_cost_usd)
                        for p, s in states.items()
                    ],
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except Exception as exc:  # sqlite3.Error mostly; nothing may kill the thread
            log.warning("limits store write failed (%s); refusing the reservations queued meanwhile", exc)
            failure = StorageError(f"limits store unavailable: {exc}")
            for op in ops:
                if isinstance(op, _Reserve):
                    op.deliver(failure)
            return [op for op in ops if isinstance(op, _Settle)]
        for reserve_op, result in outcomes:
            reserve_op.deliver(result)
        return []

    def _apply_one(self, states: dict[str, PrincipalState], op: object) -> Reservation | LimitExceeded | None:
        if isinstance(op, _Reserve):
            state = self._state(states, op.principal)
            limits = self.policy.for_principal(op.principal)
            try:
                return admit(state, limits, op.principal, op.estimate, time.time())
            except LimitExceeded as exc:
                return exc
        assert isinstance(op, _Settle)
        principal = op.reservation.principal
        limits = self.policy.for_principal(principal)
        settle(self._state(states, principal), limits, op.reservation, op.tokens, op.cost_usd, time.time())
        return None

    def _state(self, states: dict[str, PrincipalState], principal: str) -> PrincipalState:
        state = states.get(principal)
        if state is None:
            row = self._conn.execute(
                "SELECT updated, requests, tokens, day, day_tokens, day_cost_usd FROM limit_state "
                "WHERE principal = ?",
                (principal,),
            ).fetchone()
            state = states[principal] = PrincipalState(*row) if row else PrincipalState(updated=time.time())
        return state


def build_limiter(
    defaults: Limits, limits_file: Path | None, data_dir: Path, usage_db_path: Path
) -> Limiter | None:
    """The limiter for these settings; None when nobody has any limit (calls skip it entirely)."""
    policy = load_policy(defaults, limits_file)
    if policy.unlimited:
        return None
    return SqliteLimiter(data_dir / "limits.db", usage_db_path, policy)
