"""`finish.aliases`: which destination indices each alias must point at, and the one atomic `POST _aliases`
that moves it there.

Place in the flow: the planner refuses an alias whose sources are all left out (`alias_problems`);
the cutover's `alias.switch` and, without a cutover, `finish` send `alias_actions`: the alias is added
to the restored indices and, in the same request, removed from every other destination index that
holds it, so that reads through it never span an old and a new index (the switch records what it
removes, `RemovedAliases`, for `rollback`). The dry run computes the actions from the aliases
discovery found on the destination (`ClusterFacts.aliases`), `apply` from the ones it reads just
before sending (`GET _alias/<alias>`): the same function, so the dry run shows what it removes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from migrator.blocks import REFUSE_CLOSE
from migrator.clients.es import EsClient, build_path
from migrator.spec import MigrationSpec, Problem
from migrator.state import RecordedOnce, StateStore

if TYPE_CHECKING:
    from migrator.planner import IndexMove


def wanted_aliases(spec: MigrationSpec, moves: Iterable[IndexMove]) -> dict[str, set[str]]:
    """Alias -> the destination indices it must point at: the targets of its migrated sources."""
    targets = {move.source: move.target for move in moves}
    return {
        alias: {targets[source] for source in sources if source in targets}
        for alias, sources in sorted(spec.finish.aliases.items())
    }


def alias_actions(wanted: Mapping[str, set[str]], current: Mapping[str, Iterable[str]]) -> list[dict[str, Any]]:
    """The `_aliases` actions that make each alias point at exactly its wanted indices: removes from the
    indices that hold it and are not wanted, then adds to the wanted ones that lack it. Empty when done."""
    actions: list[dict[str, Any]] = []
    for alias, indices in sorted(wanted.items()):
        now = set(current.get(alias, ()))
        actions += [{"remove": {"index": index, "alias": alias}} for index in sorted(now - indices)]
        actions += [{"add": {"index": index, "alias": alias}} for index in sorted(indices - now)]
    return actions


def alias_path(alias: str) -> str:
    """`/_alias/<alias>`: the read of the indices an alias points at (what `alias_holders` sends)."""
    return build_path("_alias", alias)


def alias_holders(client: EsClient, aliases: Iterable[str]) -> dict[str, set[str]]:
    """Alias -> the indices of `client`'s cluster it points at now (`GET _alias/<alias>`, 404: none)."""
    found: dict[str, set[str]] = {}
    for alias in aliases:
        status, body = client.request("GET", alias_path(alias), ok=(200, 404))
        found[alias] = set(body) if status == 200 else set()
    return found


def alias_problems(
    spec: MigrationSpec,
    moves: Iterable[IndexMove],
    skipped: Mapping[str, str],
    source_blocks: Mapping[str, Mapping[str, str]],
) -> tuple[list[Problem], list[str]]:
    """An alias none of whose sources is migrated would get an empty action list (or, moved, lose every
    index): a problem naming `finish.aliases.<alias>`. So is a source whose blocks (`source_blocks`, as
    discovered) refuse metadata writes: the restored copy keeps them and Elasticsearch refuses an alias on
    it (`cluster_block_exception`). An alias some of whose sources are left out: a warning."""
    migrated = {move.source for move in moves}
    problems: list[Problem] = []
    warnings: list[str] = []
    for alias, sources in sorted(spec.finish.aliases.items()):
        for source in sources:
            carried = sorted(s for s in REFUSE_CLOSE if source_blocks.get(source, {}).get(s) == "true")
            if source in migrated and carried:
                problems.append(
                    Problem(
                        f"finish.aliases.{alias}",
                        f"{source} carries {', '.join(carried)}, which its restored copy keeps: Elasticsearch "
                        "refuses an alias on it",
                        f"leave {source} out of finish.aliases, or lift the block on the source before the migration",
                    )
                )
        left_out = [source for source in sources if source not in migrated]
        reasons = "; ".join(f"{source}: {skipped.get(source, 'not on the source')}" for source in left_out)
        if len(left_out) == len(sources):
            problems.append(
                Problem(
                    f"finish.aliases.{alias}",
                    f"points at no migrated index ({reasons})",
                    "list source indices the plan migrates, or remove the alias from finish.aliases",
                )
            )
        elif left_out:
            warnings.append(f"finish.aliases.{alias}: left out of the migration, so not under the alias: {reasons}")
    return problems, warnings


class RemovedAliases(RecordedOnce):
    """Alias -> the destination indices the cutover's switch removed it from, recorded before the switch
    is sent (meta `aliases_removed`), so that `rollback` gives the alias back to them."""

    def __init__(self, state: StateStore | None = None) -> None:
        super().__init__("aliases_removed", state)


def removals(actions: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Alias -> the indices `actions` remove it from."""
    found: dict[str, list[str]] = {}
    for action in actions:
        if "remove" in action:
            found.setdefault(action["remove"]["alias"], []).append(action["remove"]["index"])
    return found
