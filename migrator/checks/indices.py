"""Dry-run rules 3, 4 and 7, index by index: the creation version the destination must be able to read,
closed source indices (`snapshot.closed_indices`) and system indices. Pure functions of the facts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from migrator.checks.findings import Findings, human_size
from migrator.clients.es import Version
from migrator.compatibility import oldest_index_major
from migrator.discovery import Facts, IndexFacts
from migrator.spec import MigrationSpec, Problem

if TYPE_CHECKING:
    from migrator.planner import IndexMove


def created_version(created: str) -> tuple[int, str] | None:
    """(major, text) of an `index.version.created` id: "6082399" -> (6, "6.8.23"). From 8.11 index
    versions are ids of their own (e.g. 8537000 for 8.19): the major is still the millions."""
    if not created.isdigit():
        return None
    number = int(created)
    major = number // 1_000_000
    if number < 8_500_000:
        return major, f"{major}.{number // 10_000 % 100}.{number // 100 % 100}"
    return major, f"{major}.x (index version {number})"


def compatibility_findings(facts: Facts, moves: list[IndexMove]) -> Findings:
    """Rule 3: the destination reads indices created by its own major or the one before only (OpenSearch:
    see `compatibility.oldest_index_major`), whatever version the cluster holding them runs now."""
    found = Findings()
    destination = Version.parse(facts.destination.version)
    for move in moves:
        created = created_version(facts.source.indices[move.source].version_created)
        oldest = oldest_index_major(destination)
        if created and created[0] < oldest:
            found.problems.append(
                Problem(
                    "snapshot.indices",
                    f"{move.source!r} was created by Elasticsearch {created[1]}; {destination} cannot read it "
                    f"(it restores indices created by Elasticsearch {oldest}.x or later: the restore answers "
                    '"cannot restore index ... because it cannot be upgraded")',
                    f"reindex {move.source!r} on the source into a new index and migrate that, or add it to "
                    "snapshot.exclude",
                )
            )
    return found


# -- rule 4: closed source indices ----------------------------------------------------------------------


def closed_index_findings(spec: MigrationSpec, facts: Facts, selected: list[str]) -> tuple[list[str], Findings]:
    """Rule 4: the closed indices among `selected`, as `snapshot.closed_indices` says: `refuse` (the
    default) names them as problems, `skip` leaves them out (the planner records why), `restore_closed`
    moves them and warns. Returns the closed ones (to leave out or to restore closed) and the findings."""
    closed = [name for name in selected if facts.source.indices[name].status == "close"]
    found = Findings()
    mode = spec.snapshot.closed_indices
    if closed and mode == "restore_closed" and spec.cutover.enabled:
        found.problems.append(
            Problem(
                "snapshot.closed_indices",
                f"closed indices take no writes and cannot be write-blocked for a cutover: {', '.join(closed)}",
                "migrate them in a plan without cutover, or set snapshot.closed_indices: skip",
            )
        )
        return closed, found
    if closed and mode == "restore_closed" and not Version.parse(facts.source.version).keeps_closed_shards:
        found.problems.append(
            Problem(
                "snapshot.closed_indices",
                f"Elasticsearch {facts.source.version} cannot snapshot a closed index (it has no shard before 7.2: "
                f'"blocked by: [FORBIDDEN/4/index closed]"): {", ".join(closed)}',
                "open them on the source first (POST <index>/_open), or set snapshot.closed_indices: skip",
            )
        )
        return closed, found
    snapshotted = Version.parse(facts.source.version).keeps_closed_shards
    restore_closed = "restore_closed (restored, validated by what a closed index shows, closed again) or "
    for name in closed:
        index = facts.source.indices[name]
        about = f"{name!r} is closed on the source ({index.docs} documents, {human_size(index.primary_bytes)})"
        if not snapshotted:  # no shard, no statistics before 7.2 (see Version.keeps_closed_shards)
            about = f"{name!r} is closed on the source (Elasticsearch {facts.source.version}: it cannot be snapshotted)"
        if mode == "refuse":
            found.problems.append(
                Problem(
                    "snapshot.closed_indices",
                    about,
                    f"set snapshot.closed_indices: {restore_closed if snapshotted else ''}skip, or open it on the "
                    "source (POST <index>/_open), or exclude it",
                )
            )
        elif mode == "restore_closed":
            found.warnings.append(f"{about}: restored, validated from its statistics and closed again")
    return closed, found


# -- rule 7: system indices -----------------------------------------------------------------------------

# The system indices Elasticsearch registers (its SystemIndexDescriptor patterns, 7.10 to 9.x): from
# 8.0 they move only as feature states, never as plain indices.
SYSTEM_PATTERNS = (
    ".tasks*",
    ".security*",
    ".kibana*",
    ".watches*",
    ".triggered_watches*",
    ".ml-config*",
    ".ml-meta*",
    ".ml-inference-*",
    ".transform-internal-*",
    ".async-search*",
    ".geoip_databases*",
    ".fleet-*",
    ".enrich-*",
    ".snapshot-blob-cache*",
    ".logstash*",
    ".apm-agent-configuration*",
    ".apm-custom-link*",
    ".synonyms*",
    ".inference*",
    ".secrets-inference*",
    ".connector*",
    ".search-app*",
    ".query-rules*",
    ".reporting-*",
)


SYSTEM_INDEX = re.compile("|".join(".*".join(map(re.escape, p.split("*"))) for p in SYSTEM_PATTERNS))


def is_system(index: IndexFacts) -> bool:
    """Flagged so by its cluster, or named like one of SYSTEM_PATTERNS."""
    return index.system or (index.name.startswith(".") and SYSTEM_INDEX.fullmatch(index.name) is not None)


def system_index_findings(moves: list[IndexMove], facts: Facts) -> Findings:
    """Rule 7: a selected system index (flagged so by the source, or in the destination's list)."""
    found = Findings()
    for move in moves:
        if is_system(facts.source.indices[move.source]):
            found.problems.append(
                Problem(
                    "snapshot.indices",
                    f"{move.source!r} is a system index: Elasticsearch {facts.destination.version} manages it "
                    "itself (from 8.0 system indices move only as feature states); restored as a plain index it "
                    "fails the system-index upgrade, and 8.x refuses it in a snapshot's index list",
                    f"leave {move.source!r} out of snapshot.indices (or add it to snapshot.exclude)",
                )
            )
    return found
