"""`llmops smoke-test` against a real gateway and a real Prometheus, passing and failing."""

from __future__ import annotations

from pathlib import Path

from tests.harness import Gateway, free_port, metric_sum, run_cli
from tests.local_prometheus import LocalPrometheus
from tests.printed_checklist import checklist


def smoke_test(
    gw: Gateway, *args: str, secret: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, dict[str, tuple[str, str, str | None]], str]:
    options = {
        "--url": gw.url,
        "--data-dir": str(gw.data_dir),
        "--prometheus-url": f"http://127.0.0.1:{free_port()}",
        "--timeout": "15",
    }
    for flag, value in zip(args[::2], args[1::2], strict=False):
        options[flag] = value
    flags = [item for pair in options.items() for item in pair]
    result = run_cli(
        "smoke-test", *flags, cwd=gw.workdir, env={"JWT_SECRET": secret or gw.secret, **(env or {})}
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, checklist(result.stdout), result.stdout


def test_passes_end_to_end_with_prometheus(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw").start()
    prometheus = LocalPrometheus(tmp_path / "prom", {"llmops": [f"127.0.0.1:{gw.port}"]}).start()
    try:
        code, checks, output = smoke_test(gw, "--prometheus-url", prometheus.url)
        assert code == 0, output
        assert [name for name in checks] == [
            "gateway ready",
            "token minted",
            "POST /llm",
            "POST /v1/chat/completions",
            "metric rose (/llm)",
            "metric rose (/v1/chat/completions)",
            "usage row (/llm)",
            "usage row (/v1/chat/completions)",
            "prometheus target",
            "dashboard query",
        ]
        assert all(status == "ok" for status, _, _ in checks.values())
        assert checks["usage row (/llm)"][1] == "user=smoke-test, 3+3 tokens"
        assert checks["prometheus target"][1] == f"http://127.0.0.1:{gw.port}/metrics up"
        assert checks["dashboard query"][1].startswith("sum(llmops_requests_total) = ")
        assert "10 passed, 0 failed" in output
        # What the checklist claims is true of the gateway.
        rows = gw.rows("WHERE user = 'smoke-test'")
        assert sorted(r["endpoint"] for r in rows) == ["/llm", "/v1/chat/completions"]
        assert metric_sum(gw.metrics(), "llmops_requests_total", user="smoke-test", status="ok") == 2
    finally:
        prometheus.stop()
        gw.stop()


def test_skips_the_stack_when_prometheus_is_not_up(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw").start()
    try:
        code, checks, _ = smoke_test(gw)
    finally:
        gw.stop()
    assert code == 0
    assert checks["prometheus"][0] == "skip" and "stack checks skipped" in checks["prometheus"][1]
    assert sum(status == "ok" for status, _, _ in checks.values()) == 8


def test_each_failure_exits_1(tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw").start()
    elsewhere = LocalPrometheus(tmp_path / "prom", {"llmops": [f"127.0.0.1:{free_port()}"]}).start()
    try:
        code, checks, _ = smoke_test(gw, secret="another-secret-" + "z" * 40)
        assert code == 1
        assert checks["POST /llm"][0] == "fail" and checks["POST /llm"][1].startswith("401: ")
        assert checks["POST /llm"][2] == "the token was refused: is JWT_SECRET the gateway's?"
        assert "usage row (/llm)" not in checks

        code, checks, _ = smoke_test(gw, "--data-dir", str(tmp_path / "not-the-data-dir"))
        assert code == 1
        assert checks["usage row (/llm)"][:2] == (
            "fail",
            f"no usage log at {tmp_path / 'not-the-data-dir' / 'usage.db'}",
        )

        code, checks, _ = smoke_test(gw, "--prometheus-url", elsewhere.url, "--timeout", "3")
        assert code == 1
        assert checks["prometheus target"][0] == "fail"
        assert checks["dashboard query"][:2] == ("fail", "sum(llmops_requests_total) has no data after 3s")
    finally:
        elsewhere.stop()
        gw.stop()

    code, checks, _ = smoke_test(gw, "--timeout", "3")  # the gateway is gone
    assert code == 1
    assert checks["gateway reachable"][0] == "fail"
    assert checks["gateway reachable"][2] == "start it with `llmops up`, or point --url at it"


def test_reads_metrics_behind_their_token(tmp_path: Path) -> None:
    token = "metrics-token-" + "m" * 40
    gw = Gateway(tmp_path / "gw", env={"LLMOPS_METRICS_TOKEN": token}).start()
    try:
        code, checks, output = smoke_test(gw, env={"LLMOPS_METRICS_TOKEN": token})
        assert code == 0, output
        assert checks["metric rose (/llm)"][0] == "ok"
        code, checks, _ = smoke_test(gw)  # without the token /metrics refuses: the rise cannot be seen
        assert code == 1 and checks["metric rose (/llm)"][0] == "fail"
    finally:
        gw.stop()
