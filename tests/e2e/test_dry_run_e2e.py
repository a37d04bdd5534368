"""The dry run refuses what Elasticsearch would refuse (issue 13), on real nodes through the CLI: for each
rule, `migrator plan` exits 2 naming the plan field (or warns), and the corrected plan then migrates.
Pairs 7.17 -> 8 and 8 -> 9; the index-compatibility case restores the 6.8 repository fixture on 7.17."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from migrator.clients.es import EsClient, build_path
from migrator.sandbox.processes import hand_over
from tests.helpers import cli
from tests.repository import FIXTURES

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("leave_the_clusters_as_found")]
FIXTURE = FIXTURES / "ES_6_8_Single"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def make_index(client: EsClient, name: str, docs: int, body: dict | None = None, doc: dict | None = None) -> None:
    settings = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}
    client.request("PUT", build_path(name), {**settings, **(body or {})})
    lines = []
    for number in range(docs):
        lines += [json.dumps({"index": {"_index": name, "_id": str(number)}}), json.dumps(doc or {"n": number})]
    if lines:
        client.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), timeout_s=120)
    client.request("POST", build_path(name, "_refresh"))


def refused(bed, plan: Path) -> str:
    """`migrator plan` exits 2; its output (stdout and stderr)."""
    result = cli(bed, "plan", str(plan), check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    return result.stdout + result.stderr


def migrates(bed, plan: Path) -> dict:
    """The plan passes the dry run, applies, and its report says done with equal counts; the report."""
    cli(bed, "plan", str(plan))
    cli(bed, "apply", str(plan), "--yes", "--poll", "0.5")
    report = json.loads(cli(bed, "report", str(plan), "--format", "json").stdout)
    assert report["status"] == "done", report
    assert all(i["source_docs"] == i["destination_docs"] and i["validated"] for i in report["indices"]), report
    return report


def test_rule1_a_target_name_elasticsearch_refuses(testbed, tmp_path):
    source = testbed.client("7.17")
    name = unique("r1")
    make_index(source, name, 20)
    bad = testbed.write_plan(
        tmp_path / "bad", "7.17", "8", snapshot={"indices": [name]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "Mig-$1"},
    )  # fmt: skip
    output = refused(testbed, bad)
    assert "restore.rename_replacement" in output and f"'Mig-{name}'" in output and "must be lowercase" in output
    good = testbed.write_plan(
        tmp_path / "good", "7.17", "8", snapshot={"indices": [name]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "mig-$1"},
    )  # fmt: skip
    assert [i["target"] for i in migrates(testbed, good)["indices"]] == [f"mig-{name}"]


def test_rule2_a_target_or_restored_alias_clashing_with_a_destination_alias_or_index(testbed, tmp_path):
    source, destination = testbed.client("8"), testbed.client("9")
    name, other, taken = unique("r2"), unique("r2-there"), unique("r2-alias")
    make_index(source, name, 10, {"aliases": {other: {}}})
    make_index(destination, other, 1, {"aliases": {taken: {}}})
    bad = testbed.write_plan(
        tmp_path / "bad", "8", "9", snapshot={"indices": [name]},
        restore={"rename_pattern": ".+", "rename_replacement": taken, "include_aliases": True},
        finish={"aliases": {other: [name]}},
    )  # fmt: skip
    output = refused(testbed, bad)
    assert f"'{taken}', which is an alias on the destination" in output
    assert "restore.include_aliases" in output and f"alias '{other}', which is an existing index" in output
    assert f"finish.aliases.{other}" in output
    good = testbed.write_plan(
        tmp_path / "good", "8", "9", snapshot={"indices": [name]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "new-$1"},
        finish={"aliases": {f"{name}-live": [name]}},
    )  # fmt: skip
    migrates(testbed, good)
    aliases = destination.get(build_path(f"new-{name}", "_alias"))
    assert set(aliases[f"new-{name}"]["aliases"]) == {f"{name}-live"}


def test_rule2_a_restored_alias_already_serving_destination_indices(testbed, tmp_path):
    # Before the rule, the restore with include_aliases added the restored index to the destination's live
    # alias (reads through it returned both) and the dry run said nothing.
    source, destination = testbed.client("7.17"), testbed.client("8")
    name, live, alias = unique("r2s"), unique("r2s-live"), unique("r2s-serving")
    make_index(source, name, 10, {"aliases": {alias: {}}})
    make_index(destination, live, 3, {"aliases": {alias: {"is_write_index": True}}})
    bad = testbed.write_plan(
        tmp_path / "bad", "7.17", "8", snapshot={"indices": [name]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "mig-$1", "include_aliases": True},
    )  # fmt: skip
    output = refused(testbed, bad)
    assert "restore.include_aliases" in output and f"alias '{alias}', which already points at {live}" in output
    good = testbed.write_plan(
        tmp_path / "good", "7.17", "8", snapshot={"indices": [name]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "mig-$1"},
    )  # fmt: skip
    migrates(testbed, good)
    assert set(destination.get(build_path(alias, "_alias"))) == {live}


def test_rule3_an_index_created_in_6_8_living_in_7_17_cannot_move_to_8(testbed, tmp_path):
    source = testbed.client("7.17")
    copy = testbed.bucket_dir / unique("fixture-6.8")
    shutil.copytree(FIXTURE, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    hand_over(copy, testbed.owner)
    repository, old, new = unique("fx68"), unique("r3-old"), unique("r3-new")
    source.request(
        "PUT",
        build_path("_snapshot", repository),
        {"type": "fs", "settings": {"location": str(copy), "readonly": True}},
    )
    restore = {"indices": "posts_2023_02_25", "rename_pattern": ".+", "rename_replacement": old,
               "include_global_state": False, "index_settings": {"index.number_of_replicas": 0}}  # fmt: skip
    path = build_path(
        "_snapshot", repository, "global_state_snapshot", "_restore", params={"wait_for_completion": True}
    )
    source.request("POST", path, restore, timeout_s=120)
    make_index(source, new, 10)
    bad = testbed.write_plan(tmp_path / "bad", "7.17", "8", snapshot={"indices": [old, new]})
    output = refused(testbed, bad)
    assert f"'{old}' was created by Elasticsearch 6.8" in output and "reindex" in output
    assert f"'{new}'" not in output.split("REFUSED")[-1]
    good = testbed.write_plan(tmp_path / "good", "7.17", "8", snapshot={"indices": [old, new], "exclude": [old]})
    assert [i["target"] for i in migrates(testbed, good)["indices"]] == [new]


def test_rule4_a_closed_index_is_named_with_its_size_and_restored_closed_when_asked(testbed, tmp_path):
    source, destination = testbed.client("7.17"), testbed.client("8")
    name = unique("r4")
    make_index(source, name, 30)
    source.request("POST", build_path(name, "_close"))
    bad = testbed.write_plan(tmp_path / "bad", "7.17", "8", snapshot={"indices": [name]})
    output = refused(testbed, bad)
    assert "snapshot.closed_indices" in output and f"'{name}' is closed on the source (30 documents," in output
    assert "(30 documents, 0 B)" not in output
    good = testbed.write_plan(
        tmp_path / "good", "7.17", "8", snapshot={"indices": [name], "closed_indices": "restore_closed"},
        restore={"rename_pattern": "(.+)", "rename_replacement": "c-$1"},
    )  # fmt: skip
    report = migrates(testbed, good)
    assert report["indices"][0]["destination_docs"] == 30
    rows = destination.get(build_path("_cat", "indices", f"c-{name}", params={"format": "json", "h": "status"}))
    assert rows[0]["status"] == "close"
    cli(testbed, "apply", str(good), "--yes")  # applying the finished plan again changes nothing and ends


def test_rule5_the_shard_limit_and_allocation_filters_of_the_destination(testbed, tmp_path):
    source, destination = testbed.client("7.17"), testbed.client("8")
    name, pinned = unique("r5"), unique("r5-pinned")
    make_index(source, name, 10, {"settings": {"number_of_shards": 3, "number_of_replicas": 0}})
    node = next(iter(source.get("/_nodes?filter_path=nodes.*.name")["nodes"].values()))["name"]
    make_index(source, pinned, 10, {"settings": {"index.routing.allocation.require._name": node}})
    health = destination.health()
    now = sum(health[key] for key in ("active_shards", "initializing_shards", "unassigned_shards"))
    limit = {"persistent": {"cluster.max_shards_per_node": now + 2}}
    destination.request("PUT", "/_cluster/settings", limit)
    try:
        plan = testbed.write_plan(tmp_path / "limit", "7.17", "8", snapshot={"indices": [name]})
        output = refused(testbed, plan)
        assert "this plan adds 3 shards" in output and "cluster.max_shards_per_node" in output
        markdown = cli(testbed, "plan", str(plan), "--format", "markdown", check=False).stdout
        assert "## Destination capacity" in markdown and "**too many**" in markdown
    finally:
        destination.request("PUT", "/_cluster/settings", {"persistent": {"cluster.max_shards_per_node": None}})
    migrates(testbed, plan)
    bad = testbed.write_plan(tmp_path / "bad", "7.17", "8", snapshot={"indices": [pinned]})
    output = refused(testbed, bad)
    assert "restore.ignore_index_settings" in output and f"index.routing.allocation.require._name: {node}" in output
    good = testbed.write_plan(
        tmp_path / "good", "7.17", "8", snapshot={"indices": [pinned]},
        restore={"ignore_index_settings": ["index.routing.allocation.require._name"]},
    )  # fmt: skip
    migrates(testbed, good)


def test_rule5_the_destinations_own_allocation_settings(testbed, tmp_path):
    """Reported by breaker5: `cluster.routing.allocation.enable: none` on the destination, or a cluster filter
    excluding its data node, passed the dry run; the restore then failed every shard (or left them unassigned)."""
    source, destination = testbed.client("7.17"), testbed.client("8")
    name = unique("r5c")
    make_index(source, name, 5)
    node = next(iter(destination.get("/_nodes?filter_path=nodes.*.name")["nodes"].values()))["name"]
    plan = testbed.write_plan(tmp_path, "7.17", "8", snapshot={"indices": [name]})
    try:
        destination.request("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.enable": "none"}})
        output = refused(testbed, plan)
        assert "destination: cluster.routing.allocation.enable is none on the destination" in output
        destination.request("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.enable": None}})
        excluded = {"persistent": {"cluster.routing.allocation.exclude._name": node}}
        destination.request("PUT", "/_cluster/settings", excluded)
        output = refused(testbed, plan)
        assert f"cluster.routing.allocation.exclude._name: {node}" in output
    finally:
        reset = {"cluster.routing.allocation.enable": None, "cluster.routing.allocation.exclude._name": None}
        destination.request("PUT", "/_cluster/settings", {"transient": reset, "persistent": reset})
        destination.close()
    migrates(testbed, plan)


def test_rule6_restore_settings_elasticsearch_refuses_and_a_misspelt_one(testbed, tmp_path):
    source = testbed.client("8")
    name = unique("r6")
    make_index(source, name, 10)
    bad = testbed.write_plan(
        tmp_path / "bad", "8", "9", snapshot={"indices": [name]},
        restore={"index_settings": {"index.number_of_shards": 2, "index.number_of_replicas": 0}},
    )  # fmt: skip
    output = refused(testbed, bad)
    assert "restore.index_settings.index.number_of_shards" in output and "cannot modify setting" in output
    misspelt = testbed.write_plan(
        tmp_path / "misspelt", "8", "9", snapshot={"indices": [name]},
        restore={"index_settings": {"index.refesh_interval": "5s", "index.number_of_replicas": 0}},
    )  # fmt: skip
    result = cli(testbed, "plan", str(misspelt))
    assert "warning: restore.index_settings.index.refesh_interval" in result.stdout
    good = testbed.write_plan(
        tmp_path / "good", "8", "9", snapshot={"indices": [name]},
        restore={"index_settings": {"index.refresh_interval": "5s", "index.number_of_replicas": 0}},
    )  # fmt: skip
    assert "warning" not in cli(testbed, "plan", str(good)).stdout
    migrates(testbed, good)


@pytest.mark.parametrize(("source_alias", "destination_alias"), [("7.17", "8"), ("8", "9")])
def test_rule7_a_system_index_is_refused(testbed, tmp_path, source_alias, destination_alias):
    source = testbed.client(source_alias)
    name = unique("r7")
    make_index(source, name, 10)
    # a write to `.tasks` makes Elasticsearch create it with its own (strict) mapping, refusing the document
    source.request("POST", build_path(".tasks", "_doc"), {"probe": 1}, ok=(400,))
    source.get(build_path("_cluster", "health", ".tasks", params={"wait_for_status": "green", "timeout": "60s"}))
    bad = testbed.write_plan(tmp_path / "bad", source_alias, destination_alias, snapshot={"indices": [".tasks", name]})
    output = refused(testbed, bad)
    assert "'.tasks' is a system index" in output and "feature states" in output
    good = testbed.write_plan(tmp_path / "good", source_alias, destination_alias, snapshot={"indices": [name]})
    migrates(testbed, good)


def test_rule8_the_plan_counts_top_level_documents_as_validation_does(testbed, tmp_path):
    source = testbed.client("7.17")
    name = unique("r8")
    nested = {"mappings": {"properties": {"parts": {"type": "nested"}}}}
    make_index(source, name, 50, nested, {"parts": [{"p": 1}, {"p": 2}]})
    lucene = int(
        source.get(build_path("_cat", "indices", name, params={"format": "json", "h": "docs.count"}))[0]["docs.count"]
    )
    assert lucene == 150  # what `_cat/indices` (and the plan, before) counted
    plan = testbed.write_plan(tmp_path, "7.17", "8", snapshot={"indices": [name]})
    document = json.loads(cli(testbed, "plan", str(plan), "--format", "json").stdout)
    assert document["indices"][0]["docs"] == 50 and document["indices"][0]["version_created"].startswith("717")
    report = migrates(testbed, plan)
    assert report["indices"][0]["docs_planned"] == report["indices"][0]["destination_docs"] == 50


def test_rule5_bytes_beyond_the_room_below_the_high_disk_watermark(testbed, tmp_path):
    source, destination = testbed.client("7.17"), testbed.client("8")
    name = unique("r5-disk")
    make_index(source, name, 50)
    disk = "cluster.routing.allocation.disk."
    # an absolute watermark is the free space each node must keep: more than any disk has leaves no room
    full = {disk + "threshold_enabled": True, disk + "watermark.low": "1000tb", disk + "watermark.high": "1000tb",
            disk + "watermark.flood_stage": "1b"}  # fmt: skip
    destination.request("PUT", "/_cluster/settings", {"persistent": full})
    try:
        plan = testbed.write_plan(tmp_path, "7.17", "8", snapshot={"indices": [name]})
        output = refused(testbed, plan)
        assert "free below the high disk watermark (1000tb)" in output and "free disk space" in output
    finally:
        destination.request("PUT", "/_cluster/settings", {"persistent": dict.fromkeys(full)})
    migrates(testbed, plan)
