"""The config files the containers mount, generated into ``<data dir>/stack/``.

Layout (each directory is mounted read-only, whole, into one container)::

    <data>/stack/prometheus/prometheus.yml      rendered from config/prometheus.yml
    <data>/stack/prometheus/gateway_metrics_token   the bearer for the gateway's /metrics, if it wants one
    <data>/stack/prometheus/rules/              copy of config/rules/
    <data>/stack/alertmanager/                  copy of config/alertmanager/
    <data>/stack/grafana/provisioning/          copy of config/grafana/provisioning/
    <data>/stack/grafana/dashboards/            copy of config/grafana/dashboards/

Files the caller renders (StackConfig.rendered_files, e.g. alert rules with thresholds filled in) replace
the copied templates at the same paths.

Directories are mounted rather than single files: Docker turns a missing single-file source into an empty
directory, and a file replaced by rename would leave the container holding the old inode. Files are
rewritten only when their content changes, so an unchanged stack stays unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import string
from dataclasses import dataclass, field
from pathlib import Path

from stack.config import StackConfig

METRICS_TOKEN_FILE = "gateway_metrics_token"
"""Beside prometheus.yml: the bearer for the gateway's /metrics, when it wants one."""

_SKIPPED_NAMES = frozenset({"__pycache__", ".DS_Store"})


@dataclass(frozen=True)
class StackFiles:
    """Host directories the containers mount."""

    prometheus: Path
    alertmanager: Path
    grafana_provisioning: Path
    grafana_dashboards: Path


def write_config_files(config: StackConfig) -> StackFiles:
    """Render and copy every config file the stack mounts; return the directories to mount."""
    root = config.files_dir
    source = config.config_source
    files = StackFiles(
        prometheus=root / "prometheus",
        alertmanager=root / "alertmanager",
        grafana_provisioning=root / "grafana" / "provisioning",
        grafana_dashboards=root / "grafana" / "dashboards",
    )
    # Only we may enter: the rendered files can hold secrets (webhook token, SMTP password). The containers
    # are unaffected, since a bind mount does not traverse the directories above its source.
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    wanted = _Tree()
    wanted.copy(source / "rules", files.prometheus / "rules")
    wanted.copy(source / "alertmanager", files.alertmanager)
    wanted.copy(source / "grafana" / "provisioning", files.grafana_provisioning)
    wanted.copy(source / "grafana" / "dashboards", files.grafana_dashboards)
    wanted.files[files.prometheus / "prometheus.yml"] = render_prometheus_config(config).encode()
    if config.gateway_metrics_token:
        wanted.files[files.prometheus / METRICS_TOKEN_FILE] = config.gateway_metrics_token.encode()
    for relative, content in config.rendered_files.items():
        target = root / relative
        if not target.resolve().is_relative_to(root.resolve()):
            raise ValueError(f"rendered file {relative!r} would land outside {root}")
        wanted.files[target] = content.encode()
    mounted = [files.prometheus, files.alertmanager, files.grafana_provisioning, files.grafana_dashboards]
    wanted.sync(mounted)
    return files


def remove_config_files(config: StackConfig) -> bool:
    """Delete the generated ``<data dir>/stack/`` directory; True when there was one."""
    if not config.files_dir.exists():
        return False
    shutil.rmtree(config.files_dir)
    return True


def render_prometheus_config(config: StackConfig) -> str:
    """prometheus.yml: scrape the gateway (job="llmops"), load the rules, send alerts to the Alertmanager."""
    template = string.Template((config.config_source / "prometheus.yml").read_text())
    authorization = ""
    if config.gateway_metrics_token:
        # A file rather than the token inline: prometheus.yml stays free of secrets.
        authorization = (
            "    authorization:\n"
            "      type: Bearer\n"
            f"      credentials_file: /etc/prometheus/{METRICS_TOKEN_FILE}"
        )
    return template.substitute(
        scrape_interval=config.scrape_interval,
        gateway_address=config.gateway_scrape_target,
        gateway_authorization=authorization,
        prometheus_address=config.internal_address("prometheus"),
        alertmanager_address=config.internal_address("alertmanager"),
    )


@dataclass
class _Tree:
    """The files (and directories) the mounted directories should hold, and the sync that makes it so."""

    files: dict[Path, bytes] = field(default_factory=dict)
    directories: set[Path] = field(default_factory=set)

    def copy(self, source: Path, target: Path) -> None:
        """Want every file of ``source`` under ``target`` (an absent source wants just an empty directory)."""
        self.directories.add(target)
        if not source.is_dir():
            return
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source)
            if _SKIPPED_NAMES.intersection(relative.parts):
                continue
            if path.is_dir():
                self.directories.add(target / relative)
            else:
                self.files[target / relative] = path.read_bytes()

    def sync(self, roots: list[Path]) -> None:
        """Write what changed, create what is missing, delete under ``roots`` what is no longer wanted."""
        for directory in sorted(self.directories):
            directory.mkdir(parents=True, exist_ok=True)
        for path, content in self.files.items():
            write_if_changed(path, content)
        kept = set(self.files) | self.directories | {parent for path in self.files for parent in path.parents}
        for root in roots:
            # Deepest paths first, so a stale directory is empty by the time it is removed.
            for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if path in kept:
                    continue
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                else:
                    path.unlink()
            # The containers read these as an unprivileged user (nobody, grafana), whatever our umask.
            for directory in [root, *(p for p in root.rglob("*") if p.is_dir())]:
                directory.chmod(0o755)


def write_if_changed(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` (atomically, mode 0644) unless it already holds exactly that."""
    if path.is_file() and path.read_bytes() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(content)
    os.chmod(staging, 0o644)
    os.replace(staging, path)


def directory_digest(directory: Path) -> str:
    """A sha256 over the names and contents of every file under ``directory``."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(directory)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
