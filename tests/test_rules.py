"""The shipped alert rules, checked and unit-tested by the real promtool.

Every fixture under tests/promtool/ runs against the rules rendered from the default settings,
so a change of a default threshold or ``for:`` shows up here as a failing scenario.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from stack.alerting import AlertRuleSettings, render_rules

FIXTURES = Path(__file__).parent / "promtool"
RULES_TEMPLATE = Path(__file__).parents[1] / "stack" / "config" / "rules" / "llmops_alerts.yml"
SCENARIOS = ("idle", "fresh start", "spike", "recovery", "down")
ALERTS = {
    "LLMOpsGatewayDown",
    "LLMOpsHighErrorRatio",
    "LLMOpsHighFallbackRatio",
    "LLMOpsHighLatencyP95",
    "LLMOpsTokenBurnHigh",
    "LLMOpsCostBurnHigh",
    "LLMOpsUsageWriteErrors",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    assert Path(path).exists(), "promtool missing: apt-get install prometheus (tests/run.sh does it)"
    return path


def default_settings(**overrides: Any) -> AlertRuleSettings:
    """Rule settings from code defaults only: no environment, no .env."""
    return AlertRuleSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


def run_fixture(promtool: str, fixture: Path, workdir: Path, rules: str) -> subprocess.CompletedProcess[str]:
    """Run `promtool test rules` on ``fixture`` next to a rule file with the text ``rules``."""
    (workdir / "llmops_alerts.yml").write_text(rules)
    target = workdir / fixture.name
    shutil.copy(fixture, target)
    return subprocess.run(
        [promtool, "test", "rules", str(target)], capture_output=True, text=True, timeout=120, check=False
    )


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*.yml"))


def test_rendered_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    rules = tmp_path / "llmops_alerts.yml"
    rules.write_text(render_rules(default_settings()))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout + result.stderr
    groups = yaml.safe_load(rules.read_text())["groups"]
    names = {rule["alert"] for group in groups for rule in group["rules"]}
    assert names == ALERTS


@pytest.mark.parametrize("fixture", fixture_files(), ids=lambda p: p.stem)
def test_promtool_fixture_passes(promtool: str, tmp_path: Path, fixture: Path) -> None:
    result = run_fixture(promtool, fixture, tmp_path, render_rules(default_settings()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("fixture", sorted((FIXTURES / "must_fail").glob("*.yml")), ids=lambda p: p.stem)
def test_wrong_expectation_fails(promtool: str, tmp_path: Path, fixture: Path) -> None:
    """The harness can fail: a fixture with a wrong expectation must make promtool exit non-zero."""
    result = run_fixture(promtool, fixture, tmp_path, render_rules(default_settings()))
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("fixture", "alert"),
    [
        ("error_ratio.yml", "LLMOpsHighErrorRatio"),
        ("fallback_ratio.yml", "LLMOpsHighFallbackRatio"),
        ("latency_p95.yml", "LLMOpsHighLatencyP95"),
    ],
)
def test_min_request_rate_is_what_keeps_a_quiet_model_quiet(
    promtool: str, tmp_path: Path, fixture: str, alert: str
) -> None:
    """Without the guard, the 'nearly idle' scenario pages: the guard is doing the work."""
    unguarded = render_rules(default_settings(min_request_rate=0))
    result = run_fixture(promtool, FIXTURES / fixture, tmp_path, unguarded)
    assert result.returncode != 0
    # promtool prints failures to stderr, one "name: <group>," block per failed expectation.
    failed_groups = re.findall(r"^\s+name: (.*),$", result.stderr, flags=re.MULTILINE)
    assert failed_groups, result.stdout + result.stderr
    assert all(name.startswith("idle: a nearly idle model") for name in failed_groups), result.stderr
    assert f'Labels:{{alertname="{alert}"' in result.stderr


def test_fixtures_cover_every_rule_in_every_scenario() -> None:
    """Each rule has a firing and a quiet expectation, and a test group for each scenario."""
    scenarios: dict[str, set[str]] = {alert: set() for alert in ALERTS}
    fires: dict[str, int] = dict.fromkeys(ALERTS, 0)
    quiet: dict[str, int] = dict.fromkeys(ALERTS, 0)
    for path in fixture_files():
        for group in yaml.safe_load(path.read_text())["tests"]:
            prefix = group["name"].split(":", 1)[0]
            parts = [part.strip() for part in prefix.split(",")]
            group_scenarios = {s for s in SCENARIOS for part in parts if part.startswith(s)}
            assert group_scenarios, f"{path.name}: group {group['name']!r} names no scenario"
            for case in group["alert_rule_test"]:
                alert = case["alertname"]
                scenarios[alert] |= group_scenarios
                if case.get("exp_alerts"):
                    fires[alert] += 1
                else:
                    quiet[alert] += 1
    for alert in sorted(ALERTS):
        assert scenarios[alert] == set(SCENARIOS), f"{alert} lacks {set(SCENARIOS) - scenarios[alert]}"
        assert fires[alert] > 0, f"{alert} is never expected to fire"
        assert quiet[alert] > 0, f"{alert} is never expected to stay quiet"


def test_every_setting_reaches_the_rules() -> None:
    template = RULES_TEMPLATE.read_text()
    for name in AlertRuleSettings.model_fields:
        assert f"@{{{name}}}" in template, f"setting {name} is not used by the rule template"


def test_custom_settings_are_rendered_into_expr_and_for() -> None:
    settings = default_settings(
        rate_window="2m",
        min_request_rate=0.5,
        error_ratio=0.125,
        error_ratio_for="7m",
        fallback_ratio=0.375,
        fallback_ratio_for="11m",
        latency_p95_seconds=12.5,
        latency_p95_for="3m",
        gateway_down_for="45s",
        tokens_per_second=750,
        token_burn_for="20m",
        cost_usd_per_hour=1.5,
        cost_burn_for="1h",
        usage_write_errors_for="30s",
    )
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load(render_rules(settings))["groups"]
        for rule in group["rules"]
    }
    expected = {
        "LLMOpsGatewayDown": ("45s", []),
        "LLMOpsHighErrorRatio": ("7m", ["> 0.125", ">= 0.5", "[2m]"]),
        "LLMOpsHighFallbackRatio": ("11m", ["> 0.375", ">= 0.5", "[2m]"]),
        "LLMOpsHighLatencyP95": ("3m", ["> 12.5", ">= 0.5", "[2m]"]),
        "LLMOpsTokenBurnHigh": ("20m", ["> 750", "[2m]"]),
        "LLMOpsCostBurnHigh": ("1h", ["> 1.5", "[2m]"]),
        "LLMOpsUsageWriteErrors": ("30s", ["[2m]"]),
    }
    for alert, (duration, fragments) in expected.items():
        assert rules[alert]["for"] == duration
        for fragment in fragments:
            assert fragment in rules[alert]["expr"], (alert, fragment)
        assert "[5m]" not in rules[alert]["expr"]
    assert "threshold 12.5%" in rules["LLMOpsHighErrorRatio"]["annotations"]["description"]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_ALERT_ERROR_RATIO", "0.2")
    monkeypatch.setenv("LLMOPS_ALERT_ERROR_RATIO_FOR", "90s")
    settings = default_settings()
    assert settings.error_ratio == 0.2
    assert settings.error_ratio_for == "90s"
    assert re.search(r"\) > 0\.2\n", render_rules(settings))


@pytest.mark.parametrize(
    "overrides",
    [
        {"error_ratio_for": "5 minutes"},
        {"rate_window": ""},
        {"gateway_down_for": "1.5m"},
        {"error_ratio": 0},
        {"fallback_ratio": 1.5},
        {"tokens_per_second": -1},
        {"min_request_rate": -0.1},
    ],
)
def test_invalid_settings_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        default_settings(**overrides)


def test_promtool_check_config_accepts_a_prometheus_config_loading_the_rules(
    promtool: str, tmp_path: Path
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "llmops_alerts.yml").write_text(render_rules(default_settings()))
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
                "rule_files": ["rules/*.yml"],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]},
                "scrape_configs": [
                    {"job_name": "llmops", "static_configs": [{"targets": ["127.0.0.1:8000"]}]}
                ],
            }
        )
    )
    result = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"SUCCESS: {len(ALERTS)} rules found" in output
