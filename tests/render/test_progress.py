"""The run's display on a terminal: a fixed number of lines whatever the number of steps."""

from __future__ import annotations

import io

from rich.console import Console

from migrator.render.live import ACTIVE_LINES, RichProgress
from migrator.render.progress import PlainProgress


def test_the_terminal_shows_totals_and_a_fixed_number_of_active_steps():
    console = Console(file=io.StringIO(), force_terminal=True, width=160, record=True)
    progress = RichProgress(console, refresh_per_second=1)
    try:
        progress.expect(1500)
        for index in range(500):
            progress.step(f"restore[i-{index}]", "start")
            progress.step(f"restore[i-{index}]", "done", "restored")
            progress.step(f"recovery[i-{index}]", "start")
            progress.update(f"recovery[i-{index}]", 512, 1024, "bytes", "restoring")
        progress.step("recovery[i-3]", "failed", "lost")
        view = Console(file=io.StringIO(), width=160, record=True)
        view.print(progress.view())
        lines = view.export_text().splitlines()
    finally:
        progress.close()
    assert lines[0].startswith("steps 500/1500 done, 499 running, 1 failed")
    assert len(lines) == ACTIVE_LINES + 2 and lines[-1] == f"... and {499 - ACTIVE_LINES} more running"
    assert "recovery[i-0]" in lines[1] and "512 B / 1.0 KB restoring" in lines[1]
    printed = console.export_text()
    assert "recovery[i-3] failed: lost" in printed and "restored" not in printed  # news lines only


def test_plain_lines_say_the_steps_already_done_in_one_line_and_leave_drift_to_the_command():
    # Before: one line per step already done and one per drifted step (1,273 lines resuming 320 indices of which
    # 300 drifted, tests/e2e/test_drift_e2e.py).
    stream = io.StringIO()
    progress = PlainProgress(stream)
    for index in range(1000):
        progress.step(f"restore[i-{index}]", "skipped", "already done (checkpoint)")
    for index in range(300):
        progress.step(f"restore[i-{index}]", "drift", f"i-{index} does not exist on the destination")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith(" 1000 step(s) already done (checkpoints): skipped")
    stream = io.StringIO()
    progress = PlainProgress(stream)
    progress.step("snapshot.create", "skipped", "already done (checkpoint)")
    progress.step("restore[a]", "start")
    progress.close()
    assert [line[9:] for line in stream.getvalue().splitlines()] == [
        "1 step(s) already done (checkpoints): skipped",
        f"{'restore[a]':<40} start",
    ]


def test_the_terminal_leaves_drift_to_the_command():
    console = Console(file=io.StringIO(), force_terminal=True, width=160, record=True)
    progress = RichProgress(console, refresh_per_second=1)
    try:
        for index in range(300):
            progress.step(f"restore[i-{index}]", "drift", f"i-{index} does not exist on the destination")
    finally:
        progress.close()
    assert "does not exist" not in console.export_text()
