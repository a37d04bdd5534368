"""The thin middle between the CLI and the models: open a migration, plan it, apply, status, cancel.

A migration is a plan file plus its state file (beside it, `<plan>.state.db`, or `--state`). The
first `apply` discovers the facts, plans, and records the facts, the snapshot name and the plan
hash; later runs re-plan from those recorded facts, so `resume` rebuilds exactly the same DAG and
notices a plan file that changed under it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import BaseModel

from migrator.clients.es import EsClient, EsError, build_path
from migrator.clients.storage import LocalStorage, OssStorage, Storage
from migrator.discovery import Facts, discover
from migrator.executor import Executor, RequestLog, RunResult
from migrator.planner import MigrationPlan, build_plan, recovery_id
from migrator.redact import Redactor
from migrator.spec import ClusterSpec, MigrationSpec, PlanError, Problem, SecretRef, load_plan
from migrator.state import StateStore
from migrator.steps.base import ProgressSink, StepContext


class NeedsAttention(Exception):
    """The run cannot go on without a decision (plan changed, lock held, cancelled)."""


class PlanRefused(Exception):
    """The plan breaks a rule Elasticsearch or migrator enforces; nothing was changed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{p.field}: {p.message} (fix: {p.fix})" for p in problems))


def default_state_path(plan_path: Path) -> Path:
    return plan_path.with_name(plan_path.stem + ".state.db")


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

    def close(self) -> None:
        self.source.close()
        self.destination.close()

    def storage(self) -> Storage:
        storage = self.spec.storage_spec()
        if storage.kind == "local":
            return LocalStorage(Path(storage.path))
        return OssStorage(
            endpoint=storage.endpoint,
            bucket=storage.bucket,
            base_path=storage.base_path or "",
            access_key_id=storage.access_key_id.resolve(self.environment),
            access_key_secret=storage.access_key_secret.resolve(self.environment),
            region=storage.region,
            security_token=storage.security_token.resolve(self.environment) if storage.security_token else None,
            signature=storage.signature,
        )

    def plan(self, facts: Facts | None = None, when: datetime | None = None, **kwargs: Any) -> MigrationPlan:
        facts = facts or discover(self.source, self.destination)
        return build_plan(self.spec, facts, when or datetime.now(UTC), **kwargs)

    def open_state(self) -> StateStore:
        return StateStore(self.state_path)


def open_migration(
    plan_path: Path,
    state_path: Path | None = None,
    environ: dict[str, str] | None = None,
    observer: Callable[..., None] | None = None,
) -> Migration:
    """Load and validate the plan, resolve its secrets, build both clients (no request sent)."""
    spec = load_plan(plan_path)
    environment = spec.environment(plan_path.parent, dict(os.environ if environ is None else environ))
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
    )


def owned_targets(state: StateStore) -> frozenset[str]:
    """Destination indices this migration restored (or began to restore) itself."""
    return frozenset(
        cp.step[len("restore[") : -1]
        for cp in state.checkpoints().values()
        if cp.step.startswith("restore[") and cp.status in ("acting", "done")
    )


def recorded_plan(migration: Migration, state: StateStore) -> MigrationPlan | None:
    """The plan rebuilt from the facts recorded when the run began (None: no run yet)."""
    if state.get_meta("status") in (None, "cancelled"):
        return None
    facts = Facts.from_json(state.get_json("facts"))
    when = datetime.fromisoformat(state.get_meta("started"))
    return build_plan(
        migration.spec, facts, when, snapshot_name=state.get_meta("snapshot"), owned_targets=owned_targets(state)
    )


def record_run(state: StateStore, plan: MigrationPlan, when: datetime) -> None:
    state.set_json("facts", plan.facts.to_json())
    state.set_json("nodes", list(nx.topological_sort(plan.graph)))
    state.set_meta(
        plan_name=plan.spec.name,
        plan_hash=plan.plan_hash,
        snapshot=plan.snapshot,
        repository=plan.spec.repository.name,
        started=when.isoformat(),
        status="planned",
        cancel_requested="0",
    )


def prepare(
    migration: Migration,
    state: StateStore,
    *,
    replan: bool,
    confirm: Callable[[MigrationPlan], bool],
    resuming: bool,
) -> MigrationPlan:
    """The plan to execute: the recorded one (resume) or a new one (first apply)."""
    plan = recorded_plan(migration, state)
    if plan is None:
        if resuming:
            raise NeedsAttention(f"no run to resume in {state.path}; start one with `migrator apply`")
        when = datetime.now(UTC).replace(microsecond=0)
        plan = migration.plan(when=when)
        if plan.problems:
            raise PlanRefused(plan.problems)
        if not confirm(plan):
            raise NeedsAttention("not confirmed; nothing was changed")
        state.reset()
        record_run(state, plan, when)
        return plan
    if plan.problems:
        raise PlanRefused(plan.problems)
    if plan.plan_hash != state.get_meta("plan_hash"):
        if not replan:
            raise NeedsAttention(
                f"the plan changed since this run began (hash {state.get_meta('plan_hash')} -> {plan.plan_hash}). "
                "Review it with `migrator plan`, then run again with --replan to continue with the new plan"
            )
        when = datetime.fromisoformat(state.get_meta("started"))
        plan = migration.plan(when=when, snapshot_name=state.get_meta("snapshot"), owned_targets=owned_targets(state))
        if plan.problems:
            raise PlanRefused(plan.problems)
        record_run(state, plan, when)
        state.event("replan", f"re-planned: hash {plan.plan_hash}")
    return plan


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
) -> tuple[MigrationPlan, RunResult]:
    state = migration.open_state()
    try:
        state.acquire_lock(f"{'resume' if resuming else 'apply'} of {migration.plan_path}", force=force_unlock)
        request_log = RequestLog(state, migration.redactor)
        migration.source.observer = request_log
        migration.destination.observer = request_log
        state.begin_run()
        plan = prepare(migration, state, replan=replan, confirm=confirm, resuming=resuming)
        state.set_meta(status="running", cancel_requested="0")
        ctx = StepContext(
            spec=migration.spec,
            plan=plan,
            source=migration.source,
            destination=migration.destination,
            environment=migration.environment,
            storage_factory=migration.storage,
            progress=progress,
            cancel_requested=lambda: state.get_meta("cancel_requested") == "1",
            poll_s=poll_s,
        )
        executor = Executor(
            plan.graph,
            ctx,
            state,
            request_log,
            migration.redactor,
            parallel=parallel or migration.spec.restore.parallel,
            on_step=on_step,
        )
        result = executor.run()
        if result.cancelled or (result.failed and ctx.cancel_requested()):
            result.cancelled = True
            state.set_meta(status="cancelling")
        else:
            state.set_meta(status="done" if result.ok else "failed")
        return plan, result
    finally:
        state.close()


def status(state_path: Path) -> dict[str, Any]:
    """What the state file says: the run, each step, the lock, the last events."""
    if not state_path.is_file():
        raise NeedsAttention(f"no state file at {state_path}: this plan was never applied")
    state = StateStore(state_path)
    try:
        checkpoints = state.checkpoints()
        nodes = state.get_json("nodes") or sorted(checkpoints)
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
                }
            )
        return {
            "state_file": str(state_path),
            "plan": state.get_meta("plan_name"),
            "plan_hash": state.get_meta("plan_hash"),
            "status": state.get_meta("status", "never run"),
            "snapshot": state.get_meta("snapshot"),
            "repository": state.get_meta("repository"),
            "started": state.get_meta("started"),
            "runs": state.run,
            "lock": state.lock_holder(),
            "steps": steps,
            "last_events": [
                {"ts": e.ts, "run": e.run, "step": e.step, "kind": e.kind, "message": e.message}
                for e in state.events()[-10:]
            ],
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
        state.set_meta(cancel_requested="1")
        deadline = time.monotonic() + wait_s
        while state.lock_holder() is not None and time.monotonic() < deadline:
            try:
                state.acquire_lock(f"cancel of {migration.plan_path}")
                break
            except Exception:  # noqa: BLE001 - the running executor stops at its next poll
                time.sleep(0.5)
        else:
            if state.lock_holder() is not None:
                raise NeedsAttention(f"the running executor did not stop within {wait_s:.0f} s: {state.lock_holder()}")
            state.acquire_lock(f"cancel of {migration.plan_path}")
        state.begin_run()
        request_log = RequestLog(state, migration.redactor)
        migration.source.observer = request_log
        migration.destination.observer = request_log
        return _undo(migration, state)
    finally:
        state.close()


def _undo(migration: Migration, state: StateStore) -> dict[str, Any]:
    repository, snapshot = state.get_meta("repository"), state.get_meta("snapshot")
    report: dict[str, Any] = {"snapshot_deleted": None, "indices_deleted": []}
    checkpoints = state.checkpoints()
    recovered = {cp.step for cp in checkpoints.values() if cp.status == "done" and cp.step.startswith("recovery[")}
    for target in sorted(owned_targets(state)):
        if recovery_id(target) in recovered:
            continue
        try:
            migration.destination.request("DELETE", build_path(target), ok=(200, 404))
        except EsError as exc:
            raise NeedsAttention(f"could not delete {target} on the destination: {exc}") from exc
        report["indices_deleted"].append(target)
    if snapshot and repository:
        status, _ = migration.source.request("DELETE", build_path("_snapshot", repository, snapshot), ok=(200, 404))
        report["snapshot_deleted"] = snapshot if status == 200 else None
    keep = {"preflight", "repository.source", "repository.destination"}
    state.reset([node for node in checkpoints if node not in keep])
    state.set_meta(status="cancelled", cancel_requested="0")
    state.event("cancelled", json.dumps(report))
    return report
