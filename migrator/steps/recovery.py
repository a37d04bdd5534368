"""Follow the recovery of one restored index until its primaries are active and every shard is DONE.

A restore can be lost: when the destination restarts mid-restore (a single node, or all of them),
the restore entry is gone and the half-restored primaries stay unassigned ("no valid shard copy").
The index is ours (the restore step checked it came from our snapshot), so the recovery step does
what Elasticsearch's allocation explanation advises: it deletes the partial index and restores it
again from the snapshot. The same happens when the index vanished while we followed it.
"""

from __future__ import annotations

from typing import Any

from migrator.clients.es import build_path
from migrator.planner import restore_id
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step
from migrator.steps.restore import Restore

# Why a primary may be unassigned while its restore is still alive.
LIVE_REASONS = {"NEW_INDEX_RESTORED", "EXISTING_INDEX_RESTORED", "INDEX_CREATED"}


class FollowRecovery(Step):
    kind = "recovery"
    title = "Follow the recovery of the restored index"
    waits_for = "every shard's recovery stage DONE (files and bytes recovered / total) and health green or yellow"

    def describe(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("destination", "GET", f"{self.params['target']}/_recovery")]

    def checks(self) -> list[ConsoleRequest]:
        target = self.params["target"]
        return [
            ConsoleRequest("destination", "GET", f"_cluster/health/{target}?wait_for_status=yellow&timeout=10s"),
            ConsoleRequest("destination", "GET", f"_cat/shards/{target}"),
        ]

    def _progress(self, heal: bool = False) -> tuple[bool, int, int, str]:
        """(done, bytes recovered, bytes total, stages); with `heal`, a lost restore is started again."""
        target = self.params["target"]
        status, body = self.ctx.destination.request("GET", build_path(target, "_recovery"), ok=(200, 404))
        if status == 404 or (not (body.get(target) or {}).get("shards") and self._lost()):
            if heal:
                self._restore_again(missing=status == 404)
            return False, 0, 0, "restore lost"
        shards = (body.get(target) or {}).get("shards", [])
        recovered = sum(s.get("index", {}).get("size", {}).get("recovered_in_bytes", 0) for s in shards)
        total = sum(s.get("index", {}).get("size", {}).get("total_in_bytes", 0) for s in shards)
        all_done = bool(shards) and all(s.get("stage") == "DONE" for s in shards if s.get("primary", True))
        stages = ",".join(sorted({str(s.get("stage")) for s in shards})) or "-"
        return all_done and self._active("0s"), recovered, total, stages

    def _active(self, timeout: str) -> bool:
        """Primaries active (green or yellow); with a timeout, a long poll that returns as soon as they are."""
        path = build_path(
            "_cluster", "health", self.params["target"], params={"wait_for_status": "yellow", "timeout": timeout}
        )
        _, health = self.ctx.destination.request("GET", path, ok=(200, 408), timeout_s=self.ctx.poll_s * 10 + 30)
        return health.get("status") in ("green", "yellow")

    def _lost(self) -> bool:
        """Primaries unassigned for a reason other than the restore that is starting."""
        path = build_path("_cat", "shards", self.params["target"], params={"format": "json", "h": "prirep,state,ur"})
        rows = self.ctx.destination.get(path)
        return any(
            row.get("prirep") == "p" and row.get("state") == "UNASSIGNED" and row.get("ur") not in LIVE_REASONS
            for row in rows
        )

    def _restore_again(self, *, missing: bool) -> None:
        target = self.params["target"]
        why = "vanished during its recovery" if missing else "lost its restore (the destination restarted?)"
        self.ctx.progress.message(self.id, f"{target} {why}: restoring it again from {self.ctx.snapshot}")
        if not missing:
            self.ctx.destination.request("DELETE", build_path(target), ok=(200, 404))
        Restore(restore_id(target), self.params, self.ctx).act()

    def observe(self) -> Observation:
        done, recovered, total, stages = self._progress()
        return Observation(done, in_progress=not done, summary=f"{recovered}/{total} bytes, stages {stages}")

    def wait(self) -> dict[str, Any]:
        """One progress read, then a long poll of the index's health for a few poll periods: few requests,
        and the end of the recovery is seen the moment it happens."""
        long_poll = f"{max(1, round(self.ctx.poll_s * 5))}s"
        while True:
            done, recovered, total, stages = self._progress(heal=True)
            self.ctx.progress.update(self.id, recovered, total, "bytes", f"stage {stages}")
            if done:
                return {"bytes": total}
            if self.ctx.cancel_requested():
                raise Cancelled("cancel requested")
            self._active(long_poll)
