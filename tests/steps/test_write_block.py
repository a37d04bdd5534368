"""The cutover's write block with a source archive (`index.blocks.write: true` before the migration):
the block is sent only to the indices that take writes, the record of what was there is written before
it and kept by a resumed run, the cutover restore keeps the archive's block on the destination, and
rollback lifts only the block migrator added."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from migrator.blocks import SourceBlocks
from migrator.discovery import ClusterFacts, Facts, IndexFacts
from migrator.errors import Cure
from migrator.migration.rollback import _unblock
from migrator.planner import build_plan, cutover_restore_id, restore_id
from migrator.spec import parse_plan
from migrator.state import StateStore
from migrator.steps.base import StepFailed
from migrator.steps.cutover_restore import RestoreOver
from migrator.steps.restore import Restore
from migrator.steps.write_block import BlockWrites
from tests.steps.fakes import FakeIndices
from tests.steps.listed import sends_only_listed

PLAN = """
name: unit
source: {url: "http://127.0.0.1:9200"}
destination: {url: "http://127.0.0.1:9201"}
repository: {name: repo, type: fs, settings: {location: /tmp/repo}}
storage: {kind: local, path: /tmp/repo}
snapshot: {indices: [archive, live]}
cutover: {enabled: true}
"""
ARCHIVE = {"index.blocks.write": "true"}


def context(cluster: FakeIndices, record: SourceBlocks, discovered: dict[str, dict[str, str]]) -> SimpleNamespace:
    indices = {n: IndexFacts(n, "open", "green", 1, 10, 10, 1, blocks=discovered.get(n, {})) for n in cluster.blocks}
    facts = Facts(
        ClusterFacts("http://s", "7.17.29", "green", indices=indices),
        ClusterFacts("http://d", "8.19.21", "green", free_disk_bytes=10**9),
    )
    spec = parse_plan(PLAN)
    plan = build_plan(spec, facts, datetime(2026, 11, 30, tzinfo=UTC))
    return SimpleNamespace(spec=spec, plan=plan, source=cluster, source_blocks=record, repository="repo", snapshot="s")


def test_a_new_index_the_selection_matches_stops_the_cutover_before_any_block(tmp_path):
    # Seen on the sandbox (6.8 -> 7.10): a source index matching snapshot.indices, created after phase one, was
    # left writable and uncopied while the cutover reported success and switched the aliases.
    cluster = FakeIndices({"archive": ARCHIVE, "live": {}})
    ctx = context(cluster, SourceBlocks(StateStore(tmp_path / "state.db")), {"archive": ARCHIVE})
    ctx.spec = parse_plan(PLAN.replace("[archive, live]", "[archive, live*]"))
    cluster.blocks["live-2"] = {}
    step = block_step(ctx)
    with sends_only_listed(step):
        assert not step.observe().done
        with pytest.raises(StepFailed) as failed:
            step.act()
    assert "live-2 match snapshot.indices but did not exist when the plan was made" in str(failed.value)
    assert failed.value.cure == Cure.REPLAN and cluster.sent == []  # nothing blocked
    del cluster.blocks["live-2"]
    gone = cluster.blocks.pop("live")  # deleted since phase one: the block request would answer 404
    with pytest.raises(StepFailed) as failed:
        step.act()
    assert "live (copied in phase one) no longer exist on the source" in str(failed.value) and cluster.sent == []
    cluster.blocks["live"] = gone
    cluster.blocks["other"] = {}  # not selected: the cutover goes on
    step.act()
    assert cluster.blocks["live"] == {"index.blocks.write": "true"} and cluster.blocks["other"] == {}


def block_step(ctx: SimpleNamespace) -> BlockWrites:
    return BlockWrites("cutover.block", {}, ctx)


def test_the_archive_is_not_blocked_again_and_the_record_is_written_before_the_block(tmp_path):
    cluster = FakeIndices({"archive": ARCHIVE, "live": {}})
    state = StateStore(tmp_path / "state.db")
    ctx = context(cluster, SourceBlocks(state), {"archive": ARCHIVE})
    step = block_step(ctx)
    assert [r.path for r in step.describe()] == ["live/_settings"]

    with sends_only_listed(step):
        assert not step.observe().done
        assert SourceBlocks(state).get() == {"archive": ARCHIVE, "live": {}}
        step.act()
    assert cluster.sent == [("PUT", "/live/_settings", {"index.blocks.write": True})]
    assert cluster.sent == [(r.method, r.sent_path, r.body) for r in step.describe()]  # shown is sent
    assert step.observe().done
    state.close()

    # kill -9 after the block, then resume: the observation now shows both blocked; the record stays
    state = StateStore(tmp_path / "state.db")
    resumed = block_step(context(cluster, SourceBlocks(state), {"archive": ARCHIVE, "live": ARCHIVE}))
    assert resumed.observe().done
    assert SourceBlocks(state).get() == {"archive": ARCHIVE, "live": {}}
    assert [r.path for r in resumed.describe()] == ["live/_settings"]  # from the record, not the late facts
    state.close()


def test_the_cutover_restore_keeps_the_archives_own_write_block_only():
    cluster = FakeIndices({"archive": ARCHIVE, "live": ARCHIVE})
    ctx = context(cluster, SourceBlocks(), {"archive": ARCHIVE})  # the dry run: from discovery
    nodes = ctx.plan.graph.nodes

    def ignored(step_class, node: str) -> list[str]:
        return step_class(node, nodes[node]["params"], ctx).body().get("ignore_index_settings", [])

    assert ignored(RestoreOver, cutover_restore_id("archive")) == []
    assert ignored(RestoreOver, cutover_restore_id("live")) == ["index.blocks.write"]
    assert ignored(Restore, restore_id("live")) == []  # phase one's snapshot has no block of ours

    ctx.source_blocks.record({"archive": {}, "live": ARCHIVE})  # the record wins over discovery
    assert ignored(RestoreOver, cutover_restore_id("archive")) == ["index.blocks.write"]
    assert ignored(RestoreOver, cutover_restore_id("live")) == []


def test_rollback_lifts_only_the_block_migrator_added_back_to_its_recorded_value():
    cluster = FakeIndices(
        {"archive": ARCHIVE, "live": ARCHIVE, "off": ARCHIVE, "other": {"index.blocks.write": "true"}}
    )
    record = SourceBlocks()
    record.record({"archive": ARCHIVE, "live": {}, "off": {"index.blocks.write": "false"}, "other": {}})
    cluster.blocks["archive"]["index.blocks.read"] = "true"  # someone else, during the cutover
    unblocked, changed = _unblock(SimpleNamespace(source=cluster), record, ["archive", "live", "off", "other"])
    assert unblocked == ["live", "off", "other"]
    assert cluster.blocks == {
        "archive": {"index.blocks.write": "true", "index.blocks.read": "true"},
        "live": {},
        "off": {"index.blocks.write": "false"},
        "other": {},
    }
    assert changed == {"archive": {"index.blocks.read": [None, "true"]}}
    assert ("PUT", "/off/_settings", {"index.blocks.write": False}) in cluster.sent


def test_rollback_without_a_record_lifts_nothing():
    cluster = FakeIndices({"archive": ARCHIVE})
    assert _unblock(SimpleNamespace(source=cluster), SourceBlocks(), ["archive"]) == ([], {})
    assert cluster.sent == [] and cluster.blocks == {"archive": ARCHIVE}
