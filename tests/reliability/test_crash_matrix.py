"""Crash/resume matrix: a real kill -9 of the executor at every step boundary (failpoints), then
`resume`: one snapshot, each index restored once, equal document counts. The kills in the middle
of the long waits are in tests/e2e/test_migration_e2e.py::test_kill_during_snapshot_and_recovery_then_resume."""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from migrator.clients.es import build_path
from migrator.steps.metadata_templates import current_template
from migrator.templates import normalised
from tests.e2e.test_pipelines_e2e import make_source as pipelines_source
from tests.e2e.test_pipelines_e2e import pipeline
from tests.e2e.test_pipelines_e2e import remove_prefixed as remove_pipelines_prefixed
from tests.e2e.test_templates_e2e import legacy_body, make_source, remove_prefixed
from tests.helpers import cli, counts, repository_of, restore_requests

pytestmark = pytest.mark.cluster

INDICES = ["logs-2026.11.01", "orders"]
ACTING_STEPS = ["repository.source", "snapshot.create", "repository.destination", "restore.batch[1]"]
ALL_STEPS = [
    "preflight",
    "repository.source",
    "snapshot.create",
    "snapshot.wait",
    "storage.verify",
    "repository.destination",
    "restore.batch[1]",
    "restore[{t}]",
    "recovery[{t}]",
    "validate[{t}]",
]
POINTS = (
    [(step, "done") for step in ALL_STEPS]
    + [(step, point) for step in ACTING_STEPS for point in ("acting", "acted")]
    + [(step.replace("{t}", "{logs}"), "done") for step in ALL_STEPS if "{t}" in step]
)


@pytest.mark.parametrize(("step", "point"), POINTS, ids=[f"{s}:{p}" for s, p in POINTS])
def test_kill_at_each_boundary_then_resume(seeded, tmp_path, step, point):
    prefix = "cm" + str(POINTS.index((step, point)))
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name=prefix,
        snapshot={"indices": INDICES},
        restore={"rename_pattern": "(.+)", "rename_replacement": f"{prefix}-$1"},
    )
    failpoint = step.format(t=f"{prefix}-orders", logs=f"{prefix}-logs-2026.11.01") + ":" + point
    os.environ["MIGRATOR_FAILPOINT"] = failpoint
    try:
        killed = cli(seeded, "apply", str(plan), "--yes", "--poll", "0.3", check=False)
    finally:
        del os.environ["MIGRATOR_FAILPOINT"]
    assert killed.returncode == -signal.SIGKILL, f"failpoint {failpoint} never hit:\n{killed.stderr}"

    cli(seeded, "resume", str(plan), "--poll", "0.3")

    source = seeded.client("7.17")
    snapshots = source.get(f"/_snapshot/{repository_of(plan)}/_all")["snapshots"]
    source.close()
    assert [s["state"] for s in snapshots] == ["SUCCESS"]
    restores = restore_requests(plan)
    assert sorted(name for r in restores for name in r["body"]["indices"].split(",")) == INDICES  # each once
    expected = {f"{prefix}-{name}": count for name, count in counts(seeded, "7.17", ",".join(INDICES)).items()}
    assert counts(seeded, "8", f"{prefix}-*") == expected


TEMPLATE_POINTS = ["acting", "acted", "done"]


@pytest.mark.parametrize("point", TEMPLATE_POINTS)
def test_kill_in_the_templates_step_then_resume_then_cancel_puts_the_destination_back(testbed, tmp_path, point):
    """metadata.templates killed before, during and after its PUTs (one of them overwriting a destination
    template): resume finishes it, and cancel still knows the body it overwrote."""
    source, destination = "8", "9"
    prefix = f"cmt{TEMPLATE_POINTS.index(point)}{uuid.uuid4().hex[:6]}"
    make_source(testbed, source, prefix)
    theirs = {"index_patterns": [f"{prefix}-logs-*"], "order": 1, "mappings": {"properties": {"msg": {"type": "text"}}}}
    client = testbed.client(destination)
    try:
        client.request("PUT", build_path("_template", f"{prefix}-legacy"), theirs)
        before = current_template(client, "legacy", f"{prefix}-legacy")
        plan = testbed.write_plan(
            tmp_path,
            source,
            destination,
            name=prefix,
            snapshot={"indices": [f"{prefix}-*"]},
            metadata={"if_exists": "overwrite"},
        )
        os.environ["MIGRATOR_FAILPOINT"] = f"metadata.templates:{point}"
        try:
            killed = cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3", check=False)
        finally:
            del os.environ["MIGRATOR_FAILPOINT"]
        assert killed.returncode == -signal.SIGKILL, f"failpoint never hit:\n{killed.stderr}"

        cli(testbed, "resume", str(plan), "--poll", "0.3")
        moved = current_template(client, "legacy", f"{prefix}-legacy")
        assert normalised("legacy", moved) == normalised("legacy", legacy_body(prefix))
        assert current_template(client, "composable", f"{prefix}-orders") is not None

        cli(testbed, "cancel", str(plan))
        assert current_template(client, "legacy", f"{prefix}-legacy") == before
        assert current_template(client, "composable", f"{prefix}-orders") is None
        assert current_template(client, "component", f"{prefix}-shared") is None
    finally:
        for alias in (source, destination):
            cleanup = testbed.client(alias)
            remove_prefixed(cleanup, prefix)
            cleanup.close()
        client.close()


@pytest.mark.parametrize("point", TEMPLATE_POINTS)
def test_kill_in_the_pipelines_step_then_resume_then_cancel_puts_the_destination_back(testbed, tmp_path, point):
    """metadata.pipelines killed before, during and after its PUTs (one of them overwriting a destination
    pipeline): resume finishes it, and cancel still knows the body it overwrote."""
    source, destination = "8", "9"
    prefix = f"cmp{TEMPLATE_POINTS.index(point)}{uuid.uuid4().hex[:6]}"
    bodies = pipelines_source(testbed, source, prefix)
    theirs = {"description": "the destination's own", "processors": []}
    client = testbed.client(destination)
    try:
        client.request("PUT", build_path("_ingest", "pipeline", f"{prefix}-enrich"), theirs)
        plan = testbed.write_plan(
            tmp_path,
            source,
            destination,
            name=prefix,
            snapshot={"indices": [f"{prefix}-*"]},
            metadata={"if_exists": "overwrite"},
        )
        os.environ["MIGRATOR_FAILPOINT"] = f"metadata.pipelines:{point}"
        try:
            killed = cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3", check=False)
        finally:
            del os.environ["MIGRATOR_FAILPOINT"]
        assert killed.returncode == -signal.SIGKILL, f"failpoint never hit:\n{killed.stderr}"

        cli(testbed, "resume", str(plan), "--poll", "0.3")
        assert {name: pipeline(client, name) for name in bodies} == bodies

        cli(testbed, "cancel", str(plan))
        assert pipeline(client, f"{prefix}-enrich") == theirs
        assert pipeline(client, f"{prefix}-stamp") is None  # named by the moved template alone: deleted
    finally:
        for alias in (source, destination):
            cleanup = testbed.client(alias)
            remove_pipelines_prefixed(cleanup, prefix)
            cleanup.close()
        client.close()
