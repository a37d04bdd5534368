"""restore: what Elasticsearch refuses for now is sent again, a refusal that cannot change stops at once; and
whether a destination index is ours: one consistent reading whatever moment of its restore it is read at (a
fake destination whose index moves one stage of its restore's life at each request). No cluster."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from migrator.clients.es import NAMES_PER_READ, EsError, Request, name_groups
from migrator.errors import Cure
from migrator.ownership import Ledger
from migrator.steps.handoffs import HeldRequests
from migrator.steps.restore import Restore, restored_from, restored_from_many
from tests.steps.fakes import Progress
from tests.steps.listed import sends_only_listed

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
        held_restores=HeldRequests(),
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


SNAPSHOT = {"type": "SNAPSHOT", "repository": "repo", "snapshot": "snap", "index": "orders"}
STAGES = ["absent", "unassigned", "initializing", "started"]


class RestoringDestination:
    """One index restored from SNAPSHOT (or created empty, `foreign`), advancing `pace` stages per request."""

    def __init__(self, stage: str, *, foreign: bool = False, pace: int = 1) -> None:
        self.stage = STAGES.index(stage)
        self.foreign = foreign
        self.pace = pace
        self.paths: list[str] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        self.paths.append(path)
        stage = STAGES[self.stage]
        self.stage = min(self.stage + self.pace, len(STAGES) - 1)
        name = "moved-orders"
        if urlsplit(path).path.startswith("/_cluster/state/routing_table"):
            if stage == "absent":
                return 200, {"routing_table": {"indices": {}}}
            copy: dict[str, Any] = {"state": stage.upper(), "primary": True}
            if stage != "started":
                copy["recovery_source"] = {"type": "EMPTY_STORE"} if self.foreign else SNAPSHOT
            return 200, {"routing_table": {"indices": {name: {"shards": {"0": [copy]}}}}}
        if stage == "absent":
            return 404, {}
        shards = [] if stage == "unassigned" else [{"type": "EMPTY_STORE" if self.foreign else "SNAPSHOT",
                                                     "source": {} if self.foreign else SNAPSHOT}]  # fmt: skip
        return 200, {name: {"shards": shards}}

    def get(self, path: str) -> Any:
        return self.request("GET", path)[1]


@pytest.mark.parametrize("pace", [1, 2])
@pytest.mark.parametrize("stage", STAGES[1:])
def test_an_index_being_restored_is_ours_at_every_stage_of_its_restore(stage, pace):
    # Read `_recovery` first (the old order), an index unassigned at that read and started by the next looked
    # foreign ("exists ... and was not restored from snapshot"): the false failure at high parallelism.
    destination = RestoringDestination(stage, pace=pace)
    found = restored_from(SimpleNamespace(destination=destination), "moved-orders") or {}
    assert {key: found.get(key) for key in SNAPSHOT} == SNAPSHOT
    assert urlsplit(destination.paths[0]).path == "/_cluster/state/routing_table/moved-orders"
    assert len(destination.paths) <= 2


def test_an_absent_index_and_a_foreign_one():
    assert restored_from(SimpleNamespace(destination=RestoringDestination("absent")), "moved-orders") is None
    for stage in STAGES[1:]:
        foreign = RestoringDestination(stage, foreign=True)
        assert restored_from(SimpleNamespace(destination=foreign), "moved-orders") == {}


def test_many_indices_are_read_in_groups_that_fit_a_request_line():
    names = [f"logs-app-{number:04d}-2026.11.30" for number in range(400)]
    groups = name_groups(names)
    assert [name for group in groups for name in group] == names and len(groups) > 1
    assert all(len(",".join(group)) <= NAMES_PER_READ for group in groups)

    class Empty:
        paths: list[str] = []

        def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
            self.paths.append(path)
            return 200, {"routing_table": {"indices": {}}}

        def get(self, path: str) -> Any:
            return self.request("GET", path)[1]

    empty = Empty()
    found = restored_from_many(SimpleNamespace(destination=empty), names)
    assert found == dict.fromkeys(names) and len(empty.paths) == len(groups)


def test_an_index_its_batch_request_answered_as_restored_is_ours_without_asking_again():
    answered: Future[Any] = Future()
    answered.set_result({"snapshot": {"snapshot": "snap", "indices": ["moved-orders"], "shards": {"total": 1}}})
    destination = RestoringDestination("started")
    held_restores = HeldRequests()
    held_restores.keep("moved-orders", answered)
    ctx = SimpleNamespace(destination=destination, held_restores=held_restores, snapshot="snap")
    params = {"source": "orders", "target": "moved-orders", "batch": "restore.batch[1]"}
    assert Restore("restore[moved-orders]", params, ctx).observe().done and destination.paths == []
    ctx.held_restores.keep("moved-orders", Future())  # still running: the index is read as usual
    ctx.repository, ctx.ledger = "repo", Ledger()
    ctx.ledger.intend_snapshot("repo", "snap")
    assert ctx.ledger.claim_snapshot("repo", "snap", {"uuid": "u", "start_time_in_millis": 2**42})
    assert Restore("restore[moved-orders]", params, ctx).observe().done
    assert [urlsplit(path).path for path in destination.paths] == [
        "/_cluster/state/routing_table/moved-orders",
        "/moved-orders/_recovery",
        "/_cluster/state/metadata/moved-orders",
    ]


def test_a_closed_index_is_never_taken_for_absent():
    class Closed:  # routed (closed indices are replicated), left out of `_recovery?ignore_unavailable=true`
        def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
            if urlsplit(path).path.startswith("/_cluster/state/routing_table"):
                started = {"shards": {"0": [{"state": "STARTED", "primary": True}]}}
                return 200, {"routing_table": {"indices": {"moved-orders": started}}}
            return 200, {}

        def get(self, path: str) -> Any:
            return self.request("GET", path)[1]

    assert restored_from(SimpleNamespace(destination=Closed()), "moved-orders") == {}  # exists: never restored over


def test_what_describe_shows_is_the_restore_request_act_sends():
    destination = Destination([])
    restore = step(destination)
    with sends_only_listed(restore):
        restore.act()
    shown = [(r.method, r.path, r.body) for r in restore.describe()]
    assert shown == destination.sent
    assert shown[0][1] == "_snapshot/r/s/_restore?wait_for_completion=true"
