"""What limits cost: the shared SQLite limiter alone, and a real gateway with and without limits.

    python -m bench.limits_overhead [--requests 5000]

1. In process: 20,000 reserve+settle pairs from 50 concurrent tasks through `SqliteLimiter` (one thread,
   grouped BEGIN IMMEDIATE transactions), against the same arithmetic on an in-memory state (the
   lower bound any limiter pays).
2. End to end: a gateway (zero-latency echo) under 50 concurrent clients, with no limits and with
   rpm/tpm/daily limits set high enough never to refuse, so every call reserves and settles.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from server.limits import Estimate, PrincipalState, SqliteLimiter, admit, settle
from server.limits_config import Limits, LimitsPolicy
from server.usage.store import open_usage_db
from tests.harness import Gateway
from tests.load_client import fast_models, load_result, start_load

LIMITS = Limits(rpm=10**9, tpm=10**12, daily_tokens=10**12, daily_usd=10**9)


def in_memory(pairs: int) -> float:
    state, started = PrincipalState(updated=time.time()), time.perf_counter()
    for _ in range(pairs):
        now = time.time()
        reservation = admit(state, LIMITS, "bench", Estimate(100, 0.001), now)
        settle(state, LIMITS, reservation, 10, 0.0001, now)
    return pairs / (time.perf_counter() - started)


def through_sqlite(pairs: int, tasks: int = 50) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        open_usage_db(Path(tmp) / "usage.db").close()
        limiter = SqliteLimiter(Path(tmp) / "limits.db", Path(tmp) / "usage.db", LimitsPolicy(LIMITS))
        limiter.start()

        async def worker(count: int) -> None:
            for _ in range(count):
                reservation = await limiter.reserve("bench", Estimate(100, 0.001))
                assert reservation is not None
                limiter.settle(reservation, 10, 0.0001)

        async def all_workers() -> None:
            await asyncio.gather(*(worker(pairs // tasks) for _ in range(tasks)))

        started = time.perf_counter()
        asyncio.run(all_workers())
        limiter.close()  # applies the queued settlements
        return pairs / (time.perf_counter() - started)


def gateway_run(requests: int, limited: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = fast_models(Path(tmp))
        if limited:
            env |= {
                "LLMOPS_LIMIT_RPM": str(LIMITS.rpm),
                "LLMOPS_LIMIT_TPM": str(LIMITS.tpm),
                "LLMOPS_BUDGET_DAILY_TOKENS": str(LIMITS.daily_tokens),
                "LLMOPS_BUDGET_DAILY_USD": str(LIMITS.daily_usd),
            }
        gw = Gateway(Path(tmp) / "gw", env=env).start()
        try:
            out = Path(tmp) / "load.json"
            result = load_result(start_load(gw, out, "--concurrency", "50", count=requests), out)
        finally:
            gw.stop()
    statuses = [status for _, status, _ in result["results"]]
    assert statuses.count(200) == requests, f"{len(statuses) - statuses.count(200)} errors"
    return {"rps": requests / (result["finished"] - result["started"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"in-memory arithmetic: {in_memory(100_000):,.0f} reserve+settle pairs/s")
    print(f"SqliteLimiter, 50 tasks: {through_sqlite(20_000):,.0f} reserve+settle pairs/s")
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):  # interleaved, so drift in the machine's load hits both alike
        for limited in (False, True):
            rates[limited].append(gateway_run(args.requests, limited)["rps"])
    for limited, runs in rates.items():
        label = "with limits" if limited else "no limits  "
        print(
            f"gateway {label}: {statistics.median(runs):,.0f} req/s median of {args.repeats} "
            f"({', '.join(f'{r:,.0f}' for r in runs)})"
        )


if __name__ == "__main__":
    main()
