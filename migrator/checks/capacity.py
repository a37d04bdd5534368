"""Dry-run rule 5: the destination's capacity (shards against `cluster.max_shards_per_node`, bytes against
the high disk watermark) and the allocation filters a restored index carries. Pure functions of the facts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from migrator.checks.findings import Findings, full_setting, human_size, matches_any, wildcard
from migrator.discovery import ClusterFacts, Facts, IndexFacts, NodeFacts
from migrator.spec import MigrationSpec, Problem

if TYPE_CHECKING:
    from migrator.planner import IndexMove


def restored_replicas(spec: MigrationSpec, index: IndexFacts) -> int:
    """Replicas a restore gives the index: restore.index_settings, else the source's."""
    restore = {key.removeprefix("index."): value for key, value in spec.restore.index_settings.items()}
    return int(str(restore.get("number_of_replicas", index.settings.get("index.number_of_replicas", 1))))


def replicas_of(spec: MigrationSpec, index: IndexFacts) -> int:
    """Replicas of a restored index once the plan is done: restore.index_settings, else the source's,
    raised by finish.replicas."""
    return max(restored_replicas(spec, index), spec.finish.replicas or 0)


def _copies_to_add(spec: MigrationSpec, facts: Facts, move: IndexMove) -> int:
    """Copies of each primary shard the plan adds: 1 + replicas for a new target, the replicas finish.replicas adds
    to one already restored (see `capacity`)."""
    index = facts.source.indices[move.source]
    if move.target in facts.destination.indices:
        return replicas_of(spec, index) - restored_replicas(spec, index)
    return 1 + replicas_of(spec, index)


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
    is measured against). A target already on the destination (restored by this migration: a resumed or
    re-planned run) holds the copies its restore made, counted in `shards_now` and on disk: only the replicas
    finish.replicas adds are added for it."""
    destination = facts.destination
    copies = [(move, _copies_to_add(spec, facts, move)) for move in moves]
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
    nodes = figures["data_nodes"]
    short = sorted({replicas_of(spec, facts.source.indices[move.source]) for move in moves} - set(range(max(nodes, 1))))
    if nodes and short:
        found.warnings.append(
            f"{short[-1]} replica(s) of a restored index need {short[-1] + 1} data nodes but the destination has "
            f"{nodes}: Elasticsearch leaves those replicas unassigned and the indices yellow for good (fix: lower "
            "finish.replicas or index.number_of_replicas in restore.index_settings, or add data nodes)"
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
    elif facts.destination.data_nodes and moves:
        largest = max(moves, key=lambda move: move.primary_bytes / max(move.primary_shards, 1))
        shard = largest.primary_bytes // max(largest.primary_shards, 1)
        best = max(headroom(node, facts.destination) for node in facts.destination.data_nodes)
        if shard > best:
            found.problems.append(
                Problem(
                    "destination",
                    f"a shard of {largest.source!r} holds about {human_size(shard)} but no data node has more than "
                    f"{human_size(best)} {figures['room_is']}: Elasticsearch would leave it unassigned",
                    "free disk space on the largest data node, or add a data node with room for it",
                )
            )
    return found


ALLOCATION = "index.routing.allocation."
FILTERS = ("require", "include", "exclude")


def restored_settings(spec: MigrationSpec, index: IndexFacts) -> dict[str, str]:
    """The allocation settings the restored index carries: the source's, less restore.ignore_index_settings,
    with restore.index_settings over them."""
    ignored = [wildcard(full_setting(p)) for p in spec.restore.ignore_index_settings]
    settings = {k: v for k, v in index.settings.items() if not any(p.fullmatch(k) for p in ignored)}
    for key, value in spec.restore.index_settings.items():
        settings[full_setting(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return {k: v for k, v in settings.items() if k.startswith(ALLOCATION) and v != ""}


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
            hit = matches_any(value, node_values(node, attribute))
            ok &= hit if kind in ("require", "include") else not hit
        if ok:
            allowed.append(node)
    return allowed


def cluster_filters(cluster: ClusterFacts) -> dict[str, str]:
    """The cluster-level allocation filters as `index.routing.allocation.*` keys (`allowed_nodes` reads both)."""
    return {ALLOCATION + key: value for key, value in cluster.allocation_filters.items()}


def cluster_allocation_findings(spec: MigrationSpec, facts: Facts, moves: list[IndexMove]) -> Findings:
    """Rule 5, the destination's own allocation settings: `cluster.routing.allocation.enable: none` allocates no
    restored shard (the restore answers with every shard failed, "no allocations are allowed due to cluster
    setting"), `primaries`/`new_primaries` no replica a plan asks for, and cluster filters that let no data node
    in leave every shard unassigned."""
    found = Findings()
    destination = facts.destination
    if not moves:
        return found
    enable = destination.allocation_enable
    settings = 'PUT _cluster/settings {"persistent": {"%s": null}, "transient": {"%s": null}} on the destination'
    if enable == "none" or (
        enable in ("primaries", "new_primaries")
        and any(replicas_of(spec, facts.source.indices[move.source]) for move in moves)
    ):
        what = "no restored shard" if enable == "none" else "no replica (the plan asks for replicas)"
        found.problems.append(
            Problem(
                "destination",
                f"cluster.routing.allocation.enable is {enable} on the destination: {what} can be allocated, the "
                "restore would fail or never end",
                "set it back to all: " + settings % (("cluster.routing.allocation.enable",) * 2),
            )
        )
    filters = cluster_filters(destination)
    if destination.data_nodes and not allowed_nodes(filters, destination.data_nodes):
        shown = ", ".join(
            f"cluster.routing.allocation.{k}: {v}" for k, v in sorted(destination.allocation_filters.items())
        )
        key = f"cluster.routing.allocation.{sorted(destination.allocation_filters)[0]}"
        found.problems.append(
            Problem(
                "destination",
                f"the destination's allocation filters let no data node take a shard ({shown}): every restored "
                "shard would stay unassigned",
                "remove or widen them, e.g. " + settings % (key, key),
            )
        )
    return found


def allocation_findings(spec: MigrationSpec, facts: Facts, moves: list[IndexMove]) -> Findings:
    """Rule 5, allocation: filters and `total_shards_per_node` a restored index would carry that the
    destination's data nodes cannot satisfy (its shards would stay unassigned, the restore never ends)."""
    found = cluster_allocation_findings(spec, facts, moves)
    nodes = allowed_nodes(cluster_filters(facts.destination), facts.destination.data_nodes)
    if not nodes or found.problems:
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
            # the filters that alone let no node in; when only their combination does, all of them
            blocking = {k: v for k, v in filters.items() if not allowed_nodes({k: v}, nodes)} or filters
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(blocking.items()))
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
