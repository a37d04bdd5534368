"""Create the snapshot of the selected indices (without waiting: the next step follows it).

The snapshot name is fixed when the run begins and kept in the state file, so a resumed run finds
the snapshot it started instead of starting another.
"""

from __future__ import annotations

from typing import Any

from migrator.clients.es import build_path
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed


def snapshot_info(ctx: Any, snapshot: str) -> dict[str, Any] | None:
    """The snapshot as the source sees it, or None when it does not exist."""
    status, body = ctx.source.request("GET", build_path("_snapshot", ctx.repository, snapshot), ok=(200, 404))
    if status == 404:
        return None
    snapshots = body.get("snapshots") or []
    return snapshots[0] if snapshots else None


class CreateSnapshot(Step):
    kind = "snapshot.create"
    title = "Create the snapshot"
    waits_for = "nothing: the snapshot runs in the background (next step follows it)"

    def body(self) -> dict[str, Any]:
        snapshot = self.ctx.spec.snapshot
        return {
            "indices": ",".join(move.source for move in self.ctx.plan.moves),
            "include_global_state": snapshot.include_global_state,
            "partial": snapshot.partial,
            "ignore_unavailable": snapshot.ignore_unavailable,
        }

    def describe(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("source", "PUT", f"_snapshot/{self.ctx.repository}/{self.snapshot}", self.body())]

    def checks(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("source", "GET", f"_snapshot/{self.ctx.repository}/{self.snapshot}")]

    def observe(self) -> Observation:
        info = snapshot_info(self.ctx, self.snapshot)
        if info is None:
            return Observation(False, summary=f"snapshot {self.snapshot} does not exist yet")
        return Observation(True, summary=f"snapshot {self.snapshot} exists ({info.get('state')})")

    def act(self) -> None:
        if not self.ctx.plan.moves:
            raise StepFailed("no index to snapshot: the plan selects nothing")
        path = build_path("_snapshot", self.ctx.repository, self.snapshot, params={"wait_for_completion": False})
        self.ctx.source.request("PUT", path, self.body())
