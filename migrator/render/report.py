"""`migrator report` in Markdown, from the dictionary `migration.report()` builds from the state file:
per index the documents on each side and the bytes, each step's duration, retries and warnings."""

from __future__ import annotations

from typing import Any

from migrator.render.plan import human_bytes, human_seconds


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


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
    failed = [step for step in report["steps"] if step["error"]]
    if failed:
        out += ["", "## Failures", ""]
        out.extend(f"- `{step['step']}`: {step['error']}" for step in failed)
    out += ["", "## Warnings", ""]
    out.extend(f"- {warning}" for warning in report["warnings"])
    if not report["warnings"]:
        out.append("None.")
    return "\n".join(out) + "\n"
