"""Blocks and aliases that were there before the migration, on real nodes (7.17 -> 8.19): a source
archive (`index.blocks.write: true`) keeps its block on the destination and through a rollback, even
after kill -9 right after the cutover's own write block, and rollback gives an alias back to the older
destination index the switch took it from; `finish.aliases` moves an alias off an older
destination index in one atomic request; an alias whose sources are all left out is refused by the
dry run.

Each test makes indices of its own (prefix `blk`) and removes them afterwards: the shared clusters
serve other tests that select `*`."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from migrator.clients.es import build_path
from tests.helpers import cli

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("leave_the_clusters_as_found")]

SOURCE, DESTINATION = "7.17", "8"
CREATED: dict[str, list[str]] = {SOURCE: [], DESTINATION: []}


@pytest.fixture(autouse=True)
def remove_created(testbed):
    yield
    for alias, names in CREATED.items():
        client = testbed.client(alias)
        try:
            while names:
                name = names.pop()
                unblock = {"index.blocks.write": None, "index.blocks.read_only": None}
                client.request("PUT", build_path(name, "_settings"), unblock, ok=(200, 404))
                client.request("DELETE", build_path(name), ok=(200, 404))
        finally:
            client.close()


def make_index(bed, cluster: str, name: str, docs: int, settings: dict | None = None) -> str:
    client = bed.client(cluster)
    CREATED[cluster].append(name)
    try:
        client.request("PUT", build_path(name), {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
        lines = []
        for number in range(docs):
            lines.append(json.dumps({"index": {"_index": name, "_id": str(number)}}))
            lines.append(json.dumps({"n": number}))
        client.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), timeout_s=120)
        client.request("POST", build_path(name, "_refresh"))
        if settings:
            client.request("PUT", build_path(name, "_settings"), settings)
    finally:
        client.close()
    return name


def blocks(bed, cluster: str, name: str) -> dict[str, str]:
    """The `index.blocks.*` settings an index carries (flat names -> "true"/"false")."""
    client = bed.client(cluster)
    try:
        body = client.get(build_path(name, "_settings", "index.blocks.*", params={"flat_settings": True}))
        return body.get(name, {}).get("settings", {})  # an index without any block is left out
    finally:
        client.close()


def alias_holders(bed, alias: str) -> list[str]:
    client = bed.client(DESTINATION)
    try:
        status, body = client.request("GET", build_path("_alias", alias), ok=(200, 404))
        return sorted(body) if status == 200 else []
    finally:
        client.close()


def dry_run(bed, plan: Path, *, check: bool = True):
    return cli(bed, "plan", str(plan), "--format", "json", check=check)


def step_requests(document: dict, step: str) -> list[dict]:
    return next(s for s in document["steps"] if s["id"] == step)["requests"]


def test_archive_keeps_its_write_block_through_cutover_kill_resume_and_rollback(testbed, tmp_path):
    archive = make_index(testbed, SOURCE, "blk1-archive", 30, {"index.blocks.write": True})
    live = make_index(testbed, SOURCE, "blk1-live", 40)
    older = make_index(testbed, DESTINATION, "blk1-older", 5)
    client = testbed.client(DESTINATION)
    client.request("POST", "/_aliases", {"actions": [{"add": {"index": older, "alias": "blk1-all"}}]})
    client.close()
    plan = testbed.write_plan(
        tmp_path,
        SOURCE,
        DESTINATION,
        name="blk1",
        snapshot={"indices": [archive, live]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
        cutover={"enabled": True},
        finish={"aliases": {"blk1-all": [archive, live]}},
    )
    CREATED[DESTINATION] += [f"moved-{archive}", f"moved-{live}"]

    document = json.loads(dry_run(testbed, plan).stdout)
    switch = step_requests(document, "cutover.switch")[0]["body"]["actions"]
    assert {"remove": {"index": older, "alias": "blk1-all"}} in switch
    # The cutover blocks only the index that takes writes; the archive's own block is kept on restore.
    assert [r["path"] for r in step_requests(document, "cutover.block")] == [f"{live}/_settings"]
    restores = {
        s["id"]: s["requests"][-1]["body"].get("ignore_index_settings", [])
        for s in document["steps"]
        if s["kind"] == "cutover.restore"
    }
    assert restores == {
        f"cutover.restore[moved-{archive}]": [],
        f"cutover.restore[moved-{live}]": ["index.blocks.write"],
    }

    cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")
    killed = cli(
        testbed, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.3",
        check=False, env={"MIGRATOR_FAILPOINT": "cutover.block:acted"},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Both sources are blocked now: what the resumed run observes must not become "before the migration".
    cli(testbed, "resume", str(plan), "--poll", "0.3")

    assert blocks(testbed, DESTINATION, f"moved-{archive}").get("index.blocks.write") == "true"
    assert blocks(testbed, DESTINATION, f"moved-{live}").get("index.blocks.write") != "true"
    assert alias_holders(testbed, "blk1-all") == [f"moved-{archive}", f"moved-{live}"]

    rolled = json.loads(cli(testbed, "rollback", str(plan), "--json").stdout)
    assert rolled["writes_unblocked"] == [live]
    assert blocks(testbed, SOURCE, archive).get("index.blocks.write") == "true"
    assert blocks(testbed, SOURCE, live).get("index.blocks.write") != "true"
    assert rolled["aliases_given_back"] == [{"index": older, "alias": "blk1-all"}]
    assert alias_holders(testbed, "blk1-all") == [older]  # the destination serves the alias as before


def test_a_read_only_archive_goes_through_the_cutover_and_keeps_its_block(testbed, tmp_path):
    archive = make_index(testbed, SOURCE, "blk4-archive", 6, {"index.blocks.read_only": True})
    live = make_index(testbed, SOURCE, "blk4-live", 8)
    sections = {
        "name": "blk4",
        "snapshot": {"indices": [archive, live]},
        "restore": {"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
        "cutover": {"enabled": True},
    }
    CREATED[DESTINATION] += [f"moved-{archive}", f"moved-{live}"]
    aliased = testbed.write_plan(
        tmp_path / "aliased", SOURCE, DESTINATION, **sections, finish={"aliases": {"blk4-all": [archive, live]}}
    )
    refused = dry_run(testbed, aliased, check=False)  # Elasticsearch refuses an alias on a read-only index
    assert refused.returncode == 2 and "finish.aliases.blk4-all" in refused.stderr, refused.stderr

    plan = testbed.write_plan(tmp_path, SOURCE, DESTINATION, **sections, finish={"aliases": {"blk4-live": [live]}})
    restore_over = step_requests(json.loads(dry_run(testbed, plan).stdout), f"cutover.restore[moved-{archive}]")
    assert restore_over[0]["body"] == {"index.blocks.read_only": None}  # lifted for the close, restored after

    cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")
    cli(testbed, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.3")
    assert blocks(testbed, DESTINATION, f"moved-{archive}").get("index.blocks.read_only") == "true"
    assert alias_holders(testbed, "blk4-live") == [f"moved-{live}"]

    rolled = json.loads(cli(testbed, "rollback", str(plan), "--json").stdout)
    assert rolled["writes_unblocked"] == [live]
    assert blocks(testbed, SOURCE, archive) == {"index.blocks.read_only": "true"}
    assert blocks(testbed, SOURCE, live).get("index.blocks.write") != "true"


def test_finish_moves_an_alias_off_an_older_index_and_a_plain_restore_keeps_blocks(testbed, tmp_path):
    orders = make_index(testbed, SOURCE, "blk2-orders", 20)
    archive = make_index(testbed, SOURCE, "blk2-archive", 7, {"index.blocks.write": True})
    older = make_index(testbed, DESTINATION, "blk2-orders-old", 5)
    client = testbed.client(DESTINATION)
    client.request("POST", "/_aliases", {"actions": [{"add": {"index": older, "alias": "blk2-orders-read"}}]})
    client.close()
    plan = testbed.write_plan(
        tmp_path,
        SOURCE,
        DESTINATION,
        name="blk2",
        snapshot={"indices": [orders, archive]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
        finish={"aliases": {"blk2-orders-read": [orders]}},
    )
    CREATED[DESTINATION] += [f"moved-{orders}", f"moved-{archive}"]

    document = json.loads(dry_run(testbed, plan).stdout)
    aliases = [r for r in step_requests(document, "finish") if r["path"] == "_aliases"]
    assert aliases == [
        {
            "cluster": "destination",
            "method": "POST",
            "path": "_aliases",
            "body": {
                "actions": [
                    {"remove": {"index": older, "alias": "blk2-orders-read"}},
                    {"add": {"index": f"moved-{orders}", "alias": "blk2-orders-read"}},
                ]
            },
        }
    ]

    cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")
    client = testbed.client(DESTINATION)
    try:
        assert client.get(build_path("blk2-orders-read", "_count"))["count"] == 20
        assert sorted(client.get(build_path("_alias", "blk2-orders-read"))) == [f"moved-{orders}"]
    finally:
        client.close()
    assert blocks(testbed, DESTINATION, f"moved-{archive}").get("index.blocks.write") == "true"


def test_an_alias_whose_sources_are_all_left_out_is_refused_by_the_dry_run(testbed, tmp_path):
    kept = make_index(testbed, SOURCE, "blk3-new", 3)
    left_out = make_index(testbed, SOURCE, "blk3-old", 3)
    plan = testbed.write_plan(
        tmp_path,
        SOURCE,
        DESTINATION,
        name="blk3",
        snapshot={"indices": ["blk3-*"], "exclude": [left_out]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
        finish={"aliases": {"blk3-read": [left_out], "blk3-all": [kept, left_out]}},
    )
    refused = dry_run(testbed, plan, check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "finish.aliases.blk3-read" in refused.stderr
    assert "snapshot.exclude" in refused.stderr
    assert "finish.aliases.blk3-all" not in refused.stderr  # one of its sources is migrated: a warning only
