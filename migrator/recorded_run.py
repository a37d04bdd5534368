"""The run a state file records, as planning sees it: what it made its own, and how far it got.

Place in the flow: `resume` and `apply --replan` re-plan a recorded run with `own_plan_options` (its
snapshot name, the targets it restored, the snapshots it took, its cutover attempt), so that the planner
counts them as the run's own rather than as collisions; the dry run (`migrator plan`) does the same with
`recorded_run` when a state file lies beside the plan. Read-only: nothing here writes the state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.dag import NodeId, RunStatus, StepKind, StepStatus
from migrator.ownership import Ledger
from migrator.planner import cutover_snapshot_name
from migrator.spec import MigrationSpec
from migrator.state import StateStore

STARTED = (StepStatus.ACTING, StepStatus.DONE)


def owned_targets(state: StateStore) -> frozenset[str]:
    """Destination indices this migration restored (or began to restore) itself: those of its restore
    steps, and the members of a restore batch that acted which were not someone else's when it observed
    them (its checkpoint's `members`; a foreign member is left out of its request)."""
    owned: set[str] = set()
    for checkpoint in state.checkpoints().values():
        if checkpoint.status not in STARTED:
            continue
        node = NodeId.parse(checkpoint.step)
        if node.name == StepKind.RESTORE and node.target:
            owned.add(node.target)
        elif node.name == StepKind.RESTORE_BATCH:
            owned.update(checkpoint.detail.get("members", []))
    return frozenset(owned)


def cutover_attempt(state: StateStore) -> int:
    """How many cutovers this run has tried (each rollback starts the next attempt)."""
    return int(state.get_meta("cutover_attempt") or 1)


def own_plan_options(state: StateStore, repository: str) -> dict[str, Any]:
    """What a recorded run makes its own when it is planned again (`build_plan`'s keywords): its snapshot
    name, the targets it restored, the snapshots of `repository` it took (name -> uuid; name -> None for a
    run begun by an older migrator, which recorded no uuid), the clusters where it registered `repository`,
    its cutover attempt."""
    ledger, snapshot, attempt = Ledger(state), state.get_meta("snapshot"), cutover_attempt(state)
    owned: dict[str, str | None] = dict(ledger.snapshot_uuids(repository))
    if ledger.legacy and snapshot:  # begun by an older migrator: its snapshots are its own by name
        names = (snapshot, *(cutover_snapshot_name(snapshot, n) for n in range(1, attempt + 1)))
        owned.update((name, None) for name in names)
    return {
        "snapshot_name": snapshot,
        "owned_targets": owned_targets(state),
        "owned_snapshots": owned,
        "owned_repositories": frozenset(
            cluster for cluster in ("source", "destination") if ledger.owns_repository(cluster, repository)
        ),
        "cutover_attempt": attempt,
    }


def recorded_run(state_path: Path, spec: MigrationSpec) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The run in the state file at `state_path`, if one began and was not cancelled: its summary
    ({"status", "state_file", "started", "steps_done", "steps"}) and `own_plan_options`. (None, {}) when
    there is none."""
    if not state_path.is_file():
        return None, {}
    state = StateStore(state_path)
    try:
        if state.get_meta("status") in (None, RunStatus.CANCELLED):
            return None, {}
        nodes = state.get_json("nodes") or []
        done = sum(1 for step, status in state.statuses().items() if status == StepStatus.DONE and step in nodes)
        summary = {
            "status": state.get_meta("status"),
            "state_file": str(state_path),
            "started": state.get_meta("started"),
            "steps_done": done,
            "steps": len(nodes),
        }
        return summary, own_plan_options(state, spec.repository.name)
    finally:
        state.close()
