"""The stall watch: a wait ends when its progress figures stay the same for `waits.stall_after` seconds."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from migrator.errors import Cure
from migrator.steps.stall import Stalled, StallWatch, human_duration


def watch(limit: float, now: list[float], explain=None) -> StallWatch:
    ctx = SimpleNamespace(spec=SimpleNamespace(waits=SimpleNamespace(stall_after=limit)))
    return StallWatch(ctx, "the recovery of orders", explain=explain, clock=lambda: now[0])


def test_progress_resets_the_clock_and_the_same_figures_for_stall_after_stop_the_wait():
    now = [0.0]
    w = watch(60, now, explain=lambda: "orders shard 0: no (disk_threshold: above the high watermark).")
    for second, figures in ((0, (0, 10)), (50, (0, 10)), (55, (5, 10)), (110, (5, 10))):
        now[0] = second
        w.see(figures)  # moved at 55 s: 55 s without progress is not a stall yet
    now[0] = 115.0
    with pytest.raises(Stalled) as stalled:
        w.see((5, 10), "5/10 bytes")
    message = str(stalled.value)
    assert message.startswith("the recovery of orders has not moved for 60 s (still at 5/10 bytes)")
    assert "waits.stall_after is 60 s. orders shard 0: no (disk_threshold: above the high watermark). Once" in message
    assert "`migrator resume`" in message and "`migrator resume --replan`" in message
    assert not stalled.value.transient and stalled.value.cure is Cure.RESUME


def test_human_durations():
    assert [human_duration(s) for s in (0.3, 9.5, 90, 900, 7500)] == ["0.3 s", "9.5 s", "90 s", "15 min", "2 h 5 min"]
