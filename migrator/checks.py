"""The dry run's model of the destination: what Elasticsearch would refuse, predicted before anything changes.

Planner-side and pure: each rule is one function of the plan spec, the discovered facts (discovery.py)
and the index moves the planner chose, and returns `Findings` (problems refuse the plan with exit 2,
warnings are shown). The planner calls `check_plan` once its moves are known, and
`closed_index_findings` while selecting. Every message says what Elasticsearch would answer and the
plan change or command that fixes it. The facts come from Elasticsearch's own rules, checked against
the test bed's 7.17, 8.19 and 9.5 nodes (see tests/test_checks_e2e.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrator.clients.es import Version
from migrator.discovery import ClusterFacts, Facts, IndexFacts, NodeFacts
from migrator.spec import MigrationSpec, Problem

if TYPE_CHECKING:
    from migrator.planner import IndexMove


@dataclass
class Findings:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: Findings) -> Findings:
        self.problems.extend(other.problems)
        self.warnings.extend(other.warnings)
        return self


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def rename_field(spec: MigrationSpec) -> str:
    return "restore.rename_replacement" if spec.restore.rename_pattern else "snapshot.indices"


# -- rule 1: target names -------------------------------------------------------------------------------

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


# -- rule 3: index compatibility, index by index --------------------------------------------------------


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
    """Rule 3: the destination reads indices created by its own major or the one before only, whatever
    version the cluster holding them runs now."""
    found = Findings()
    destination = Version.parse(facts.destination.version)
    for move in moves:
        created = created_version(facts.source.indices[move.source].version_created)
        if created and created[0] < destination.major - 1:
            found.problems.append(
                Problem(
                    "snapshot.indices",
                    f"{move.source!r} was created by Elasticsearch {created[1]}; {destination} cannot read it "
                    f"(it restores indices created by {destination.major - 1}.x or later: Elasticsearch answers "
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
    for name in closed:
        index = facts.source.indices[name]
        about = f"{name!r} is closed on the source ({index.docs} documents, {human_size(index.primary_bytes)})"
        if mode == "refuse":
            found.problems.append(
                Problem(
                    "snapshot.closed_indices",
                    about,
                    "set snapshot.closed_indices: restore_closed (restored, validated by what a closed index shows, "
                    "closed again) or skip, or open it on the source (POST <index>/_open), or exclude it",
                )
            )
        elif mode == "restore_closed":
            found.warnings.append(f"{about}: restored, validated from its statistics and closed again")
    return closed, found


# -- rule 5: destination capacity -----------------------------------------------------------------------


def replicas_of(spec: MigrationSpec, index: IndexFacts) -> int:
    """Replicas of a restored index once the plan is done: restore.index_settings, else the source's,
    raised by finish.replicas."""
    restore = {key.removeprefix("index."): value for key, value in spec.restore.index_settings.items()}
    restored = int(str(restore.get("number_of_replicas", index.settings.get("index.number_of_replicas", 1))))
    return max(restored, spec.finish.replicas or 0)


def headroom(node: NodeFacts, cluster: ClusterFacts) -> int:
    """Bytes a data node can take before its high disk watermark (all it has free when the disk
    threshold decider is off)."""
    if not cluster.disk_threshold_enabled:
        return node.disk_available_bytes
    mark = cluster.high_watermark.strip().lower()
    if mark.endswith("%"):
        reserve = int(node.disk_total_bytes * (100 - float(mark[:-1])) / 100)
    elif re.fullmatch(r"0?\.\d+|1(\.0+)?", mark):
        reserve = int(node.disk_total_bytes * (1 - float(mark)))
    else:
        reserve = _bytes(mark)
    return max(0, node.disk_available_bytes - reserve)


def _bytes(text: str) -> int:
    match = re.fullmatch(r"([\d.]+)\s*([kmgtp]?)b?", text)
    if not match:
        return 0
    return int(float(match.group(1)) * 1024 ** " kmgtp".index(match.group(2) or " "))


def capacity(spec: MigrationSpec, facts: Facts, moves: list[IndexMove]) -> dict[str, Any]:
    """The destination's capacity check, as figures (the JSON plan's `capacity`, the runbook's table):
    `data_nodes`; `shards_now` (shard copies there now, `_cluster/health`), `shards_added` (the moves'
    primaries x (1 + replicas once finished)), `shard_limit` (`cluster.max_shards_per_node` x data
    nodes, None when unknown); `bytes_needed` (primary bytes x the same copies) and `bytes_room` (free
    bytes below each data node's high watermark, summed; None when unknown), `room_is` (what the room
    is measured against)."""
    destination = facts.destination
    copies = [(move, 1 + replicas_of(spec, facts.source.indices[move.source])) for move in moves]
    nodes = len(destination.data_nodes)
    if destination.data_nodes:
        room: int | None = sum(headroom(node, destination) for node in destination.data_nodes)
        room_is = (
            f"free below the high disk watermark ({destination.high_watermark})"
            if destination.disk_threshold_enabled
            else "free (the disk threshold decider is off)"
        )
    else:
        room, room_is = destination.free_disk_bytes, "free"
    return {
        "data_nodes": nodes,
        "shards_now": destination.shards,
        "shards_added": sum(move.primary_shards * count for move, count in copies),
        "shard_limit": destination.max_shards_per_node * nodes if destination.max_shards_per_node and nodes else None,
        "bytes_needed": sum(move.primary_bytes * count for move, count in copies),
        "bytes_room": room,
        "room_is": room_is,
    }


def capacity_findings(spec: MigrationSpec, facts: Facts, moves: list[IndexMove]) -> Findings:
    """Rule 5, shards and disk: the shard copies the plan adds (replicas included) against
    `cluster.max_shards_per_node` x data nodes less the shards there now, and the bytes against the
    data nodes' room below their high watermark (see `capacity`)."""
    found = Findings()
    figures = capacity(spec, facts, moves)
    limit, now, added = figures["shard_limit"], figures["shards_now"], figures["shards_added"]
    if limit is not None and now + added > limit:
        found.problems.append(
            Problem(
                "destination",
                f"this plan adds {added} shards but the destination has {now}/{limit} "
                f"(cluster.max_shards_per_node {facts.destination.max_shards_per_node} x {figures['data_nodes']} "
                "data nodes): Elasticsearch refuses the restore (validation_exception: this action would add "
                f"[{added}] shards, but this cluster currently has [{now}]/[{limit}] maximum normal shards open)",
                'raise the limit (PUT _cluster/settings {"persistent": {"cluster.max_shards_per_node": N}}), '
                "add data nodes, lower the replicas (restore.index_settings, finish.replicas) or move fewer indices",
            )
        )
    room, needed = figures["bytes_room"], figures["bytes_needed"]
    if room is not None and needed > room:
        found.problems.append(
            Problem(
                "destination",
                f"the restored indices need {human_size(needed)} (primaries and their replicas) but the data nodes "
                f"have {human_size(room)} {figures['room_is']}: Elasticsearch would leave shards unassigned",
                "free disk space on the destination, add data nodes, or lower the replicas (restore.index_settings, "
                "finish.replicas)",
            )
        )
    return found


ALLOCATION = "index.routing.allocation."
FILTERS = ("require", "include", "exclude")


def restored_settings(spec: MigrationSpec, index: IndexFacts) -> dict[str, str]:
    """The allocation settings the restored index carries: the source's, less restore.ignore_index_settings,
    with restore.index_settings over them."""
    ignored = [re.compile(".*".join(map(re.escape, _full(p).split("*")))) for p in spec.restore.ignore_index_settings]
    settings = {k: v for k, v in index.settings.items() if not any(p.fullmatch(k) for p in ignored)}
    for key, value in spec.restore.index_settings.items():
        settings[_full(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return {k: v for k, v in settings.items() if k.startswith(ALLOCATION) and v != ""}


def _full(key: str) -> str:
    return key if key.startswith("index.") else f"index.{key}"


def node_values(node: NodeFacts, attribute: str) -> list[str]:
    """A node's values for an allocation filter attribute (built-ins `_name`, `_ip`, `_host`... or node.attr.*)."""
    builtin = {
        "_name": [node.name],
        "_host": [node.host],
        "_ip": [node.ip],
        "_host_ip": [node.ip],
        "_publish_ip": [node.ip],
        "_tier": node.roles,
    }
    if attribute in builtin:
        return builtin[attribute]
    return [node.attributes[attribute]] if attribute in node.attributes else []


def _matches(patterns: str, values: list[str]) -> bool:
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    return any(re.fullmatch(".*".join(map(re.escape, p.split("*"))), v) for p in wanted for v in values)


def allowed_nodes(settings: dict[str, str], nodes: list[NodeFacts]) -> list[NodeFacts]:
    """The data nodes the allocation filters and tier preference of `settings` let a shard onto."""
    allowed = []
    for node in nodes:
        ok = True
        for key, value in settings.items():
            parts = key.removeprefix(ALLOCATION).split(".", 1)
            if len(parts) != 2 or parts[0] not in FILTERS:
                continue
            kind, attribute = parts
            if attribute == "_tier_preference":
                tiers = [t.strip() for t in value.split(",") if t.strip()]
                ok &= not tiers or "data" in node.roles or any(t in node.roles for t in tiers)
                continue
            hit = _matches(value, node_values(node, attribute))
            ok &= hit if kind in ("require", "include") else not hit
        if ok:
            allowed.append(node)
    return allowed


def allocation_findings(spec: MigrationSpec, facts: Facts, moves: list[IndexMove]) -> Findings:
    """Rule 5, allocation: filters and `total_shards_per_node` a restored index would carry that the
    destination's data nodes cannot satisfy (its shards would stay unassigned, the restore never ends)."""
    found = Findings()
    nodes = facts.destination.data_nodes
    if not nodes:
        return found
    seen: dict[tuple[tuple[str, str], ...], list[NodeFacts]] = {}
    for move in moves:
        index = facts.source.indices[move.source]
        settings = restored_settings(spec, index)
        filters = {k: v for k, v in settings.items() if k.removeprefix(ALLOCATION).split(".")[0] in FILTERS}
        key = tuple(sorted(filters.items()))  # indices mostly share their filters: each set is matched once
        if key not in seen:
            seen[key] = allowed_nodes(filters, nodes)
        allowed = seen[key]
        if not allowed:
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(filters.items()))
            found.problems.append(
                Problem(
                    "restore.ignore_index_settings",
                    f"{move.source!r} carries allocation filters no destination data node satisfies ({shown}): "
                    "its shards would stay unassigned",
                    'add them to restore.ignore_index_settings (e.g. "index.routing.allocation.require.*"), or set '
                    "other values with restore.index_settings",
                )
            )
            continue
        per_node = settings.get(ALLOCATION + "total_shards_per_node", "-1")
        if per_node.lstrip("-").isdigit() and int(per_node) >= 0:
            copies = move.primary_shards * (1 + replicas_of(spec, index))
            if copies > int(per_node) * len(allowed):
                found.problems.append(
                    Problem(
                        "restore.index_settings",
                        f"{move.source!r} has {copies} shard copies but index.routing.allocation.total_shards_per_node "
                        f"{per_node} x {len(allowed)} eligible data nodes holds {int(per_node) * len(allowed)}: "
                        "some would stay unassigned",
                        'set restore.index_settings {"index.routing.allocation.total_shards_per_node": -1} (or a '
                        "higher value), or lower the replicas",
                    )
                )
    return found


# -- rule 6: restore settings the plan passes through ---------------------------------------------------

# Elasticsearch's restore refuses to change these ("cannot modify setting [...] on restore") ...
UNMODIFIABLE = (
    "index.number_of_shards",
    "index.version.created",
    "index.uuid",
    "index.creation_date",
    "index.history.uuid",
    "index.soft_deletes.enabled",
)
# ... and to remove these as well ("cannot remove setting [...] on restore").
UNREMOVABLE = (*UNMODIFIABLE, "index.number_of_replicas", "index.auto_expand_replicas")
# Index settings Elasticsearch registers (its index modules' documentation); a name outside these is
# archived on restore (`archived.index.*`) and has no effect.
KNOWN_SETTINGS = {
    "index.number_of_replicas",
    "index.auto_expand_replicas",
    "index.refresh_interval",
    "index.codec",
    "index.hidden",
    "index.priority",
    "index.default_pipeline",
    "index.final_pipeline",
    "index.max_result_window",
    "index.max_inner_result_window",
    "index.max_rescore_window",
    "index.max_docvalue_fields_search",
    "index.max_script_fields",
    "index.max_ngram_diff",
    "index.max_shingle_diff",
    "index.max_refresh_listeners",
    "index.max_terms_count",
    "index.max_regex_length",
    "index.max_adjacency_matrix_filters",
    "index.max_slices_per_scroll",
    "index.gc_deletes",
    "index.load_fixed_bitset_filters_eagerly",
    "index.shard.check_on_startup",
    "index.routing_partition_size",
    "index.soft_deletes.retention_lease.period",
    "index.soft_deletes.retention.operations",
    "index.default_field",
    "index.frozen",
    "index.mode",
    "index.time_series.start_time",
    "index.time_series.end_time",
    "index.search.idle.after",
    "index.search.throttled",
    "index.query.default_field",
    "index.write.wait_for_active_shards",
    "index.verified_before_close",
    "index.provided_name",
    "index.format",
}
KNOWN_PREFIXES = (
    "index.analysis.",
    "index.similarity.",
    "index.routing.",
    "index.blocks.",
    "index.lifecycle.",
    "index.mapping.",
    "index.merge.",
    "index.search.slowlog.",
    "index.indexing.slowlog.",
    "index.translog.",
    "index.unassigned.",
    "index.store.",
    "index.queries.",
    "index.highlight.",
    "index.sort.",
    "index.shard.",
    "index.query.",
    "index.requests.",
    "index.recovery.",
    "index.fielddata.",
    "index.plugin.",
    "index.look_ahead_time",
    "index.time_series.",
    "index.soft_deletes.",
    "index.allocation.",
    "index.ccr.",
    "index.xpack.",
)


def restore_settings_findings(spec: MigrationSpec) -> Findings:
    """Rule 6: restore.index_settings and restore.ignore_index_settings Elasticsearch refuses on
    restore (problems) and setting names it does not know (warnings)."""
    found = Findings()
    for key in spec.restore.index_settings:
        full = _full(key)
        if full in UNMODIFIABLE:
            found.problems.append(
                Problem(
                    f"restore.index_settings.{key}",
                    f"Elasticsearch refuses to change {full} on restore (snapshot_restore_exception: cannot modify "
                    "setting)",
                    f"remove {key} from restore.index_settings (reindex on the destination to change it)",
                )
            )
        elif full not in KNOWN_SETTINGS and not full.startswith(KNOWN_PREFIXES):
            found.warnings.append(
                f"restore.index_settings.{key}: not an index setting Elasticsearch knows; the restored index "
                f"would keep it as archived.{full}, with no effect (check the spelling)"
            )
    for pattern in spec.restore.ignore_index_settings:
        matcher = re.compile(".*".join(map(re.escape, _full(pattern).split("*"))))
        refused = [name for name in UNREMOVABLE if matcher.fullmatch(name)]
        if refused:
            found.problems.append(
                Problem(
                    "restore.ignore_index_settings",
                    f"{pattern!r} would remove {', '.join(refused)}, which Elasticsearch refuses on restore "
                    "(snapshot_restore_exception: cannot remove setting)",
                    f"remove {pattern!r} from restore.ignore_index_settings (set a value with restore.index_settings)",
                )
            )
    return found


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


# -- all rules ------------------------------------------------------------------------------------------


def check_plan(spec: MigrationSpec, facts: Facts, moves: list[IndexMove]) -> Findings:
    """Rules 1, 2, 3, 5, 6 and 7 over the planned moves (rule 4 runs during selection)."""
    found = Findings()
    for findings in _each_rule(spec, facts, moves):
        found.extend(findings)
    return found


def _each_rule(spec: MigrationSpec, facts: Facts, moves: list[IndexMove]) -> Iterable[Findings]:
    yield target_name_findings(spec, moves)
    yield clash_findings(spec, facts, moves)
    yield compatibility_findings(facts, moves)
    yield capacity_findings(spec, facts, moves)
    yield allocation_findings(spec, facts, moves)
    yield restore_settings_findings(spec)
    yield system_index_findings(moves, facts)
