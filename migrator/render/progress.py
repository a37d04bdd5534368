"""Progress of a run: rich bars on a terminal (snapshot bytes and shards, recovery per index),
plain timestamped lines otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
import threading
import time

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

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


class RichProgress(ProgressSink):
    """A bar per waiting step (bytes), below the step lines."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.bars = Progress(
            TextColumn("{task.description:<36}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[note]}", markup=False),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.bars.start()

    def update(self, step: str, completed: float, total: float, unit: str, text: str = "") -> None:
        if step not in self.tasks:
            self.tasks[step] = self.bars.add_task(step, total=total or None, note=text)
        self.bars.update(self.tasks[step], completed=completed, total=total or None, note=text)

    def message(self, step: str | None, text: str) -> None:
        self.bars.console.print(Text.assemble((step, "bold"), " ", text) if step else Text(text), highlight=False)

    def close(self) -> None:
        self.bars.stop()


def progress_for(stream_is_tty: bool) -> PlainProgress | RichProgress:
    return RichProgress() if stream_is_tty else PlainProgress()
