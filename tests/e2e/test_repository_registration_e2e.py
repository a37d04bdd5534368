"""A registration of the plan's `repository.name` that migrator did not make, on real nodes (7.17 -> 8):
the user's own repository at another base path is refused by the dry run and by apply, and is left
exactly as it was (before, the repository steps re-pointed it with POST to the migration's base path)."""

from __future__ import annotations

import uuid

import pytest
import yaml

from migrator.clients.es import build_path
from tests.e2e.test_dry_run_e2e import make_index, refused
from tests.helpers import cli

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("leave_the_clusters_as_found")]


def test_the_users_registration_under_the_plans_name_is_refused_and_left_unchanged(testbed, tmp_path):
    source = testbed.client("7.17")
    name = f"reg-{uuid.uuid4().hex[:6]}"
    make_index(source, name, 5)
    plan = testbed.write_plan(tmp_path, "7.17", "8", snapshot={"indices": [name]})
    repository = yaml.safe_load(plan.read_text())["repository"]["name"]
    nightly = {
        **testbed.repository_settings(f"nightly/{uuid.uuid4().hex[:6]}"),
        "access_key_id": testbed.key_id,
        "secret_access_key": testbed.secret,
        "region": "cn-hangzhou",
    }
    nightly.pop("extra")
    source.request("PUT", build_path("_snapshot", repository), {"type": "oss", "settings": nightly})
    before = source.request("GET", build_path("_snapshot", repository))[1]
    try:
        output = refused(testbed, plan)
        assert "repository.name" in output and f"the source already has repository {repository!r}" in output
        assert f"base_path: {nightly['base_path']} -> repos/" in output
        assert testbed.secret not in output
        applied = cli(testbed, "apply", str(plan), "--yes", "--poll", "0.5", check=False)
        assert applied.returncode == 2, applied.stdout + applied.stderr
        assert source.request("GET", build_path("_snapshot", repository))[1] == before
        assert before[repository]["settings"]["base_path"] == nightly["base_path"]
    finally:
        source.request("DELETE", build_path("_snapshot", repository), ok=(200, 404))
