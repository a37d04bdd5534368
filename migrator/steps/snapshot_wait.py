"""Follow the snapshot until it ends, with shards and bytes as progress; poll gently.

The document warns that snapshot status calls share the snapshot thread pool, so this polls every
few seconds only. FAILED, or PARTIAL when the plan does not allow it, stops the run.
"""

from __future__ import annotations

from typing import Any

from migrator.clients.es import build_path
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed
from migrator.steps.snapshot_create import snapshot_info


class FollowSnapshot(Step):
    kind = "snapshot.wait"
    title = "Follow the snapshot until it succeeds"
    waits_for = "state SUCCESS in the snapshot status (shards done / total, bytes processed / total)"

    def describe(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("source", "GET", f"_snapshot/{self.ctx.repository}/{self.snapshot}/_status")]

    def checks(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("source", "GET", f"_snapshot/{self.ctx.repository}/{self.snapshot}")]

    def _status(self) -> dict[str, Any]:
        path = build_path("_snapshot", self.ctx.repository, self.snapshot, "_status")
        status, body = self.ctx.source.request("GET", path, ok=(200, 404))
        if status == 404 or not body.get("snapshots"):
            raise StepFailed(
                f"snapshot {self.snapshot} is missing from repository {self.ctx.repository} "
                "(deleted or cancelled?); run `migrator apply` again to take a new one"
            )
        return body["snapshots"][0]

    def _check(self, status: dict[str, Any]) -> bool:
        state = status.get("state")
        if state == "SUCCESS" or (state == "PARTIAL" and self.ctx.spec.snapshot.partial):
            # The status says SUCCESS as soon as every shard is done, before the snapshot is
            # finalized (written to index-N); the snapshot's own info says so only afterwards.
            info = snapshot_info(self.ctx, self.snapshot) or {}
            return info.get("state") == state
        if state in ("FAILED", "PARTIAL", "ABORTED"):
            raise StepFailed(
                f"snapshot {self.snapshot} ended {state}; see GET _snapshot/{self.ctx.repository}/"
                f"{self.snapshot} for the failed shards, fix the cause, delete the snapshot and run apply again"
            )
        return False

    def observe(self) -> Observation:
        status = self._status()
        done = self._check(status)
        return Observation(done, in_progress=not done, summary=f"snapshot {status.get('state')}")

    def wait(self) -> dict[str, Any]:
        while True:
            status = self._status()
            shards = status.get("shards_stats", {})
            stats = status.get("stats", {})
            total = stats.get("total", {}).get("size_in_bytes", stats.get("total_size_in_bytes", 0))
            done_bytes = stats.get("processed", {}).get("size_in_bytes", stats.get("processed_size_in_bytes", 0))
            self.ctx.progress.update(
                self.id,
                done_bytes,
                total,
                "bytes",
                f"shards {shards.get('done', 0)}/{shards.get('total', 0)}",
            )
            if self._check(status):
                return {"state": status.get("state"), "bytes": total, "shards": shards.get("total", 0)}
            self.ctx.sleep()
