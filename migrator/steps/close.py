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

    def _close(self) -> ConsoleRequest:
        return ConsoleRequest("destination", "POST", build_path(self.params["target"], "_close").lstrip("/"))

    def _state(self) -> ConsoleRequest:
        path = build_path("_cat", "indices", self.params["target"], params={"format": "json", "h": "status"})
        return ConsoleRequest("destination", "GET", path.lstrip("/"))

    def describe(self) -> list[ConsoleRequest]:
        return [self._close()]

    def checks(self) -> list[ConsoleRequest]:
        return [self._state()]

    def observe(self) -> Observation:
        target = self.params["target"]
        status, rows = self.ctx.destination.request("GET", self._state().sent_path, ok=(200, 404))
        if status == 404 or not rows:
            raise StepFailed(f"{target} is not on the destination: restore it first (migrator resume)")
        state = rows[0].get("status")
        return Observation(state == "close", summary=f"{target} is {'closed' if state == 'close' else 'open'}")

    def act(self) -> None:
        self.ctx.destination.request("POST", self._close().sent_path)

    def wait(self) -> dict[str, Any]:
        return {"closed": self.params["target"]}
