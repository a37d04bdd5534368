#!/usr/bin/env bash
# Installs migrator with its test extras into .venv and runs the whole test suite against real
# Elasticsearch nodes (fetched with Maven on first use) and the local OSS server. The docker engine's
# tests need a Docker engine: scripts/docker-engine.sh installs and starts one (as root); where it
# cannot, its reason is passed to those tests, which then fail with it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
.venv/bin/ruff check migrator tests scripts
.venv/bin/ruff format --check migrator tests scripts
.venv/bin/mypy migrator
if ! reason=$(bash scripts/docker-engine.sh 2>&1 >/dev/null); then
    echo "warning: the docker engine's tests will fail: $reason" >&2
    export MIGRATOR_DOCKER_UNAVAILABLE="$reason"
fi
exec .venv/bin/python -m pytest -q -ra "$@"
