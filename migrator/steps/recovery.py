"""Follow the recovery of one restored index until its primaries are active and every shard is DONE."""

from __future__ import annotations

from typing import Any

from migrator.clients.es import build_path
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepFailed


class FollowRecovery(Step):
    kind = "recovery"
    title = "Follow the recovery of the restored index"
    waits_for = "every shard's recovery stage DONE (files and bytes recovered / total) and health green or yellow"

    def describe(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("destination", "GET", f"{self.params['target']}/_recovery")]

    def checks(self) -> list[ConsoleRequest]:
        path = f"_cluster/health/{self.params['target']}?wait_for_status=yellow&timeout=10s"
        return [ConsoleRequest("destination", "GET", path)]

    def _progress(self) -> tuple[bool, int, int, str]:
        target = self.params["target"]
        status, body = self.ctx.destination.request("GET", build_path(target, "_recovery"), ok=(200, 404))
        if status == 404:
            raise StepFailed(f"{target} disappeared from the destination during its recovery (deleted?)")
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

    def observe(self) -> Observation:
        done, recovered, total, stages = self._progress()
        return Observation(done, in_progress=not done, summary=f"{recovered}/{total} bytes, stages {stages}")

    def wait(self) -> dict[str, Any]:
        """One progress read, then a long poll of the index's health for a few poll periods: few requests,
        and the end of the recovery is seen the moment it happens."""
        long_poll = f"{max(1, round(self.ctx.poll_s * 5))}s"
        while True:
            done, recovered, total, stages = self._progress()
            self.ctx.progress.update(self.id, recovered, total, "bytes", f"stage {stages}")
            if done:
                return {"bytes": total}
            if self.ctx.cancel_requested():
                raise Cancelled("cancel requested")
            self._active(long_poll)
