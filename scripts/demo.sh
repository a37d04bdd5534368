#!/usr/bin/env bash
# Installs migrator into .venv, starts the local sandbox (source 7.17, destination 8.x, OSS server),
# seeds example indices and runs a real migration with the plan the sandbox wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
migrator=.venv/bin/migrator
sandbox_json=$("$migrator" sandbox up "$@")
echo "$sandbox_json"
"$migrator" sandbox seed --docs 5000
plan=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["plan"])' <<<"$sandbox_json")
"$migrator" plan "$plan"
"$migrator" apply "$plan" --yes
"$migrator" status "$plan"
"$migrator" sandbox status
