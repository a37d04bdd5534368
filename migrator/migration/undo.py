"""CLI -> migration (undo) -> clients, state: `migrator cancel`, and what the dry run says cancel sends.

Place in the flow: CLI -> migration (undo) -> clients -> state. Cancel stops a running executor
(it stops at its next poll), deletes the indices being restored that this migration made, the
templates it created, and its snapshot (migrator.ownership), and leaves the state file consistent:
a later `apply` starts afresh. A cutover is undone by `migrator rollback` (migration.rollback).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from migrator.clients.es import EsError
from migrator.dag import NodeId, RunStatus, StepKind, StepStatus
from migrator.errors import NeedsAttention
from migrator.executor import RequestLog
from migrator.migration.cancel_requests import cancel_requests, delete_index
from migrator.migration.opened import Migration
from migrator.ownership import Ledger, delete_snapshot_if_ours
from migrator.planner import CUTOVER, METADATA_PIPELINES, METADATA_TEMPLATES, MigrationPlan, recovery_id
from migrator.recorded_run import owned_targets
from migrator.state import StateStore
from migrator.steps import metadata_pipelines
from migrator.steps.base import ConsoleRequest
from migrator.steps.metadata_templates import undo_requests, undo_templates
from migrator.steps.restore import owned_target


@dataclass(frozen=True)
class CancelAdvice:
    """How to stop the run at one step, as the document says (and as `migrator cancel` does it)."""

    note: str
    requests: list[ConsoleRequest] = field(default_factory=list)


def cancel_advice(plan: MigrationPlan, node: str) -> CancelAdvice:
    """What `migrator cancel` (or `rollback`) sends when the run is at `node` (see `_undo`), with the undo
    of the templates, pipelines and policies the plan moves (see `undo_templates`, `undo_pipelines`)."""
    advice = _cancel_advice(plan, node)
    if not {METADATA_TEMPLATES, METADATA_PIPELINES} & set(plan.graph) or node == "preflight":
        return advice
    note = advice.note + (
        "; it also deletes the templates, pipelines and policies migrator created and puts back those it overwrote "
        "(with the body the state file recorded before overwriting)"
    )
    requests = undo_requests(plan.graph.nodes[METADATA_TEMPLATES]["params"]) if METADATA_TEMPLATES in plan.graph else []
    return CancelAdvice(note, advice.requests + requests + metadata_pipelines.planned_undo(plan.graph))


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
    if kind in (StepKind.PREFLIGHT, StepKind.SOURCE_REPOSITORY):
        return CancelAdvice("has nothing to undo yet: no snapshot exists and no index was restored")
    if kind in (StepKind.RESTORE, StepKind.RECOVERY):
        return CancelAdvice(
            "deletes the index being restored (which stops its restore), then the snapshot", sent(params["target"])
        )
    if kind == StepKind.RESTORE_BATCH:
        members = [member["target"] for member in params["members"]]
        return CancelAdvice(
            "deletes the indices the batch restores (which stops their restore), then the snapshot", sent(*members)
        )
    if kind in (StepKind.VALIDATE, StepKind.CLOSE, StepKind.FINISH):
        return CancelAdvice("deletes the snapshot; restored indices that finished recovering are kept", sent())
    return CancelAdvice("deletes the snapshot (which stops it while it is being taken)", sent())


def cancel(migration: Migration, wait_s: float = 90.0) -> dict[str, Any]:
    """Stop a run as the document says: delete the snapshot being taken, delete the indices being
    restored, and leave the state file consistent (a later apply starts a fresh run)."""
    state = migration.open_state()
    try:
        if state.get_meta("status") in (None, RunStatus.CANCELLED):
            raise NeedsAttention(f"no run to cancel in {state.path}")
        if any(NodeId.parse(step).in_cutover for step in state.checkpoints()):
            raise NeedsAttention(
                f"a cutover began: `migrator rollback {migration.plan_path}` undoes it (removes the aliases from the "
                "destination, then lets the source take writes again); cancel would leave the source's writes blocked"
            )
        with migration.requests.listening(stop_and_take_over(migration, state, "cancel", wait_s)):
            return _undo(migration, state)
    finally:
        state.close()


def stop_and_take_over(migration: Migration, state: StateStore, purpose: str, wait_s: float) -> RequestLog:
    """Ask a running executor to stop (it does at its next poll), take the lock and begin a run; returns the
    log of that run's requests, to listen with (`migration.requests.listening`)."""
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
    return RequestLog(state, migration.redactor)


def _undo(migration: Migration, state: StateStore) -> dict[str, Any]:
    repository, snapshot = state.get_meta("repository"), state.get_meta("snapshot")
    report: dict[str, Any] = {"snapshot_deleted": None, "indices_deleted": []}
    checkpoints = state.checkpoints()
    recovered = {step for step, status in state.statuses().items() if status == StepStatus.DONE}
    ledger = Ledger(state)
    for target in sorted(owned_targets(state)):
        if recovery_id(target) in recovered:
            # Restored and recovered: a cancel keeps it (the document's cancel stops what is running), and names
            # it, since applying this plan again refuses a target that exists.
            report.setdefault("kept", []).append(
                f"index {target} (restored and recovered; delete it before applying this plan again)"
            )
            continue
        exists, ours = owned_target(migration, ledger, repository, target)
        if not exists:
            continue
        if not ours:
            report.setdefault("kept", []).append(f"index {target} (not restored by this migration)")
            continue
        try:
            delete = delete_index(target)
            migration.destination.request(delete.method, delete.path, ok=(200, 404))
        except EsError as exc:
            raise NeedsAttention(f"could not delete {target} on the destination: {exc}") from exc
        report["indices_deleted"].append(target)
    templates = checkpoints.get(METADATA_TEMPLATES)
    report.update(undo_templates(migration.destination, templates.detail if templates else {}))
    pipelines = checkpoints.get(METADATA_PIPELINES)
    report.update(metadata_pipelines.undo_pipelines(migration.destination, pipelines.detail if pipelines else {})[0])
    if snapshot and repository:
        outcome = delete_snapshot_if_ours(migration.source, ledger, repository, snapshot)
        report["snapshot_deleted"] = snapshot if outcome == "deleted" else None
        if outcome == "kept":
            report.setdefault("kept", []).append(f"snapshot {snapshot} (not taken by this migration)")
    keep = {"preflight", "repository.source", "repository.destination"}
    state.reset([node for node in checkpoints if node not in keep])
    state.set_meta(status=RunStatus.CANCELLED, cancel_requested="0")
    state.event("cancelled", json.dumps(report))
    return report
