"""Index blocks (`index.blocks.*`): what the source carried before the cutover, and what migrator added.

Place in the flow: read by discovery (facts, for the dry run), recorded in the state file by the
cutover's write-block step before it sends anything (`SourceBlocks`), used by the cutover restore (a
source's own write block is kept on the destination, migrator's is not) and by `rollback` (it lifts
only the write block migrator added, back to the recorded value).

A block map is `{index: {setting: value}}` with the flat setting names of `BLOCKS` and the values as
Elasticsearch reports them (the strings "true" / "false"); a setting the index does not carry is
absent. Blocks are read from the cluster state (`GET _cluster/state/metadata/...`), not from
`GET <index>/_settings`, which `index.blocks.metadata: true` refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from migrator.clients.es import EsClient, build_path
from migrator.state import RecordedOnce, StateStore

BLOCKS = tuple(f"index.blocks.{name}" for name in ("write", "read_only", "read_only_allow_delete", "read", "metadata"))
WRITE = "index.blocks.write"
# Any of these makes an index refuse document writes (Elasticsearch's WRITE block level).
REFUSE_WRITES = (WRITE, "index.blocks.read_only", "index.blocks.read_only_allow_delete")
# Any of these refuses closing an index or changing its aliases (the METADATA_WRITE level); a request that
# only lifts them is allowed.
REFUSE_CLOSE = ("index.blocks.read_only", "index.blocks.read_only_allow_delete", "index.blocks.metadata")
BATCH = 50  # indices per request: a comma-separated list must fit in the request line
FILTER = "metadata.indices.*.settings.index.blocks"
RECORD_KEY = "source_blocks"

BlockMap = dict[str, dict[str, str]]


def batches(names: list[str]) -> list[list[str]]:
    return [names[start : start + BATCH] for start in range(0, len(names), BATCH)]


def blocks_path(names: list[str] | None = None) -> str:
    """`_cluster/state/metadata[/<names>]` filtered down to the blocks (all indices when `names` is None)."""
    parts = ["_cluster", "state", "metadata"] + ([",".join(names)] if names is not None else [])
    return build_path(*parts, params={"filter_path": FILTER})


def parse_blocks(body: Any, names: Iterable[str]) -> BlockMap:
    """The block map of `names` in a filtered cluster state answer (an index it lacks carries none)."""
    indices = (body or {}).get("metadata", {}).get("indices", {})
    found: BlockMap = {}
    for name in names:
        carried = indices.get(name, {}).get("settings", {}).get("index", {}).get("blocks", {})
        found[name] = {
            f"index.blocks.{key}": str(value).lower()
            for key, value in carried.items()
            if f"index.blocks.{key}" in BLOCKS
        }
    return found


def read_blocks(client: EsClient, names: list[str]) -> BlockMap:
    """Each named index's blocks now, one cluster state request per 50 indices."""
    found: BlockMap = {}
    for batch in batches(names):
        found.update(parse_blocks(client.get(blocks_path(batch)), batch))
    return found


def refuses_writes(blocks: dict[str, str]) -> bool:
    """Whether an index with these blocks refuses document writes already (no write block to add)."""
    return any(blocks.get(setting) == "true" for setting in REFUSE_WRITES)


def lift_for_close(blocks: dict[str, str]) -> dict[str, None]:
    """The settings body that lifts the blocks refusing a close (empty when none is set)."""
    return {setting: None for setting in REFUSE_CLOSE if blocks.get(setting) == "true"}


def added_write_block(before: dict[str, str] | None, now: dict[str, str]) -> bool:
    """Whether the write block an index carries now is migrator's: set now, not set before the cutover.
    No record (`before` None) means the cutover never sent its block to that index."""
    return before is not None and now.get(WRITE) == "true" and before.get(WRITE) != "true"


def lift_write_block(before: dict[str, str]) -> dict[str, Any]:
    """The settings body that puts `index.blocks.write` back as recorded: its old value, or unset."""
    return {WRITE: before[WRITE] == "true" if WRITE in before else None}


def differences(before: BlockMap, now: BlockMap) -> dict[str, dict[str, list[str | None]]]:
    """Per index, the blocks that differ between the record and now: `{setting: [before, now]}`."""
    found: dict[str, dict[str, list[str | None]]] = {}
    for name in sorted(before):
        changed = {
            setting: [before[name].get(setting), now.get(name, {}).get(setting)]
            for setting in BLOCKS
            if before[name].get(setting) != now.get(name, {}).get(setting)
        }
        if changed:
            found[name] = changed
    return found


class SourceBlocks(RecordedOnce):
    """The source indices' blocks before the cutover (a block map), kept in the state file (meta
    `source_blocks`). An index's entry is written from an observation made before migrator sent its own
    write block, and never overwritten: a resumed run that observes the block already set must not take
    it for the source's own."""

    def __init__(self, state: StateStore | None = None) -> None:
        super().__init__(RECORD_KEY, state)


def before_cutover(ctx: Any, source: str) -> dict[str, str]:
    """A source index's blocks before the cutover (`ctx`: a StepContext): as recorded, or, before the
    record exists (the dry run, phase one), as discovery found them."""
    recorded = ctx.source_blocks.get() or {}
    if source in recorded:
        return recorded[source]
    facts = ctx.plan.facts.source.indices.get(source)
    return dict(facts.blocks) if facts is not None else {}
