"""The handoffs between steps: a held request is kept only once handed over, logged under its step, released."""

from __future__ import annotations

import threading
from typing import Any

from migrator.clients.es import Request
from migrator.clients.tap import RequestTap
from migrator.steps.handoffs import HeldRequests, SnapshotSizes


class Client:
    """Answers a held request once released; reports it to its tap like an EsClient."""

    def __init__(self, tap: RequestTap) -> None:
        self.observer = tap
        self.release = threading.Event()

    def request(self, method: str, path: str, body: Any = None, *, timeout_s: float | None = None) -> tuple[int, Any]:
        self.observer("destination", Request(method, path, body), None)
        self.release.wait(5)
        return 200, {"snapshot": {"indices": ["moved-orders"]}}


def test_a_held_request_is_logged_under_its_step_and_handed_over_only_when_kept():
    tap, seen = RequestTap(), []
    client = Client(tap)
    held = HeldRequests(tap)
    tap.working_on("recovery[moved-orders]")  # the sending thread's own step is not the held one's
    with tap.listening(lambda cluster, request, status, step: seen.append((request.path, step))):
        answer = held.send(client, "restore[moved-orders]", "POST", "/_snapshot/r/s/_restore", {"indices": "orders"})
        assert "moved-orders" not in held  # not handed over before it is under way
        held.keep("moved-orders", answer)
        client.release.set()
        assert answer.result(timeout=5) == {"snapshot": {"indices": ["moved-orders"]}}
    assert seen == [("/_snapshot/r/s/_restore", "restore[moved-orders]")]
    assert held["moved-orders"] is answer and list(held) == ["moved-orders"]
    assert held.release("moved-orders") is answer and "moved-orders" not in held and held.release("x") is None


def test_snapshot_sizes_are_read_per_snapshot_and_index():
    sizes = SnapshotSizes()
    sizes.record("snap-1", {"orders": 600})
    assert (
        sizes.of("snap-1", "orders") == 600 and sizes.of("snap-1", "logs") is None and sizes.of("snap-2", "x") is None
    )
    assert sizes == {"snap-1": {"orders": 600}}
