"""scripts/bench_speed.py's phases of one migrator run, read from the timeline `migrator report --format json`
gives (migrator/timeline.py)."""

from __future__ import annotations

import pytest

from tests.helpers import load_script


def span(step: str, started: float, finished: float) -> dict[str, object]:
    return {"step": step, "started": started, "finished": finished, "requests": {}}


def test_the_phases_split_the_run_at_its_steps_and_name_discovery_on_its_own():
    """Discovery and planning (first request to preflight's first event) is the part of 'preflight, repository,
    snapshot' the minimal script has no counterpart for; the phases end to end cover the process."""
    timeline = {
        "first_event": 100.5,
        "steps": [
            span("preflight", 100.62, 100.64),
            span("repository.source", 100.64, 100.68),
            span("snapshot.create", 100.68, 100.75),
            span("snapshot.wait", 100.75, 104.9),
            span("storage.verify", 104.9, 105.0),
            span("repository.destination", 105.0, 105.05),
            span("restore.batch[1]", 105.05, 115.3),
            span("validate[a]", 115.3, 115.4),
        ],
    }
    phases = load_script("bench_speed").migrator_phases(timeline, 100.0, 115.45, 104.8)
    assert phases == {
        "process start to first event": pytest.approx(0.5),
        "preflight, repository, snapshot": pytest.approx(4.4),
        "of which discovery and planning (first request to preflight's)": pytest.approx(0.12),
        "of which the snapshot's end to snapshot.wait done": pytest.approx(0.1),
        "verify in storage, destination repository": pytest.approx(0.15),
        "restores, recoveries, counts": pytest.approx(10.35),
        "last step to exit": pytest.approx(0.05),
    }
