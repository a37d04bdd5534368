"""`migrator report` in Markdown, from the dictionary `migration.readback.report()` builds from the state file:
per index the documents on each side and the bytes, each step's duration, retries and warnings."""

from __future__ import annotations

from typing import Any

from migrator.render.units import human_bytes, human_seconds


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


def _cpu_rows(runs: list[dict[str, Any]]) -> list[str]:
    """migrator's own CPU per run: starting (Python, imports, the plan) and running, against the run's time."""
    rows = []
    for run in runs:
        wall = run["run_wall_s"]
        share = f" ({run['run_cpu_s'] / wall:.1%} of it)" if wall > 0 else ""
        rows.append(
            f"| migrator's CPU, run {run['run']} | {run['startup_cpu_s']:.2f} s starting, "
            f"{run['run_cpu_s']:.2f} s while running {human_seconds(wall)}{share} |"
        )
    return rows


def report_markdown(report: dict[str, Any]) -> str:
    estimate = report.get("estimate") or {}
    totals = report["totals"]
    out = [
        f"# Migration report: {report['plan']}",
        "",
        "| | |",
        "|---|---|",
        f"| Status | **{report['status']}** |",
        f"| Plan hash | `{report['plan_hash']}` |",
        f"| Snapshot | `{report['snapshot']}` in repository `{report['repository']}` |",
        f"| Started | {report['started']} ({report['runs']} run(s)) |",
        f"| Step time | {human_seconds(totals['seconds'])}"
        + (f" (expected {human_seconds(estimate['total_seconds'])})" if estimate else "")
        + " |",
        *_cpu_rows(report.get("cpu") or []),
        f"| Event log | `{report['event_log']}` |",
        "",
        "## Indices",
        "",
        "| source | target | source docs | destination docs | primary size | recovered | shards | validated |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for index in report["indices"]:
        recovered = index["recovered_bytes"]
        out.append(
            f"| `{index['source']}` | `{index['target']}` | {_cell(index['source_docs'])} | "
            f"{_cell(index['destination_docs'])} | {human_bytes(index['primary_bytes'])} | "
            f"{human_bytes(recovered) if recovered is not None else '–'} | {index['primary_shards']} | "
            f"{'yes' if index['validated'] else 'no'} |"
        )
    out.append(
        f"| **total: {totals['indices']}** | | {totals['source_docs']} | {totals['destination_docs']} | "
        f"{human_bytes(totals['primary_bytes'])} | | | |"
    )
    out += ["", "## Steps", "", "| step | status | duration | attempts | retries |", "|---|---|--:|--:|--:|"]
    for step in report["steps"]:
        took = human_seconds(step["seconds"]) if step["seconds"] is not None else "–"
        out.append(f"| `{step['step']}` | {step['status']} | {took} | {step['attempts']} | {step['retries']} |")
    if report.get("cutover"):
        out += ["", *cutover_markdown(report["cutover"])]
    failed = [step for step in report["steps"] if step["error"]]
    if failed:
        out += ["", "## Failures", ""]
        out.extend(f"- `{step['step']}`: {step['error']}" for step in failed)
    out += ["", "## Warnings", ""]
    out.extend(f"- {warning}" for warning in report["warnings"])
    if not report["warnings"]:
        out.append("None.")
    return "\n".join(out) + "\n"


def cutover_markdown(figures: dict[str, Any]) -> list[str]:
    """The cutover's costs: the incremental snapshot against the full one, the restores over the
    existing indices, and the write freeze."""
    out = ["## Cutover", "", "| | |", "|---|---|"]
    for label, key in (
        ("Full snapshot (phase one)", "full_snapshot"),
        ("Incremental snapshot", "incremental_snapshot"),
    ):
        stats = figures.get(key)
        if stats and stats.get("total_bytes") is not None:
            out.append(
                f"| {label} | copied {human_bytes(stats['incremental_bytes'] or 0)} "
                f"({_cell(stats['incremental_files'])} files) of {human_bytes(stats['total_bytes'])} "
                f"({_cell(stats['total_files'])} files) |"
            )
    if "incremental_reused_fraction" in figures:
        out.append(f"| Reused by the incremental snapshot | {figures['incremental_reused_fraction']:.1%} |")
    over = figures.get("restore_over") or {}
    if over.get("indices"):
        out.append(
            f"| Restored over {over['indices']} index(es) | {human_bytes(over['bytes'])}, of which "
            f"{human_bytes(over['reused_bytes'])} reused from the files already on the destination |"
        )
    window = figures.get("write_block") or {}
    if window.get("seconds") is not None:
        out.append(
            f"| Writes blocked on the source | {human_seconds(window['seconds'])} (ended by {window['ended_by']}) |"
        )
    elif window.get("blocked_at") is not None:
        out.append("| Writes blocked on the source | since the cutover began, still blocked |")
    return out
