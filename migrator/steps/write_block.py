"""Cutover, first step: block writes on the source indices (`index.blocks.write: true`).

From here until the aliases point at the destination, writes to the source fail: this is the write
freeze the cutover keeps short. The block is what makes the incremental snapshot the last word:
every document the source accepted is in it. `migrator rollback` lifts the block again.
"""

from __future__ import annotations

from typing import Any

from migrator.clients.es import EsClient, build_path
from migrator.steps.base import ConsoleRequest, Observation, Step

BATCH = 50  # indices per request: a comma-separated list must fit in the request line
BLOCK = {"index.blocks.write": True}


def batches(names: list[str]) -> list[list[str]]:
    return [names[start : start + BATCH] for start in range(0, len(names), BATCH)]


def write_blocked(client: EsClient, names: list[str]) -> dict[str, bool]:
    """Whether each index has `index.blocks.write: true` (False for an index that does not exist)."""
    found: dict[str, bool] = {}
    params = {"flat_settings": True, "ignore_unavailable": True}
    for batch in batches(names):
        path = build_path(",".join(batch), "_settings", "index.blocks.write", params=params)
        body = client.get(path)
        for name in batch:
            value = (body.get(name) or {}).get("settings", {}).get("index.blocks.write")
            found[name] = str(value).lower() == "true"
    return found


class BlockWrites(Step):
    kind = "write.block"
    title = "Cutover: block writes on the source indices"
    waits_for = "nothing: the settings change is acknowledged at once"

    def _sources(self) -> list[str]:
        return [move.source for move in self.ctx.plan.moves]

    def describe(self) -> list[ConsoleRequest]:
        return [
            ConsoleRequest("source", "PUT", f"{','.join(batch)}/_settings", BLOCK) for batch in batches(self._sources())
        ]

    def checks(self) -> list[ConsoleRequest]:
        return [
            ConsoleRequest("source", "GET", f"{','.join(batch)}/_settings/index.blocks.write?flat_settings=true")
            for batch in batches(self._sources())
        ]

    def observe(self) -> Observation:
        blocked = write_blocked(self.ctx.source, self._sources())
        open_ = sorted(name for name, on in blocked.items() if not on)
        if open_:
            return Observation(
                False, summary=f"{len(open_)} source index(es) still take writes: {', '.join(open_[:5])}"
            )
        return Observation(True, summary=f"writes blocked on {len(blocked)} source index(es)")

    def act(self) -> None:
        blocked = write_blocked(self.ctx.source, self._sources())
        for batch in batches(sorted(name for name, on in blocked.items() if not on)):
            self.ctx.source.request("PUT", build_path(",".join(batch), "_settings"), BLOCK)

    def wait(self) -> dict[str, Any]:
        return {"indices": len(self._sources())}
