"""index.close, with canned destination answers: an open restored index is closed with the request the
dry run shows; a closed one is done without a request; a missing one stops naming the fix."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from migrator.steps.base import StepFailed
from migrator.steps.close import CloseIndex
from tests.steps.listed import sends_only_listed


class Destination:
    """`GET _cat/indices/<target>` answers the index's status (404 when absent); records every request."""

    def __init__(self, status: str | None) -> None:
        self.status = status
        self.sent: list[tuple[str, str, Any]] = []  # method, path without its leading slash, body

    def request(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,), **_: Any):
        self.sent.append((method, path.lstrip("/"), body))
        if method == "GET":
            return (404, {}) if self.status is None else (200, [{"status": self.status}])
        self.status = "close"
        return 200, {"acknowledged": True}


def step(destination: Destination) -> CloseIndex:
    ctx = SimpleNamespace(destination=destination)
    return CloseIndex("index.close[moved-archive]", {"source": "archive", "target": "moved-archive"}, ctx)


def test_an_open_index_is_closed_with_the_request_the_dry_run_shows_and_reads_as_its_checks_say():
    destination = Destination("open")
    close = step(destination)
    with sends_only_listed(close):
        assert not close.observe().done
        close.act()
        assert close.observe().done and close.wait() == {"closed": "moved-archive"}
    sends = [(r.method, r.path, r.body) for r in close.describe()]
    reads = [(r.method, r.path, r.body) for r in close.checks()]
    assert [s for s in destination.sent if s[0] == "POST"] == sends == [("POST", "moved-archive/_close", None)]
    assert {s for s in destination.sent if s[0] == "GET"} == set(reads)


def test_a_closed_index_is_done_without_a_request():
    destination = Destination("close")
    assert step(destination).observe().done
    assert [s[0] for s in destination.sent] == ["GET"]


def test_a_missing_index_stops_naming_the_fix():
    with pytest.raises(StepFailed, match="moved-archive is not on the destination: restore it first"):
        step(Destination(None)).observe()
