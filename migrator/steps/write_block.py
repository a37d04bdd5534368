"""Cutover, first step: block writes on the source indices (`index.blocks.write: true`).

From here until the aliases point at the destination, writes to the source fail: this is the write
freeze the cutover keeps short. The block is what makes the incremental snapshot the last word:
every document the source accepted is in it. `migrator rollback` lifts the block again.

Before it sends anything, the step records every source index's blocks in the state file
(`migrator.blocks.SourceBlocks`): an index that refuses writes already (an archive with its own
`index.blocks.write` or `read_only`) is left as it is, and its block is the source's, not ours, for
the cutover restore and for rollback. A resumed run keeps the record it finds.

Before it blocks anything it lists the source's indices (`GET _cat/indices?format=json&h=index`): an index
the plan's selection matches now that phase one did not know (a daily index created since) would be left
writable and uncopied while the aliases move to the destination, so the step stops, naming it, with no
block set.
"""

from __future__ import annotations

from typing import Any

from migrator.blocks import WRITE, batches, before_cutover, blocks_path, read_blocks, refuses_writes
from migrator.clients.es import build_path
from migrator.dag import StepKind
from migrator.errors import Cure
from migrator.planner import select_names
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed

BLOCK = {WRITE: True}
NAMED = 5  # new indices named in the failure; the others are counted
LISTING = ConsoleRequest("source", "GET", build_path("_cat", "indices", params={"format": "json", "h": "index"})[1:])


def block_request(batch: list[str]) -> ConsoleRequest:
    """`PUT <indices>/_settings {"index.blocks.write": true}` for one batch: what `act` sends, `describe` shows."""
    return ConsoleRequest("source", "PUT", build_path(",".join(batch), "_settings").lstrip("/"), BLOCK)


def some(names: list[str]) -> str:
    """`a, b and 3 more`: at most NAMED names, the others counted."""
    return ", ".join(names[:NAMED]) + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")


class BlockWrites(Step):
    kind = StepKind.WRITE_BLOCK
    title = "Cutover: block writes on the source indices"
    waits_for = "nothing: the settings change is acknowledged at once"

    def _sources(self) -> list[str]:
        return [move.source for move in self.ctx.plan.moves]

    def _to_block(self) -> list[str]:
        """The sources that took writes before the cutover (the others keep their own blocks)."""
        return [name for name in self._sources() if not refuses_writes(before_cutover(self.ctx, name))]

    def describe(self) -> list[ConsoleRequest]:
        return [block_request(batch) for batch in batches(self._to_block())]

    def checks(self) -> list[ConsoleRequest]:
        blocks = [ConsoleRequest("source", "GET", blocks_path(b).lstrip("/")) for b in batches(self._sources())]
        return [LISTING, *blocks]

    def _selection_changes(self) -> tuple[list[str], list[str]]:
        """(new, gone): the source indices `snapshot.indices` (less `exclude`) selects now that discovery did not
        see when the plan was made, and the plan's sources no longer there (one `_cat/indices` read: LISTING)."""
        names = sorted(str(row["index"]) for row in self.ctx.source.get(LISTING.sent_path))
        selected, _, _ = select_names(self.ctx.spec, names)
        new = [name for name in selected if name not in self.ctx.plan.facts.source.indices]
        return new, sorted(set(self._sources()) - set(names))

    def _observe_and_record(self) -> dict[str, dict[str, str]]:
        """The sources' blocks now; the first observation of each index (before our block) is recorded."""
        now = read_blocks(self.ctx.source, self._sources())
        self.ctx.source_blocks.record(now)
        return now

    def observe(self) -> Observation:
        now = self._observe_and_record()
        open_ = sorted(name for name, blocks in now.items() if not refuses_writes(blocks))
        if open_:
            return Observation(
                False, summary=f"{len(open_)} source index(es) still take writes: {', '.join(open_[:5])}"
            )
        return Observation(True, summary=f"writes blocked on {len(now)} source index(es)")

    def act(self) -> None:
        """Raises StepFailed (cure: a plan change) before any block when the selection matches new indices."""
        new, gone = self._selection_changes()
        if new:
            raise StepFailed(
                f"{some(new)} match snapshot.indices but did not exist when the plan was made: the cutover would "
                "switch the aliases and leave their writes on the source, uncopied. The write block was not sent. Add "
                "them to snapshot.exclude to leave them behind, or migrate them in a plan of their own",
                cure=Cure.REPLAN,
            )
        if gone:
            raise StepFailed(
                f"{some(gone)} (copied in phase one) no longer exist on the source: the cutover cannot block or copy "
                "them. The write block was not sent. Add them to snapshot.exclude (their destination copies stay as "
                "phase one left them)",
                cure=Cure.REPLAN,
            )
        now = self._observe_and_record()
        for batch in batches(sorted(name for name, blocks in now.items() if not refuses_writes(blocks))):
            request = block_request(batch)
            self.ctx.source.request(request.method, request.sent_path, request.body)

    def wait(self) -> dict[str, Any]:
        return {"indices": len(self._sources())}
