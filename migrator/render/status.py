"""`migrator status`: the run recorded in the state file, as plain text or as a live rich table
(`--watch`), from the dictionary `migration.readback.status()` returns. rich is imported by the live
view only, so that the commands that never draw one (`apply` without a terminal) start without it."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from migrator.render.units import human_bytes, human_seconds

if TYPE_CHECKING:
    from rich.console import Group

COLOURS = {"done": "green", "acting": "yellow", "failed": "red", "pending": "dim"}
ALL_STEPS_UP_TO = 40  # a larger plan shows its totals and the steps acting or failed, not every step
SHOWN = 8  # steps acting or failed shown in a large plan; the others are counted


def totals(report: dict[str, Any]) -> str:
    """`steps: 602, 580 done, 2 acting, 20 pending` (the statuses present, in a fixed order)."""
    counts = Counter(step["status"] for step in report["steps"])
    order = ["done", "acting", "failed", "cancelled", "pending"]
    named = [f"{counts[name]} {name}" for name in [*order, *sorted(set(counts) - set(order))] if counts[name]]
    return ", ".join([f"steps: {len(report['steps'])}", *named])


def shown_steps(report: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The steps to list (all of a small plan; else the acting and failed ones, at most SHOWN) and how many
    more acting or failed steps are left out: status shows a fixed number of lines whatever the plan's size."""
    steps = report["steps"]
    if len(steps) <= ALL_STEPS_UP_TO:
        return steps, 0
    busy = [step for step in steps if step["status"] in ("acting", "failed")]
    return busy[:SHOWN], max(0, len(busy) - SHOWN)


def headline(report: dict[str, Any]) -> str:
    return f"plan {report['plan']} — {report['status']} — snapshot {report['snapshot']} ({report['runs']} run(s))"


def lock_line(report: dict[str, Any]) -> str | None:
    lock = report["lock"]
    if lock is None:
        return None
    state = "" if report["live"] else " (no heartbeat: the process is gone; `migrator resume` takes over)"
    return f"locked by {lock['holder']} (pid {lock['pid']} on {lock['host']}){state}"


def progress_text(progress: dict[str, Any] | None) -> str:
    if not progress:
        return ""
    completed, total = progress["completed"], progress["total"]
    if progress["unit"] == "bytes":
        amount = f"{human_bytes(completed)} / {human_bytes(total)}"
    else:
        amount = f"{completed:g} / {total:g} {progress['unit']}"
    percent = f"{100.0 * completed / total:.0f}% " if total else ""
    return f"{percent}{amount} {progress['text']}".strip()


def status_text(report: dict[str, Any], plan_file: str = "PLAN") -> str:
    lines = [headline(report)]
    if lock := lock_line(report):
        lines.append(lock)
    lines.append(totals(report))
    steps, more = shown_steps(report)
    for step in steps:
        took = f" {human_seconds(step['seconds'])}" if step["seconds"] is not None else ""
        shown = progress_text(step["progress"]) if step["status"] == "acting" else ""
        lines.append(f"  {step['status']:<9} {step['step']}{took}" + (f"  {shown}" if shown else ""))
    if more:
        lines.append(f"  ... and {more} more acting or failed")
    if report.get("drift"):
        lines.extend(drift_lines(report["drift"], report["redo"], plan_file))
    return "\n".join(lines)


EACH_UP_TO = 5  # drifted steps listed one by one, each with its own --redo; more are grouped by kind
NAMED = 3  # drifted steps named per kind when grouped; the others are counted (all are in `status --json`)


def drift_lines(drift: list[dict[str, Any]], redo: str, plan_file: str) -> list[str]:
    """A drift report (`drift`: [{"step", "what", "redo"}]) in a bounded number of lines: up to EACH_UP_TO
    drifted steps each with what changed and its `--redo`; more, one line per kind of step with its count, the
    first NAMED steps and what changed in the first, then the one command that redoes them all (`redo`:
    migrator.drift.redo_argument) and where the full list is (before: two lines per drifted step)."""
    if len(drift) <= EACH_UP_TO:
        lines = []
        for item in drift:
            lines.append(f"drift: {item['step']}: {item['what']}")
            lines.append(f"  to redo it: migrator resume {plan_file} --redo '{item['redo']}'")
        return lines
    kinds: dict[str, list[dict[str, Any]]] = {}
    for item in drift:
        kinds.setdefault(item["step"].split("[", 1)[0], []).append(item)
    lines = [f"drift: {len(drift)} done step(s) are no longer as the run left them:"]
    for kind, items in kinds.items():
        names = ", ".join(item["step"] for item in items[:NAMED])
        others = f" and {len(items) - NAMED} more" if len(items) > NAMED else ""
        lines.append(f"  {kind}: {len(items)} ({names}{others}); {items[0]['step']}: {items[0]['what']}")
    lines.append(f"  to redo them: migrator resume {plan_file} --redo '{redo}'")
    lines.append(f'  every one, with what changed: migrator status {plan_file} --json (its "drift")')
    return lines


def status_view(report: dict[str, Any]) -> Group:
    """A live view: the totals, then one row per shown step (see `shown_steps`) with its status, attempts,
    duration and progress bar. rich is imported here, for `status --watch` alone: the plain text needs none."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(headline(report) + "\n" + totals(report)), title_justify="left", expand=False)
    steps, more = shown_steps(report)
    for column in ("step", "status", "attempts", "took", "progress", ""):
        table.add_column(column)
    for step in steps:
        progress = step["progress"]
        bar: Any = ""
        if progress and progress["total"] and step["status"] in ("acting", "done"):
            completed = progress["total"] if step["status"] == "done" else progress["completed"]
            bar = ProgressBar(total=progress["total"], completed=completed, width=24)
        table.add_row(
            Text(step["step"]),
            Text(step["status"], style=COLOURS.get(step["status"], "")),
            str(step["attempts"]),
            human_seconds(step["seconds"]) if step["seconds"] is not None else "",
            bar,
            Text(progress_text(progress) if step["status"] == "acting" else ""),
        )
    events = Text(
        "\n".join(f"{e['kind']:<14} {e['step'] or '':<28} {e['message']}" for e in report["last_events"][-5:])
    )
    parts: list[Any] = [table]
    if more:
        parts.append(Text(f"... and {more} more acting or failed"))
    if lock := lock_line(report):
        parts.append(Text(lock))
    parts.append(events)
    return Group(*parts)
