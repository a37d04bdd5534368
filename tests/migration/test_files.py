"""The state file's event log (migration/files.py): one JSON line per event, readable as it is written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from migrator.migration.files import JournaledState, event_log_path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_event_log_is_opened_once_not_per_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: each event opened and closed the log (a quarter of its CPU; a run records three events per index).
    state = JournaledState(tmp_path / "plan.state.db")
    log = event_log_path(tmp_path / "plan.state.db")
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *args: opened.append(str(path)) or real_open(path, *args))
    for number in range(50):
        state.event("step.done", f"step {number} done", step=f"validate[i-{number}]", data={"seconds": 0.1})
        assert lines(log)[-1]["message"] == f"step {number} done"  # on disk at once, for `tail -f`
    assert opened.count(str(log)) == 1
    state.close()


def test_two_writers_append_whole_lines(tmp_path: Path) -> None:
    # Kept open in append mode, the log still takes another store's lines (a `cancel` beside a run) whole.
    first, second = JournaledState(tmp_path / "plan.state.db"), JournaledState(tmp_path / "plan.state.db")
    for number in range(20):
        first.event("step.done", f"first {number}")
        second.event("cancel.requested", f"second {number}")
    first.close()
    second.close()
    messages = [line["message"] for line in lines(event_log_path(tmp_path / "plan.state.db"))]
    assert messages == [text for number in range(20) for text in (f"first {number}", f"second {number}")]


def test_close_leaves_the_log_whole_and_private(tmp_path: Path) -> None:
    state = JournaledState(tmp_path / "plan.state.db")
    state.event("run.started", "one")
    state.close()
    assert [line["message"] for line in lines(event_log_path(tmp_path / "plan.state.db"))] == ["one"]
    assert os.stat(event_log_path(tmp_path / "plan.state.db")).st_mode & 0o777 == 0o600
