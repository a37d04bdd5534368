"""CLI -> migration (files) -> state: the state file beside the plan and its JSON-lines event log.

Place in the flow: migration (opened) -> state. `<plan>.state.db` (or `--state`) holds the
checkpoints and events (migrator.state); `JournaledState` also appends every event, redacted, to
`<plan>.events.jsonl` beside it, for `tail -f` and for tools that read JSON lines.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from migrator.migration.saved import load_saved_plan
from migrator.state import StateStore


def default_state_path(plan_path: Path) -> Path:
    """`<plan>.state.db` beside the plan; for a saved plan, beside the plan file it was saved from."""
    saved = load_saved_plan(plan_path)
    origin = Path(saved.plan_file) if saved else plan_path
    return origin.with_name(origin.stem + ".state.db")


def event_log_path(state_path: Path) -> Path:
    """The JSON-lines event log beside the state file: `<plan>.events.jsonl`."""
    name = state_path.name.removesuffix(".state.db") if state_path.name.endswith(".state.db") else state_path.stem
    return state_path.with_name(name + ".events.jsonl")


class JournaledState(StateStore):
    """The state store with every event also appended, as one JSON line, to the event log file.

    Events are redacted before they are recorded, so the file holds no secret either."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.journal = event_log_path(path)
        self._journal_lock = threading.Lock()

    def event(self, kind: str, message: str, *, step: str | None = None, data: dict[str, Any] | None = None) -> None:
        with self._journal_lock:
            super().event(kind, message, step=step, data=data)
            line = {"ts": time.time(), "run": self.run, "step": step, "kind": kind, "message": message, "data": data}
            descriptor = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "a", encoding="utf-8") as journal:
                journal.write(json.dumps(line, sort_keys=True) + "\n")
