"""`llmops simulate`: real traffic against a running gateway, to see it on dashboards."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops_cli.console import fail, out
from llmops_cli.options import Url

SAMPLE_PROMPTS = [
    "Summarise the quarterly report in three bullet points",
    "Translate good morning into French",
    "Write a haiku about observability",
    "What is the capital of Australia",
    "Explain retries with jittered backoff to a new engineer",
    "List three uses of a usage log",
    "Draft a polite reminder about the design review on Friday",
]


def simulate(
    count: Annotated[int, typer.Option("--count", "-c", min=1, max=1_000_000, help="Requests to send.")] = 25,
    concurrency: Annotated[int, typer.Option(min=1, max=1000, help="Requests in flight at once.")] = 5,
    model: Annotated[
        str | None,
        typer.Option(help="One model for every call. [default: cycle through the configured models]"),
    ] = None,
    users: Annotated[
        str, typer.Option(help="Comma-separated principals to spread calls over.")
    ] = "alice,bob,carol",
    url: Url = None,
    token: Annotated[
        str | None, typer.Option(help="Bearer token for every call (else minted per user).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 60.0,
) -> None:
    """Send COUNT real requests to POST /llm and summarise what came back."""
    import asyncio

    from llmops_cli.config import load_settings
    from llmops_cli.gateway_process import url_for

    settings = load_settings()
    base_url = (url or url_for(settings.host, settings.port)).rstrip("/")
    principals = [u.strip() for u in users.split(",") if u.strip()]
    if not principals:
        fail("--users needs at least one name")
    if token:
        tokens = {p: token for p in principals}
    else:
        from server.auth import mint_token

        secret = settings.require_jwt_secret()
        tokens = {p: mint_token(secret, p, 3600) for p in principals}
    if model:
        models = [model]
    else:
        from server.models_config import load_registry

        models = load_registry(settings.models_file, settings.models, settings.default_model).names()
    results = asyncio.run(_send_all(base_url, count, concurrency, models, principals, tokens, timeout))
    _print_summary(base_url, results)


async def _send_all(
    base_url: str,
    count: int,
    concurrency: int,
    models: list[str],
    principals: list[str],
    tokens: dict[str, str],
    timeout: float,
) -> list[dict[str, object]]:
    import asyncio
    import random
    import time

    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    semaphore = asyncio.Semaphore(concurrency)
    results: list[dict[str, object]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:
        try:
            await client.get("/healthz", timeout=5)
        except httpx.HTTPError as exc:
            fail(
                f"cannot reach the gateway at {base_url} ({type(exc).__name__})",
                hint="start it with `llmops up`, or point --url at it",
            )

        with Progress(
            TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
        ) as progress:
            task = progress.add_task("calls", total=count)

            # Seeded, so two runs with the same flags send the same traffic.
            picks = random.Random(0)
            plan = [
                (picks.choice(principals), picks.choice(models), picks.choice(SAMPLE_PROMPTS))
                for _ in range(count)
            ]

            async def one(i: int) -> None:
                principal, model, prompt = plan[i]
                body = {"prompt": prompt, "model": model}
                headers = {"Authorization": f"Bearer {tokens[principal]}", "x-user-id": f"customer-{i % 7}"}
                async with semaphore:
                    started = time.perf_counter()
                    try:
                        response = await client.post("/llm", json=body, headers=headers)
                        status, payload = response.status_code, response.json()
                    except (httpx.HTTPError, ValueError) as exc:
                        status, payload = 0, {"error": {"message": type(exc).__name__}}
                    elapsed_ms = (time.perf_counter() - started) * 1000
                results.append({"status": status, "latency_ms": elapsed_ms, "payload": payload})
                progress.advance(task)

            await asyncio.gather(*(one(i) for i in range(count)))
    return results


def _print_summary(base_url: str, results: list[dict[str, object]]) -> None:
    from rich.table import Table

    from server.usage.queries import percentile

    ok = [r for r in results if r["status"] == 200]
    errors: dict[str, int] = {}
    for r in results:
        if r["status"] != 200:
            key = str(r["status"] or "no response")
            errors[key] = errors.get(key, 0) + 1
    fallbacks = sum(1 for r in ok if r["payload"].get("fallback"))  # type: ignore[union-attr]
    tokens = sum(r["payload"]["usage"]["total_tokens"] for r in ok)  # type: ignore[index]
    latencies = sorted(float(r["latency_ms"]) for r in results)  # type: ignore[arg-type]
    table = Table(title=f"simulate → {base_url}", show_header=False)
    table.add_row("sent", str(len(results)))
    table.add_row("answered", str(len(ok)))
    table.add_row("errors", ", ".join(f"{n} x {s}" for s, n in sorted(errors.items())) or "0")
    table.add_row("fallbacks", str(fallbacks))
    table.add_row(
        "latency p50 / p95", f"{percentile(latencies, 0.5):.1f} / {percentile(latencies, 0.95):.1f} ms"
    )
    table.add_row("tokens", str(tokens))
    out.print(table)
