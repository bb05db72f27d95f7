"""The config files the containers mount, generated into ``<data dir>/stack/``.

Layout (each directory is mounted read-only, whole, into one container)::

    <data>/stack/prometheus/prometheus.yml      rendered from config/prometheus.yml
    <data>/stack/prometheus/rules/              copy of config/rules/
    <data>/stack/alertmanager/                  copy of config/alertmanager/
    <data>/stack/grafana/provisioning/          copy of config/grafana/provisioning/
    <data>/stack/grafana/dashboards/            copy of config/grafana/dashboards/

Directories are mounted rather than single files: Docker turns a missing single-file source into an empty
directory, and a file replaced by rename would leave the container holding the old inode. Files are
rewritten only when their content changes, so an unchanged stack stays unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

from stack.config import StackConfig

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
    mirror_directory(source / "rules", files.prometheus / "rules")
    write_if_changed(files.prometheus / "prometheus.yml", render_prometheus_config(config).encode())
    mirror_directory(source / "alertmanager", files.alertmanager)
    mirror_directory(source / "grafana" / "provisioning", files.grafana_provisioning)
    mirror_directory(source / "grafana" / "dashboards", files.grafana_dashboards)
    return files


def render_prometheus_config(config: StackConfig) -> str:
    """prometheus.yml for this stack: scrape the gateway (job="llmops"), load the rules, alert the Alertmanager."""
    template = string.Template((config.config_source / "prometheus.yml").read_text())
    return template.substitute(
        scrape_interval=config.scrape_interval,
        gateway_address=config.gateway_scrape_target,
        prometheus_address=config.internal_address("prometheus"),
        alertmanager_address=config.internal_address("alertmanager"),
    )


def mirror_directory(source: Path, target: Path) -> None:
    """Make ``target`` hold exactly the files of ``source`` (an absent source gives an empty directory)."""
    target.mkdir(parents=True, exist_ok=True)
    wanted: set[Path] = set()
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source)
            if _SKIPPED_NAMES.intersection(relative.parts):
                continue
            wanted.add(relative)
            if path.is_dir():
                (target / relative).mkdir(parents=True, exist_ok=True)
            else:
                write_if_changed(target / relative, path.read_bytes())
    # Deepest paths first, so a stale directory is empty by the time it is removed.
    for path in sorted(target.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        relative = path.relative_to(target)
        if relative in wanted:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


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
