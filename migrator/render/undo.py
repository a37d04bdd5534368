"""migration.undo -> render -> CLI: what `migrator cancel` did, as lines a person reads.

Place in the flow: CLI -> migration (undo) -> render (this module). `cancel_lines` turns the report
`migration.undo.cancel` returns (`{"snapshot_deleted": str | None, "indices_deleted": [...], "kept":
[...], "templates_deleted": [...], ...}`) into one line per kind of thing, in the order the cancel
acted; `--json` prints the report itself.
"""

from __future__ import annotations

from typing import Any

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
