"""migration.run on a state file alone: when the recorded run began."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from migrator.errors import NeedsAttention
from migrator.migration.run import run_started
from migrator.state import StateStore


def test_the_start_of_the_recorded_run_is_read_back(tmp_path):
    state = StateStore(tmp_path / "plan.state.db")
    try:
        when = datetime(2026, 11, 30, 14, 37, tzinfo=UTC)
        state.set_meta(started=when.isoformat())
        assert run_started(state) == when
    finally:
        state.close()


def test_a_state_file_without_a_start_time_needs_attention_not_a_traceback(tmp_path):
    # Before: datetime.fromisoformat(None) raised TypeError out of `resume` and `status`.
    state = StateStore(tmp_path / "plan.state.db")
    try:
        with pytest.raises(NeedsAttention, match="without its start time"):
            run_started(state)
    finally:
        state.close()
