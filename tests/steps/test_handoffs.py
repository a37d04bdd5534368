"""The handoffs between steps: a held request is kept only once handed over, logged under its step, released."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from migrator.clients.es import Request
from migrator.clients.tap import RequestTap
from migrator.steps.handoffs import EarlyReleases, HeldRequests, SnapshotSizes


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


def test_early_releases_signal_once_per_take_and_hand_over_the_edges_in_order():
    releases = EarlyReleases()
    assert not releases.signal().done() and releases.take() == []
    releases.release("batch", ["restore[a]"])
    releases.release("batch", ["restore[b]", "restore[c]"])
    assert releases.signal().done()
    assert releases.take() == [("batch", "restore[a]"), ("batch", "restore[b]"), ("batch", "restore[c]")]
    assert not releases.signal().done()  # reset: the executor's next wait blocks until the next release
    releases.release("batch", [])
    assert not releases.signal().done()


def test_a_held_request_marked_done_for_some_keys_is_cleared_when_another_is_kept_or_it_is_released():
    held = HeldRequests()
    answer: Future[Any] = Future()
    for key in ("a", "b", "c"):
        held.keep(key, answer)
    held.mark_done(["a", "b", "z"])  # z: no request held for it, never marked
    assert [key for key in "abcz" if held.marked_done(key)] == ["a", "b"]
    held.keep("a", Future())  # restored again: what was seen of the first request no longer holds
    held.release("b")
    assert not any(held.marked_done(key) for key in "abcz") and not answer.done()
