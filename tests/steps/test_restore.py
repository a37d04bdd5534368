"""Whether a destination index is ours: one consistent reading whatever moment of its restore it is read at.
A fake destination whose index moves one stage of its restore's life at each request. No cluster."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from migrator.steps.restore import NAMES_PER_READ, Restore, name_groups, restored_from, restored_from_many

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
    assert restored_from(SimpleNamespace(destination=destination), "moved-orders") == SNAPSHOT
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
    ctx = SimpleNamespace(destination=destination, held_restores={"moved-orders": answered}, snapshot="snap")
    params = {"source": "orders", "target": "moved-orders", "batch": "restore.batch[1]"}
    assert Restore("restore[moved-orders]", params, ctx).observe().done and destination.paths == []
    ctx.held_restores["moved-orders"] = Future()  # still running: the index is read as usual
    ctx.repository = "repo"
    assert Restore("restore[moved-orders]", params, ctx).observe().done and len(destination.paths) == 2


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
