"""Progress of a run: on a terminal a view of a fixed number of lines (the totals of the steps and a bar
for each of the few steps running longest: snapshot bytes, an index's recovery), plain timestamped lines
otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
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

from migrator.render.plan import human_bytes
from migrator.steps.base import ProgressSink


class PlainProgress(ProgressSink):
    """One line per event; progress lines at most every `every_s` seconds per step."""

    def __init__(self, stream=None, every_s: float = 5.0) -> None:  # noqa: ANN001 - a text stream
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def _print(self, text: str) -> None:
        with self._lock:
            self.stream.write(time.strftime("%H:%M:%S ") + text + "\n")
            self.stream.flush()

    def update(self, step: str, completed: float, total: float, unit: str, text: str = "") -> None:
        now = time.monotonic()
        if now - self._last.get(step, 0.0) < self.every_s and completed < total:
            return
        self._last[step] = now
        percent = f"{100.0 * completed / total:5.1f}%" if total else "  -  "
        self._print(f"{step:<40} {percent} {int(completed)}/{int(total)} {unit} {text}".rstrip())

    def message(self, step: str | None, text: str) -> None:
        self._print(f"{step:<40} {text}" if step else text)

    def close(self) -> None:
        return None


ACTIVE_LINES = 8  # steps shown with a bar on a terminal; the others are counted
QUIET = ("start", "done", "skipped")  # counted in the totals on a terminal, not printed as lines


@dataclass
class Active:
    """A running step as the terminal shows it: its latest progress, if it reported any."""

    since: float
    completed: float = 0.0
    total: float = 0.0
    unit: str = ""
    text: str = ""


class RichProgress(ProgressSink):
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


def progress_for(stream_is_tty: bool) -> PlainProgress | RichProgress:
    return RichProgress() if stream_is_tty else PlainProgress()
