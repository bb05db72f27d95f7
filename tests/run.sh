#!/usr/bin/env bash
# The whole test suite from a fresh clone: what the tests need from the system (Docker engine,
# Prometheus, Alertmanager), a virtualenv with the project and its test extras, then pytest.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k usage`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -f tests/provision.sh ]; then
  bash tests/provision.sh
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || { apt-get install -y -q python3-venv >/dev/null && python3 -m venv .venv; }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest "$@"
