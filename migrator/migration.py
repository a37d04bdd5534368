"""The thin middle between the CLI and the models: open a migration, review it, apply, status, report, cancel.

A migration is a plan file plus its state file (beside it, `<plan>.state.db`, or `--state`) and a
JSON-lines copy of the state's event log (`<plan>.events.jsonl`). The first `apply` discovers the
facts, plans, and records the facts, the snapshot name and the plan hash; later runs re-plan from
those recorded facts, so `resume` rebuilds exactly the same DAG and notices a plan file that
changed under it. `plan --out` saves a reviewed plan (spec, facts, snapshot name, hash; no secret)
and `apply SAVED` executes exactly it, after checking that a fresh discovery gives the same plan.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import BaseModel, ValidationError

from migrator.aliases import RemovedAliases
from migrator.blocks import SourceBlocks
from migrator.cancel_requests import cancel_requests, delete_index
from migrator.clients.es import EsClient, EsError, Request, build_path
from migrator.clients.replication import BucketReplication
from migrator.clients.storage import LocalStorage, OssStorage, Storage
from migrator.discovery import Facts, discover
from migrator.drift import redo_steps
from migrator.executor import Executor, RequestLog, RunResult, build_steps
from migrator.ownership import Ledger, delete_snapshot_if_ours
from migrator.planner import (
    BULK,
    CUTOVER,
    METADATA_TEMPLATES,
    MigrationPlan,
    build_plan,
    cutover_validate_id,
    phase_nodes,
    recovery_id,
    snapshot_names,
    validate_id,
)
from migrator.recorded_run import own_plan_options, owned_targets, recorded_run
from migrator.redact import Redactor
from migrator.spec import (
    ClusterSpec,
    MigrationSpec,
    PlanError,
    Problem,
    SecretRef,
    StorageSpec,
    load_plan,
    render_snapshot_name,
)
from migrator.state import StateStore, holder_alive
from migrator.steps.base import ConsoleRequest, ProgressSink, Step, StepContext
from migrator.steps.metadata_templates import moved_templates, undo_requests, undo_templates
from migrator.steps.restore import owned_target
from migrator.templates import template_changes

SAVED_PLAN_VERSION = 1
MB = 1024 * 1024


class NeedsAttention(Exception):
    """The run cannot go on without a decision (plan changed, lock held, cancelled)."""


class PlanRefused(Exception):
    """The plan breaks a rule Elasticsearch or migrator enforces; nothing was changed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{p.field}: {p.message} (fix: {p.fix})" for p in problems))


class UsageError(Exception):
    """A command-line option that does not fit the plan (e.g. an unknown step for --until)."""


def default_state_path(plan_path: Path) -> Path:
    """`<plan>.state.db` beside the plan; for a saved plan, beside the plan file it was saved from."""
    saved = load_saved_plan(plan_path)
    origin = Path(saved.plan_file) if saved else plan_path
    return origin.with_name(origin.stem + ".state.db")


def event_log_path(state_path: Path) -> Path:
    """The JSON-lines event log beside the state file: `<plan>.events.jsonl`."""
    name = state_path.name.removesuffix(".state.db") if state_path.name.endswith(".state.db") else state_path.stem
    return state_path.with_name(name + ".events.jsonl")


class JournaledState(StateStore):
    """The state store with every event also appended, as one JSON line, to the event log file.

    Events are redacted before they are recorded, so the file holds no secret either."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.journal = event_log_path(path)
        self._journal_lock = threading.Lock()

    def event(self, kind: str, message: str, *, step: str | None = None, data: dict[str, Any] | None = None) -> None:
        with self._journal_lock:
            super().event(kind, message, step=step, data=data)
            line = {"ts": time.time(), "run": self.run, "step": step, "kind": kind, "message": message, "data": data}
            descriptor = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "a", encoding="utf-8") as journal:
                journal.write(json.dumps(line, sort_keys=True) + "\n")


@dataclass(frozen=True)
class SavedPlan:
    """A reviewed plan saved with `plan --out`: what `apply SAVED` executes exactly."""

    plan_file: str
    plan_hash: str
    snapshot: str
    started: datetime
    spec: dict[str, Any]
    facts: Facts
    document: dict[str, Any]


def load_saved_plan(path: Path) -> SavedPlan | None:
    """The saved plan in `path`, or None when it is a plan file (YAML) or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "migrator_saved_plan" not in data:
        return None
    if data["migrator_saved_plan"] != SAVED_PLAN_VERSION:
        raise PlanError(
            [
                Problem(
                    str(path),
                    f"saved plan version {data['migrator_saved_plan']} is not {SAVED_PLAN_VERSION}",
                    "save it again with this migrator: migrator plan PLAN --out FILE",
                )
            ]
        )
    try:
        return SavedPlan(
            plan_file=data["plan_file"],
            plan_hash=data["plan_hash"],
            snapshot=data["snapshot"],
            started=datetime.fromisoformat(data["started"]),
            spec=data["spec"],
            facts=Facts.from_json(data["facts"]),
            document=data.get("plan", {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanError(
            [Problem(str(path), f"not a complete saved plan ({exc})", "save it again: migrator plan PLAN --out FILE")]
        ) from None


def secret_refs(model: Any, prefix: str = "") -> Iterator[tuple[str, SecretRef]]:
    """Every SecretRef in the spec, with its dotted field path."""
    if isinstance(model, SecretRef):
        yield prefix, model
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            yield from secret_refs(getattr(model, name), f"{prefix}.{name}" if prefix else name)
        for name, value in (model.model_extra or {}).items():
            yield from secret_refs(value, f"{prefix}.{name}" if prefix else name)
    elif isinstance(model, dict):
        for key, value in model.items():
            yield from secret_refs(value, f"{prefix}.{key}")
    elif isinstance(model, list):
        for position, value in enumerate(model):
            yield from secret_refs(value, f"{prefix}[{position}]")


@dataclass
class Migration:
    """One plan file with its resolved environment, clients and state file."""

    spec: MigrationSpec
    plan_path: Path
    state_path: Path
    environment: dict[str, str]
    redactor: Redactor
    source: EsClient
    destination: EsClient
    saved: SavedPlan | None = None

    def close(self) -> None:
        self.source.close()
        self.destination.close()

    def storage(self) -> Storage:
        """The source's repository, as migrator reads it."""
        return self._open_storage(self.spec.storage_spec())

    def replica(self) -> Storage:
        """Cross-region: the destination's copy of the repository."""
        assert self.spec.replication is not None
        return self._open_storage(self.spec.replication.storage)

    def replication(self) -> BucketReplication:
        """Cross-region: the replication rules of the source's bucket."""
        storage = self.spec.storage_spec()
        return BucketReplication(
            endpoint=storage.endpoint or "",
            bucket=storage.bucket or "",
            access_key_id=self._secret(storage.access_key_id),
            access_key_secret=self._secret(storage.access_key_secret),
            region=storage.region,
            security_token=self._secret(storage.security_token) or None,
            signature=storage.signature,
        )

    def _secret(self, ref: SecretRef | None) -> str:
        return ref.resolve(self.environment) if ref is not None else ""

    def _open_storage(self, storage: StorageSpec) -> Storage:
        if storage.kind == "local":
            return LocalStorage(Path(storage.path or ""))
        return OssStorage(
            endpoint=storage.endpoint or "",
            bucket=storage.bucket or "",
            base_path=storage.base_path or "",
            access_key_id=self._secret(storage.access_key_id),
            access_key_secret=self._secret(storage.access_key_secret),
            region=storage.region,
            security_token=self._secret(storage.security_token) or None,
            signature=storage.signature,
        )

    def plan(self, facts: Facts | None = None, when: datetime | None = None, **kwargs: Any) -> MigrationPlan:
        """Discover (unless `facts` are given; with the snapshot names the run takes) and plan; `kwargs` as
        for `build_plan`."""
        when = when or datetime.now(UTC)
        if facts is None:
            spec = self.spec
            snapshot = kwargs.get("snapshot_name") or render_snapshot_name(spec.snapshot.name, spec.name, when)
            names = snapshot_names(spec, snapshot, kwargs.get("cutover_attempt", 1))
            facts = discover(self.source, self.destination, spec.snapshot.indices, spec.repository.name, names)
        return build_plan(self.spec, facts, when, **kwargs)

    def open_state(self) -> JournaledState:
        return JournaledState(self.state_path)

    def saved_plan(self) -> MigrationPlan:
        """The saved plan rebuilt from its recorded facts; refused unless it gives the hash it was saved with."""
        saved = self.saved
        assert saved is not None
        plan = build_plan(self.spec, saved.facts, saved.started, snapshot_name=saved.snapshot)
        if plan.plan_hash != saved.plan_hash:
            raise NeedsAttention(
                f"the saved plan {self.plan_path} rebuilds to hash {plan.plan_hash}, not {saved.plan_hash} "
                "(edited, or saved by another migrator version); save it again with `migrator plan PLAN --out FILE`"
            )
        return plan


def open_migration(
    plan_path: Path,
    state_path: Path | None = None,
    environ: dict[str, str] | None = None,
    observer: Callable[..., None] | None = None,
) -> Migration:
    """Load and validate the plan (a plan file or a saved plan), resolve its secrets, build both clients
    (no request sent)."""
    saved = load_saved_plan(plan_path)
    if saved is None:
        spec = load_plan(plan_path)
    else:
        try:
            spec = MigrationSpec.model_validate(saved.spec)
        except ValidationError as exc:
            fix = "save it again: migrator plan PLAN --out FILE"
            problem = Problem(str(plan_path), f"the saved spec is not valid ({exc.error_count()} errors)", fix)
            raise PlanError([problem]) from None
    base_dir = Path(saved.plan_file).parent if saved else plan_path.parent
    environment = spec.environment(base_dir, dict(os.environ if environ is None else environ))
    problems, values = [], []
    for field_path, ref in secret_refs(spec):
        try:
            values.append(ref.resolve(environment))
        except Exception as exc:  # noqa: BLE001 - reported as a plan problem naming the field
            problems.append(Problem(field_path, str(exc), f"export {ref.env} (or add it to env_file)"))
    if problems:
        raise PlanError(problems)
    redactor = Redactor(values)

    def client(side: str, cluster: ClusterSpec) -> EsClient:
        return EsClient(
            str(cluster.url),
            label=side,
            username=cluster.username,
            password=cluster.password.resolve(environment) if cluster.password else None,
            api_key=cluster.api_key.resolve(environment) if cluster.api_key else None,
            verify_tls=cluster.verify_tls,
            ca_file=str(cluster.ca_file) if cluster.ca_file else None,
            timeout_s=cluster.request_timeout_s,
            observer=observer,
        )

    return Migration(
        spec=spec,
        plan_path=plan_path,
        state_path=state_path or default_state_path(plan_path),
        environment=environment,
        redactor=redactor,
        source=client("source", spec.source),
        destination=client("destination", spec.destination),
        saved=saved,
    )


def recorded_plan(migration: Migration, state: StateStore) -> MigrationPlan | None:
    """The plan rebuilt from the facts recorded when the run began (None: no run yet)."""
    if state.get_meta("status") in (None, "cancelled"):
        return None
    facts = Facts.from_json(state.get_json("facts"))
    when = datetime.fromisoformat(state.get_meta("started"))
    return build_plan(migration.spec, facts, when, **own_plan_options(state, migration.spec.repository.name))


def record_run(state: StateStore, plan: MigrationPlan, when: datetime, redactor: Redactor) -> None:
    state.set_json("facts", redactor.data(plan.facts.to_json()))
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
        status="planned",
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
    if not changes and set(saved.graph.edges) != set(fresh.graph.edges):
        changes.append("the steps of the plan changed")
    return changes


def _saved_plan_to_run(migration: Migration) -> tuple[MigrationPlan, datetime]:
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
            plan, when = _saved_plan_to_run(migration)
        else:
            when = datetime.now(UTC).replace(microsecond=0)
            plan = migration.plan(when=when)
        if plan.problems:
            raise PlanRefused(plan.problems)
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
        raise PlanRefused(plan.problems)
    if plan.plan_hash != state.get_meta("plan_hash"):
        if not replan:
            raise NeedsAttention(
                f"the plan changed since this run began (hash {state.get_meta('plan_hash')} -> {plan.plan_hash}). "
                "Review it with `migrator plan`, then run again with --replan to continue with the new plan"
            )
        when = datetime.fromisoformat(state.get_meta("started"))
        plan = migration.plan(when=when, **own_plan_options(state, migration.spec.repository.name))
        if plan.problems:
            raise PlanRefused(plan.problems)
        record_run(state, plan, when, migration.redactor)
        state.event("replan", f"re-planned: hash {plan.plan_hash}")
    return plan


def steps_named(graph: nx.DiGraph, name: str, option: str) -> set[str]:
    """The nodes a step name designates: one node id (`restore[orders]`) or every node of a kind (`restore`)."""
    nodes = {node for node, kind in graph.nodes(data="kind") if name in (node, kind)}
    if not nodes:
        known = ", ".join(nx.topological_sort(graph))
        raise UsageError(f"{option} {name}: no such step in this plan; steps: {known}")
    return nodes


def selection(graph: nx.DiGraph, state: StateStore, until: str | None, only: str | None) -> set[str] | None:
    """The steps this run may execute: all (None), up to and including `until`, or `only`."""
    if until is not None and only is not None:
        raise UsageError("--until and --only exclude each other")
    if until is not None:
        named = steps_named(graph, until, "--until")
        return set().union(*(nx.ancestors(graph, node) | {node} for node in named))
    if only is not None:
        named = steps_named(graph, only, "--only")
        done = {step for step, cp in state.checkpoints().items() if cp.status == "done"}
        missing = sorted({pred for node in named for pred in graph.predecessors(node)} - done - named)
        if missing:
            raise NeedsAttention(f"--only {only}: first finish {', '.join(missing)} (e.g. with --until)")
        return named
    return None


def phase_selection(graph: nx.DiGraph, state: StateStore, phase: str | None, resuming: bool) -> set[str] | None:
    """The steps of the phase this run may execute (None: all of them).

    A plan without a cutover has one phase. With one, `apply` runs the bulk copy only; `--phase cutover`
    runs the cutover once the bulk copy is done (never before: the freeze would last the whole copy);
    `resume` continues the cutover when it began, else the bulk copy; `--phase all` (step by step, where
    the cutover waits for an answer anyway) runs both."""
    cutover = phase_nodes(graph, CUTOVER)
    if not cutover:
        if phase == CUTOVER:
            raise UsageError("--phase cutover: this plan has no cutover; set cutover.enabled: true in the plan")
        return None
    checkpoints = state.checkpoints()
    if phase == "all":
        return None
    if phase == CUTOVER:
        left = sorted(
            node for node in phase_nodes(graph, BULK) if getattr(checkpoints.get(node), "status", "") != "done"
        )
        if left:
            raise NeedsAttention(
                f"the bulk copy is not finished ({', '.join(left[:5])}{' ...' if len(left) > 5 else ''} left): "
                "finish it with `migrator apply PLAN` (or resume) first; the cutover blocks writes only after it"
            )
        return None
    if phase is None and resuming and any(node in cutover for node in checkpoints):
        return None
    return phase_nodes(graph, BULK)


class RecordedProgress(ProgressSink):
    """Progress shown as usual and kept in the state file (at most every `every_s` per step), so that
    `migrator status --watch` can show it from another terminal."""

    def __init__(self, inner: ProgressSink, state: StateStore, every_s: float = 1.0) -> None:
        self.inner = inner
        self.state = state
        self.every_s = every_s
        self.latest: dict[str, dict[str, Any]] = {}
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, step: str, completed: float, total: float, unit: str, text: str = "") -> None:
        self.inner.update(step, completed, total, unit, text)
        now = time.time()
        with self._lock:
            self.latest[step] = {"completed": completed, "total": total, "unit": unit, "text": text, "ts": now}
            if now - self._written.get(step, 0.0) < self.every_s and completed < total:
                return
            self._written[step] = now
            self.state.set_json("progress", self.latest)

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
        request_log = RequestLog(state, migration.redactor)
        migration.source.observer = request_log
        migration.destination.observer = request_log
        state.begin_run()
        try:
            plan = prepare(migration, state, replan=replan, confirm=confirm, resuming=resuming)
            if redo is not None:
                forgotten = sorted(redo_steps(plan.graph, steps_named(plan.graph, redo, "--redo")))
                redo_restores(migration, state, plan, forgotten, progress)
                state.reset(forgotten)
                state.event("redo", f"--redo {redo}: done again: {', '.join(forgotten)}")
            selected = selection(plan.graph, state, until, only)
            in_phase = phase_selection(plan.graph, state, phase, resuming)
            if in_phase is not None:
                selected = in_phase if selected is None else selected & in_phase
            state.set_meta(status="running", cancel_requested="0")
            ctx = StepContext(
                spec=migration.spec,
                plan=plan,
                source=migration.source,
                destination=migration.destination,
                environment=migration.environment,
                storage_factory=migration.storage,
                replica_factory=migration.replica if migration.spec.replication else None,
                replication_factory=migration.replication if migration.spec.replication else None,
                progress=RecordedProgress(progress, state),
                cancel_requested=lambda: state.get_meta("cancel_requested") == "1",
                poll_s=poll_s,
                ledger=Ledger(state),
                source_blocks=SourceBlocks(state),
                removed_aliases=RemovedAliases(state),
            )
            executor = Executor(
                plan.graph,
                ctx,
                state,
                request_log,
                migration.redactor,
                parallel=1 if gate is not None else parallel or migration.spec.restore.parallel,
                on_step=on_step,
                gate=gate,
                selected=selected,
            )
            state.set_json("dag", {"nodes": list(executor.graph.nodes), "edges": sorted(executor.graph.edges)})
            result = executor.run()
            if result.cancelled or (result.failed and ctx.cancel_requested()):
                result.cancelled = True
                state.set_meta(status="cancelling")
            elif result.failed:
                state.set_meta(status="failed")
            else:
                state.set_meta(status="paused" if result.not_run else "done")
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


# -- review: what the dry run shows ------------------------------------------------------------------


@dataclass(frozen=True)
class CancelAdvice:
    """How to stop the run at one step, as the document says (and as `migrator cancel` does it)."""

    note: str
    requests: list[ConsoleRequest] = field(default_factory=list)


@dataclass
class Review:
    """Everything the dry run shows: the plan, its steps, the requests discovery sent, estimates, cancels."""

    plan: MigrationPlan
    when: datetime
    steps: dict[str, Step]
    discovery: list[ConsoleRequest]
    estimate: dict[str, Any]
    cancel: dict[str, CancelAdvice]
    saved: bool = False
    # The run recorded in the state file beside the plan, when there is one (see `recorded_run`).
    run: dict[str, Any] | None = None


def estimate(plan: MigrationPlan) -> dict[str, Any]:
    """Expected seconds from the plan's throughput: the snapshot moves every primary byte once, the
    restores move them again (sharing the throughput). Transfers only: polls and checks add seconds."""
    throughput = plan.spec.estimate.throughput_mb_s * MB
    seconds = plan.total_bytes / throughput
    return {
        "throughput_mb_s": plan.spec.estimate.throughput_mb_s,
        "primary_bytes": plan.total_bytes,
        "primary_shards": plan.total_shards,
        "snapshot_seconds": round(seconds, 1),
        "restore_seconds": round(seconds, 1),
        "total_seconds": round(2 * seconds, 1),
        "per_index_seconds": {move.target: round(2 * move.primary_bytes / throughput, 1) for move in plan.moves},
    }


def cancel_advice(plan: MigrationPlan, node: str) -> CancelAdvice:
    """What `migrator cancel` (or `rollback`) sends when the run is at `node` (see `_undo`), with the undo
    of the templates the plan moves (see `undo_templates`)."""
    advice = _cancel_advice(plan, node)
    if METADATA_TEMPLATES not in plan.graph or node == "preflight":
        return advice
    note = advice.note + (
        "; it also deletes the templates migrator created and puts back those it overwrote (with the body the "
        "state file recorded before overwriting)"
    )
    return CancelAdvice(note, advice.requests + undo_requests(plan.graph.nodes[METADATA_TEMPLATES]["params"]))


def _cancel_advice(plan: MigrationPlan, node: str) -> CancelAdvice:
    kind, params = plan.graph.nodes[node]["kind"], plan.graph.nodes[node]["params"]

    def sent(*targets: str) -> list[ConsoleRequest]:  # what `_undo` sends, from the same builder
        requests = cancel_requests(plan.spec.repository.name, plan.snapshot, targets)
        return [ConsoleRequest(cluster, r.method, r.path.lstrip("/")) for cluster, r in requests]

    if plan.graph.nodes[node].get("phase") == CUTOVER:
        return CancelAdvice(
            "is undone by `migrator rollback`, not cancel: it removes the aliases the cutover put on the destination, "
            "then lifts the write block it added on the source (a block the source had before stays)"
        )
    if kind in ("preflight", "repository.source"):
        return CancelAdvice("has nothing to undo yet: no snapshot exists and no index was restored")
    if kind in ("restore", "recovery"):
        return CancelAdvice(
            "deletes the index being restored (which stops its restore), then the snapshot",
            sent(params["target"]),
        )
    if kind in ("validate", "index.close", "finish"):
        return CancelAdvice("deletes the snapshot; restored indices that finished recovering are kept", sent())
    return CancelAdvice("deletes the snapshot (which stops it while it is being taken)", sent())


def describe_steps(migration: Migration, plan: MigrationPlan) -> dict[str, Step]:
    """The plan's steps, for their descriptions only (no secret resolved, nothing sent)."""
    ctx = StepContext(
        spec=migration.spec,
        plan=plan,
        source=migration.source,
        destination=migration.destination,
        environment={},
        storage_factory=migration.storage,
        progress=_NoProgress(),
    )
    return build_steps(plan.graph, ctx)


class _NoProgress(ProgressSink):
    def update(self, step: str, completed: float, total: float, unit: str, text: str = "") -> None:
        return None

    def message(self, step: str | None, text: str) -> None:
        return None


def review(migration: Migration) -> Review:
    """The dry run: discover both clusters (read-only, each request kept for the runbook) and plan; for
    a saved plan, its recorded facts (nothing is sent)."""
    run: dict[str, Any] | None = None
    if migration.saved is not None:
        plan, when = migration.saved_plan(), migration.saved.started
        discovery = [ConsoleRequest(**r) for r in migration.saved.document.get("discovery", [])]
    else:
        sent: list[ConsoleRequest] = []

        def record(cluster: str, request: Request, status: int | None) -> None:
            console = ConsoleRequest(cluster, request.method, request.path.lstrip("/"), request.body)
            if status is None and console not in sent:
                sent.append(console)

        migration.source.observer = migration.destination.observer = record
        when = datetime.now(UTC).replace(microsecond=0)
        run, options = recorded_run(migration.state_path, migration.spec)
        if run is not None:
            when = datetime.fromisoformat(run["started"])
        try:
            plan = migration.plan(when=when, **options)
        finally:
            migration.source.observer = migration.destination.observer = None
        discovery = [ConsoleRequest(r.cluster, r.method, migration.redactor.text(r.path), r.body) for r in sent]
    return Review(
        plan=plan,
        when=when,
        steps=describe_steps(migration, plan),
        discovery=discovery,
        estimate=estimate(plan),
        cancel={node: cancel_advice(plan, node) for node in plan.graph},
        saved=migration.saved is not None,
        run=run,
    )


def save_plan(migration: Migration, reviewed: Review, document: dict[str, Any], path: Path) -> None:
    """Write the reviewed plan for `apply SAVED` (mode 600; secrets only as ${VAR} references)."""
    plan = reviewed.plan
    data = {
        "migrator_saved_plan": SAVED_PLAN_VERSION,
        "plan_file": str(migration.plan_path if migration.saved is None else migration.saved.plan_file),
        "saved_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "plan_hash": plan.plan_hash,
        "snapshot": plan.snapshot,
        "started": reviewed.when.isoformat(),
        "spec": json.loads(plan.spec.canonical_json()),
        "facts": plan.facts.to_json(),
        "plan": document,
    }
    text = migration.redactor.text(json.dumps(data, indent=2, sort_keys=True)) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)


# -- status and report: read from the state file alone -------------------------------------------------


def _open_existing(state_path: Path) -> StateStore:
    if not state_path.is_file():
        raise NeedsAttention(f"no state file at {state_path}: this plan was never applied")
    return StateStore(state_path)


def _durations(state: StateStore) -> dict[str, float]:
    """Seconds each step took in the run that finished it."""
    return {e.step: float((e.data or {}).get("seconds", 0.0)) for e in state.events(kind="step.done") if e.step}


def run_summary(state: StateStore) -> dict[str, Any]:
    """What status and report both say of the run: plan, hash, status, snapshot, repository, start, runs."""
    return {
        "plan": state.get_meta("plan_name"),
        "plan_hash": state.get_meta("plan_hash"),
        "status": state.get_meta("status", "never run"),
        "snapshot": state.get_meta("snapshot"),
        "repository": state.get_meta("repository"),
        "started": state.get_meta("started"),
        "runs": state.run,
    }


def status(state_path: Path) -> dict[str, Any]:
    """What the state file says: the run, each step (with progress and duration), the lock, the last events."""
    state = _open_existing(state_path)
    try:
        checkpoints = state.checkpoints()
        nodes = state.get_json("nodes") or sorted(checkpoints)
        progress = state.get_json("progress") or {}
        durations = _durations(state)
        steps = []
        for node in nodes:
            cp = checkpoints.get(node)
            steps.append(
                {
                    "step": node,
                    "status": cp.status if cp else "pending",
                    "attempts": cp.attempts if cp else 0,
                    "detail": cp.detail if cp else {},
                    "updated": cp.updated if cp else None,
                    "seconds": durations.get(node),
                    "progress": progress.get(node),
                }
            )
        lock = state.lock_holder()
        return {
            "state_file": str(state_path),
            "event_log": str(event_log_path(state_path)),
            **run_summary(state),
            "lock": lock,
            "live": lock is not None and holder_alive(lock),
            "steps": steps,
            "last_events": [
                {"ts": e.ts, "run": e.run, "step": e.step, "kind": e.kind, "message": e.message}
                for e in state.events()[-10:]
            ],
        }
    finally:
        state.close()


def report(state_path: Path) -> dict[str, Any]:
    """The run's report: per index the documents on each side and the bytes; per step its duration,
    attempts and retries; every warning. From the state file alone (no cluster is asked)."""
    state = _open_existing(state_path)
    try:
        checkpoints = state.checkpoints()
        durations = _durations(state)
        events = state.events()
        retries: dict[str, int] = {}
        warnings = list(state.get_json("warnings") or [])
        for e in events:
            if e.kind in ("step.retry", "step.reattempt") and e.step:
                retries[e.step] = retries.get(e.step, 0) + 1
                warnings.append(f"{e.step}: {e.message}")
        indices = []
        for move in state.get_json("moves") or []:
            target = move["target"]
            # After a cutover, its exact validation is the last word on the counts.
            cut = checkpoints.get(cutover_validate_id(target))
            validated = cut if cut and cut.status == "done" else checkpoints.get(validate_id(target))
            recovered = checkpoints.get(recovery_id(target))
            detail = validated.detail if validated and validated.status == "done" else {}
            warnings.extend(f"{validate_id(target)}: {w}" for w in detail.get("warnings", []))
            indices.append(
                {
                    "source": move["source"],
                    "target": target,
                    "primary_shards": move["primary_shards"],
                    "primary_bytes": move["primary_bytes"],
                    "docs_planned": move["docs"],
                    "source_docs": detail.get("source_docs"),
                    "destination_docs": detail.get("destination_docs"),
                    "recovered_bytes": (recovered.detail.get("bytes") if recovered else None),
                    "validated": bool(validated and validated.status == "done"),
                }
            )
        steps = [
            {
                "step": node,
                "status": checkpoints[node].status if node in checkpoints else "pending",
                "seconds": durations.get(node),
                "attempts": checkpoints[node].attempts if node in checkpoints else 0,
                "retries": retries.get(node, 0),
                "error": checkpoints[node].detail.get("error") if node in checkpoints else None,
            }
            for node in state.get_json("nodes") or sorted(checkpoints)
        ]
        return {
            **run_summary(state),
            "estimate": state.get_json("estimate"),
            "indices": indices,
            "totals": {
                "indices": len(indices),
                "primary_bytes": sum(i["primary_bytes"] for i in indices),
                "source_docs": sum(i["source_docs"] or 0 for i in indices),
                "destination_docs": sum(i["destination_docs"] or 0 for i in indices),
                "seconds": round(sum(d for d in durations.values()), 1),
            },
            "steps": steps,
            "cpu": [{"run": e.run, **(e.data or {})} for e in events if e.kind == "run.cpu"],
            "warnings": warnings,
            "event_log": str(event_log_path(state_path)),
        }
    finally:
        state.close()


def cancel(migration: Migration, wait_s: float = 90.0) -> dict[str, Any]:
    """Stop a run as the document says: delete the snapshot being taken, delete the indices being
    restored, and leave the state file consistent (a later apply starts a fresh run)."""
    state = migration.open_state()
    try:
        if state.get_meta("status") in (None, "cancelled"):
            raise NeedsAttention(f"no run to cancel in {state.path}")
        if any(step.startswith("cutover.") for step in state.checkpoints()):
            raise NeedsAttention(
                f"a cutover began: `migrator rollback {migration.plan_path}` undoes it (removes the aliases from the "
                "destination, then lets the source take writes again); cancel would leave the source's writes blocked"
            )
        stop_and_take_over(migration, state, "cancel", wait_s)
        return _undo(migration, state)
    finally:
        state.close()


def stop_and_take_over(migration: Migration, state: StateStore, purpose: str, wait_s: float) -> None:
    """Ask a running executor to stop (it does at its next poll), take the lock, and log our requests."""
    state.set_meta(cancel_requested="1")
    deadline = time.monotonic() + wait_s
    while state.lock_holder() is not None and time.monotonic() < deadline:
        try:
            state.acquire_lock(f"{purpose} of {migration.plan_path}")
            break
        except Exception:  # noqa: BLE001 - the running executor stops at its next poll
            time.sleep(0.5)
    else:
        if state.lock_holder() is not None:
            raise NeedsAttention(f"the running executor did not stop within {wait_s:.0f} s: {state.lock_holder()}")
        state.acquire_lock(f"{purpose} of {migration.plan_path}")
    state.begin_run()
    request_log = RequestLog(state, migration.redactor)
    migration.source.observer = request_log
    migration.destination.observer = request_log


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


def _undo(migration: Migration, state: StateStore) -> dict[str, Any]:
    repository, snapshot = state.get_meta("repository"), state.get_meta("snapshot")
    report: dict[str, Any] = {"snapshot_deleted": None, "indices_deleted": []}
    checkpoints = state.checkpoints()
    recovered = {cp.step for cp in checkpoints.values() if cp.status == "done" and cp.step.startswith("recovery[")}
    ledger = Ledger(state)
    for target in sorted(owned_targets(state)):
        if recovery_id(target) in recovered:
            continue
        exists, ours = owned_target(migration, ledger, repository, target)
        if not exists:
            continue
        if not ours:
            report.setdefault("kept", []).append(f"index {target} (not restored by this migration)")
            continue
        delete = delete_index(target)
        try:
            migration.destination.request(delete.method, delete.path, ok=(200, 404))
        except EsError as exc:
            raise NeedsAttention(f"could not delete {target} on the destination: {exc}") from exc
        report["indices_deleted"].append(target)
    templates = checkpoints.get(METADATA_TEMPLATES)
    report.update(undo_templates(migration.destination, templates.detail if templates else {}))
    if snapshot and repository:
        outcome = delete_snapshot_if_ours(migration.source, ledger, repository, snapshot)
        report["snapshot_deleted"] = snapshot if outcome == "deleted" else None
        if outcome == "kept":
            report.setdefault("kept", []).append(f"snapshot {snapshot} (not taken by this migration)")
    keep = {"preflight", "repository.source", "repository.destination"}
    state.reset([node for node in checkpoints if node not in keep])
    state.set_meta(status="cancelled", cancel_requested="0")
    state.event("cancelled", json.dumps(report))
    return report
