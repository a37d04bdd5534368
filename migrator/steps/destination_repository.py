"""Register the same bucket and base_path on the destination, read-only.

Two clusters must never both write one repository: the destination's registration always has
`readonly: true`. A registration of that name that is writable is refused, never overwritten; one with
other settings is updated only when this migration made it (see steps.source_repository).
"""

from __future__ import annotations

from typing import Any

from migrator.clients.es import build_path
from migrator.dag import StepKind
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed
from migrator.steps.source_repository import observe_registration, registration


class RegisterDestinationRepository(Step):
    kind = StepKind.DESTINATION_REPOSITORY
    recheck = True
    title = "Register the repository on the destination (read-only)"
    waits_for = "the repository verification that registering does (read-only: every node can read it)"

    def _body(self, reveal: bool) -> dict[str, Any]:
        return self.ctx.repository_bodies.body("destination", reveal=reveal)

    def describe(self) -> list[ConsoleRequest]:
        return [
            ConsoleRequest("destination", "PUT", f"_snapshot/{self.ctx.repository}", self._body(reveal=False)),
        ]

    def checks(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("destination", "GET", f"_snapshot/{self.ctx.repository}")]

    existing: dict[str, Any] | None = None

    def observe(self) -> Observation:
        current = registration(self.ctx.destination, self.ctx.repository)
        self.existing = current
        if current is None:
            return Observation(False, summary="not registered")
        settings = current.get("settings", {})
        if str(settings.get("readonly", "false")).lower() != "true":
            raise StepFailed(
                f"the destination already has a writable repository {self.ctx.repository!r}; two clusters must "
                "never write one repository. Unregister it (DELETE _snapshot/"
                f"{self.ctx.repository}) or choose another repository.name"
            )
        return observe_registration(self.ctx, "destination", current, self._body(reveal=True))

    def act(self) -> None:
        # PUT both registers and updates (Elasticsearch treats POST alike, as Alibaba's document updates with it):
        # the runbook's request, whichever it is
        self.ctx.destination.request("PUT", build_path("_snapshot", self.ctx.repository), self._body(reveal=True))
        if self.existing is None:  # one found is updated only when the ledger already records it (observe)
            self.ctx.ledger.record_repository("destination", self.ctx.repository)
