"""Validate one index: the destination's document count equals the source's."""

from __future__ import annotations

from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed


class ValidateCounts(Step):
    kind = "validate"
    title = "Compare document counts"
    waits_for = "nothing: two counts compared"

    def describe(self) -> list[ConsoleRequest]:
        return [
            ConsoleRequest("source", "GET", f"{self.params['source']}/_count"),
            ConsoleRequest("destination", "GET", f"{self.params['target']}/_count"),
        ]

    def observe(self) -> Observation:
        source, target = self.params["source"], self.params["target"]
        expected = self.ctx.source.doc_count(source)
        actual = self.ctx.destination.doc_count(target)
        if expected != actual:
            raise StepFailed(
                f"{target} has {actual} documents on the destination but {source} has {expected} on the source "
                "(writes since the snapshot? run the cutover phase, or delete the index and apply again)"
            )
        return Observation(True, summary=f"{actual} documents on both sides", detail={"docs": actual})
