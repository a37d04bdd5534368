"""Failpoints: a real `kill -9` of the executor at a named point, for the crash/resume tests.

Set MIGRATOR_FAILPOINT=<step id>:<point>, where point is `acting` (the intent is recorded, nothing
sent yet), `acted` (the step's requests were sent, its end not yet recorded) or `done` (the step's
checkpoint is written); `snapshot.create` also has `accepted` (the snapshot shows in the repository,
its uuid not yet recorded). Unset, it costs one environment lookup per point.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "MIGRATOR_FAILPOINT"


def hit(step: str, point: str) -> None:
    if os.environ.get(VARIABLE) == f"{step}:{point}":
        os.kill(os.getpid(), signal.SIGKILL)
