"""Close a restored index again: the last step of the branch of an index that is closed on the source
(`snapshot.closed_indices: restore_closed`).

Elasticsearch snapshots a closed index and restores it open; this step makes the destination copy
closed like its source, once validation has read it. Observing reads the index's state; closing an
index that is already closed changes nothing, so the step is safe to repeat.
"""

from __future__ import annotations

from typing import Any

from migrator.clients.es import build_path
from migrator.dag import StepKind
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed


class CloseIndex(Step):
    kind = StepKind.CLOSE
    title = "Close the restored index, as its source is"
    waits_for = "nothing: the close is acknowledged once every shard copy is closed"

    def describe(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("destination", "POST", f"{self.params['target']}/_close")]

    def checks(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("destination", "GET", f"_cat/indices/{self.params['target']}?h=status")]

    def observe(self) -> Observation:
        target = self.params["target"]
        path = build_path("_cat", "indices", target, params={"format": "json", "h": "status"})
        status, rows = self.ctx.destination.request("GET", path, ok=(200, 404))
        if status == 404 or not rows:
            raise StepFailed(f"{target} is not on the destination: restore it first (migrator resume)")
        state = rows[0].get("status")
        return Observation(state == "close", summary=f"{target} is {'closed' if state == 'close' else 'open'}")

    def act(self) -> None:
        self.ctx.destination.request("POST", build_path(self.params["target"], "_close"))

    def wait(self) -> dict[str, Any]:
        return {"closed": self.params["target"]}
