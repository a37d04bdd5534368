"""The report's timeline from canned event logs: each step's span, its requests by cluster, the waits' rates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.state import Event, StateStore
from migrator.timeline import build_timeline, timeline_report


def log(*rows: tuple[float, str | None, str, dict[str, Any] | None], run: int = 2) -> list[Event]:
    return [Event(n, ts, run, step, kind, "", data) for n, (ts, step, kind, data) in enumerate(rows)]


def request(ts: float, step: str, cluster: str) -> tuple[float, str, str, dict[str, Any]]:
    return (ts, step, "request", {"cluster": cluster, "method": "GET", "path": "/_snapshot/r/s"})


def test_steps_span_from_their_first_event_to_done_and_count_their_requests() -> None:
    events = log(
        (100.0, None, "run.start", None),
        (101.0, "preflight", "step.start", None),
        request(101.5, "preflight", "source"),
        request(101.6, "preflight", "destination"),
        (102.0, "preflight", "step.done", {"seconds": 1.0}),
        (102.0, "snapshot.wait", "step.start", None),
        *[request(102.0 + 10 * n, "snapshot.wait", "source") for n in range(9)],
        (190.0, "snapshot.wait", "step.done", None),
        (190.0, "recovery[a]", "step.start", None),
        (190.0, "recovery[b]", "step.start", None),
        *[request(190.0 + n, "recovery[a]", "destination") for n in range(3)],
        *[request(190.5 + n, "recovery[b]", "destination") for n in range(3)],
        request(195.0, "recovery[b]", "source"),  # not a poll of the cluster it waits on
        (200.0, "recovery[a]", "step.done", None),
        (230.0, "recovery[b]", "step.done", None),
        (231.0, "validate[a]", "step.start", None),
    )
    timeline = build_timeline(events, 2)
    assert timeline["run"] == 2 and timeline["first_event"] == 100.0
    steps = {step["step"]: step for step in timeline["steps"]}
    assert list(steps) == ["preflight", "snapshot.wait", "recovery[a]", "recovery[b]", "validate[a]"]
    assert (steps["preflight"]["started"], steps["preflight"]["finished"]) == (101.0, 102.0)
    assert steps["preflight"]["requests"] == {"source": 1, "destination": 1}
    assert steps["recovery[b]"]["requests"] == {"destination": 3, "source": 1}
    assert steps["validate[a]"]["finished"] is None
    assert timeline["waits"] == {
        "source": {"steps": 1, "requests": 9, "seconds": 88.0, "peak_per_minute": 6},
        "destination": {"steps": 2, "requests": 6, "seconds": 40.0, "peak_per_minute": 6},
    }


def test_only_the_asked_run_counts_and_an_unfinished_wait_is_left_out() -> None:
    earlier = log((1.0, "snapshot.wait", "step.start", None), request(2.0, "snapshot.wait", "source"), run=1)
    last = log((50.0, "snapshot.wait", "step.start", None), request(51.0, "snapshot.wait", "source"))
    timeline = build_timeline(earlier + last, 2)
    assert timeline["first_event"] == 50.0
    assert timeline["steps"] == [
        {"step": "snapshot.wait", "started": 50.0, "finished": None, "requests": {"source": 1}}
    ]
    assert timeline["waits"] == {}
    assert build_timeline([], 1) == {"run": 1, "first_event": None, "steps": [], "waits": {}}


def test_the_timeline_of_a_state_file_is_its_last_run(tmp_path: Path) -> None:
    assert timeline_report(tmp_path / "none.db") is None
    store = StateStore(tmp_path / "plan.state.db")
    try:
        store.begin_run()
        store.event("step.start", "old", step="preflight")
        store.begin_run()
        store.event("step.start", "new", step="snapshot.create")
        store.event("step.done", "new", step="snapshot.create")
    finally:
        store.close()
    timeline = timeline_report(tmp_path / "plan.state.db")
    assert timeline is not None and timeline["run"] == 2
    assert [step["step"] for step in timeline["steps"]] == ["snapshot.create"]
    assert timeline["steps"][0]["finished"] is not None
