#!/usr/bin/env bash
# Prepare a machine for the llmops test suite (idempotent; run as root).
#
# Installs Debian's docker.io, prometheus, prometheus-alertmanager and busybox-static when missing
# (the local test images are built from those binaries, since no image registry is reachable in CI)
# and sqlite3 (for `llmops shell db`),
# then starts dockerd in the background when no daemon answers and waits until it does.
set -euo pipefail

packages=(docker.io prometheus prometheus-alertmanager busybox-static sqlite3)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if ((${#missing[@]})); then
    echo "provision: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package index only when an install from the current one fails.
    if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi

if docker info >/dev/null 2>&1; then
    echo "provision: docker daemon already answers"
    exit 0
fi

echo "provision: starting dockerd (log: /tmp/llmops-dockerd.log)"
nohup /usr/sbin/dockerd >/tmp/llmops-dockerd.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        echo "provision: docker daemon is up"
        exit 0
    fi
    sleep 1
done
echo "provision: dockerd did not answer within 60 s; last log lines:" >&2
tail -n 30 /tmp/llmops-dockerd.log >&2
exit 1
