"""CLI -> migration (readback) -> state: status, report and the cutover's figures, from the state file alone.

Place in the flow: CLI -> migration (readback) -> state. No cluster is asked: everything here comes
from the checkpoints, the events and the facts the run recorded, so it works from another machine
with a copy of the state file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.dag import (
    ALIAS_SWITCH,
    CUTOVER_RECOVERY,
    CUTOVER_SNAPSHOT_WAIT,
    SNAPSHOT_WAIT,
    WRITE_BLOCK,
    NodeId,
    RunStatus,
    StepStatus,
    cutover_validate_id,
    recovery_id,
    validate_id,
)
from migrator.errors import NeedsAttention
from migrator.migration.files import event_log_path
from migrator.state import StateStore, holder_alive


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
        "status": state.get_meta("status", RunStatus.NEVER_RUN),
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
        progress = state.progress()
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
            # The last drift check's findings, every one (migrator.drift.drift_record): each done step no longer
            # as the run left it, and the --redo argument that redoes them all (None when none drifted).
            **(state.get_json("drift") or {"drift": [], "redo": None}),
            "last_events": [
                {"ts": e.ts, "run": e.run, "step": e.step, "kind": e.kind, "message": e.message}
                for e in state.recent_events(10)
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


# -- the cutover's figures -------------------------------------------------------------------------------


def _snapshot_stats(detail: dict[str, Any]) -> dict[str, Any] | None:
    if not detail:
        return None
    keys = ("incremental_bytes", "total_bytes", "incremental_files", "total_files")
    return {key: detail.get(key) for key in keys}


def cutover_report(state_path: Path) -> dict[str, Any] | None:
    """`cutover_figures` of the state file at `state_path` (None when it has no cutover)."""
    if not state_path.is_file():
        return None
    state = StateStore(state_path)
    try:
        return cutover_figures(state)
    finally:
        state.close()


def cutover_figures(state: StateStore) -> dict[str, Any] | None:
    """What the cutover cost, from the state file alone (None when the run has no cutover step yet)."""
    checkpoints = state.checkpoints()
    nodes = state.get_json("nodes") or []
    if WRITE_BLOCK not in nodes:
        return None
    bulk = checkpoints.get(SNAPSHOT_WAIT)
    incremental = checkpoints.get(CUTOVER_SNAPSHOT_WAIT)
    figures: dict[str, Any] = {
        "full_snapshot": _snapshot_stats(bulk.detail if bulk else {}),
        "incremental_snapshot": _snapshot_stats(incremental.detail if incremental else {}),
    }
    full, inc = figures["full_snapshot"], figures["incremental_snapshot"]
    if full and inc and inc.get("total_bytes"):
        figures["incremental_reused_fraction"] = round(1 - (inc["incremental_bytes"] or 0) / inc["total_bytes"], 4)
    restored = [
        cp.detail
        for node, cp in checkpoints.items()
        if cp.status == StepStatus.DONE and NodeId.parse(node).name == CUTOVER_RECOVERY
    ]
    figures["restore_over"] = {
        "indices": len(restored),
        "bytes": sum(int(d.get("bytes", 0)) for d in restored),
        "reused_bytes": sum(int(d.get("reused_bytes", 0)) for d in restored),
    }
    figures["write_block"] = _write_block_window(state)
    return figures


def _write_block_window(state: StateStore) -> dict[str, Any]:
    """When writes were first blocked, when the cutover (or a rollback) ended the freeze, and how long."""
    blocks = [e.ts for e in state.events(kind="request") if e.step == WRITE_BLOCK and e.message.startswith("PUT ")]
    blocked_at = blocks[-1] if blocks else None  # the latest attempt's
    ended_at, ended_by = None, None
    for event in state.events():
        if blocked_at is None or event.ts < blocked_at or ended_at is not None:
            continue
        if event.kind == "step.done" and event.step == ALIAS_SWITCH:
            ended_at, ended_by = event.ts, "cutover"
        elif event.kind == "rollback":
            ended_at, ended_by = event.ts, "rollback"
    window: dict[str, Any] = {"blocked_at": blocked_at, "ended_at": ended_at, "ended_by": ended_by}
    if blocked_at is not None and ended_at is not None:
        window["seconds"] = round(ended_at - blocked_at, 1)
    return window
