"""Small HTTP/1.1 client for bench/run.sh: readiness, answer checks, time to first token, exact counts.

Standard library only (it runs before any venv exists) and raw sockets, so its own cost is small
and the same for every target; run.sh only ever reports differences between targets.

    chat_client.py ready URL --since EPOCH [--pid PID]   seconds from EPOCH to the first 200
    chat_client.py check URL                             one plain and one streamed call look right
    chat_client.py ttft URL --count N                    sequential streams: first SSE byte, last byte
    chat_client.py burst URL --count N --concurrency C   exactly N calls (every 2nd streamed), count 200s

Common options: --key (bearer token), --model. Results are printed as one line of key=value pairs.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

PROMPT = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": "Why does the tail latency of an LLM gateway matter?"},
]


class BadAnswer(Exception):
    """The target answered, but not like an OpenAI-compatible chat completions endpoint."""


@dataclass
class Answer:
    """One HTTP response, with timings relative to the moment the request was written."""

    status: int
    content_type: str
    body: bytes
    first_body_byte_s: float
    last_byte_s: float


class Connection:
    """One keep-alive connection that POSTs chat completions to one URL."""

    def __init__(self, url: str, key: str, model: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.key = key
        self.model = model
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def request_bytes(self, stream: bool) -> bytes:
        payload: dict[str, object] = {"model": self.model, "messages": PROMPT, "max_tokens": 64}
        if stream:
            payload["stream"] = True
        body = json.dumps(payload).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def post(self, stream: bool) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.request_bytes(stream))
        start = time.perf_counter()
        try:
            return await self._read_answer(self.reader, start)
        except BaseException:
            self.close()
            raise

    async def _read_answer(self, reader: asyncio.StreamReader, start: float) -> Answer:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        first = 0.0
        body = bytearray()
        if "chunked" in headers.get("transfer-encoding", ""):
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers end with an empty line
                        pass
                    break
                body += await reader.readexactly(size)
                first = first or time.perf_counter() - start
                await reader.readexactly(2)
        elif "content-length" in headers:
            body += await reader.readexactly(int(headers["content-length"]))
            first = time.perf_counter() - start
        else:  # body delimited by the connection closing
            body += await reader.read()
            first = time.perf_counter() - start
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(
            status, headers.get("content-type", ""), bytes(body), first, time.perf_counter() - start
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def validate(answer: Answer, stream: bool) -> str:
    """Raise BadAnswer unless the answer is a 200 chat completion (JSON or SSE); describe it."""
    if answer.status != 200:
        raise BadAnswer(f"status {answer.status}: {answer.body[:300]!r}")
    if not stream:
        reply = json.loads(answer.body)
        if not reply.get("choices") or not reply["choices"][0]["message"].get("content"):
            raise BadAnswer(f"no choices[0].message.content in {answer.body[:300]!r}")
        if not reply.get("usage", {}).get("total_tokens"):
            raise BadAnswer(f"no usage.total_tokens in {answer.body[:300]!r}")
        return f"json model={reply.get('model')} tokens={reply['usage']['total_tokens']}"
    if "text/event-stream" not in answer.content_type:
        raise BadAnswer(f"content-type {answer.content_type!r} for a streamed call")
    events = [line[6:] for line in answer.body.decode().splitlines() if line.startswith("data: ")]
    if not events or events[-1] != "[DONE]":
        raise BadAnswer(f"stream does not end with data: [DONE]: {answer.body[-300:]!r}")
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(
        (c["choices"][0].get("delta") or {}).get("content") or "" for c in chunks if c.get("choices")
    )
    if not text or any(c.get("object") != "chat.completion.chunk" for c in chunks):
        raise BadAnswer(f"stream carries no chat.completion.chunk content: {answer.body[:300]!r}")
    return f"sse events={len(events)} text_chars={len(text)}"


def percentile_us(values: list[float], q: float) -> int:
    """Nearest-rank percentile of seconds, in whole microseconds."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank] * 1e6)


async def ready(args: argparse.Namespace) -> str:
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        if args.pid and not os.path.exists(f"/proc/{args.pid}"):
            raise BadAnswer(f"process {args.pid} exited before answering")
        conn = Connection(args.url, args.key, args.model)
        try:
            answer = await conn.post(stream=False)
            if answer.status == 200:
                return f"first_200_s={time.time() - args.since:.3f}"
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            conn.close()
        await asyncio.sleep(0.01)
    raise BadAnswer(f"no 200 within {args.timeout} s")


async def check(args: argparse.Namespace) -> str:
    conn = Connection(args.url, args.key, args.model)
    try:
        plain = validate(await conn.post(stream=False), stream=False)
        streamed = validate(await conn.post(stream=True), stream=True)
    finally:
        conn.close()
    return f"ok=1 {plain} | {streamed}"


async def ttft(args: argparse.Namespace) -> str:
    conn = Connection(args.url, args.key, args.model)
    first: list[float] = []
    last: list[float] = []
    try:
        for i in range(args.count + args.warmup):
            answer = await conn.post(stream=True)
            if answer.status != 200:
                raise BadAnswer(f"status {answer.status}: {answer.body[:200]!r}")
            if i >= args.warmup:
                first.append(answer.first_body_byte_s)
                last.append(answer.last_byte_s)
    finally:
        conn.close()
    return (
        f"count={len(first)} ttft_p50_us={percentile_us(first, 50)} ttft_p99_us={percentile_us(first, 99)} "
        f"ttft_mean_us={round(statistics.fmean(first) * 1e6)} last_byte_p50_us={percentile_us(last, 50)} "
        f"last_byte_p99_us={percentile_us(last, 99)}"
    )


async def burst(args: argparse.Namespace) -> str:
    counts = {"ok": 0, "non200": 0, "failed": 0}
    next_call = iter(range(args.count))

    async def worker() -> None:
        conn = Connection(args.url, args.key, args.model)
        for i in next_call:
            try:
                answer = await conn.post(stream=i % 2 == 1)
                counts["ok" if answer.status == 200 else "non200"] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError):
                counts["failed"] += 1
        conn.close()

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return f"sent={args.count} " + " ".join(f"{k}={v}" for k, v in counts.items())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["ready", "check", "ttft", "burst"])
    parser.add_argument("url")
    parser.add_argument("--key", default="sk-bench")
    parser.add_argument("--model", default="fake-gpt")
    parser.add_argument("--since", type=float, default=0.0, help="ready: epoch seconds the process started")
    parser.add_argument("--pid", type=int, default=0, help="ready: give up when this process exits")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20, help="ttft: calls made before measuring")
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    command = {"ready": ready, "check": check, "ttft": ttft, "burst": burst}[args.command]
    try:
        print(asyncio.run(asyncio.wait_for(command(args), args.timeout + 60)))
    except (BadAnswer, OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
        print(f"{args.command} {args.url}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
