"""migration.undo -> render -> CLI: what `migrator cancel` did, as lines a person reads.

Place in the flow: CLI -> migration (undo) -> render (this module). `cancel_lines` turns the report
`migration.undo.cancel` returns (`{"snapshot_deleted": str | None, "indices_deleted": [...], "kept":
[...], "templates_deleted": [...], ...}`) into one line per kind of thing, in the order the cancel
acted; `--json` prints the report itself. `rollback_dry_run_lines` shows the requests `migrator rollback
--dry-run` lists (`migration.rollback.rollback_requests`) in the runbook's console form.
"""

from __future__ import annotations

from typing import Any

from migrator.render.plan import console_blocks
from migrator.steps.base import ConsoleRequest

# The report's keys in the order a cancel acts, with how each reads; unknown keys follow, as named.
LABELS = {
    "indices_deleted": "indices deleted on the destination",
    "templates_deleted": "templates deleted (migrator had created them)",
    "templates_restored": "templates put back as they were before migrator overwrote them",
    "templates_kept": "templates kept",
    "pipelines_deleted": "pipelines and policies deleted (migrator had created them)",
    "pipelines_restored": "pipelines and policies put back as they were before migrator overwrote them",
    "pipelines_kept": "pipelines and policies kept",
    "snapshot_deleted": "snapshot deleted",
    "kept": "kept (not made by this migration)",
}


def cancel_lines(report: dict[str, Any]) -> list[str]:
    """`cancelled.` then one `<what>: <names>` line per key of `report` that names something; lists are
    joined with commas, None and empty lists are left out (nothing of that kind was there to undo)."""
    lines = ["cancelled."]
    for key in [*LABELS, *(key for key in report if key not in LABELS)]:
        value = report.get(key)
        if value in (None, [], ""):
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        lines.append(f"{LABELS.get(key, key.replace('_', ' '))}: {shown}")
    if len(lines) == 1:
        lines.append("nothing this migration made was left to delete")
    return lines


def rollback_dry_run_lines(requests: list[ConsoleRequest]) -> list[str]:
    """What a rollback would send now, in the runbook's console form (per cluster, in order), or one line
    saying it would send nothing."""
    if not requests:
        return ["rollback would send no request: nothing of the cutover is left to undo"]
    return [f"rollback would send these {len(requests)} request(s), in this order:", *console_blocks(requests)]
