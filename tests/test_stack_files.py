"""Generated config files and container specs, checked without Docker (promtool is Debian's real one)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stack.config import PACKAGED_CONFIG_DIR, StackConfig
from stack.errors import StackError
from stack.files import write_config_files
from stack.specs import build_specs


def make_config(tmp_path: Path, **overrides: object) -> StackConfig:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "gateway_port": 8123,
        "grafana_admin_password": "s3cret-for-tests",
    }
    values.update(overrides)
    return StackConfig(**values)  # type: ignore[arg-type]


def test_prometheus_config_scrapes_the_gateway_on_loopback_and_passes_promtool(tmp_path: Path) -> None:
    files = write_config_files(make_config(tmp_path))

    rendered = (files.prometheus / "prometheus.yml").read_text()

    assert "job_name: llmops" in rendered
    assert 'targets: ["127.0.0.1:8123"]' in rendered
    assert 'targets: ["127.0.0.1:9093"]' in rendered
    assert 'rule_files: ["/etc/prometheus/rules/*.yml"]' in rendered
    checked = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(files.prometheus / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_bridge_mode_scrapes_host_docker_internal_and_reaches_alertmanager_by_name(tmp_path: Path) -> None:
    files = write_config_files(make_config(tmp_path, network_mode="bridge"))

    rendered = (files.prometheus / "prometheus.yml").read_text()

    assert 'targets: ["host.docker.internal:8123"]' in rendered
    assert 'targets: ["llmops-alertmanager:9093"]' in rendered


def test_sync_rewrites_only_changes_and_drops_stale_files(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(PACKAGED_CONFIG_DIR, source)
    (source / "rules").mkdir(exist_ok=True)
    (source / "rules" / "extra.yml").write_text("groups: []\n")
    config = make_config(tmp_path, config_source=source)
    files = write_config_files(config)
    rule = files.prometheus / "rules" / "extra.yml"
    assert rule.read_text() == "groups: []\n"
    written = {p: p.stat().st_mtime_ns for p in config.files_dir.rglob("*") if p.is_file()}

    write_config_files(config)
    assert {p: p.stat().st_mtime_ns for p in config.files_dir.rglob("*") if p.is_file()} == written

    (source / "rules" / "extra.yml").unlink()
    write_config_files(config)
    assert not rule.exists()
    assert (files.prometheus / "prometheus.yml").is_file()


def test_rendered_files_replace_the_templates_and_stay_inside_the_stack_dir(tmp_path: Path) -> None:
    config = make_config(tmp_path, rendered_files={"alertmanager/alertmanager.yml": "route: {}\n"})

    files = write_config_files(config)

    assert (files.alertmanager / "alertmanager.yml").read_text() == "route: {}\n"
    escaping = make_config(tmp_path, rendered_files={"../outside.yml": "x"})
    with pytest.raises(ValueError, match="outside"):
        write_config_files(escaping)


def test_every_listener_binds_loopback_and_clustering_is_off(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    specs = build_specs(config, write_config_files(config), network=None)

    assert "--web.listen-address=127.0.0.1:9090" in specs["prometheus"].command
    assert "--web.listen-address=127.0.0.1:9093" in specs["alertmanager"].command
    assert "--cluster.listen-address=" in specs["alertmanager"].command
    assert specs["grafana"].environment["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert {spec.network_mode for spec in specs.values()} == {"host"}


def test_bridge_mode_publishes_ports_on_loopback_only(tmp_path: Path) -> None:
    config = make_config(tmp_path, network_mode="bridge", grafana_port=3300)
    specs = build_specs(config, write_config_files(config), network="llmops-net")

    kwargs = {name: spec.create_kwargs() for name, spec in specs.items()}

    assert kwargs["prometheus"]["ports"] == {"9090/tcp": ("127.0.0.1", 9090)}
    assert kwargs["grafana"]["ports"] == {"3000/tcp": ("127.0.0.1", 3300)}
    assert kwargs["grafana"]["extra_hosts"] == {"host.docker.internal": "host-gateway"}
    assert specs["grafana"].environment["LLMOPS_PROMETHEUS_URL"] == "http://llmops-prometheus:9090"
    assert "network_mode" not in kwargs["prometheus"]


@pytest.mark.parametrize("password", ["", "admin"])
def test_grafana_refuses_a_missing_or_default_admin_password(tmp_path: Path, password: str) -> None:
    config = make_config(tmp_path, grafana_admin_password=password)

    with pytest.raises(StackError, match="admin password"):
        build_specs(config, write_config_files(config), network=None)


def test_spec_digest_follows_mounted_file_content_and_image(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    files = write_config_files(config)
    spec = build_specs(config, files, network=None)["alertmanager"]
    first = spec.digest("sha256:image-a")

    assert spec.digest("sha256:image-a") == first
    assert spec.digest("sha256:image-b") != first
    (files.alertmanager / "alertmanager.yml").write_text("route: {receiver: changed}\n")
    assert spec.digest("sha256:image-a") != first


def test_a_relative_data_dir_becomes_absolute_for_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    config = StackConfig(data_dir=Path("data"))

    assert config.files_dir == tmp_path / "data" / "stack"


def test_env_example_shows_the_stack_defaults() -> None:
    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    defaults = StackConfig(data_dir=Path("data"))
    shown = {
        "BIND_ADDRESS": defaults.bind_address,
        "PROMETHEUS_PORT": defaults.prometheus_port,
        "ALERTMANAGER_PORT": defaults.alertmanager_port,
        "GRAFANA_PORT": defaults.grafana_port,
        "SCRAPE_INTERVAL": defaults.scrape_interval,
        "PROMETHEUS_IMAGE": defaults.prometheus_image,
        "ALERTMANAGER_IMAGE": defaults.alertmanager_image,
        "GRAFANA_IMAGE": defaults.grafana_image,
        "HEALTH_TIMEOUT": f"{defaults.health_timeout:g}",
    }

    for name, value in shown.items():
        assert f"# LLMOPS_{name}={value}" in example


def test_a_metrics_token_and_listener_of_the_gateway_are_scraped_with_a_credentials_file(
    tmp_path: Path,
) -> None:
    config = make_config(
        tmp_path, gateway_metrics_port=9464, gateway_metrics_token="scrape-token-" + "s" * 20
    )
    files = write_config_files(config)
    rendered = (files.prometheus / "prometheus.yml").read_text()

    assert 'targets: ["127.0.0.1:9464"]' in rendered
    assert "credentials_file: /etc/prometheus/gateway_metrics_token" in rendered
    assert "scrape-token-" not in rendered
    assert (files.prometheus / "gateway_metrics_token").read_text() == config.gateway_metrics_token
    checked = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(files.prometheus / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The webhook still goes to the gateway's API port, not to its metrics listener.
    assert config.gateway_url_from_containers == "http://127.0.0.1:8123"
