"""Cutover: restore the incremental snapshot over one destination index (close it, restore, reopen).

The destination index is ours (phase one restored it). Elasticsearch restores into an existing
*closed* index with the same number of shards, and reuses the segment files it already holds that
are identical in the snapshot, so only what changed since phase one crosses the wire; the restore
opens the index again. The cutover's own write block, which the source carries in this snapshot, is
not restored; a write block the source had before the cutover (recorded by `cutover.block`) is.
A destination copy of a read-only archive (`read_only`, `read_only_allow_delete` or `metadata`
blocks, which refuse a close) has those blocks lifted just before the close: the restore puts the
source's back. Observed first: an index already restored from this snapshot is followed, not restored again.
"""

from __future__ import annotations

from migrator.blocks import before_cutover, blocks_path, lift_for_close, read_blocks
from migrator.clients.es import build_path
from migrator.dag import StepKind
from migrator.steps.base import ConsoleRequest, Observation
from migrator.steps.restore import Restore, restored_from


class RestoreOver(Restore):
    kind = StepKind.CUTOVER_RESTORE
    title = "Cutover: restore the incremental snapshot over the destination index"
    waits_for = "the restore to be under way (held open until it ends; the next step follows it)"

    def describe(self) -> list[ConsoleRequest]:
        target = self.params["target"]
        lift = lift_for_close(before_cutover(self.ctx, self.params["source"]))
        unblock = [ConsoleRequest("destination", "PUT", f"{target}/_settings", lift)] if lift else []
        return [*unblock, ConsoleRequest("destination", "POST", f"{target}/_close"), *super().describe()]

    def checks(self) -> list[ConsoleRequest]:
        target = self.params["target"]
        reads = [
            ConsoleRequest("destination", "GET", target),
            ConsoleRequest("destination", "GET", blocks_path([target]).lstrip("/")),
        ]
        return [*reads, *super().checks()]

    def observe(self) -> Observation:
        target = self.params["target"]
        source = restored_from(self.ctx, target) or {}
        if source.get("snapshot") == self.snapshot and self.ctx.ledger.owns_index(self.ctx.repository, source):
            return Observation(True, summary=f"{target} restored from {self.snapshot}")
        return Observation(False, summary=f"{target} not yet restored from {self.snapshot}")

    def act(self) -> None:
        target = self.params["target"]
        status, _ = self.ctx.destination.request("GET", build_path(target), ok=(200, 404))
        if status == 200:
            lift = lift_for_close(read_blocks(self.ctx.destination, [target])[target])
            if lift:
                self.ctx.destination.request("PUT", build_path(target, "_settings"), lift)
            self.ctx.destination.request("POST", build_path(target, "_close"))
        super().act()
