"""Multi-node clusters on real nodes: a sandbox of its own (`Sandbox.up(..., destination_nodes=3)`: one 7.17
source node, three 8.x destination nodes on loopback, the OSS server, the `oss` plugin on every node) shared
by this module's tests. Restores with replicas and `finish.replicas` end green across the nodes (copies
spread over them, the replicas' peer recoveries followed); a destination node stopped mid-restore and
started again does not lose the restore; the dry run counts the data nodes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from migrator.clients.es import EsClient, build_path
from migrator.sandbox.manager import Sandbox
from migrator.sandbox.seed_data import seed_cluster
from migrator.state import StateStore
from tests.conftest import TESTS_ROOT
from tests.helpers import cli, request_events

pytestmark = [pytest.mark.cluster, pytest.mark.multinode]

SOURCE_VERSION, DESTINATION_VERSION = "7.17", "8"
BIG = "events"  # 12 primaries: more than the destination restores at once, so some wait for a node
BIG_SHARDS = 12
NO_ENV = SimpleNamespace(environment=dict)  # the plans name the sandbox's env file


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(TESTS_ROOT / f"multinode-{uuid.uuid4().hex[:8]}")
    box.folder.mkdir(parents=True)
    (box.folder / "dist").symlink_to(TESTS_ROOT / "dist")  # the distributions the test bed unpacked already
    try:
        box.up(SOURCE_VERSION, DESTINATION_VERSION, "oss", source_nodes=1, destination_nodes=3)
        source = client(box, "source")
        try:
            seed_cluster(source, 300)
            source.request("PUT", build_path(BIG), {"settings": {"number_of_shards": BIG_SHARDS}})
            lines = []
            for number in range(12_000):
                lines.append(json.dumps({"index": {"_index": BIG, "_id": str(number)}}))
                lines.append(json.dumps({"n": number, "text": f"event {number} " + "payload " * 20}))
            source.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), timeout_s=300)
            source.request("POST", build_path(BIG, "_refresh"))
        finally:
            source.close()
        yield box
        assert set(box.down()) == {"source", "destination", "destination-1", "destination-2", "oss"}
        assert not any(box.running().values())
    finally:
        box.down()
        shutil.rmtree(box.folder, ignore_errors=True)


def client(box: Sandbox, role: str) -> EsClient:
    return EsClient(box.document()[role]["url"], label=role, timeout_s=60)


def write_plan(box: Sandbox, folder: Path, name: str, indices: list[str], **sections: Any) -> Path:
    """The sandbox's own plan with a repository of its own, the given indices renamed `<name>-*`."""
    plan = yaml.safe_load(box.plan_path.read_text())
    plan["name"] = name
    plan["env_file"] = str(box.env_path)
    plan["repository"]["name"] = f"repo_{name}"
    for part in (plan["repository"]["settings"], plan["storage"]):
        part["base_path"] = f"repos/{name}"
    plan["snapshot"] = {"indices": indices}
    plan["restore"] = {"rename_pattern": "(.+)", "rename_replacement": f"{name}-$1", **sections.pop("restore", {})}
    plan.update(sections)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def shard_rows(destination: EsClient, index: str) -> list[dict[str, Any]]:
    params = {"format": "json", "h": "shard,prirep,state,node,unassigned.reason"}
    return destination.get(build_path("_cat", "shards", index, params=params))


def wait_until(what: str, condition: Callable[[], bool], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.3)


def checkpoints(plan: Path) -> dict[str, Any]:
    store = StateStore(plan.with_name("plan.state.db"))
    try:
        return store.checkpoints()
    finally:
        store.close()


def test_the_sandbox_document_and_status_show_every_node(sandbox):
    document = sandbox.document()
    assert (
        len(document["destination"]["nodes"]) == 3
        and document["destination"]["url"] in document["destination"]["nodes"]
    )
    status = json.loads(cli(NO_ENV, "sandbox", "status", "--json", "--dir", str(sandbox.folder)).stdout)
    for name in ("destination", "destination-1", "destination-2"):
        assert status[name]["running"] and status[name]["cluster"] == "destination", status[name]
        assert status[name]["health"] == "green" and status[name]["version"] == document["destination"]["version"]
    destination = client(sandbox, "destination")
    try:
        names = {row["name"] for row in destination.get("/_cat/nodes?format=json&h=name")}
    finally:
        destination.close()
    assert names == {"destination-0", "destination-1", "destination-2"}


def test_replicas_and_finish_replicas_end_green_with_copies_spread_over_the_nodes(sandbox, tmp_path):
    plan = write_plan(
        sandbox,
        tmp_path,
        "green",
        [BIG, "orders"],
        restore={"index_settings": {"index.number_of_replicas": 1}},
        finish={"replicas": 2},
    )
    dry = cli(NO_ENV, "plan", str(plan), "--format", "json")
    capacity = json.loads(dry.stdout)["capacity"]
    assert capacity["data_nodes"] == 3, capacity

    cli(NO_ENV, "apply", str(plan), "--yes", "--poll", "0.5")

    destination = client(sandbox, "destination")
    try:
        # at once, no waiting: the run ended when every copy had started
        health = destination.get(build_path("_cluster", "health", "green-*", params={"level": "indices"}))
        assert {name: index["status"] for name, index in health["indices"].items()} == {
            f"green-{BIG}": "green",
            "green-orders": "green",
        }
        rows = shard_rows(destination, f"green-{BIG}")
    finally:
        destination.close()
    assert len(rows) == BIG_SHARDS * 3 and all(row["state"] == "STARTED" for row in rows)
    for shard in range(BIG_SHARDS):  # the three copies of a shard on three nodes
        assert len({row["node"] for row in rows if int(row["shard"]) == shard}) == 3
    primaries = Counter(row["node"] for row in rows if row["prirep"] == "p")
    assert len(primaries) > 1, primaries  # the restore spread the primaries over the nodes

    done = checkpoints(plan)
    recovery = done[f"recovery[green-{BIG}]"].detail
    assert recovery["copies"] == BIG_SHARDS * 2 and recovery["replica_bytes"] > 0, recovery  # peer recoveries
    assert done["finish"].detail["copies"] == (BIG_SHARDS + 2) * 3, done["finish"].detail


def test_a_destination_node_stopped_and_started_mid_restore_does_not_lose_the_restore(sandbox, tmp_path):
    """A destination node that restored some primaries is stopped while the restore goes on, and the run is
    resumed (its held restore request gone with the killed `apply`, so it polls): the primaries whose node left
    (`NODE_LEFT`) wait for it, the restore lives on, and the run follows it until the node is back; the index
    is not deleted and restored again. One primary restore at a time per node, 10 kB/s: the restore lasts."""
    plan = write_plan(sandbox, tmp_path, "stop", [BIG])
    throttled = yaml.safe_load(plan.read_text())
    throttled["repository"]["settings"]["max_restore_bytes_per_sec"] = "10kb"
    plan.write_text(yaml.safe_dump(throttled, sort_keys=False))
    target = f"stop-{BIG}"
    destination = client(sandbox, "destination")
    one_at_a_time = {"persistent": {"cluster.routing.allocation.node_initial_primaries_recoveries": 1}}
    destination.request("PUT", "/_cluster/settings", one_at_a_time)
    applying = subprocess.Popen(
        [sys.executable, "-m", "migrator", "apply", str(plan), "--yes", "--poll", "0.5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    resuming: subprocess.Popen[bytes] | None = None
    try:

        def restored_on_the_third_node_and_still_restoring() -> bool:
            status, _ = destination.request("GET", build_path(target), ok=(200, 404))
            rows = shard_rows(destination, target) if status == 200 else []
            primaries = [r for r in rows if r["prirep"] == "p"]
            on_third = any(r["node"] == "destination-2" and r["state"] == "STARTED" for r in primaries)
            return on_third and any(r["state"] != "STARTED" for r in primaries)

        wait_until(
            "a primary restored on destination-2, others still restoring",
            restored_on_the_third_node_and_still_restoring,
        )
        applying.kill()  # the held restore request is gone with it: the resumed run polls
        applying.wait()
        uuid_before = destination.get(build_path(target, "_settings"))[target]["settings"]["index"]["uuid"]
        sandbox.stop_node("destination-2")
        wait_until(
            "a primary unassigned because its node left",
            lambda: any(
                r["prirep"] == "p" and r["state"] == "UNASSIGNED" and r["unassigned.reason"] == "NODE_LEFT"
                for r in shard_rows(destination, target)
            ),
        )
        # the killed run held the restore in its batch step (its recovery step polls only in a resumed run)
        acting = {node for node, cp in checkpoints(plan).items() if cp.status == "acting"}
        assert acting & {"restore.batch[1]", f"recovery[{target}]"}, acting  # the resumed run has it to follow

        def shard_reads() -> int:
            return sum(f"_cat/shards/{target}" in e.data["path"] for e in request_events(plan))

        before = shard_reads()
        log = tmp_path / "resume.log"
        resuming = subprocess.Popen(
            [sys.executable, "-m", "migrator", "resume", str(plan), "--poll", "0.5"],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        # the resumed run looked at the primaries (observe, then the wait's polls) while the node was away
        wait_until("the resumed run's polls", lambda: shard_reads() >= before + 3 or resuming.poll() is not None)
        assert any(  # the node's primary still waited for it when the run looked
            r["prirep"] == "p" and r["state"] == "UNASSIGNED" and r["unassigned.reason"] == "NODE_LEFT"
            for r in shard_rows(destination, target)
        ), log.read_text()  # else the run deleted the index and restored it again
        sandbox.start_node("destination-2")
        resuming.wait(timeout=600)
        output = log.read_text()
        assert resuming.returncode == 0, output
        assert "restoring it again" not in output and "lost its restore" not in output, output
        uuid_after = destination.get(build_path(target, "_settings"))[target]["settings"]["index"]["uuid"]
        assert uuid_after == uuid_before  # the same index: followed, not deleted and restored again
        source = client(sandbox, "source")
        try:
            assert destination.doc_count(target) == source.doc_count(BIG)
        finally:
            source.close()
        health = destination.request("GET", "/_cluster/health?wait_for_nodes=3&timeout=120s", ok=(200, 408))[1]
        assert health["number_of_nodes"] == 3, health
    finally:
        for process in (applying, resuming):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        reset = {"persistent": {"cluster.routing.allocation.node_initial_primaries_recoveries": None}}
        destination.request("PUT", "/_cluster/settings", reset)
        if not sandbox.running().get("destination-2"):
            sandbox.start_node("destination-2")
        # the module's other tests count the data nodes: all three back before they run
        destination.request("GET", "/_cluster/health?wait_for_nodes=3&timeout=120s", ok=(200, 408))
        destination.close()


def test_the_dry_run_counts_the_data_nodes_against_the_replicas(sandbox, tmp_path):
    def warnings(plan: Path) -> list[str]:
        return json.loads(cli(NO_ENV, "plan", str(plan), "--format", "json").stdout)["warnings"]

    wide = write_plan(sandbox, tmp_path / "wide", "wide", ["orders"], finish={"replicas": 3})
    assert any(
        "3 replica(s) of a restored index need 4 data nodes but the destination has 3" in w for w in warnings(wide)
    )
    fits = write_plan(sandbox, tmp_path / "fits", "fits", ["orders"], finish={"replicas": 2})
    assert not any("data nodes but the destination has" in w for w in warnings(fits))
