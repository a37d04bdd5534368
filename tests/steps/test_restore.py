"""restore: what Elasticsearch refuses for now is sent again; a refusal that cannot change stops at once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from migrator.clients.es import EsError, Request
from migrator.errors import Cure
from migrator.steps.restore import Restore
from tests.steps.fakes import Progress

CONCURRENT = (
    "concurrent_snapshot_execution_exception: [r:s] cannot restore a snapshot while a snapshot deletion is in-progress"
)
CANNOT = "snapshot_restore_exception: [r:s/u] cannot restore index [moved-orders] because it cannot be upgraded"


class Destination:
    """Refuses the first restores with the given (status, reason), then accepts; the index never shows."""

    def __init__(self, refusals: list[tuple[int | None, str]]) -> None:
        self.refusals = refusals
        self.restores = 0
        self.sent: list[tuple[str, str, Any]] = []  # method, path without its leading slash, body
        self.observer = None

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        if method == "POST":
            self.restores += 1
            self.sent.append((method, path.lstrip("/"), body))
            if self.refusals:
                status, reason = self.refusals.pop(0)
                raise EsError("destination", Request(method, path), status, reason)
            return 200, {"snapshot": {"shards": {"total": 1, "failed": 0, "successful": 1}}}
        return 404, {}

    def get(self, path: str) -> Any:
        return {}


def step(destination: Destination) -> Restore:
    ctx = SimpleNamespace(
        spec=SimpleNamespace(
            restore=SimpleNamespace(
                include_aliases=False, rename_pattern=None, index_settings={}, ignore_index_settings=[]
            ),
            waits=SimpleNamespace(stall_after=900.0),
        ),
        destination=destination,
        repository="r",
        snapshot="s",
        held_restores={},
        progress=Progress(),
        cancel_requested=lambda: False,
        sleep=lambda seconds=None: None,
    )
    return Restore("restore[moved-orders]", {"source": "orders", "target": "moved-orders"}, ctx)


def test_a_restore_refused_for_now_is_sent_again():
    destination = Destination([(503, CONCURRENT), (429, "es_rejected_execution_exception: queue full")])
    restore = step(destination)
    restore.act()
    assert destination.restores == 3 and "moved-orders" in restore.ctx.held_restores


@pytest.mark.parametrize(
    ("status", "reason", "cure"),
    [(500, CANNOT, Cure.REPLAN), (None, "http://x unreachable", Cure.RESUME)],
)
def test_a_refusal_that_cannot_change_or_a_lost_answer_is_not_sent_again_here(status, reason, cure):
    destination = Destination([(status, reason)])
    with pytest.raises(EsError) as failed:
        step(destination).act()
    assert destination.restores == 1 and failed.value.cure is cure
    # a lost answer is transient: the executor observes (the restore may have started) before trying again
    assert failed.value.transient is (status is None)


def test_what_describe_shows_is_the_restore_request_act_sends():
    destination = Destination([])
    restore = step(destination)
    restore.act()
    shown = [(r.method, r.path, r.body) for r in restore.describe()]
    assert shown == destination.sent
    assert shown[0][1] == "_snapshot/r/s/_restore?wait_for_completion=true"
