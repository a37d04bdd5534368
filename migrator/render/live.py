"""The run's progress on a terminal (`migrator apply`/`resume` when stderr is one): a view of a fixed
number of lines, redrawn by rich.

Place in the flow: CLI -> render (progress_for) -> this view; the executor's steps report to it through
the ProgressSink interface (migrator.steps.base). Imported only when a terminal is there to draw on.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from migrator.render.progress import Display
from migrator.render.units import human_bytes

ACTIVE_LINES = 8  # steps shown with a bar on a terminal; the others are counted
# Counted in the totals on a terminal, not printed as lines; drift is said by the command in a few lines
# whatever the number of steps (render.status.drift_lines).
QUIET = ("start", "done", "skipped", "drift")


@dataclass
class Active:
    """A running step as the terminal shows it: its latest progress, if it reported any."""

    since: float
    completed: float = 0.0
    total: float = 0.0
    unit: str = ""
    text: str = ""


class RichProgress(Display):
    """On a terminal: a view of a fixed number of lines (the totals, then a bar for each of the
    ACTIVE_LINES steps running longest), redrawn at most `refresh_per_second` times whatever the
    number of steps; failures, retries and the steps' own messages print above it."""

    def __init__(self, console: Console | None = None, refresh_per_second: float = 4) -> None:
        self.console = console or Console(stderr=True)
        self.expected = 0
        self.counts: Counter[str] = Counter()
        self.active: dict[str, Active] = {}
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self.live = Live(
            console=self.console, get_renderable=self.view, refresh_per_second=refresh_per_second, transient=False
        )
        self.live.start()

    def expect(self, steps: int) -> None:
        self.expected = steps

    def step(self, step: str, status: str, text: str = "") -> None:
        with self._lock:
            if status == "start":
                self.active.setdefault(step, Active(time.monotonic()))
            elif status in ("done", "skipped", "failed"):
                self.active.pop(step, None)
                self.counts[status] += 1
        if status not in QUIET:
            self.message(step, f"{status}: {text}" if text else status)

    def update(self, step: str, completed: float, total: float, unit: str, text: str = "") -> None:
        with self._lock:
            active = self.active.setdefault(step, Active(time.monotonic()))
            active.completed, active.total, active.unit, active.text = completed, total, unit, text

    def message(self, step: str | None, text: str) -> None:
        self.console.print(Text.assemble((step, "bold"), " ", text) if step else Text(text), highlight=False)

    def view(self) -> Group:
        """The totals line, then one line per shown active step, then how many more run."""
        with self._lock:
            finished = self.counts["done"] + self.counts["skipped"]
            running = sorted(self.active.items(), key=lambda item: item[1].since)
            failed = self.counts["failed"]
        elapsed = time.monotonic() - self.started
        totals = f"steps {finished}/{self.expected or '?'} done, {len(running)} running"
        lines: list[Any] = [Text(totals + (f", {failed} failed" if failed else "") + f"  {elapsed:.0f} s", "bold")]
        grid = Table.grid(padding=(0, 1))
        for _ in range(4):
            grid.add_column()
        for name, active in running[:ACTIVE_LINES]:
            bar = ProgressBar(total=active.total or None, completed=active.completed, width=24)
            grid.add_row(Text(f"{name:<36}"), bar, Text(amount(active)), Text(active.text))
        lines.append(grid)
        if len(running) > ACTIVE_LINES:
            lines.append(Text(f"... and {len(running) - ACTIVE_LINES} more running"))
        return Group(*lines)

    def close(self) -> None:
        self.live.stop()


def amount(active: Active) -> str:
    """`completed / total unit` of a step's progress, bytes in human units; empty before any report."""
    if not active.total and not active.unit:
        return ""
    if active.unit == "bytes":
        return f"{human_bytes(active.completed)} / {human_bytes(active.total)}"
    return f"{active.completed:g} / {active.total:g} {active.unit}"
