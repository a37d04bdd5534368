"""Planner side, pure: how long a plan's transfers should take, from the plan's throughput (the estimates).

Place in the flow: planner side, pure: `estimate(plan)` is shown by `migrator plan`, recorded in
the state file when the run begins and compared with the actual durations by `migrator report`.
"""

from __future__ import annotations

from typing import Any

from migrator.planner import MigrationPlan

MB = 1024 * 1024


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
