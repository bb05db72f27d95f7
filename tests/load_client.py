"""A load generator in a process of its own: N requests to POST /llm from C concurrent clients.

    python -m tests.load_client --url URL --token T --count 10000 --concurrency 50 --out result.json

Writes every request's id, HTTP status (0 when no response came) and the wall-clock time its answer
arrived. With --kill-pid/--kill-after it SIGKILLs that process mid-load and records when, so the
acknowledged calls and the kill share one clock. `start_load` and `load_result` drive it from a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.harness import REPO, Gateway, cli_env

FAST_ECHO = {
    "default_model": "echo",
    "models": [
        {"name": "echo", "provider": "echo", "input_price_per_mtok": 0.5, "output_price_per_mtok": 1.5},
        {"name": "slow", "provider": "echo", "latency_ms": 500},
    ],
}


def fast_models(directory: Path) -> dict[str, str]:
    """Settings for zero-latency echo models (and one 500 ms `slow` model), written into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "models.json"
    path.write_text(json.dumps(FAST_ECHO))
    return {"LLMOPS_MODELS_FILE": str(path)}


def start_load(gw: Gateway, out: Path, *extra: str, count: int = 10_000) -> subprocess.Popen[bytes]:
    """This module as a process sending `count` calls to `gw` as principal "load"; flags in `extra`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.load_client",
            "--url",
            gw.url,
            "--token",
            gw.token("load"),
            "--count",
            str(count),
            "--out",
            str(out),
            *extra,
        ],
        cwd=REPO,
        env=cli_env(),
    )


def load_result(process: subprocess.Popen[bytes], out: Path, timeout: float = 300) -> dict[str, Any]:
    """What a finished load process wrote."""
    assert process.wait(timeout) == 0
    return json.loads(out.read_text())  # type: ignore[no-any-return]


async def run(args: argparse.Namespace) -> dict[str, object]:
    results: list[tuple[str, int, float]] = []
    next_index = 0
    kill_time: float | None = None
    prompt = " ".join(["word"] * max(1, args.prompt_words))
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    headers = {"Authorization": f"Bearer {args.token}"}

    async with aiohttp.ClientSession(args.url, connector=connector, timeout=timeout, headers=headers) as http:

        async def client() -> None:
            nonlocal next_index
            while next_index < args.count:
                request_id = f"{args.id_prefix}-{next_index}"
                next_index += 1
                body = {"prompt": f"{prompt} {request_id}", "model": args.model}
                try:
                    async with http.post("/llm", json=body, headers={"x-request-id": request_id}) as response:
                        await response.read()
                        status = response.status
                except (TimeoutError, aiohttp.ClientError):
                    status = 0
                results.append((request_id, status, time.time()))
                if status == 0 and kill_time is not None:
                    return  # the gateway is gone: no point in counting refused connections

        async def killer() -> None:
            nonlocal kill_time
            await asyncio.sleep(args.kill_after)
            kill_time = time.time()
            os.kill(args.kill_pid, signal.SIGKILL)

        started = time.time()
        tasks = [asyncio.create_task(client()) for _ in range(args.concurrency)]
        if args.kill_pid:
            tasks.append(asyncio.create_task(killer()))
        await asyncio.gather(*tasks)
    return {"started": started, "finished": time.time(), "kill_time": kill_time, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--model", default="echo")
    parser.add_argument("--prompt-words", type=int, default=8)
    parser.add_argument("--id-prefix", default="load")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--kill-pid", type=int, default=0)
    parser.add_argument("--kill-after", type=float, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.write_text(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
