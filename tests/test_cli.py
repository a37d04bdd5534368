"""The command line's contract without clusters: bad plans exit 2 naming the field; help teaches."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

GOOD = """
name: cli
source: {url: "http://127.0.0.1:1"}
destination: {url: "http://127.0.0.1:2"}
repository: {name: repo, type: fs, settings: {location: /tmp/repo}}
storage: {kind: local, path: /tmp/repo}
snapshot: {indices: ["a"]}
"""


def migrator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrator", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ('source: {url: "http://127.0.0.1:1", username: elastic, password: hunter2-literal}', "source.password"),
        ('destination: {url: "http://127.0.0.1:2", flavour: vanilla}', "destination.flavour"),
        ('restore: {rename_pattern: "(a", rename_replacement: "b"}', "restore.rename_pattern"),
    ],
)
def test_bad_plans_exit_2_naming_the_field(tmp_path, change, field):
    key = change.split(":", 1)[0]
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith(key + ":")) + "\n" + change + "\n"
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    for command in ("plan", "apply"):
        result = migrator(command, str(plan), "--yes") if command == "apply" else migrator(command, str(plan))
        assert result.returncode == 2, result.stderr
        assert field in result.stderr
        assert "hunter2-literal" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr


def test_missing_plan_file_is_bad_input(tmp_path):
    result = migrator("plan", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "nope.yaml" in result.stderr


def test_unreachable_cluster_is_a_failure_not_a_traceback(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(GOOD)
    result = migrator("plan", str(plan))
    assert result.returncode == 1
    assert "unreachable" in result.stderr and "Traceback" not in result.stderr


def test_status_without_a_run_needs_attention(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(GOOD)
    result = migrator("status", str(plan))
    assert result.returncode == 3 and "never applied" in result.stderr


def test_schema_is_json_schema_naming_the_sections():
    schema = json.loads(migrator("schema").stdout)
    assert {"source", "destination", "repository", "snapshot", "restore", "finish"} <= set(schema["properties"])


def test_help_documents_exit_codes():
    assert "Exit codes: 0 done, 1 a step failed, 2 bad input" in " ".join(migrator("--help").stdout.split())
