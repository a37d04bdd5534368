"""Cutover, last step: switch the aliases to the destination indices, in one atomic `_aliases` call.

Each alias of `finish.aliases` ends up pointing at exactly the restored names of its source indices:
added to them and removed, in the same request, from any other destination index that held it (see
`migrator.aliases`; the dry run shows the removals discovery expects).
Reached only once every index of the cutover has exactly the source's document count.
"""

from __future__ import annotations

from typing import Any

from migrator.aliases import alias_actions, alias_holders, alias_path, removals, wanted_aliases
from migrator.dag import StepKind
from migrator.steps.base import ConsoleRequest, Observation, Step


def alias_read(alias: str) -> ConsoleRequest:
    """`GET _alias/<alias>`: what `aliases.alias_holders` sends for each alias, as the runbook lists it."""
    return ConsoleRequest("destination", "GET", alias_path(alias).lstrip("/"))


def switch_request(actions: list[dict[str, Any]]) -> ConsoleRequest:
    """`POST _aliases {"actions": [...]}`, one atomic request: what `act` sends and `describe` shows."""
    return ConsoleRequest("destination", "POST", "_aliases", {"actions": actions})


class SwitchAliases(Step):
    kind = StepKind.ALIAS_SWITCH
    title = "Cutover: switch the aliases to the destination"
    lasting = True
    waits_for = "nothing: the alias change is atomic and acknowledged at once"

    def wanted(self) -> dict[str, set[str]]:
        """Alias -> the destination indices it must point at."""
        return wanted_aliases(self.ctx.spec, self.ctx.plan.moves)

    def current(self) -> dict[str, set[str]]:
        """Alias -> the destination indices it points at now."""
        return alias_holders(self.ctx.destination, self.wanted())

    def describe(self) -> list[ConsoleRequest]:
        """The switch as the dry run sees it: from the aliases discovery found on the destination."""
        actions = alias_actions(self.wanted(), self.ctx.plan.facts.destination.aliases)
        return [switch_request(actions)] if actions else []

    def checks(self) -> list[ConsoleRequest]:
        return [alias_read(alias) for alias in self.wanted()]

    def observe(self) -> Observation:
        missing = alias_actions(self.wanted(), self.current())
        if missing:
            return Observation(False, summary=f"{len(missing)} alias change(s) to make")
        return Observation(True, summary=f"{len(self.wanted())} alias(es) point at the destination")

    def act(self) -> None:
        actions = alias_actions(self.wanted(), self.current())
        if actions:
            self.ctx.removed_aliases.record(removals(actions))  # before sending: rollback gives them back
            request = switch_request(actions)
            self.ctx.destination.request(request.method, request.sent_path, request.body)
