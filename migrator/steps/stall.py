"""Every wait ends: the stall watch that each step's wait loop shows its progress to.

Place in the flow: executor -> step.wait() (snapshot, restore, recovery, replication, cutover) ->
StallWatch (this module). A wait ends on success, on a failure it recognises, or here: when what it
follows has not moved for `waits.stall_after` seconds (plan setting, 15 minutes by default). The
watch sends no request of its own: it compares the progress figures the wait reads anyway, so
polling costs what it cost before. The step that stalls stops with a message naming what did not
move, what it was at, and how to continue; the step's checkpoint stays `acting`, so `migrator
resume` follows the same snapshot or restore again instead of starting it twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from migrator.errors import Cure
from migrator.steps.base import StepFailed


class Stalled(StepFailed):
    """A wait saw no progress for `waits.stall_after` seconds. Not transient: trying again at once would wait
    as long again; the cause (a queue, a full disk, a node gone) needs a look first."""


def human_duration(seconds: float) -> str:
    """`15 min`, `90 s`, `2 h 5 min`: how long something did not move."""
    if seconds < 10:
        return f"{seconds:.1f}".rstrip("0").rstrip(".") + " s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


class StallWatch:
    """Tracks one wait's progress (any comparable figures: bytes, shards done, a stage) and raises
    Stalled when they have not changed for `ctx.spec.waits.stall_after` seconds.

    `what` names what is followed ("the restore of orders-v2"); `explain` (optional, called only when
    the wait stalls) adds a line on why, such as the destination's allocation decision."""

    def __init__(
        self,
        ctx: Any,
        what: str,
        *,
        explain: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = float(ctx.spec.waits.stall_after)
        self.what = what
        self.explain = explain
        self.clock = clock
        self.last: Hashable = None
        self.since = clock()

    def see(self, progress: Hashable, shown: str = "") -> None:
        """Record the figures just read (`shown`: how they read to a person, e.g. `0/1.2 GB`); raises
        Stalled when they are the same as `waits.stall_after` seconds ago."""
        now = self.clock()
        if progress != self.last:
            self.last, self.since = progress, now
            return
        if now - self.since < self.limit:
            return
        at = f" (still at {shown})" if shown else ""
        why = (self.explain() if self.explain is not None else "").rstrip(".")
        raise Stalled(
            f"{self.what} has not moved for {human_duration(now - self.since)}{at}; waits.stall_after is "
            f"{human_duration(self.limit)}.{' ' + why + '.' if why else ''} Once the cause is fixed, `migrator resume` "
            "follows it again (nothing is started twice); to wait longer, raise waits.stall_after and run "
            "`migrator resume --replan`",
            cure=Cure.RESUME,
        )
