"""Follow the recovery of one restored index until its primaries are active and every shard is DONE."""

from __future__ import annotations

from typing import Any

from migrator.clients.es import build_path
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed


class FollowRecovery(Step):
    kind = "recovery"
    title = "Follow the recovery of the restored index"
    waits_for = "every shard's recovery stage DONE (files and bytes recovered / total) and health green or yellow"

    def describe(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("destination", "GET", f"{self.params['target']}/_recovery")]

    def checks(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("destination", "GET", f"_cluster/health/{self.params['target']}?timeout=0s")]

    def _progress(self) -> tuple[bool, int, int, str]:
        target = self.params["target"]
        status, body = self.ctx.destination.request("GET", build_path(target, "_recovery"), ok=(200, 404))
        if status == 404:
            raise StepFailed(f"{target} disappeared from the destination during its recovery (deleted?)")
        shards = (body.get(target) or {}).get("shards", [])
        recovered = sum(s.get("index", {}).get("size", {}).get("recovered_in_bytes", 0) for s in shards)
        total = sum(s.get("index", {}).get("size", {}).get("total_in_bytes", 0) for s in shards)
        all_done = bool(shards) and all(s.get("stage") == "DONE" for s in shards if s.get("primary", True))
        health = self.ctx.destination.get(build_path("_cluster", "health", target, params={"timeout": "0s"}))
        active = health.get("status") in ("green", "yellow")
        stages = ",".join(sorted({str(s.get("stage")) for s in shards})) or "-"
        return all_done and active, recovered, total, stages

    def observe(self) -> Observation:
        done, recovered, total, stages = self._progress()
        return Observation(done, in_progress=not done, summary=f"{recovered}/{total} bytes, stages {stages}")

    def wait(self) -> dict[str, Any]:
        while True:
            done, recovered, total, stages = self._progress()
            self.ctx.progress.update(self.id, recovered, total, "bytes", f"stage {stages}")
            if done:
                return {"bytes": total}
            self.ctx.sleep()
