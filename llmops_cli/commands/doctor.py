"""`llmops doctor`: check each known way this setup goes wrong, and say how to fix it."""

from __future__ import annotations

from typing import Annotated

import typer

from llmops_cli.options import AlertmanagerUrl, DataDir, GrafanaUrl, PrometheusUrl


def doctor(
    data_dir: DataDir = None,
    prometheus_url: PrometheusUrl = None,
    alertmanager_url: AlertmanagerUrl = None,
    grafana_url: GrafanaUrl = None,
    token: Annotated[
        str | None,
        typer.Option(help="A token to check. [default: LLMOPS_TOKEN, from the environment or .env]"),
    ] = None,
) -> None:
    """Check the usage log, the stack's files, the JWT secret, the token in use, Docker, ports,
    Prometheus's scrape of the gateway and Grafana's datasources; print a fix for each problem.
    Exit 1 when a check fails."""
    from urllib.parse import urlsplit

    from llmops_cli import diagnostics
    from llmops_cli.checklist import print_checklist
    from llmops_cli.config import ENV_FILE, load_settings
    from llmops_cli.gateway_process import read_state, url_for
    from llmops_cli.stack_settings import StackSettings

    settings = load_settings(data_dir)
    stack_settings = StackSettings()
    stack = stack_settings.to_config(settings)
    state = read_state(settings.data_dir)
    gateway_url = state.url if state.running and state.url else url_for(settings.host, settings.port)
    prometheus = (prometheus_url or stack.url("prometheus")).rstrip("/")
    alertmanager = (alertmanager_url or stack.url("alertmanager")).rstrip("/")
    grafana = (grafana_url or stack.url("grafana")).rstrip("/")

    container_pids, published = diagnostics.llmops_containers()
    owned = container_pids | ({state.pid} if state.running and state.pid else set())
    ports = [("gateway", settings.host, settings.port)]
    if settings.metrics_port is not None:
        ports.append(("gateway", settings.metrics_host, settings.metrics_port))
    for component, url in (("prometheus", prometheus), ("alertmanager", alertmanager), ("grafana", grafana)):
        parts = urlsplit(url)
        if parts.port:
            ports.append((component, parts.hostname or "127.0.0.1", parts.port))

    password = stack_settings.grafana_admin_password
    checks = [
        diagnostics.usage_log_writable(settings, gateway_url if state.running else None),
        diagnostics.prometheus_config_is_a_file(settings.data_dir),
        diagnostics.jwt_secret(settings),
        diagnostics.token_in_use(settings, ENV_FILE, token),
        diagnostics.docker_reachable(),
        *(diagnostics.port_check(c, host, port, owned, published) for c, host, port in ports),
        diagnostics.prometheus_scrapes_gateway(prometheus, f"http://{stack.gateway_scrape_target}"),
        diagnostics.grafana_datasources(
            grafana, stack.grafana_admin_user, password.get_secret_value() if password else None
        ),
    ]
    print_checklist("llmops doctor", checks)
    if any(check.failed for check in checks):
        raise typer.Exit(1)
