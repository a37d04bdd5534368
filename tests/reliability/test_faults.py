"""Faults on real nodes: each ends in a completed migration or a clean stop naming cause and next command."""

from __future__ import annotations

import os
import signal
import time

import pytest

from migrator.clients.es import build_path
from migrator.sandbox.oss_server import Faults
from tests.helpers import (
    BIG_INDEX,
    background,
    cli,
    counts,
    repository_of,
    throttle,
    wait_for_checkpoint,
)

pytestmark = pytest.mark.cluster


def test_oss_faults_during_verification_are_absorbed(seeded, tmp_path):
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="ossfaults",
        repository_type="fs",  # the faults are for migrator's own reads; an oss repository would see them too
        snapshot={"indices": ["orders", "logs-2026.11.01"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "ossfaults-$1"},
    )
    seeded.oss.set_faults(Faults(error_rate=0.2, latency_ms=20, truncate_rate=0.1, seed=7))
    try:
        result = cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
    finally:
        seeded.oss.set_faults(Faults())
    assert "complete" in result.stdout
    assert sorted(counts(seeded, "8", "ossfaults-*")) == ["ossfaults-logs-2026.11.01", "ossfaults-orders"]


def test_an_index_without_primaries_stops_the_snapshot_cleanly(seeded, tmp_path):
    source = seeded.client("7.17")
    index = "rel-unassigned"
    source.request(
        "PUT",
        build_path(index, params={"wait_for_active_shards": 0}),
        {
            "settings": {
                "number_of_shards": 1,
                "number_of_replicas": 0,
                "index.routing.allocation.require._name": "nowhere",
            }
        },
    )
    try:
        plan = seeded.write_plan(
            tmp_path,
            "7.17",
            "8",
            name="unassigned",
            snapshot={"indices": [index]},
            # the filter that keeps the primary unassigned is not carried over (else the dry run refuses it)
            restore={
                "rename_pattern": "(.+)",
                "rename_replacement": "unassigned-$1",
                "ignore_index_settings": ["index.routing.allocation.require._name"],
            },
        )
        result = cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5", check=False)
    finally:
        source.request("DELETE", build_path(index))
        source.close()
    assert result.returncode == 1
    assert f"source index {index} has unassigned primary shards" in result.stderr
    assert "migrator resume" in result.stderr and "Traceback" not in result.stderr


def test_a_snapshot_someone_else_runs_does_not_stop_ours(seeded, tmp_path):
    source = seeded.client("7.17")
    foreign = f"{seeded.bucket_dir}/foreign-{tmp_path.name}"
    source.request(
        "PUT",
        "/_snapshot/rel_foreign",
        {"type": "fs", "settings": {"location": foreign, "max_snapshot_bytes_per_sec": "300kb"}},
    )
    source.request("PUT", "/_snapshot/rel_foreign/theirs", {"indices": BIG_INDEX})
    try:
        plan = seeded.write_plan(
            tmp_path,
            "7.17",
            "8",
            name="foreign",
            snapshot={"indices": ["orders"]},
            restore={"rename_pattern": "(.+)", "rename_replacement": "foreign-$1"},
        )
        cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
        # With one snapshot thread (2 cores) ours may queue behind theirs; theirs is never touched.
        state = source.get("/_snapshot/rel_foreign/theirs")["snapshots"][0]["state"]
        assert state in ("IN_PROGRESS", "SUCCESS")
        assert counts(seeded, "8", "foreign-*") == {"foreign-orders": counts(seeded, "7.17", "orders")["orders"]}
    finally:
        source.request("DELETE", "/_snapshot/rel_foreign/theirs", ok=(200, 404))
        source.request("DELETE", "/_snapshot/rel_foreign", ok=(200, 404))
        source.close()


def test_destination_restarted_during_recovery(seeded, tmp_path):
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="restart",
        snapshot={"indices": [BIG_INDEX]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "restart-$1"},
    )
    throttle(plan, snapshot="4mb", restore="250kb")
    state_file = plan.with_name("plan.state.db")
    running = background(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
    wait_for_checkpoint(
        # the restore's batch holds its request while the index recovers from the snapshot (its recovery step
        # polls only in a resumed run): either is acting while the restore moves
        state_file,
        lambda cps: any(
            s.startswith(("recovery[", "restore.batch[")) and cp.status == "acting" for s, cp in cps.items()
        ),
    )
    time.sleep(1.0)
    seeded.restart("8")
    output, _ = running.communicate(timeout=600)
    assert running.returncode == 0, output
    assert counts(seeded, "8", "restart-*") == {f"restart-{BIG_INDEX}": counts(seeded, "7.17", BIG_INDEX)[BIG_INDEX]}


def test_a_destination_repository_unregistered_between_runs_is_registered_again(seeded, tmp_path):
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="unregistered",
        snapshot={"indices": ["orders"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "unregistered-$1"},
    )
    os.environ["MIGRATOR_FAILPOINT"] = "restore.batch[1]:acting"  # the batch sends the index's restore
    try:
        killed = cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5", check=False)
    finally:
        del os.environ["MIGRATOR_FAILPOINT"]
    assert killed.returncode == -signal.SIGKILL
    destination = seeded.client("8")
    destination.request("DELETE", f"/_snapshot/{repository_of(plan)}")
    destination.close()

    resumed = cli(seeded, "resume", str(plan), "--poll", "0.5")
    assert "recheck" in resumed.stderr
    assert counts(seeded, "8", "unregistered-*") == {"unregistered-orders": counts(seeded, "7.17", "orders")["orders"]}
