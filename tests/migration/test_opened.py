"""The migration opened from a plan (migrator.migration.opened): what it starts around discovery."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import migrator.migration.opened as migration_module
from migrator.clients import oss_sdk
from migrator.migration.opened import Migration
from tests.render.conftest import BASE_INDICES, facts


def test_discovery_begins_with_oss2_loading_in_the_background(
    opened: Callable[[Path | None], Migration], monkeypatch: pytest.MonkeyPatch
) -> None:
    """oss2 is first used after discovery (preflight's bucket listing): its import is started before
    discovery's first request, so it runs while discovery waits on the clusters' answers."""
    order: list[str] = []

    def load_in_background() -> threading.Thread:
        order.append("oss2 import started")
        return threading.Thread()

    def discover(*_args: object) -> object:
        order.append("discovery")
        return facts(BASE_INDICES)

    monkeypatch.setattr(oss_sdk, "load_in_background", load_in_background)
    monkeypatch.setattr(migration_module, "discover", discover)
    opened(None).plan()
    assert order == ["oss2 import started", "discovery"]
