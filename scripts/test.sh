#!/usr/bin/env bash
# Installs migrator with its test extras into .venv and runs the whole test suite against real
# Elasticsearch nodes (fetched with Maven on first use) and the local OSS server.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
.venv/bin/ruff check migrator tests scripts
exec .venv/bin/python -m pytest -q -ra "$@"
