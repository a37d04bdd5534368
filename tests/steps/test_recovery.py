"""The recovery step on a held restore: no status request while it runs, its answer ends the wait at once,
its figures from the snapshot's index size (a new index) or one `_recovery` read (over a closed index, or the
size unknown); a failed or cut held restore falls back to polling. Fakes, no cluster."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

from migrator.clients.es import EsError, Request
from migrator.steps.recovery import FollowRecovery
from tests.steps.fakes import Progress

TARGET = "moved-orders"
RECOVERY = {
    TARGET: {
        "shards": [
            {
                "type": "SNAPSHOT",
                "stage": "DONE",
                "index": {"size": {"total_in_bytes": 100, "reused_in_bytes": 30, "recovered_in_bytes": 70}},
            }
        ]
    }
}


class FakeDestination:
    def __init__(self) -> None:
        self.requests: list[str] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        self.requests.append(f"{method} {path}")
        if path.endswith("/_recovery"):
            return 200, RECOVERY
        if path.startswith("/_cat/shards"):
            return 200, [{"prirep": "p", "state": "STARTED", "ur": None}]
        return 200, {}

    def get(self, path: str) -> Any:
        return self.request("GET", path)[1]


def step_with(
    held: Future[Any] | None, sizes: dict[str, int] | None = None, **params: Any
) -> tuple[FollowRecovery, FakeDestination]:
    destination = FakeDestination()
    ctx = SimpleNamespace(
        destination=destination,
        held_restores={TARGET: held} if held is not None else {},
        snapshot="snap",
        snapshot_index_bytes={"snap": sizes} if sizes is not None else {},
        progress=Progress(),
        poll_s=0.2,
        cancel_requested=lambda: False,
        sleep=lambda seconds=None: None,
    )
    params = {"source": "orders", "target": TARGET, **params}
    return FollowRecovery(f"recovery[{TARGET}]", params, ctx), destination


def answered(shards: dict[str, int]) -> dict[str, Any]:
    return {"snapshot": {"snapshot": "snap", "indices": [TARGET], "shards": shards}}


def test_a_held_restore_is_followed_without_status_requests_and_its_answer_ends_the_wait():
    held: Future[Any] = Future()
    step, destination = step_with(held)
    observation = step.observe()
    assert observation.in_progress and not observation.done and destination.requests == []
    threading.Timer(0.3, held.set_result, [answered({"total": 1, "failed": 0, "successful": 1})]).start()
    began = time.monotonic()
    detail = step.wait()
    assert time.monotonic() - began < 2
    assert detail == {"bytes": 100, "reused_bytes": 30}
    assert destination.requests == [f"GET /{TARGET}/_recovery"]  # once, for the figures
    assert step.observe().done and len(destination.requests) == 1


def test_a_new_index_takes_its_figures_from_the_snapshot_without_a_request():
    held: Future[Any] = Future()
    step, destination = step_with(held, sizes={"orders": 4096, "logs": 10})
    threading.Timer(0.2, held.set_result, [answered({"total": 1, "failed": 0, "successful": 1})]).start()
    assert step.wait() == {"bytes": 4096, "reused_bytes": 0}
    assert destination.requests == []
    assert step.ctx.progress.updates[-1] == (4096, 4096)
    # a step that first looks after the held restore answered is done at once, with the same figures
    again, destination = step_with(held, sizes={"orders": 4096})
    observation = again.observe()
    assert observation.done and observation.detail == {"bytes": 4096, "reused_bytes": 0}
    assert destination.requests == []


def test_over_a_closed_index_or_without_the_snapshot_size_it_reads_the_figures():
    for sizes, params in (({"orders": 4096}, {"cutover": True}), ({"logs": 10}, {})):
        held: Future[Any] = Future()
        held.set_result(answered({"total": 1, "failed": 0, "successful": 1}))
        step, destination = step_with(held, sizes=sizes, **params)
        observation = step.observe()
        assert observation.done and observation.detail == {"bytes": 100, "reused_bytes": 30}
        assert destination.requests == [f"GET /{TARGET}/_recovery"]


def test_a_held_restore_with_failed_shards_or_an_error_falls_back_to_polling():
    for outcome in ("failed shards", "error"):
        held: Future[Any] = Future()
        if outcome == "error":
            held.set_exception(EsError("destination", Request("POST", "/_snapshot/r/s/_restore"), None, "reset"))
        else:
            held.set_result(answered({"total": 2, "failed": 1, "successful": 1}))
        step, destination = step_with(held)
        assert step.wait() == {"bytes": 100, "reused_bytes": 30}
        assert any(r.startswith("GET /_cat/shards") for r in destination.requests)  # the primaries were checked
        assert TARGET not in step.ctx.held_restores


def test_without_a_held_restore_it_polls():
    step, destination = step_with(None)
    assert step.observe().done
    assert any(r.startswith("GET /_cat/shards") for r in destination.requests)
