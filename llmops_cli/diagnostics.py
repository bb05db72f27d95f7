"""What `llmops doctor` checks: each known way this setup goes wrong, and how to fix it.

Every check returns a `Check` and never raises: a doctor that crashes on the fault it should name is
no help. Nothing here changes anything (no secret is generated, no file written outside a probe).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmops_cli.checklist import Check, fail, ok, skip, warn

if TYPE_CHECKING:
    from server.settings import Settings

TOKEN_ENV = "LLMOPS_TOKEN"
# Where the stack's Prometheus config may sit: the stack renders it under prometheus/, older layouts
# put it next to it. Docker creates a missing bind-mount source as a directory, under either name.
PROMETHEUS_CONFIGS = ("stack/prometheus/prometheus.yml", "stack/prometheus.yml")
_PROBE_BYTES = 64 * 1024


# -- the usage log ----------------------------------------------------------------------------------


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def usage_log_writable(settings: Settings, gateway_url: str | None) -> Check:
    """The data directory takes a write and the usage database takes a write transaction."""
    name = "usage log writable"
    data_dir, db_path = settings.data_dir, settings.usage_db_path
    fix = (
        f"make {data_dir} writable (remount it read-write, free space on its file system), "
        "or point --data-dir / LLMOPS_DATA_DIR at a writable directory"
    )
    directory = data_dir if data_dir.is_dir() else _nearest_existing(data_dir)
    if not directory.is_dir():
        return fail(name, f"{directory} is not a directory", fix)
    probe = directory / f".llmops-doctor-{os.getpid()}"
    try:
        with probe.open("wb") as handle:
            handle.write(b"\0" * _PROBE_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        return fail(name, f"cannot write in {directory}: {exc.strerror}", fix)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    if db_path.exists():
        try:
            conn = sqlite3.connect(db_path, isolation_level=None, timeout=2)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
            finally:
                conn.close()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                return warn(
                    name, f"{db_path} stayed locked for 2 s", "another process holds a write lock on it"
                )
            return fail(name, f"{db_path}: {exc}", fix)
    if gateway_url is not None:
        import httpx

        try:
            ready = httpx.get(f"{gateway_url}/readyz", timeout=2)
        except httpx.HTTPError:
            ready = None
        if ready is not None and ready.status_code == 503:
            return fail(name, f"the gateway at {gateway_url} reports: {ready.text[:200]}", fix)
    where = db_path if db_path.exists() else f"{data_dir} (usage.db is created at start)"
    return ok(name, str(where))


# -- the stack's files --------------------------------------------------------------------------------


def prometheus_config_is_a_file(data_dir: Path) -> Check:
    name = "prometheus.yml is a file"
    found = [data_dir / relative for relative in PROMETHEUS_CONFIGS if (data_dir / relative).exists()]
    for path in found:
        if path.is_dir():
            return fail(
                name,
                f"{path} is a directory: Docker made it because the file was missing when Prometheus started",
                f"`llmops down`, remove the directory (rm -r {path}), then `llmops up` writes the file",
            )
    if not found:
        return skip(name, f"no stack files under {data_dir / 'stack'} yet (`llmops up` writes them)")
    return ok(name, str(found[0]))


# -- secrets and tokens ---------------------------------------------------------------------------------


def jwt_secret(settings: Settings) -> Check:
    from server.errors import ConfigError

    name = "JWT secret"
    try:
        settings.require_jwt_secret()
    except ConfigError as exc:
        if settings.jwt_secret is None or not settings.jwt_secret.get_secret_value():
            fix = "`llmops up` or `llmops token` generates a strong one into .env"
        else:
            fix = (
                "delete the JWT_SECRET line from .env (and unset JWT_SECRET); `llmops token` then generates "
                "a strong one (tokens signed with the old one stop working)"
            )
        return fail(name, exc.message, fix)
    return ok(name, "set, not the placeholder")


def token_in_use(settings: Settings, env_file: Path, token: str | None = None) -> Check:
    """The token clients use: --token, else LLMOPS_TOKEN from the environment, else from .env."""
    import jwt
    from jwt import exceptions as jwt_errors

    from server.auth.api_keys import KEY_PREFIX
    from server.auth.jwt_tokens import HS256, REQUIRED_CLAIMS

    name = "token in use"
    source = "--token"
    if token is None:
        token, source = os.environ.get(TOKEN_ENV), TOKEN_ENV
    if token is None:
        token, source = env_file_value(env_file, TOKEN_ENV), f"{TOKEN_ENV} in {env_file}"
    if not token:
        return skip(name, f"no token in use ({TOKEN_ENV} is not set); --token checks one")
    renew = f"export {TOKEN_ENV}=$(llmops token --sub <you> --ttl 1h)"
    if token.startswith(KEY_PREFIX):
        return skip(name, f"{source} holds an API key: `llmops keys list` shows whether it expired")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt_errors.PyJWTError:
        return fail(name, f"the token in {source} is not a JWT", renew)
    subject, expires = claims.get("sub"), claims.get("exp")
    if isinstance(expires, int | float) and expires < time.time():
        ago = _duration(time.time() - expires)
        return fail(name, f"the token in {source} (sub={subject}) expired {ago} ago", renew)
    try:
        secrets = [settings.require_jwt_secret()]
        previous = settings.previous_jwt_secret()
    except Exception:
        return warn(name, f"cannot verify the token in {source}: no usable JWT secret here")
    if previous is not None and previous[1].timestamp() > time.time():
        secrets.append(previous[0])  # still accepted during a rotation
    for candidate in secrets:
        try:
            jwt.decode(token, candidate, algorithms=[HS256], options={"require": REQUIRED_CLAIMS})
            break
        except jwt_errors.InvalidSignatureError:
            continue
        except jwt_errors.PyJWTError as exc:
            return fail(name, f"the token in {source} is refused: {exc}", renew)
    else:
        return fail(name, f"the token in {source} (sub={subject}) was signed with another JWT_SECRET", renew)
    left = _duration(float(expires) - time.time()) if isinstance(expires, int | float) else "?"
    return ok(name, f"{source}: sub={subject}, valid for {left}")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def env_file_value(path: Path, key: str) -> str | None:
    if not path.exists():
        return None
    from dotenv import dotenv_values

    return dotenv_values(path).get(key)


# -- Docker and ports -------------------------------------------------------------------------------------


def docker_reachable() -> Check:
    name = "Docker reachable"
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            client.ping()
            version = client.version().get("Version", "?")
        finally:
            client.close()
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return fail(
            name,
            f"no Docker engine at {where}: {reason}",
            "start it (`sudo systemctl start docker`, or `sudo dockerd &`), or fix DOCKER_HOST; "
            "the gateway runs without it, the stack does not",
        )
    return ok(name, f"engine {version} at {where}")


@dataclass
class PortOwner:
    pid: int
    command: str
    ours: bool


def port_check(component: str, host: str, port: int, owned_pids: set[int], docker_ports: set[int]) -> Check:
    """Free, or held by an llmops process or container; a fail names whoever else holds it.

    Ours: a process descending from `owned_pids` (the gateway of the pid file, our containers' main
    processes), an `llmops serve` on the gateway's port, or docker-proxy for a port our containers publish.
    """
    from llmops_cli.gateway_process import port_in_use

    name = f"port {port} ({component})"
    if not port_in_use(host, port):
        return ok(name, "free")
    published = port in docker_ports
    owners = [_owner(pid, owned_pids, published, component == "gateway") for pid in listening_pids(port)]
    if not owners and published:
        return ok(name, "published by an llmops container")
    if any(owner.ours for owner in owners):
        mine = next(owner for owner in owners if owner.ours)
        return ok(name, f"in use by llmops ({component}, pid {mine.pid})")
    who = ", ".join(f"pid {o.pid} ({o.command})" for o in owners) or "a process this user cannot see"
    return fail(
        name,
        f"taken by {who}",
        f"stop it, or give llmops's {component} another port",
    )


def _owner(pid: int, owned_pids: set[int], published_by_us: bool, gateway_port: bool) -> PortOwner:
    command = _cmdline(pid)
    ours = (
        bool(_ancestors(pid) & owned_pids)
        or (published_by_us and command.startswith("docker-proxy"))
        or (gateway_port and "llmops" in command and " serve" in command)
    )
    return PortOwner(pid, command[:80], ours)


def listening_pids(port: int) -> list[int]:
    """Processes with a TCP socket listening on `port` (any address), from /proc."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                pids.append(int(proc.name))
        except OSError:
            continue
    return sorted(pids)


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    parts = [
        Path(p).name if i == 0 else p for i, p in enumerate(raw.decode(errors="replace").split("\0")) if p
    ]
    return " ".join(parts)


def _ancestors(pid: int) -> set[int]:
    """`pid` and every parent up to init."""
    lineage = set()
    while pid > 1 and pid not in lineage:
        lineage.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return lineage


def llmops_containers() -> tuple[set[int], set[int]]:
    """Main pids and published host ports of containers labelled as llmops's (empty without Docker)."""
    from stack.engine import PROJECT_LABEL

    pids: set[int] = set()
    ports: set[int] = set()
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            for container in client.containers.list(filters={"label": PROJECT_LABEL}):
                pid = container.attrs.get("State", {}).get("Pid")
                if pid:
                    pids.add(int(pid))
                for bindings in (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).values():
                    ports.update(int(b["HostPort"]) for b in bindings or [] if b.get("HostPort"))
        finally:
            client.close()
    except Exception:
        pass
    return pids, ports


# -- the running stack --------------------------------------------------------------------------------------


def prometheus_scrapes_gateway(prometheus_url: str, gateway_url: str) -> Check:
    import httpx

    from llmops_cli.prometheus_api import gateway_target

    name = "Prometheus scrapes the gateway"
    try:
        target = gateway_target(prometheus_url, gateway_url)
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return skip(name, f"Prometheus not answering at {prometheus_url} ({type(exc).__name__})")
    config_fix = (
        "the `llmops` job in <data>/stack/prometheus/prometheus.yml must point at the gateway's host:port; "
        "`llmops up` rewrites it"
    )
    if target is None:
        return fail(name, f"Prometheus at {prometheus_url} has no target for {gateway_url}", config_fix)
    if target.get("health") == "up":
        return ok(name, f"{target['scrapeUrl']} up")
    if target.get("health") == "unknown":
        return warn(name, f"{target['scrapeUrl']} not scraped yet", "wait one scrape interval")
    return fail(
        name,
        f"{target['scrapeUrl']} is down: {target.get('lastError') or 'no error given'}",
        "is the gateway running (`llmops status`)? " + config_fix,
    )


def grafana_datasources(grafana_url: str, user: str, password: str | None) -> Check:
    import httpx

    name = "Grafana datasources"
    try:
        httpx.get(f"{grafana_url}/api/health", timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        return skip(name, f"Grafana not answering at {grafana_url} ({type(exc).__name__})")
    if not password:
        return warn(name, "GRAFANA_ADMIN_PASSWORD is not set: cannot ask Grafana", "set it (or `llmops up`)")
    auth = (user, password)
    try:
        listed = httpx.get(f"{grafana_url}/api/datasources", auth=auth, timeout=5)
        if listed.status_code == 401:
            return fail(name, "Grafana refused the admin login", "GRAFANA_ADMIN_PASSWORD must be Grafana's")
        listed.raise_for_status()
        broken = []
        for source in listed.json():
            health = httpx.get(
                f"{grafana_url}/api/datasources/uid/{source['uid']}/health", auth=auth, timeout=10
            )
            body = (
                health.json() if health.headers.get("content-type", "").startswith("application/json") else {}
            )
            if health.status_code != 200 or body.get("status") != "OK":
                broken.append(
                    f"{source['name']} ({source.get('url')}): {body.get('message') or health.status_code}"
                )
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return fail(name, f"cannot ask Grafana about its datasources ({type(exc).__name__})")
    if broken:
        return fail(
            name,
            "unreachable: " + "; ".join(broken),
            "the datasource URL must reach Prometheus from inside the Grafana container; "
            "is Prometheus up (`llmops status`)?",
        )
    return ok(name, f"{len(listed.json())} reachable")
