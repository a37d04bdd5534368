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
written=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["plan"])' <<<"$sandbox_json")
# A copy of the plan the sandbox wrote, with target names of its own, so that the demo runs again later
# (the targets of an earlier run exist, and migrator never overwrites an index).
run=$(date +%Y%m%d-%H%M%S)
plan="$(dirname "$written")/demo-$run.yaml"
sed -e "s/^name: sandbox-demo/name: demo-$run/" -e "s/\"migrated-\\\$1\"/\"demo-$run-\\\$1\"/" "$written" >"$plan"
echo "plan: $plan"
"$migrator" plan "$plan"
"$migrator" apply "$plan" --yes
"$migrator" status "$plan"
"$migrator" sandbox status
