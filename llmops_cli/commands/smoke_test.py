"""`llmops smoke-test`: the whole path once, with assertions, printed as a checklist."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from llmops_cli.options import DataDir, PrometheusUrl, Url

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import httpx

    from llmops_cli.checklist import Check

SMOKE_PRINCIPAL = "smoke-test"
# A query the overview dashboard draws from; it has data once Prometheus scraped the gateway.
DASHBOARD_QUERY = "sum(llmops_requests_total)"


def smoke_test(
    url: Url = None,
    data_dir: DataDir = None,
    prometheus_url: PrometheusUrl = None,
    model: Annotated[str | None, typer.Option(help="Model to call. [default: the default model]")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer, row and scrape.")] = 30.0,
) -> None:
    """Call /llm and /v1/chat/completions with a fresh token and check the metrics, the usage rows and,
    when the stack is up, Prometheus. Exit 1 on any failure."""
    from llmops_cli.checklist import print_checklist
    from llmops_cli.config import load_settings
    from llmops_cli.gateway_process import url_for
    from llmops_cli.stack_settings import StackSettings

    settings = load_settings(data_dir)
    base_url = (url or url_for(settings.host, settings.port)).rstrip("/")
    # /metrics may have a listener of its own (LLMOPS_METRICS_PORT) and a bearer (LLMOPS_METRICS_TOKEN).
    metrics_url = url_for(settings.metrics_host, settings.metrics_port) if settings.metrics_port else base_url
    metrics_headers = (
        {"Authorization": f"Bearer {settings.metrics_token.get_secret_value()}"}
        if settings.metrics_token
        else {}
    )
    checks = run_smoke_test(
        base_url,
        (metrics_url, metrics_headers),
        settings.usage_db_path,
        (prometheus_url or StackSettings().to_config(settings).url("prometheus")).rstrip("/"),
        model,
        timeout,
        settings.require_jwt_secret,
    )
    print_checklist(f"smoke test of {base_url}", checks)
    if any(c.failed for c in checks):
        raise typer.Exit(1)


def run_smoke_test(
    base_url: str,
    metrics: tuple[str, dict[str, str]],
    usage_db: Path,
    prometheus_url: str,
    model: str | None,
    timeout: float,
    jwt_secret: Callable[[], str],
) -> list[Check]:
    """Every check, in order; stops early when the gateway cannot be reached or no token can be made."""
    import httpx

    from llmops_cli.checklist import fail, ok
    from server.auth import mint_token

    checks: list[Check] = []
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        try:
            ready = client.get("/readyz")
        except httpx.HTTPError as exc:
            return [
                fail(
                    "gateway reachable",
                    f"no answer from {base_url} ({type(exc).__name__})",
                    "start it with `llmops up`, or point --url at it",
                )
            ]
        checks.append(
            ok("gateway ready", f"{base_url}/readyz answered 200")
            if ready.status_code == 200
            else fail(
                "gateway ready", f"/readyz answered {ready.status_code}: {ready.text[:200]}", "llmops doctor"
            )
        )
        try:
            token = mint_token(jwt_secret(), SMOKE_PRINCIPAL, 300)
        except Exception as exc:
            checks.append(fail("token minted", getattr(exc, "message", str(exc)), "llmops doctor"))
            return checks
        checks.append(ok("token minted", f"sub={SMOKE_PRINCIPAL}, 5 minutes"))
        client.headers["Authorization"] = f"Bearer {token}"

        before = _requests_ok(*metrics)
        calls = [
            _call(client, "/llm", {"prompt": "llmops smoke test", **({"model": model} if model else {})}),
            _call(
                client,
                "/v1/chat/completions",
                {
                    "messages": [{"role": "user", "content": "llmops smoke test"}],
                    **({"model": model} if model else {}),
                },
            ),
        ]
        checks += [check for check, _ in calls]
        answered = [(endpoint, answer) for (check, (endpoint, answer)) in calls if not check.failed]
        after = _requests_ok(*metrics)
        for endpoint, _ in answered:
            rise = after.get(endpoint, 0) - before.get(endpoint, 0)
            checks.append(
                ok(f"metric rose ({endpoint})", f'llmops_requests_total{{status="ok"}} +{rise:g}')
                if rise >= 1
                else fail(
                    f"metric rose ({endpoint})",
                    "llmops_requests_total did not count the call",
                    "is --url the gateway whose /metrics you expect?",
                )
            )
        for endpoint, answer in answered:
            checks.append(_row_check(usage_db, endpoint, answer, timeout))
    checks += _prometheus_checks(prometheus_url, metrics[0], timeout)
    return checks


def _call(
    client: httpx.Client, endpoint: str, body: dict[str, Any]
) -> tuple[Check, tuple[str, dict[str, Any]]]:
    """One call; its check, and what the row must show (request id, tokens)."""
    import uuid

    import httpx

    from llmops_cli.checklist import fail, ok

    request_id = f"smoke-{uuid.uuid4().hex[:16]}"
    name = f"POST {endpoint}"
    try:
        response = client.post(endpoint, json=body, headers={"x-request-id": request_id})
    except httpx.HTTPError as exc:
        return fail(name, f"no answer ({type(exc).__name__})"), (endpoint, {})
    if response.status_code != 200:
        error = response.text[:200]
        hint = "the token was refused: is JWT_SECRET the gateway's?" if response.status_code == 401 else None
        return fail(name, f"{response.status_code}: {error}", hint), (endpoint, {})
    usage = response.json().get("usage", {})
    expected = {
        "request_id": request_id,
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
    }
    detail = f"200, {usage.get('prompt_tokens')}+{usage.get('completion_tokens')} tokens"
    return ok(name, detail), (endpoint, expected)


def _requests_ok(metrics_url: str, headers: dict[str, str]) -> dict[str, float]:
    """llmops_requests_total{status="ok"} per endpoint, from the gateway's /metrics (empty if refused)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    response = httpx.get(f"{metrics_url}/metrics", headers=headers, timeout=10)
    if response.status_code != 200:
        return totals
    text = response.text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "llmops_requests_total" and sample.labels.get("status") == "ok":
                endpoint = sample.labels.get("endpoint", "")
                totals[endpoint] = totals.get(endpoint, 0) + sample.value
    return totals


def _row_check(usage_db: Path, endpoint: str, expected: dict[str, Any], timeout: float) -> Check:
    import sqlite3
    import time

    from llmops_cli.checklist import fail, ok
    from server.usage.store import connect

    name = f"usage row ({endpoint})"
    if not usage_db.exists():
        return fail(name, f"no usage log at {usage_db}", "pass the gateway's --data-dir")
    deadline = time.monotonic() + timeout
    row = None
    while row is None and time.monotonic() < deadline:
        try:
            conn = connect(usage_db, readonly=True)
            try:
                row = conn.execute(
                    "SELECT user, endpoint, status, prompt_tokens, completion_tokens FROM usage_logs "
                    "WHERE request_id = ?",
                    (expected["request_id"],),
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return fail(name, f"cannot read {usage_db}: {exc}", "llmops doctor")
        if row is None:
            time.sleep(0.05)
    if row is None:
        return fail(
            name,
            f"no row for request {expected['request_id']} in {usage_db} after {timeout:g}s",
            "pass the gateway's --data-dir; `llmops doctor` checks the usage log",
        )
    seen = dict(zip(["user", "endpoint", "status", "prompt_tokens", "completion_tokens"], row, strict=True))
    wanted = {
        "user": SMOKE_PRINCIPAL,
        "endpoint": endpoint,
        "status": "ok",
        "prompt_tokens": expected["prompt_tokens"],
        "completion_tokens": expected["completion_tokens"],
    }
    wrong = {k: v for k, v in seen.items() if wanted[k] != v}
    if wrong:
        return fail(name, f"row differs from the answer: {wrong} (expected {wanted})")
    return ok(name, f"user={SMOKE_PRINCIPAL}, {seen['prompt_tokens']}+{seen['completion_tokens']} tokens")


def _prometheus_checks(prometheus_url: str, gateway_url: str, timeout: float) -> list[Check]:
    import time

    import httpx

    from llmops_cli.checklist import fail, ok, skip
    from llmops_cli.prometheus_api import gateway_target, query

    try:
        httpx.get(f"{prometheus_url}/-/ready", timeout=2).raise_for_status()
    except httpx.HTTPError:
        return [skip("prometheus", f"not answering at {prometheus_url}: stack checks skipped")]
    checks = []
    deadline = time.monotonic() + timeout
    target = gateway_target(prometheus_url, gateway_url)
    while (target is None or target["health"] != "up") and time.monotonic() < deadline:
        time.sleep(0.5)
        target = gateway_target(prometheus_url, gateway_url)
    if target is None:
        checks.append(
            fail(
                "prometheus target",
                f"Prometheus at {prometheus_url} has no target for {gateway_url}",
                "`llmops doctor` shows what Prometheus scrapes",
            )
        )
    elif target["health"] != "up":
        checks.append(
            fail(
                "prometheus target",
                f"{target['scrapeUrl']} is {target['health']}: "
                f"{target.get('lastError') or 'not scraped yet'}",
                "`llmops doctor` shows what Prometheus scrapes",
            )
        )
    else:
        checks.append(ok("prometheus target", f"{target['scrapeUrl']} up"))
    result = query(prometheus_url, DASHBOARD_QUERY)
    while not result and time.monotonic() < deadline:
        time.sleep(0.5)
        result = query(prometheus_url, DASHBOARD_QUERY)
    checks.append(
        ok("dashboard query", f"{DASHBOARD_QUERY} = {result[0]['value'][1]}")
        if result
        else fail("dashboard query", f"{DASHBOARD_QUERY} has no data after {timeout:g}s", "llmops doctor")
    )
    return checks
