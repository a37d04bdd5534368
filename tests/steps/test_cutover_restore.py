"""The cutover's restore over a destination copy of a read-only archive: the blocks that refuse a close
(`read_only`, `read_only_allow_delete`, `metadata`) are lifted just before it, as the dry run shows, and
the restore (which keeps them, as the source has them) puts them back."""

from __future__ import annotations

from migrator.blocks import SourceBlocks, lift_for_close
from migrator.planner import cutover_restore_id
from migrator.steps.cutover_restore import RestoreOver
from tests.steps.fakes import FakeIndices
from tests.steps.test_write_block import context

READ_ONLY = {"index.blocks.read_only": "true"}


def test_the_blocks_refusing_a_close_are_lifted():
    assert lift_for_close(READ_ONLY) == {"index.blocks.read_only": None}
    assert lift_for_close({"index.blocks.metadata": "true", "index.blocks.write": "true"}) == {
        "index.blocks.metadata": None
    }
    assert lift_for_close({"index.blocks.write": "true", "index.blocks.read": "true"}) == {}


def test_the_dry_run_shows_the_lift_before_the_close_of_a_read_only_archive():
    ctx = context(FakeIndices({"archive": READ_ONLY, "live": {}}), SourceBlocks(), {"archive": READ_ONLY})
    nodes = ctx.plan.graph.nodes

    def requests(target: str) -> list[tuple[str, str]]:
        node = cutover_restore_id(target)
        return [(r.method, r.path) for r in RestoreOver(node, nodes[node]["params"], ctx).describe()]

    assert requests("archive")[:2] == [("PUT", "archive/_settings"), ("POST", "archive/_close")]
    assert requests("live")[0] == ("POST", "live/_close")
    body = RestoreOver(cutover_restore_id("archive"), nodes[cutover_restore_id("archive")]["params"], ctx).body()
    assert "index.blocks.read_only" not in body.get("ignore_index_settings", [])  # restored with the index
