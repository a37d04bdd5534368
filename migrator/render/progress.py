"""Progress of a run: on a terminal a view of a fixed number of lines (the totals of the steps and a bar
for each of the few steps running longest: snapshot bytes, an index's recovery; migrator.render.live),
plain timestamped lines otherwise (CI logs, pipes). rich is imported only for the terminal's view: a
run without a terminal does not pay for it at start (about 20 ms of CPU)."""

from __future__ import annotations

import sys
import threading
import time

from migrator.steps.base import ProgressSink


class Display(ProgressSink):
    """A progress sink the command closes when the run ends (the terminal's view stops redrawing)."""

    def close(self) -> None:
        """Stop drawing; nothing by default."""


class PlainProgress(Display):
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


def progress_for(stream_is_tty: bool) -> Display:
    """The terminal's view (rich, imported now) on a terminal, plain lines otherwise."""
    if not stream_is_tty:
        return PlainProgress()
    from migrator.render.live import RichProgress

    return RichProgress()
