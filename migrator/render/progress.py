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


# News of a step said elsewhere, not as a line per step: steps already done are counted (one line for them all),
# and drift is reported by the command in a few lines whatever the number of steps (render.status.drift_lines).
COUNTED, SAID_BY_THE_COMMAND = "skipped", "drift"


class PlainProgress(Display):
    """One line per event; progress lines at most every `every_s` seconds per step; the steps already done
    (checkpoints) in one line, before the next other news or at the end (before: one line each, 1,000 lines
    when resuming a plan of 300 indices)."""

    def __init__(self, stream=None, every_s: float = 5.0) -> None:  # noqa: ANN001 - a text stream
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._already_done = 0

    def _print(self, text: str) -> None:
        with self._lock:
            done, self._already_done = self._already_done, 0
            stamp = time.strftime("%H:%M:%S ")
            if done:
                self.stream.write(f"{stamp}{done} step(s) already done (checkpoints): skipped\n")
            if text:
                self.stream.write(stamp + text + "\n")
            self.stream.flush()

    def step(self, step: str, status: str, text: str = "") -> None:
        if status == COUNTED:
            with self._lock:
                self._already_done += 1
        elif status != SAID_BY_THE_COMMAND:
            super().step(step, status, text)

    def close(self) -> None:
        """Say the steps already done that no later news said."""
        if self._already_done:
            self._print("")

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
