"""Every wait ends, on real 7.17 -> 8 nodes: a restore Elasticsearch reports failed stops the run at once
with the destination's allocation decision and the fix; a restore that does not move stops after
`waits.stall_after`; after the fix, the command the last line names finishes the migration.

The faults are real states, not timings: an allocation filter the dry run cannot foresee (the
destination's only node excluded by `cluster.routing.allocation.exclude._name` while a step-by-step run
waits to send the restore;
the same filter in the source's settings is refused by the dry run before anything changes),
and a destination that may start no primary recovery (`node_initial_primaries_recoveries: 0`, so the
restored primaries stay throttled: the restore neither fails nor moves).
"""

from __future__ import annotations

import io
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
import yaml

from migrator.clients.es import build_path
from tests.helpers import cli, counts

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("leave_the_clusters_as_found")]

DOCS = 200


def make_index(client, name: str, settings: dict) -> None:
    client.request("PUT", build_path(name), {"settings": {"number_of_shards": 1, "number_of_replicas": 0, **settings}})
    lines = []
    for number in range(DOCS):
        lines.append(json.dumps({"index": {"_index": name, "_id": str(number)}}))
        lines.append(json.dumps({"n": number, "text": f"{name} document {number}"}))
    client.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode())
    client.request("POST", build_path(name, "_refresh"))


@pytest.fixture
def source_index(testbed) -> Iterator[tuple[str, str]]:
    """An index on 7.17 held to the 7.17 node by name: (index, node name)."""
    client = testbed.client("7.17")
    node = client.get("/_cat/nodes?format=json&h=name")[0]["name"]
    name = f"waits-{uuid.uuid4().hex[:8]}"
    make_index(client, name, {"index.routing.allocation.require._name": node})
    yield name, node
    client.request("DELETE", build_path(name), ok=(200, 404))
    client.close()


def plan_for(bed, folder: Path, index: str, **sections) -> Path:
    return bed.write_plan(
        folder,
        "7.17",
        "8",
        name="waits",
        snapshot={"indices": [index]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
        **sections,
    )


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_a_restore_that_fails_on_an_allocation_filter_stops_at_once_with_the_fix(testbed, tmp_path, source_index):
    index, node = source_index
    plan = plan_for(testbed, tmp_path, index)
    # The filter is in the source's settings: the dry run foresees it and refuses before anything changes.
    refused = cli(testbed, "apply", str(plan), "--yes", check=False, timeout=300)
    assert refused.returncode == 2 and "index.routing.allocation.require._name" in refused.stderr, refused.stderr
    document = yaml.safe_load(plan.read_text())
    document["restore"]["ignore_index_settings"] = ["index.routing.allocation.require._name"]
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    # A filter no plan can foresee: the destination's only node is excluded after the plan was made, while
    # the run waits (step by step) to send the restore.
    destination = testbed.client("8")
    dest_node = destination.get("/_cat/nodes?format=json&h=name")[0]["name"]
    exclude = "cluster.routing.allocation.exclude._name"
    env = {**os.environ, **testbed.environment()}
    transcript = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "migrator", "apply", str(plan), "--step-by-step", "--yes", "--poll", "0.5"],
        env=env,
        encoding="utf-8",
        timeout=300,
    )
    child.logfile_read = transcript
    try:
        while child.expect([r"next step: (\S+): ", pexpect.EOF]) == 0:
            step = child.match.group(1)
            child.expect(r"Send these requests\? ")
            if step == "restore.batch[1]":  # the batch's request restores the index
                destination.request("PUT", "/_cluster/settings", {"persistent": {exclude: dest_node}})
            child.sendline("y")
        child.close()
        # before: the held restore answered {"total": 1, "failed": 1} and migrator printed `0/0 bytes` forever
        output = transcript.getvalue()
        assert child.exitstatus == 1, output
        assert f"the restore of moved-{index} failed: 1 of 1 shards failed" in output
        assert f"moved-{index} shard 0: no (filter:" in output and dest_node in output
    finally:
        destination.request("PUT", "/_cluster/settings", {"persistent": {exclude: None}})
    try:
        cli(testbed, "resume", str(plan), "--poll", "0.5", timeout=300)  # the cause was outside the plan
        assert counts(testbed, "8", f"moved-{index}") == {f"moved-{index}": DOCS}
        settings = destination.get(build_path(f"moved-{index}", "_settings", params={"flat_settings": True}))
        assert "index.routing.allocation.require._name" not in settings[f"moved-{index}"]["settings"]
    finally:
        destination.request("DELETE", build_path(f"moved-{index}"), ok=(200, 404))
        destination.close()


@pytest.fixture
def no_primary_recoveries(testbed) -> Iterator[None]:
    """The 8 node may start no primary recovery (lifted at the end in any case)."""
    client = testbed.client("8")
    setting = "cluster.routing.allocation.node_initial_primaries_recoveries"
    client.request("PUT", "/_cluster/settings", {"persistent": {setting: 0}})
    try:
        yield
    finally:
        client.request("PUT", "/_cluster/settings", {"persistent": {setting: None}})
        client.close()


def test_a_restore_that_does_not_move_stops_after_stall_after_and_resume_finishes_it(
    testbed, tmp_path, no_primary_recoveries
):
    client = testbed.client("7.17")
    index = f"waits-{uuid.uuid4().hex[:8]}"
    make_index(client, index, {})
    destination = testbed.client("8")
    try:
        plan = plan_for(testbed, tmp_path, index, waits={"stall_after": "5s"})
        stalled = cli(testbed, "apply", str(plan), "--yes", "--poll", "0.5", check=False, timeout=300)
        assert stalled.returncode == 1, stalled.stdout + stalled.stderr
        # the batch holding the index's restore stalls (it waits for the restore to answer)
        assert f"the restore of moved-{index} (restore.batch[1]) has not moved for" in stalled.stderr
        assert "waits.stall_after is 5 s" in stalled.stderr and "still at 0/0 bytes" in stalled.stderr
        assert f"moved-{index} shard 0: throttled" in stalled.stderr  # the destination's own reason
        assert "node_initial_primaries_recoveries" in stalled.stderr
        assert last_line(stalled) == f"error: stopped; fix the cause, then run `migrator resume {plan}`"

        destination.request(
            "PUT",
            "/_cluster/settings",
            {"persistent": {"cluster.routing.allocation.node_initial_primaries_recoveries": None}},
        )
        cli(testbed, "resume", str(plan), "--poll", "0.5", timeout=300)
        assert counts(testbed, "8", f"moved-{index}") == {f"moved-{index}": DOCS}
    finally:
        client.request("DELETE", build_path(index), ok=(200, 404))
        destination.request("DELETE", build_path(f"moved-{index}"), ok=(200, 404))
        client.close()
        destination.close()
