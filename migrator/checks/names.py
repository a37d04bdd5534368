"""Dry-run rules 1 and 2: target names Elasticsearch refuses, and names that clash on the destination
(a target, a restored alias or a finish alias equal to an index, alias or data stream there, or to
another name of the plan). Pure functions of the spec, the facts and the planned moves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrator.checks.findings import Findings, rename_field
from migrator.discovery import ClusterFacts, Facts
from migrator.spec import MigrationSpec, Problem

if TYPE_CHECKING:
    from migrator.planner import IndexMove


FORBIDDEN_CHARACTERS = '\\/*?"<>| ,#:'
MAX_NAME_BYTES = 255


def invalid_index_name(name: str) -> str | None:
    """Why Elasticsearch (7.x and later) refuses `name` as an index name (its
    invalid_index_name_exception reason), or None."""
    if not name:
        return "must not be empty"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if name != name.lower():
        return "must be lowercase"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    found = sorted({c for c in name if c in FORBIDDEN_CHARACTERS})
    if found:
        return f"must not contain {' '.join(repr(c) for c in found)}"
    if len(name.encode()) > MAX_NAME_BYTES:
        return f"is too long ({len(name.encode())} bytes UTF-8, at most {MAX_NAME_BYTES})"
    return None


def target_name_findings(spec: MigrationSpec, moves: list[IndexMove]) -> Findings:
    """Rule 1: every target name is one Elasticsearch accepts."""
    found = Findings()
    for move in moves:
        why = invalid_index_name(move.target)
        if why:
            found.problems.append(
                Problem(
                    rename_field(spec),
                    f"{move.source!r} would be restored as {move.target!r}, which Elasticsearch refuses "
                    f"(invalid_index_name_exception: {why})",
                    'change restore.rename_replacement so every target is lowercase, without \\ / * ? " < > | , # : '
                    "or spaces, not starting with _ - +, at most 255 bytes",
                )
            )
    return found


# -- rule 2: name clashes on the destination ------------------------------------------------------------


def clash_findings(spec: MigrationSpec, facts: Facts, moves: list[IndexMove]) -> Findings:
    """Rule 2: a target, a restored alias or a finish alias that collides with a destination index,
    alias or data stream, or with another name of this plan. (A target equal to an existing index and
    two sources on one target are the planner's own checks.)"""
    found = Findings()
    destination = facts.destination
    aliases, streams = destination.aliases, set(destination.data_streams)
    targets = {move.target for move in moves}
    for move in moves:
        kind = "an alias" if move.target in aliases else "a data stream" if move.target in streams else None
        if kind:
            found.problems.append(
                Problem(
                    rename_field(spec),
                    f"{move.source!r} would be restored as {move.target!r}, which is {kind} on the destination "
                    "(Elasticsearch: invalid_index_name_exception, already exists as alias / data stream)",
                    "change restore.rename_replacement to a new name, or remove that alias / data stream",
                )
            )
    if spec.restore.include_aliases:
        for move in moves:
            for alias in facts.source.indices[move.source].aliases:
                clash = _name_taken(alias, destination, targets)
                if clash:
                    found.problems.append(
                        Problem(
                            "restore.include_aliases",
                            f"{move.source!r} carries alias {alias!r}, which is {clash}: Elasticsearch refuses the "
                            "restore (an alias and an index cannot share a name)",
                            "set restore.include_aliases: false and add the aliases you want with finish.aliases",
                        )
                    )
                serving = [name for name in aliases.get(alias, []) if name not in targets]
                if serving:
                    found.problems.append(
                        Problem(
                            "restore.include_aliases",
                            f"{move.source!r} carries alias {alias!r}, which already points at {', '.join(serving)} "
                            f"on the destination: the restore would add {move.target!r} to it before any validation, "
                            f"and reads through {alias!r} would return its documents too",
                            "set restore.include_aliases: false and add the alias once validated with finish.aliases "
                            "(or a cutover), or remove the alias from the destination's indices",
                        )
                    )
    for alias in spec.finish.aliases:
        clash = _name_taken(alias, destination, targets)
        if clash:
            found.problems.append(
                Problem(
                    f"finish.aliases.{alias}",
                    f"alias {alias!r} is {clash}: Elasticsearch refuses an alias named like an index "
                    "(invalid_alias_name_exception)",
                    "choose another alias name, or rename the index",
                )
            )
    return found


def _name_taken(name: str, destination: ClusterFacts, targets: set[str]) -> str | None:
    if name in targets:
        return "also a target index of this plan"
    if name in destination.indices:
        return "an existing index on the destination"
    if name in destination.data_streams:
        return "a data stream on the destination"
    return None
