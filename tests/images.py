"""Local images for the stack tests, built from Debian's binaries because no image registry is reachable.

    llmops-test/prometheus:local        FROM scratch: Debian's /usr/bin/prometheus, the libraries it links
                                        (found with ldd), busybox as /bin/sh (no web UI: the API suffices)
    llmops-test/alertmanager:local      the same for /usr/bin/prometheus-alertmanager
    llmops-test/grafana-standin:local   busybox httpd answering /api/health on GF_SERVER_HTTP_ADDR:PORT, after
                                        checking the parts of the spec Grafana relies on (env, mounts)

Each image is also tagged with a hash of everything that goes into it, so an unchanged image is not built
again. Run ``python -m tests.images`` to build them by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docker import DockerClient

PROMETHEUS_IMAGE = "llmops-test/prometheus:local"
ALERTMANAGER_IMAGE = "llmops-test/alertmanager:local"
GRAFANA_STANDIN_IMAGE = "llmops-test/grafana-standin:local"

BUSYBOX = Path("/bin/busybox")

_GRAFANA_STANDIN_SCRIPT = """#!/bin/sh
# Stand-in for Grafana in the llmops tests: refuse to start unless the container spec gives what Grafana
# needs, then answer /api/health on the address Grafana would listen on.
fail() { echo "grafana-standin: $*" >&2; exit 1; }
[ -n "$GF_SERVER_HTTP_ADDR" ] || fail "GF_SERVER_HTTP_ADDR is not set"
[ -n "$GF_SERVER_HTTP_PORT" ] || fail "GF_SERVER_HTTP_PORT is not set"
case "$GF_SECURITY_ADMIN_PASSWORD" in
    ""|admin) fail "refusing an empty or default admin password" ;;
esac
[ -d /etc/grafana/provisioning ] || fail "/etc/grafana/provisioning is not mounted"
[ -d /var/lib/grafana/dashboards ] || fail "/var/lib/grafana/dashboards is not mounted"
touch /var/lib/grafana/.writable || fail "/var/lib/grafana is not writable"
echo "grafana-standin: listening on $GF_SERVER_HTTP_ADDR:$GF_SERVER_HTTP_PORT"
# As PID 1, httpd would ignore SIGTERM and make every stop wait for the kill timeout; Grafana does not.
httpd -f -v -p "$GF_SERVER_HTTP_ADDR:$GF_SERVER_HTTP_PORT" -h /www &
trap 'kill $!; exit 0' TERM INT
wait $!
"""

_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "grafana:x:472:0:grafana:/usr/share/grafana:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
_GROUP = "root:x:0:\nnogroup:x:65534:\n"
NOBODY = "65534:65534"
GRAFANA_USER = "472:0"


@dataclass
class ImagePlan:
    """The files of a FROM-scratch image: path in the image -> host file, literal content, or symlink."""

    reference: str
    entrypoint: list[str]
    copies: dict[str, Path] = field(default_factory=dict)
    contents: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    directories: list[str] = field(default_factory=list)
    user: str | None = None
    """Run as this uid:gid, like the official image does."""
    owned_directories: list[str] = field(default_factory=list)
    """Empty directories owned by ``user``: the data directories a named volume is initialised from."""

    def add_binary(self, source: Path, destination: str) -> None:
        """A dynamically linked binary and every library ldd says it loads, at the same paths."""
        self.copies[destination] = source
        for library in linked_libraries(source):
            self.copies.setdefault(library.lstrip("/"), Path(library))

    def add_busybox(self) -> None:
        """busybox with a symlink per applet in /bin, so /bin/sh and the usual tools exist."""
        self.copies["bin/busybox"] = BUSYBOX
        listed = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
        for applet in listed.split():
            if f"bin/{applet}" not in self.copies:
                self.symlinks[f"bin/{applet}"] = "busybox"

    def add_base_files(self) -> None:
        self.contents["etc/passwd"] = (_PASSWD.encode(), 0o644)
        self.contents["etc/group"] = (_GROUP.encode(), 0o644)
        self.directories.append("tmp")

    def dockerfile(self) -> str:
        lines = ["FROM scratch", "COPY rootfs/ /"]
        lines += [f"COPY --chown={self.user} owned/{d}/ /{d}/" for d in self.owned_directories]
        lines.append("ENV PATH=/bin")
        if self.user:
            lines.append(f"USER {self.user}")
        lines.append("ENTRYPOINT [" + ", ".join(f'"{part}"' for part in self.entrypoint) + "]")
        return "\n".join(lines) + "\n"

    def digest(self) -> str:
        """A hash of everything that goes into the image."""
        digest = hashlib.sha256(self.dockerfile().encode())
        for destination, source in sorted(self.copies.items()):
            digest.update(f"copy {destination}\0".encode())
            digest.update(_file_digest(source))
        for destination, (content, mode) in sorted(self.contents.items()):
            digest.update(f"content {destination} {mode:o}\0".encode() + content)
        for destination, target in sorted(self.symlinks.items()):
            digest.update(f"link {destination} {target}\0".encode())
        for directory in sorted(self.directories):
            digest.update(f"dir {directory}\0".encode())
        return digest.hexdigest()[:16]

    def stage(self, context: Path) -> None:
        """Write the build context (Dockerfile + rootfs/) into ``context``."""
        rootfs = context / "rootfs"
        rootfs.mkdir()
        for directory in self.owned_directories:
            (context / "owned" / directory).mkdir(parents=True)
        for directory in self.directories:
            (rootfs / directory).mkdir(parents=True, exist_ok=True)
            # Programs expect to create files in /tmp whatever user they run as.
            if directory == "tmp":
                (rootfs / directory).chmod(0o1777)
        for destination, source in self.copies.items():
            target = rootfs / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copy(source.resolve(), target)
        for destination, (content, mode) in self.contents.items():
            target = rootfs / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(mode)
        for destination, link_target in self.symlinks.items():
            (rootfs / destination).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(link_target, rootfs / destination)
        (context / "Dockerfile").write_text(self.dockerfile())


def linked_libraries(binary: Path) -> list[str]:
    """Absolute paths of the shared libraries ``binary`` loads, as ldd reports them."""
    output = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    return sorted(set(re.findall(r"(/\S+)\s+\(0x", output)))


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in paths:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.digest()


def prometheus_plan() -> ImagePlan:
    plan = ImagePlan(
        PROMETHEUS_IMAGE, entrypoint=["/bin/prometheus"], user=NOBODY, owned_directories=["prometheus"]
    )
    plan.add_base_files()
    plan.add_busybox()
    plan.add_binary(Path("/usr/bin/prometheus"), "bin/prometheus")
    return plan


def alertmanager_plan() -> ImagePlan:
    plan = ImagePlan(
        ALERTMANAGER_IMAGE, entrypoint=["/bin/alertmanager"], user=NOBODY, owned_directories=["alertmanager"]
    )
    plan.add_base_files()
    plan.add_busybox()
    plan.add_binary(Path("/usr/bin/prometheus-alertmanager"), "bin/alertmanager")
    # Debian's build reads its default notification templates and UI from here.
    plan.copies["usr/share/prometheus/alertmanager"] = Path("/usr/share/prometheus/alertmanager")
    return plan


def grafana_standin_plan() -> ImagePlan:
    plan = ImagePlan(
        GRAFANA_STANDIN_IMAGE,
        entrypoint=["/bin/grafana-standin"],
        user=GRAFANA_USER,
        owned_directories=["var/lib/grafana"],
    )
    plan.add_base_files()
    plan.add_busybox()
    plan.contents["bin/grafana-standin"] = (_GRAFANA_STANDIN_SCRIPT.encode(), 0o755)
    plan.contents["www/api/health"] = (b'{"database": "ok", "version": "stand-in"}\n', 0o644)
    return plan


def build_image(client: DockerClient, plan: ImagePlan) -> str:
    """Build ``plan`` unless its content-hash tag exists; tag it ``plan.reference``; return its id."""
    import docker

    repository = plan.reference.rsplit(":", 1)[0]
    hashed = f"{repository}:{plan.digest()}"
    try:
        image = client.images.get(hashed)
    except docker.errors.ImageNotFound:
        with tempfile.TemporaryDirectory(prefix="llmops-image-") as context:
            plan.stage(Path(context))
            image, _ = client.images.build(path=context, tag=hashed, rm=True, forcerm=True)
    image.tag(plan.reference)
    _remove_stale_builds(client, repository, keep=image.id)
    return image.id


def _remove_stale_builds(client: DockerClient, repository: str, keep: str) -> None:
    """Drop earlier content-hash builds of ``repository`` so rebuilt test images do not pile up."""
    import docker

    for image in client.images.list(name=repository):
        if image.id != keep:
            for tag in image.tags:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag)


def build_test_images(client: DockerClient) -> dict[str, str]:
    """Build (or reuse) every test image; return reference -> image id."""
    plans = [prometheus_plan(), alertmanager_plan(), grafana_standin_plan()]
    return {plan.reference: build_image(client, plan) for plan in plans}


if __name__ == "__main__":
    import docker

    for reference, image_id in build_test_images(docker.from_env()).items():
        print(f"{reference}  {image_id}")
