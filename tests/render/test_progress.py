"""The run's display on a terminal: a fixed number of lines whatever the number of steps."""

from __future__ import annotations

import io

from rich.console import Console

from migrator.render.live import ACTIVE_LINES, RichProgress


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
