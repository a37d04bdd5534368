"""The planner: a pure function from the plan spec and discovered facts to a DAG of steps.

No I/O here. It selects the indices (wildcards, exclusions, `.`-prefixed indices only when named),
computes each target name with Elasticsearch's own rename semantics, refuses what Elasticsearch
would refuse (a pair of versions that migrator.compatibility refuses, two sources renamed to one
target, a target that already exists, and the rules of migrator/checks) and lays out the steps as
a networkx DAG with stable node ids, so checkpoints survive a re-plan, and a plan hash, so `resume`
notices a changed plan.

Over 400 lines: the plan and the DAG are built here together (`build_plan`, `build_graph`); the rules it
checks live in migrator/checks, the selections in migrator/selection.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import networkx as nx

from migrator.aliases import alias_problems
from migrator.checks import check_plan, closed_index_findings
from migrator.checks.capacity import restored_replicas
from migrator.checks.repository import (
    foreign_registration_problems,
    snapshot_name_problems,
    writable_location_problems,
)
from migrator.compatibility import refusal
from migrator.dag import (  # the node ids, defined beside NodeId; importable from here as before
    ALIAS_SWITCH,
    BULK,
    CUTOVER,
    CUTOVER_REPLICA_VERIFY,
    CUTOVER_REPLICATION,
    CUTOVER_SNAPSHOT_CREATE,
    CUTOVER_SNAPSHOT_WAIT,
    CUTOVER_STORAGE_VERIFY,
    DESTINATION_REPOSITORY,
    FINISH,
    METADATA_PIPELINES,
    METADATA_TEMPLATES,
    PREFLIGHT,
    REPLICA_VERIFY,
    REPLICATION,
    SNAPSHOT_CREATE,
    SNAPSHOT_WAIT,
    SOURCE_REPOSITORY,
    STORAGE_VERIFY,
    WRITE_BLOCK,
    StepKind,
    close_id,
    cutover_recovery_id,
    cutover_restore_id,
    cutover_snapshot_name,
    cutover_validate_id,
    recovery_id,
    restore_batch_id,
    restore_id,
    validate_id,
)
from migrator.discovery import Facts, IndexFacts
from migrator.pipelines import plan_pipelines
from migrator.rename import RenameError, RenameRule
from migrator.spec import MigrationSpec, Problem, render_snapshot_name
from migrator.templates import plan_templates


def snapshot_names(spec: MigrationSpec, snapshot: str, cutover_attempt: int = 1) -> tuple[str, ...]:
    """The snapshots a run of the plan takes: its snapshot and, with a cutover, the incremental one."""
    if spec.cutover.enabled:
        return (snapshot, cutover_snapshot_name(snapshot, cutover_attempt))
    return (snapshot,)


def phase_nodes(graph: nx.DiGraph, phase: str) -> set[str]:
    return {node for node, data in graph.nodes(data=True) if data.get("phase") == phase}


@dataclass(frozen=True)
class IndexMove:
    """One index: where it comes from, where it goes, and how big it is."""

    source: str
    target: str
    docs: int
    primary_bytes: int
    primary_shards: int


@dataclass
class MigrationPlan:
    spec: MigrationSpec
    facts: Facts
    snapshot: str
    moves: list[IndexMove]
    skipped: dict[str, str]  # source index -> why it is left out
    graph: nx.DiGraph
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def plan_hash(self) -> str:
        payload = {
            "spec": json.loads(self.spec.canonical_json()),
            "moves": [asdict(move) for move in self.moves],
            "versions": [self.facts.source.version, self.facts.destination.version],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def total_bytes(self) -> int:
        return sum(move.primary_bytes for move in self.moves)

    @property
    def total_shards(self) -> int:
        return sum(move.primary_shards for move in self.moves)


def wildcard(pattern: str) -> re.Pattern[str]:
    """Elasticsearch index wildcards: `*` only."""
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def select(spec: MigrationSpec, facts: Facts) -> tuple[list[str], dict[str, str], list[Problem]]:
    """The source indices to move, the ones left out (and why), and problems."""
    return select_names(spec, sorted(facts.source.indices))


def select_names(spec: MigrationSpec, available: list[str]) -> tuple[list[str], dict[str, str], list[Problem]]:
    """`select` among these source index names (sorted): the cutover asks it again of the names there now."""
    selected: list[str] = []
    skipped: dict[str, str] = {}
    problems: list[Problem] = []
    excludes = [wildcard(pattern) for pattern in spec.snapshot.exclude]
    for position, pattern in enumerate(spec.snapshot.indices):
        matcher = wildcard(pattern)
        matched = [name for name in available if matcher.match(name)]
        if "*" in pattern:
            for name in [n for n in matched if n.startswith(".")]:
                skipped[name] = f"`.`-prefixed (system) index: list it by name to include it (matched {pattern!r})"
            matched = [name for name in matched if not name.startswith(".")]
        if not matched and not spec.snapshot.ignore_unavailable:
            problems.append(
                Problem(
                    f"snapshot.indices[{position}]",
                    f"{pattern!r} matches no index on the source",
                    "correct the name or pattern, or set snapshot.ignore_unavailable: true",
                )
            )
        for name in matched:
            if any(ex.match(name) for ex in excludes):
                skipped[name] = "excluded by snapshot.exclude"
            elif name not in selected:
                selected.append(name)
    for name in selected:
        skipped.pop(name, None)
    return sorted(selected), skipped, problems


def build_plan(
    spec: MigrationSpec,
    facts: Facts,
    when: datetime,
    *,
    snapshot_name: str | None = None,
    owned_targets: frozenset[str] = frozenset(),
    owned_snapshots: Mapping[str, str | None] | None = None,
    owned_repositories: frozenset[str] = frozenset(),
    cutover_attempt: int = 1,
) -> MigrationPlan:
    """The whole plan. `owned_targets` are destination indices this migration restored itself,
    `owned_snapshots` (name -> uuid, see `checks.repository.snapshot_name_problems`) the snapshots it took,
    `owned_repositories` the clusters (source, destination) where it registered `repository.name` itself;
    `cutover_attempt` counts cutovers rolled back (each attempt takes its own incremental snapshot)."""
    problems: list[Problem] = []
    warnings: list[str] = []
    rule = refusal(facts.source.version, facts.destination.version)
    if rule:
        problems.append(Problem("destination", rule, "follow the way out, or a destination of README's table"))
    snapshot = snapshot_name or render_snapshot_name(spec.snapshot.name, spec.name, when)

    selected, skipped, selection_problems = select(spec, facts)
    problems.extend(selection_problems)
    closed, closed_findings = closed_index_findings(spec, facts, selected)
    if spec.snapshot.closed_indices == "skip":
        skipped.update({name: "closed on the source (snapshot.closed_indices: skip)" for name in closed})
        selected = [name for name in selected if name not in closed]

    rename = RenameRule(spec.restore.rename_pattern, spec.restore.rename_replacement)
    moves: list[IndexMove] = []
    by_target: dict[str, str] = {}
    for name in selected:
        try:
            target = rename.apply(name)
        except RenameError as exc:
            problems.append(Problem("restore.rename_replacement", str(exc), "fix the rename rule"))
            continue
        if target in by_target:
            problems.append(
                Problem(
                    "restore.rename_pattern",
                    f"{by_target[target]!r} and {name!r} would both be restored as {target!r}",
                    "change the rename rule so every target name is distinct",
                )
            )
            continue
        by_target[target] = name
        existing = facts.destination.indices.get(target)
        if existing is not None and target not in owned_targets:
            if spec.restore.if_exists == "skip":
                skipped[name] = f"target {target!r} already exists on the destination (restore.if_exists: skip)"
                continue
            problems.append(
                Problem(
                    "restore.if_exists",
                    f"{name!r} would be restored as {target!r}, which already exists on the destination "
                    f"({existing.status})",
                    "choose a rename rule to a new name, delete that index, or set restore.if_exists: skip",
                )
            )
            continue
        facts_of = facts.source.indices[name]
        moves.append(IndexMove(name, target, facts_of.docs, facts_of.primary_bytes, facts_of.primary_shards))

    found = check_plan(spec, facts, moves).extend(closed_findings)
    problems.extend(found.problems)
    warnings.extend(found.warnings)
    templates = plan_templates(
        spec.metadata,
        facts.source.metadata,
        facts.destination.metadata,
        (facts.source.version, facts.destination.version),
        sorted({name for move in moves for name in (move.source, move.target)}),
    )
    problems.extend(templates.problems)
    warnings.extend(templates.warnings)
    pipelines = plan_pipelines(
        spec.metadata,
        facts.source.metadata,
        facts.destination.metadata,
        (facts.source.version, facts.destination.version),
        [move.source for move in moves],
        [m.to_params() for m in templates.moves],
    )
    problems.extend(pipelines.problems)
    warnings.extend(pipelines.warnings)

    problems.extend(foreign_registration_problems(spec, facts, owned_repositories))
    problems.extend(writable_location_problems(spec, facts))
    names = snapshot_names(spec, snapshot, cutover_attempt)
    problems.extend(snapshot_name_problems(spec, facts, names, owned_snapshots or {}))
    blocks = {name: index.blocks for name, index in facts.source.indices.items()}
    alias_refusals, alias_warnings = alias_problems(spec, moves, skipped, blocks)
    problems.extend(alias_refusals)
    warnings.extend(alias_warnings)
    if facts.source.health == "red":
        warnings.append("the source cluster is red: some shards may be missing from the snapshot")

    return MigrationPlan(
        spec=spec,
        facts=facts,
        snapshot=snapshot,
        moves=moves,
        skipped=skipped,
        graph=build_graph(
            spec,
            moves,
            cutover_snapshot_name(snapshot, cutover_attempt),
            frozenset(closed),
            [m.to_params() for m in templates.moves],
            [m.to_params() for m in pipelines.moves],
            {move.source: restored_replicas(spec, facts.source.indices[move.source]) for move in moves},
            recovery_order(spec, moves, facts.source.indices),
        ),
        problems=problems,
        warnings=warnings,
    )


def build_graph(
    spec: MigrationSpec,
    moves: list[IndexMove],
    cutover_snapshot: str = "",
    closed: frozenset[str] = frozenset(),
    templates: list[dict[str, Any]] | None = None,
    pipelines: list[dict[str, Any]] | None = None,
    replicas: Mapping[str, int] | None = None,
    batch_order: list[IndexMove] | None = None,
) -> nx.DiGraph:
    """The DAG. Every node carries its `kind` (the step class), `params` and `phase`: `bulk` (the copy,
    while the source takes writes) or, when the plan has a cutover, `cutover` (the write freeze).
    `closed`: source indices closed on the source, restored and then closed again (`close[<target>]`);
    `templates` (the `TemplateMove`s as params) adds `metadata.templates` before every restore, `pipelines`
    (the `PipelineMove`s as params) `metadata.pipelines` before it; `replicas` (source index -> replicas its
    restore gives it): a recovery of an open index with replicas follows them too (param `replicas`)."""
    graph: nx.DiGraph = nx.DiGraph()
    two_phases = spec.cutover.enabled

    def add(node: str, kind: StepKind, phase: str = BULK, **params: Any) -> str:
        graph.add_node(node, kind=kind, params=params, phase=phase)
        return node

    chain = [PREFLIGHT, SOURCE_REPOSITORY, SNAPSHOT_CREATE, SNAPSHOT_WAIT, STORAGE_VERIFY]
    for node in chain:
        add(node, StepKind(node))  # the shared chain's ids are their kinds
    chain += replication_nodes(spec, add, REPLICATION, REPLICA_VERIFY, BULK)
    chain.append(add(DESTINATION_REPOSITORY, StepKind.DESTINATION_REPOSITORY))
    nx.add_path(graph, chain)
    metadata, if_exists = [PREFLIGHT], spec.metadata.if_exists
    if pipelines:
        metadata.append(add(METADATA_PIPELINES, StepKind.METADATA_PIPELINES, moves=pipelines, if_exists=if_exists))
    if templates:
        metadata.append(add(METADATA_TEMPLATES, StepKind.METADATA_TEMPLATES, templates=templates, if_exists=if_exists))
    if len(metadata) > 1:
        nx.add_path(graph, [*metadata, DESTINATION_REPOSITORY])
    finish = spec.finish
    wants_finish = bool(
        finish.replicas is not None
        or (finish.aliases and not two_phases)
        or finish.delete_snapshot
        or finish.unregister_repositories
    )
    last_phase = CUTOVER if two_phases else BULK
    bulk_ends: list[str] = []
    in_order = batch_order if batch_order is not None else moves
    for number, batch in enumerate(restore_batches(in_order, spec.restore.batch_indices, spec.restore.batch_bytes), 1):
        members = [{"source": move.source, "target": move.target} for move in batch]
        batch_node = add(restore_batch_id(number), StepKind.RESTORE_BATCH, members=members)
        graph.add_edge(DESTINATION_REPOSITORY, batch_node)
        # The batches have slots of their own in the executor: restores keep going while restored indices
        # are followed and validated.
        graph.nodes[batch_node].update(lane=number, slots="restores")
        for move in batch:
            bulk_ends.append(
                add_index(spec, graph, add, move, batch_node, number, two_phases, move.source in closed, replicas)
            )
        if spec.validate.enabled:
            add_validation_waves(graph, [move.target for move in batch if move.source not in closed])
    if not bulk_ends:
        bulk_ends.append(DESTINATION_REPOSITORY)
    if two_phases:
        bulk_ends = [add_cutover(spec, graph, add, moves, bulk_ends, cutover_snapshot)]
    if wants_finish:
        add(FINISH, StepKind.FINISH, last_phase, cutover_snapshot=cutover_snapshot if two_phases else "")
        for end in bulk_ends:
            graph.add_edge(end, FINISH)
    return graph


def recovery_order(spec: MigrationSpec, moves: list[IndexMove], indices: Mapping[str, IndexFacts]) -> list[IndexMove]:
    """The moves in the order the destination recovers their shards, which the restore batches follow.

    Every restore's shards wait in one queue on the destination, taken in Elasticsearch's order (the
    PriorityComparator of its gateway package, the same in 5.x to 9.x and OpenSearch): system indices
    first, then the higher `index.priority`, then the newer `index.creation_date` (a restore keeps the
    source's), then the name in reverse. Batches cut in name order put the oldest indices in the first
    batch, whose request then answers last and holds a `restore.parallel` slot the whole run (2,000 indices:
    293 s against 25-30 s for every other batch). `restore.index_settings` may set the priority."""
    restored = spec.restore.index_settings.get("index.priority")

    def rank(move: IndexMove) -> tuple[bool, int, int, str]:
        index = indices[move.source]
        priority = int(restored) if isinstance(restored, int | str) and str(restored).isdigit() else index.priority
        return index.system, priority, index.creation_date, move.target

    return sorted(moves, key=rank, reverse=True)


def restore_batches(moves: list[IndexMove], most_indices: int, most_bytes: int) -> list[list[IndexMove]]:
    """The moves in order, cut into batches of at most `most_indices` indices and `most_bytes` primary
    bytes (an index larger than that is a batch of its own): each batch is one restore request."""
    batches: list[list[IndexMove]] = []
    size = 0
    for move in moves:
        if not batches or len(batches[-1]) >= most_indices or (batches[-1] and size + move.primary_bytes > most_bytes):
            batches.append([])
            size = 0
        batches[-1].append(move)
        size += move.primary_bytes
    return batches


T = TypeVar("T")

# A restore batch's open indices are validated in waves, in the batch's order (the order the destination
# restores them): a wave's validation begins once every index of the wave has recovered and reads the wave
# together (one joined read per kind and side, migrator.steps.validation_reads), while the batch's later
# indices still restore (issue 17, pipelining). A wave holds SMALLEST_WAVE indices (two rounds of the
# destination's default 4 primaries restored at once per node, `node_initial_primaries_recoveries`, rounded
# up), or more in a large batch, which has WAVES_PER_BATCH waves: at most 6 x WAVES_PER_BATCH joined reads.
SMALLEST_WAVE = 10
WAVES_PER_BATCH = 10


def wave_size(count: int) -> int:
    """How many of a batch's `count` open indices one validation wave holds."""
    return max(SMALLEST_WAVE, -(-count // WAVES_PER_BATCH))


def validation_waves(members: list[T]) -> list[list[T]]:
    """The open members of a restore batch (in its order) cut into waves of `wave_size`."""
    size = wave_size(len(members))
    return [members[start : start + size] for start in range(0, len(members), size)]


def add_validation_waves(graph: nx.DiGraph, targets: list[str]) -> None:
    """The first validation of each wave of `targets` (a batch's open indices) waits for the recovery of every
    index of its wave (it reads the wave together); the wave's other validations follow it (they take what it
    read). Two edges per index, not the square of a wave's size."""
    for first, *others in validation_waves(targets):
        for other in others:
            graph.add_edge(recovery_id(other), validate_id(first))
            graph.add_edge(validate_id(first), validate_id(other))


def add_index(
    spec: MigrationSpec,
    graph: nx.DiGraph,
    add: Callable[..., str],
    move: IndexMove,
    batch: str,
    lane: int,
    two_phases: bool,
    closed: bool,
    replicas: Mapping[str, int] | None = None,
) -> str:
    """One index's steps after its batch's restore: restore (its observation and checkpoint), recovery,
    validation and, for an index closed on the source (`closed`), its close, in the batch's lane (the
    executor finishes an earlier batch's indices before it starts a later batch); the recovery follows the
    replicas its restore gives it (`replicas`: source index -> count). Returns the last node."""
    params: dict[str, Any] = {"source": move.source, "target": move.target}
    if closed:
        params["closed"] = True
    restore = add(restore_id(move.target), StepKind.RESTORE, batch=batch, **params)
    copies = (replicas or {}).get(move.source, 0) if not closed else 0
    recovery = add(recovery_id(move.target), StepKind.RECOVERY, **params, **({"replicas": copies} if copies else {}))
    graph.add_edge(batch, restore)
    chain = [restore, recovery]
    if spec.validate.enabled:
        # Before a cutover the source still takes writes: its count can only be compared, not required equal.
        counts = "informational" if two_phases else "exact"
        # read with its batch's other open indices (migrator.steps.validation_reads)
        chain.append(add(validate_id(move.target), StepKind.VALIDATE, counts=counts, batch=batch, **params))
    if closed:
        chain.append(add(close_id(move.target), StepKind.CLOSE, **params))
    nx.add_path(graph, chain)
    for node in chain:
        graph.nodes[node]["lane"] = lane
    return chain[-1]


def replication_nodes(
    spec: MigrationSpec, add: Callable[..., str], replicate: str, verify: str, phase: str, **params: Any
) -> list[str]:
    """Cross-region: fill the destination's bucket (OSS replication, or migrator's copy), then verify the
    copy there, before the destination reads it. No nodes for a plan without replication."""
    if spec.replication is None:
        return []
    kind = StepKind.REPLICATION if spec.replication.method == "oss" else StepKind.REPLICA_COPY
    return [add(replicate, kind, phase, **params), add(verify, StepKind.REPLICA_VERIFY, phase, **params)]


def add_cutover(
    spec: MigrationSpec,
    graph: nx.DiGraph,
    add: Callable[..., str],
    moves: list[IndexMove],
    after: list[str],
    snapshot: str,
) -> str:
    """Phase two: block writes on the source, take the incremental snapshot, verify it, restore it over
    each destination index (closed first), follow the recoveries, require exactly equal counts, then
    switch the aliases. Returns the last node."""
    chain = [
        add(WRITE_BLOCK, StepKind.WRITE_BLOCK, CUTOVER),
        add(CUTOVER_SNAPSHOT_CREATE, StepKind.SNAPSHOT_CREATE, CUTOVER, snapshot=snapshot),
        add(CUTOVER_SNAPSHOT_WAIT, StepKind.SNAPSHOT_WAIT, CUTOVER, snapshot=snapshot),
        add(CUTOVER_STORAGE_VERIFY, StepKind.STORAGE_VERIFY, CUTOVER, snapshot=snapshot),
        *replication_nodes(spec, add, CUTOVER_REPLICATION, CUTOVER_REPLICA_VERIFY, CUTOVER, snapshot=snapshot),
    ]
    nx.add_path(graph, chain)
    for node in after:
        graph.add_edge(node, WRITE_BLOCK)
    switch = add(ALIAS_SWITCH, StepKind.ALIAS_SWITCH, CUTOVER)
    for move in moves:
        params = {"source": move.source, "target": move.target, "snapshot": snapshot, "cutover": True}
        restore = add(cutover_restore_id(move.target), StepKind.CUTOVER_RESTORE, CUTOVER, **params)
        recovery = add(cutover_recovery_id(move.target), StepKind.RECOVERY, CUTOVER, **params)
        validate = add(cutover_validate_id(move.target), StepKind.VALIDATE, CUTOVER, counts="exact", **params)
        nx.add_path(graph, [chain[-1], restore, recovery, validate, switch])
    if not moves:
        graph.add_edge(chain[-1], switch)
    return switch
