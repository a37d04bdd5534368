"""Crash/resume matrix: a real kill -9 of the executor at every step boundary (failpoints), then
`resume`: one snapshot, each index restored once, equal document counts. The kills in the middle
of the long waits are in tests/test_migration_e2e.py::test_kill_during_snapshot_and_recovery_then_resume."""

from __future__ import annotations

import os
import signal

import pytest

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
        tmp_path, "7.17", "8", name=prefix,
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
