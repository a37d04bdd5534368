"""When each step of the last run ran and what it asked the clusters: the `timeline` of `migrator report`.

Place in the flow: reading back. The executor's event log in the state file (step events and one
`request` event per request sent, with its cluster) -> timeline (this module) -> `migrator report
--format json` (beside the report's other sections) -> scripts/bench_speed.py, which takes its phases
and its status-request rates from there instead of reading the event log itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.dag import CUTOVER_SNAPSHOT_WAIT, SNAPSHOT_WAIT
from migrator.state import Event, StateStore

WINDOW_S = 60.0  # the window of `peak_per_minute`


def waited_cluster(step: str | None) -> str | None:
    """The cluster a waiting step polls: the source for the snapshot waits, the destination for a
    `recovery[<target>]`; None for a step that does not wait on a cluster."""
    if step in (SNAPSHOT_WAIT, CUTOVER_SNAPSHOT_WAIT):
        return "source"
    if step is not None and step.startswith("recovery["):
        return "destination"
    return None


@dataclass
class _Span:
    started: float
    finished: float | None = None


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the (start, end) spans."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        start = max(start, reach)
        if end > start:
            total += end - start
            reach = end
    return total


def _peak_in_window(times: list[float], window_s: float = WINDOW_S) -> int:
    """The most of `times` (epoch s) that fall within any `window_s` seconds."""
    times = sorted(times)
    best, first = 0, 0
    for last, ts in enumerate(times):
        while ts - times[first] >= window_s:
            first += 1
        best = max(best, last - first + 1)
    return best


def build_timeline(events: list[Event], run: int) -> dict[str, Any]:
    """The timeline of `run` from its events (in log order).

    Returns {"run", "first_event": epoch s or None, "steps": [{"step", "started", "finished" (epoch s; None
    while not done), "requests": {cluster: count}}] in the order the steps started, "waits": {cluster:
    {"steps", "requests", "seconds" (the time at least one of its waiting steps ran), "peak_per_minute"}}}.
    A step's span runs from its first event to its `step.done`; `waits` counts only finished steps."""
    ours = [event for event in events if event.run == run]
    spans: dict[str, _Span] = {}
    requests: dict[str, dict[str, int]] = {}
    wait_times: dict[str, list[float]] = {}
    for event in ours:
        if event.step is None:
            continue
        span = spans.setdefault(event.step, _Span(event.ts))
        if event.kind == "step.done":
            span.finished = event.ts
        elif event.kind == "request" and event.data:
            cluster = str(event.data.get("cluster"))
            counts = requests.setdefault(event.step, {})
            counts[cluster] = counts.get(cluster, 0) + 1
            if waited_cluster(event.step) == cluster:
                wait_times.setdefault(event.step, []).append(event.ts)
    waits: dict[str, dict[str, Any]] = {}
    for step, span in spans.items():
        waited = waited_cluster(step)
        if waited is None or span.finished is None:
            continue
        entry = waits.setdefault(waited, {"steps": 0, "requests": 0, "spans": [], "times": []})
        entry["steps"] += 1
        entry["spans"].append((span.started, span.finished))
        entry["times"] += wait_times.get(step, [])
    return {
        "run": run,
        "first_event": ours[0].ts if ours else None,
        "steps": [
            {"step": step, "started": span.started, "finished": span.finished, "requests": requests.get(step, {})}
            for step, span in spans.items()
        ],
        "waits": {
            cluster: {
                "steps": entry["steps"],
                "requests": len(entry["times"]),
                "seconds": round(_union_seconds(entry["spans"]), 3),
                "peak_per_minute": _peak_in_window(entry["times"]),
            }
            for cluster, entry in waits.items()
        },
    }


def timeline_report(state_path: Path) -> dict[str, Any] | None:
    """`build_timeline` of the last run in the state file at `state_path` (None when there is no file)."""
    if not state_path.is_file():
        return None
    state = StateStore(state_path)
    try:
        return build_timeline(state.events(run=state.run), state.run)
    finally:
        state.close()
