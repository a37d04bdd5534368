"""Cutover, last step: switch the aliases to the destination indices, in one atomic `_aliases` call.

Each alias of `finish.aliases` ends up pointing at exactly the restored names of its source indices:
added to them and removed, in the same request, from any other destination index that held it.
Reached only once every index of the cutover has exactly the source's document count.
"""

from __future__ import annotations

from typing import Any

from migrator.clients.es import build_path
from migrator.steps.base import ConsoleRequest, Observation, Step


class SwitchAliases(Step):
    kind = "alias.switch"
    title = "Cutover: switch the aliases to the destination"
    lasting = True
    waits_for = "nothing: the alias change is atomic and acknowledged at once"

    def wanted(self) -> dict[str, set[str]]:
        """Alias -> the destination indices it must point at."""
        targets = {move.source: move.target for move in self.ctx.plan.moves}
        return {
            alias: {targets[source] for source in sources if source in targets}
            for alias, sources in sorted(self.ctx.spec.finish.aliases.items())
        }

    def current(self) -> dict[str, set[str]]:
        """Alias -> the destination indices it points at now."""
        found: dict[str, set[str]] = {}
        for alias in self.wanted():
            status, body = self.ctx.destination.request("GET", build_path("_alias", alias), ok=(200, 404))
            found[alias] = set(body) if status == 200 else set()
        return found

    def actions(self, current: dict[str, set[str]] | None = None) -> list[dict[str, Any]]:
        now = current if current is not None else {alias: set() for alias in self.wanted()}
        actions: list[dict[str, Any]] = []
        for alias, indices in self.wanted().items():
            actions += [{"remove": {"index": index, "alias": alias}} for index in sorted(now[alias] - indices)]
            actions += [{"add": {"index": index, "alias": alias}} for index in sorted(indices - now[alias])]
        return actions

    def describe(self) -> list[ConsoleRequest]:
        if not self.wanted():
            return []
        return [ConsoleRequest("destination", "POST", "_aliases", {"actions": self.actions()})]

    def checks(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("destination", "GET", f"_alias/{alias}") for alias in self.wanted()]

    def observe(self) -> Observation:
        missing = self.actions(self.current())
        if missing:
            return Observation(False, summary=f"{len(missing)} alias change(s) to make")
        return Observation(True, summary=f"{len(self.wanted())} alias(es) point at the destination")

    def act(self) -> None:
        actions = self.actions(self.current())
        if actions:
            self.ctx.destination.request("POST", "/_aliases", {"actions": actions})
