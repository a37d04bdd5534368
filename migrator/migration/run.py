"""CLI -> migration (run) -> planner -> executor: prepare the plan to execute, record it, and execute it.

Place in the flow: CLI -> migration (run) -> planner -> executor -> steps -> clients -> state.
The first `apply` discovers the facts, plans, and records the facts, the snapshot name and the
plan hash in the state file; later runs re-plan from those recorded facts, so `resume` rebuilds
exactly the same DAG and notices a plan file that changed under it (`prepare`). `execute` takes
the lock, selects the steps of this run (migrator.selection) and hands the DAG to the executor.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import networkx as nx

from migrator.aliases import RemovedAliases
from migrator.blocks import SourceBlocks
from migrator.clients.es import build_path
from migrator.dag import RunStatus, StepKind
from migrator.discovery import Facts
from migrator.drift import drift_record, redo_named, redo_steps
from migrator.errors import NeedsAttention, PlanError
from migrator.estimate import estimate
from migrator.executor import Executor, RequestLog, RunResult
from migrator.migration.opened import Migration
from migrator.ownership import Ledger
from migrator.pipelines import pipeline_changes
from migrator.planner import MigrationPlan, build_plan
from migrator.recorded_run import own_plan_options
from migrator.redact import Redactor
from migrator.selection import phase_selection, selection
from migrator.state import StateStore
from migrator.steps import metadata_pipelines
from migrator.steps.base import ProgressSink, Step, StepContext
from migrator.steps.handoffs import HeldRequests
from migrator.steps.metadata_templates import moved_templates
from migrator.steps.restore import owned_target
from migrator.steps.source_repository import repository_bodies
from migrator.templates import template_changes


def run_started(state: StateStore) -> datetime:
    """When the recorded run began (the state's `started`, ISO 8601); NeedsAttention when the state file has
    facts but no start time (written by hand or damaged), rather than a traceback."""
    started = state.get_meta("started")
    if not started:
        raise NeedsAttention(f"{state.path} records a run without its start time; move it away to start afresh")
    return datetime.fromisoformat(started)


NOT_THE_FILE = (
    "\n  - the plan file reads the same; this version of migrator plans it differently (its steps or the "
    "indices each one moves changed)"
)


def spec_changes(recorded: Any, now: dict[str, Any], path: str = "") -> list[str]:
    """The plan file's settings that differ from those `recorded` when the run began (the canonical spec,
    secrets as ${NAME}), as `field: before -> after` lines; a field the recorded spec lacks is one this
    version of migrator added, with its default. Empty when the run recorded no spec (before 2026-11-30)."""
    if not isinstance(recorded, dict):
        return []
    changes = []
    for key in sorted(recorded.keys() | now.keys()):
        field, before, after = f"{path}{key}", recorded.get(key), now.get(key)
        if key not in recorded:
            changes.append(f"{field}: not in the run's plan (added by this version of migrator) -> {json.dumps(after)}")
        elif key not in now:
            changes.append(f"{field}: {json.dumps(before)} -> gone (this version of migrator has no such setting)")
        elif isinstance(before, dict) and isinstance(after, dict):
            changes.extend(spec_changes(before, after, f"{field}."))
        elif before != after:
            changes.append(f"{field}: {json.dumps(before)} -> {json.dumps(after)}")
    return changes


def recorded_plan(migration: Migration, state: StateStore) -> MigrationPlan | None:
    """The plan rebuilt from the facts recorded when the run began (None: no run yet)."""
    if state.get_meta("status") in (None, RunStatus.CANCELLED):
        return None
    facts = Facts.from_json(state.get_json("facts"))
    when = run_started(state)
    return build_plan(migration.spec, facts, when, **own_plan_options(state, migration.spec.repository.name))


def record_run(state: StateStore, plan: MigrationPlan, when: datetime, redactor: Redactor) -> None:
    state.set_json("facts", redactor.data(plan.facts.to_json()))
    state.set_json("spec", redactor.data(json.loads(plan.spec.canonical_json())))  # secrets as ${NAME} only
    state.set_json("nodes", list(nx.topological_sort(plan.graph)))
    state.set_json("moves", [vars(move) for move in plan.moves])
    state.set_json("warnings", plan.warnings)
    state.set_json("estimate", estimate(plan))
    state.set_meta(
        plan_name=plan.spec.name,
        plan_hash=plan.plan_hash,
        snapshot=plan.snapshot,
        repository=plan.spec.repository.name,
        started=when.isoformat(),
        status=RunStatus.PLANNED,
        cancel_requested="0",
    )


def plan_changes(saved: MigrationPlan, fresh: MigrationPlan) -> list[str]:
    """What a fresh discovery changes in a saved plan: versions, the indices moved, their targets and
    shards, and what would be refused now. Document counts and sizes only change the estimates."""
    changes = []
    for side in ("source", "destination"):
        before, after = getattr(saved.facts, side).version, getattr(fresh.facts, side).version
        if before != after:
            changes.append(f"the {side} now runs Elasticsearch {after}, not {before}")
    before_moves = {move.source: move for move in saved.moves}
    after_moves = {move.source: move for move in fresh.moves}
    for name in sorted(before_moves.keys() - after_moves.keys()):
        why = fresh.skipped.get(name) or ("gone from the source" if name not in fresh.facts.source.indices else "")
        changes.append(f"{name} would no longer be migrated" + (f" ({why})" if why else ""))
    for name in sorted(after_moves.keys() - before_moves.keys()):
        changes.append(f"{name} would now be migrated too (as {after_moves[name].target})")
    for name in sorted(before_moves.keys() & after_moves.keys()):
        old, new = before_moves[name], after_moves[name]
        if old.target != new.target:
            changes.append(f"{name} would be restored as {new.target}, not {old.target}")
        if old.primary_shards != new.primary_shards:
            changes.append(f"{name} has {new.primary_shards} primary shards now, not {old.primary_shards}")
    changes.extend(f"refused now: {p.field}: {p.message}" for p in fresh.problems)
    changes.extend(template_changes(*(moved_templates(plan.graph) for plan in (saved, fresh))))
    changes.extend(pipeline_changes(*(metadata_pipelines.planned(plan.graph) for plan in (saved, fresh))))
    if not changes and set(saved.graph.edges) != set(fresh.graph.edges):
        changes.append("the steps of the plan changed")
    return changes


def saved_plan_to_run(migration: Migration) -> tuple[MigrationPlan, datetime]:
    """The saved plan, once a fresh discovery shows the clusters still give the same plan (else refused)."""
    saved = migration.saved
    assert saved is not None
    plan = migration.saved_plan()
    fresh = migration.plan(when=saved.started, snapshot_name=saved.snapshot)
    changes = plan_changes(plan, fresh)
    if changes:
        listed = "\n".join(f"  - {change}" for change in changes)
        raise NeedsAttention(
            f"the clusters changed since the plan was saved; nothing was changed:\n{listed}\n"
            "Review the new plan and save it again: migrator plan PLAN --out FILE"
        )
    return plan, saved.started


def prepare(
    migration: Migration,
    state: StateStore,
    *,
    replan: bool,
    confirm: Callable[[MigrationPlan], bool],
    resuming: bool,
) -> MigrationPlan:
    """The plan to execute: the recorded one (resume), the saved one, or a new one (first apply)."""
    saved = migration.saved
    plan = recorded_plan(migration, state)
    if plan is None:
        if resuming:
            raise NeedsAttention(f"no run to resume in {state.path}; start one with `migrator apply`")
        if saved is not None:
            plan, when = saved_plan_to_run(migration)
        else:
            when = datetime.now(UTC).replace(microsecond=0)
            plan = migration.plan(when=when)
        if plan.problems:
            raise PlanError(plan.problems, refused=True)
        if not confirm(plan):
            raise NeedsAttention("not confirmed; nothing was changed")
        state.reset()
        Ledger(state).start()
        record_run(state, plan, when, migration.redactor)
        origin = f" (saved plan {migration.plan_path})" if saved else ""
        state.event("planned", f"planned: hash {plan.plan_hash}{origin}")
        return plan
    if saved is not None and saved.plan_hash != state.get_meta("plan_hash"):
        raise NeedsAttention(
            f"{state.path} holds a run of another plan (hash {state.get_meta('plan_hash')}) than the saved plan "
            f"(hash {saved.plan_hash}); finish it with `migrator resume`, or cancel it first"
        )
    if plan.problems:
        raise PlanError(plan.problems, refused=True)
    if plan.plan_hash != state.get_meta("plan_hash"):
        if not replan:
            changes = spec_changes(state.get_json("spec"), json.loads(plan.spec.canonical_json()))
            listed = "".join(f"\n  - {change}" for change in changes)
            raise NeedsAttention(
                f"the plan changed since this run began (hash {state.get_meta('plan_hash')} -> {plan.plan_hash}):"
                f"{listed or NOT_THE_FILE}\n"
                "Review it with `migrator plan`, then run again with --replan to continue with the new plan"
            )
        when = run_started(state)
        plan = migration.plan(when=when, **own_plan_options(state, migration.spec.repository.name))
        if plan.problems:
            raise PlanError(plan.problems, refused=True)
        record_run(state, plan, when, migration.redactor)
        recut = recut_batches(plan, state)
        state.reset(recut)
        state.event(
            "replan", f"re-planned: hash {plan.plan_hash}" + (f"; batches re-cut: {', '.join(recut)}" if recut else "")
        )
    return plan


def recut_batches(plan: MigrationPlan, state: StateStore) -> list[str]:
    """The restore batches of a re-planned run whose checkpoint was recorded for other members (a changed
    `restore.batch_indices` or `batch_size` cuts the indices anew under the same ids): forgotten, so each batch
    observes its own members and restores in one request those not restored yet. Kept, a done checkpoint of
    the old cut would leave the new members to their restore steps, one request each, none in the runbook."""
    recut = []
    for node, data in plan.graph.nodes(data=True):
        if data.get("kind") != StepKind.RESTORE_BATCH:
            continue
        recorded = state.get_checkpoint(node)
        if recorded is None or "members" not in recorded.detail:
            continue
        was = set(recorded.detail.get("members", [])) | set(recorded.detail.get("foreign", []))
        if was != {member["target"] for member in data["params"]["members"]}:
            recut.append(node)
    return recut


class RecordedProgress(ProgressSink):
    """Progress shown as usual and kept in the state file (at most every `every_s` per step, only the
    step that changed), so that `migrator status --watch` can show it from another terminal."""

    def __init__(self, inner: ProgressSink, state: StateStore, every_s: float = 1.0) -> None:
        self.inner = inner
        self.state = state
        self.every_s = every_s
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, step: str, completed: float, total: float, unit: str, text: str = "") -> None:
        self.inner.update(step, completed, total, unit, text)
        now = time.time()
        with self._lock:
            if now - self._written.get(step, 0.0) < self.every_s and completed < total:
                return
            self._written[step] = now
        self.state.set_progress(step, {"completed": completed, "total": total, "unit": unit, "text": text, "ts": now})

    def message(self, step: str | None, text: str) -> None:
        self.inner.message(step, text)


def execute(
    migration: Migration,
    *,
    progress: ProgressSink,
    confirm: Callable[[MigrationPlan], bool],
    replan: bool = False,
    force_unlock: bool = False,
    resuming: bool = False,
    parallel: int | None = None,
    poll_s: float = 2.0,
    on_step: Callable[[str, str, str], None] | None = None,
    gate: Callable[[Step], bool] | None = None,
    until: str | None = None,
    only: str | None = None,
    phase: str | None = None,
    redo: str | None = None,
) -> tuple[MigrationPlan, RunResult]:
    """Run the plan. `gate` is asked before each step sends anything (step by step: one step at a
    time); `until` and `only` limit the run to some steps (the others stay pending), and so does the
    phase of a two-phase plan (see `phase_selection`); `redo` forgets the checkpoints of a done step and
    of what follows it for the same target (`migrator.drift.redo_steps`), so this run does them again."""
    started_cpu_s, started = time.process_time(), time.monotonic()
    state = migration.open_state()
    try:
        state.acquire_lock(f"{'resume' if resuming else 'apply'} of {migration.plan_path}", force=force_unlock)
        # Every request of the run goes to its event log; held requests (a restore, a snapshot) may still be in
        # flight when the block ends: they go on in the cluster (a later resume re-attaches), unrecorded here.
        with migration.requests.listening(RequestLog(state, migration.redactor)):
            state.begin_run()
            try:
                plan = prepare(migration, state, replan=replan, confirm=confirm, resuming=resuming)
                if redo is not None:
                    named = redo_named(plan.graph, redo, state.get_json("drift"))
                    forgotten = sorted(redo_steps(plan.graph, named))
                    redo_restores(migration, state, plan, forgotten, progress)
                    state.reset(forgotten)
                    state.event("redo", f"--redo {redo}: done again: {', '.join(forgotten)}")
                selected = selection(plan.graph, state.statuses(), until, only)
                in_phase = phase_selection(plan.graph, state.statuses(), phase, resuming)
                if in_phase is not None:
                    selected = in_phase if selected is None else selected & in_phase
                state.set_meta(status=RunStatus.RUNNING, cancel_requested="0")
                ctx = StepContext(
                    spec=migration.spec,
                    plan=plan,
                    source=migration.source,
                    destination=migration.destination,
                    repository_bodies=repository_bodies(migration.spec, migration.secrets.values),
                    storage_factory=migration.buckets.storage,
                    replica_factory=migration.buckets.replica if migration.spec.replication else None,
                    replication_factory=migration.buckets.replication if migration.spec.replication else None,
                    progress=RecordedProgress(progress, state),
                    cancel_requested=lambda: state.get_meta("cancel_requested") == "1",
                    poll_s=poll_s,
                    ledger=Ledger(state),
                    source_blocks=SourceBlocks(state),
                    removed_aliases=RemovedAliases(state),
                    requests=migration.requests,
                    held_snapshots=HeldRequests(migration.requests),
                    held_restores=HeldRequests(migration.requests),
                )
                executor = Executor(
                    plan.graph,
                    ctx,
                    state,
                    migration.requests,
                    migration.redactor,
                    parallel=1 if gate is not None else parallel or migration.spec.restore.parallel,
                    on_step=on_step,
                    gate=gate,
                    selected=selected,
                    releases=ctx.releases,
                )
                state.set_json("dag", {"nodes": list(executor.graph.nodes), "edges": sorted(executor.graph.edges)})
                progress.expect(executor.graph.number_of_nodes())
                result = executor.run()
                state.set_json("drift", drift_record(plan.graph, result.drift))
                if result.cancelled or (result.failed and ctx.cancel_requested()):
                    result.cancelled = True
                    state.set_meta(status=RunStatus.CANCELLING)
                elif result.failed:
                    state.set_meta(status=RunStatus.FAILED)
                elif result.drift:
                    state.set_meta(status=RunStatus.DRIFTED)
                else:
                    state.set_meta(status=RunStatus.PAUSED if result.not_run else RunStatus.DONE)
                return plan, result
            finally:
                record_cpu(state, started_cpu_s, time.monotonic() - started)
    finally:
        state.close()


def record_cpu(state: StateStore, startup_cpu_s: float, run_wall_s: float) -> None:
    """Record the CPU seconds migrator's process used before the run (interpreter, imports, reading the
    plan) and during it, so that `report` can show what the orchestration itself costs."""
    run_cpu_s = time.process_time() - startup_cpu_s
    state.event(
        "run.cpu",
        f"CPU {startup_cpu_s + run_cpu_s:.2f} s: {startup_cpu_s:.2f} s starting, {run_cpu_s:.2f} s in "
        f"{run_wall_s:.1f} s of run",
        data={
            "startup_cpu_s": round(startup_cpu_s, 4),
            "run_cpu_s": round(run_cpu_s, 4),
            "run_wall_s": round(run_wall_s, 4),
        },
    )


def redo_restores(
    migration: Migration, state: StateStore, plan: MigrationPlan, nodes: list[str], progress: ProgressSink
) -> None:
    """`--redo` of a restore: the target as it is now (changed or written to since) is deleted when this
    migration restored it (migrator.ownership), so that the restore runs again from the snapshot; an index
    that is not ours is left for the restore step to refuse."""
    repository = state.get_meta("repository")
    ledger = Ledger(state)
    for node in nodes:
        if plan.graph.nodes[node]["kind"] != "restore":
            continue
        target = plan.graph.nodes[node]["params"]["target"]
        exists, ours = owned_target(migration, ledger, repository, target)
        if exists and ours:
            migration.destination.request("DELETE", build_path(target), ok=(200, 404))
            state.event("redo", f"deleted {target} (restored by this migration) to restore it again", step=node)
            progress.message(node, f"deleted {target} (restored by this migration) to restore it again")
