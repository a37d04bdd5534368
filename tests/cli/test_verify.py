"""`migrator verify --plan` reads the repository with the plan's storage secrets only, never the clusters'."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from migrator.cli.main import app
from migrator.exit_codes import ExitCode

PLAN = """
name: verify-only
source: {{url: "http://127.0.0.1:1", username: elastic, password: "${{SRC_ES_PASSWORD}}"}}
destination: {{url: "http://127.0.0.1:2", api_key: "${{DST_ES_API_KEY}}"}}
repository: {{name: repo, type: fs, settings: {{location: {folder}}}}}
{storage}
snapshot: {{indices: ["a"]}}
"""
FIXTURE = Path(__file__).parents[1] / "fixtures" / "es-repositories" / "ES_6_8_Single"


def verify(tmp_path: Path, storage: str, env: dict[str, str]) -> tuple[int, str]:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(folder=FIXTURE, storage=storage))
    result = CliRunner().invoke(app, ["verify", "--plan", str(plan)], env=env)
    return result.exit_code, result.output


def test_verify_plan_lists_snapshots_without_the_clusters_passwords(tmp_path, monkeypatch):
    monkeypatch.delenv("SRC_ES_PASSWORD", raising=False)
    monkeypatch.delenv("DST_ES_API_KEY", raising=False)
    code, output = verify(tmp_path, f"storage: {{kind: local, path: {FIXTURE}}}", {})
    assert code == ExitCode.OK, output
    assert "snapshot(s) in index-" in output
    assert "SRC_ES_PASSWORD" not in output


def test_verify_plan_still_needs_the_buckets_own_secrets(tmp_path, monkeypatch):
    monkeypatch.delenv("OSS_ID_FOR_TEST", raising=False)
    storage = (
        "storage: {kind: oss, endpoint: http://127.0.0.1:3, bucket: b, base_path: r, region: cn-hangzhou, "
        'access_key_id: "${OSS_ID_FOR_TEST}", access_key_secret: "${OSS_SECRET_FOR_TEST}"}'
    )
    code, output = verify(tmp_path, storage, {"OSS_SECRET_FOR_TEST": "s3cr3t-value"})
    assert code == ExitCode.BAD_INPUT, output
    assert "storage.access_key_id" in output and "export OSS_ID_FOR_TEST" in output
    assert "SRC_ES_PASSWORD" not in output and "s3cr3t-value" not in output
