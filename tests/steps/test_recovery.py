"""The recovery step on a held restore: no status request while it runs, its answer ends the wait at once,
its figures from the snapshot's index size (a new index) or one `_recovery` read (over a closed index, or the
size unknown); a failed or cut held restore falls back to polling. Fakes, no cluster."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import networkx as nx
import pytest

from migrator.clients.es import EsError, Request
from migrator.errors import Cure
from migrator.steps.base import StepFailed
from migrator.steps.handoffs import HeldRequests, SnapshotSizes
from migrator.steps.recovery import FollowRecovery
from migrator.steps.restore import IndexRestore
from migrator.steps.stall import Stalled
from migrator.steps.validation_reads import ValidationReads
from tests.steps.fakes import Progress
from tests.steps.listed import sends_only_listed

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


FILTERED = {
    "current_state": "unassigned",
    "can_allocate": "no",
    "allocate_explanation": "cannot allocate because allocation is not permitted to any of the nodes",
    "node_allocation_decisions": [
        {
            "node_name": "n8",
            "deciders": [
                {
                    "decider": "restore_in_progress",
                    "decision": "NO",
                    "explanation": "shard has failed to be restored from the snapshot",
                },
                {
                    "decider": "filter",
                    "decision": "NO",
                    "explanation": "node does not match index setting [index.routing.allocation.require] filters "
                    '[_name:"n717"]',
                },
            ],
        }
    ],
}
FULL_DISK = {
    **FILTERED,
    "node_allocation_decisions": [
        {
            "deciders": [
                {
                    "decider": "disk_threshold",
                    "decision": "NO",
                    "explanation": "the node is above the high watermark cluster setting",
                }
            ]
        }
    ],
}


class FakeDestination:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.shards: list[dict[str, Any]] = [
            {"shard": "0", "prirep": "p", "state": "STARTED", "unassigned.reason": None}
        ]
        self.disk = False

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        self.requests.append(f"{method} {path}")
        if path.endswith("/_recovery"):
            return 200, RECOVERY
        if path.startswith("/_cat/shards"):
            return 200, self.shards
        if path == "/_cluster/allocation/explain":
            return 200, FULL_DISK if self.disk else FILTERED
        return 200, {}

    def get(self, path: str) -> Any:
        return self.request("GET", path)[1]


def step_with(
    held: Future[Any] | None, sizes: dict[str, int] | None = None, **params: Any
) -> tuple[FollowRecovery, FakeDestination]:
    destination = FakeDestination()
    held_restores, snapshot_sizes = HeldRequests(), SnapshotSizes()
    if held is not None:
        held_restores.keep(TARGET, held)
    if sizes is not None:
        snapshot_sizes.record("snap", sizes)
    ctx = SimpleNamespace(
        spec=SimpleNamespace(waits=SimpleNamespace(stall_after=900.0)),
        plan=SimpleNamespace(graph=nx.DiGraph()),  # restored alone (not in a batch: see test_batch_heal)
        destination=destination,
        held_restores=held_restores,
        validation_reads=ValidationReads(),
        snapshot="snap",
        snapshot_index_bytes=snapshot_sizes,
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


def test_a_held_restore_that_errs_falls_back_to_polling():
    held: Future[Any] = Future()
    held.set_exception(EsError("destination", Request("POST", "/_snapshot/r/s/_restore"), None, "reset"))
    step, destination = step_with(held)
    assert step.wait() == {"bytes": 100, "reused_bytes": 30}
    assert any(r.startswith("GET /_cat/shards") for r in destination.requests)  # the primaries were checked
    assert TARGET not in step.ctx.held_restores


def test_a_held_restore_with_failed_shards_stops_at_once_with_the_allocation_decision_and_the_fix():
    held: Future[Any] = Future()
    held.set_result(answered({"total": 1, "failed": 1, "successful": 0}))
    step, destination = step_with(held)
    destination.shards = [
        {"shard": "0", "prirep": "p", "state": "UNASSIGNED", "unassigned.reason": "NEW_INDEX_RESTORED"}
    ]
    began = time.monotonic()
    with pytest.raises(StepFailed) as failed:
        step.wait()  # today: polls `0/0 bytes` forever
    assert time.monotonic() - began < 2
    message = str(failed.value)
    assert f"the restore of {TARGET} failed: 1 of 1 shards failed" in message
    assert f"{TARGET} shard 0: no (filter: node does not match index setting" in message
    assert "`restore.ignore_index_settings: [index.routing.allocation.require._name]`" in message
    assert "After the fix, `migrator resume --replan` deletes the half-restored" in message
    assert failed.value.cure is Cure.REPLAN and not failed.value.transient
    assert "GET /_cluster/allocation/explain" in destination.requests


def test_a_resumed_run_restores_a_failed_restore_again_once_then_stops():
    step, destination = step_with(None)
    destination.shards = [
        {"shard": "0", "prirep": "p", "state": "UNASSIGNED", "unassigned.reason": "NEW_INDEX_RESTORED"}
    ]
    destination.disk = True
    restores: list[str] = []

    def act(self: Any) -> None:
        restores.append(self.step_id)
        again: Future[Any] = Future()
        again.set_result(answered({"total": 1, "failed": 1, "successful": 0}))
        self.ctx.held_restores.keep(self.params["target"], again)

    with patch.object(IndexRestore, "send", act), pytest.raises(StepFailed) as failed:
        step.wait()
    assert restores == [f"restore[{TARGET}]"] and f"DELETE /{TARGET}" in destination.requests
    assert "disk_threshold" in str(failed.value) and "free disk on the destination" in str(failed.value)
    assert failed.value.cure is Cure.RESUME


def test_a_recovery_that_does_not_move_stops_after_stall_after_naming_what_and_why():
    step, destination = step_with(None)
    step.ctx.spec.waits.stall_after = 0.3
    destination.shards = [
        {"shard": "0", "prirep": "p", "state": "INITIALIZING", "unassigned.reason": "NEW_INDEX_RESTORED"}
    ]
    with pytest.raises(Stalled) as stalled:
        step.wait()
    message = str(stalled.value)
    assert f"the recovery of {TARGET} has not moved for" in message and "still at 100/100 bytes, stage DONE" in message
    assert "`migrator resume`" in message and "waits.stall_after" in message


def test_without_a_held_restore_it_polls():
    step, destination = step_with(None)
    assert step.observe().done
    assert any(r.startswith("GET /_cat/shards") for r in destination.requests)


def batch_answer(failed: int) -> dict[str, Any]:
    """A batch's restore answer: this index and another, `failed` shards failed among them (not said whose)."""
    shards = {"total": 2, "failed": failed, "successful": 2 - failed}
    return {"snapshot": {"snapshot": "snap", "indices": [TARGET, "moved-other"], "shards": shards}}


def test_failed_shards_in_a_batch_answer_stop_only_the_member_whose_primary_failed():
    held: Future[Any] = Future()
    held.set_result(batch_answer(failed=1))
    healthy, destination = step_with(held, sizes={"orders": 4096})
    # Before: every member of the batch stopped with "1 of 2 shards failed", the healthy one included.
    assert healthy.wait() == {"bytes": 4096, "reused_bytes": 0}
    assert destination.requests == [f"GET /_cat/shards/{TARGET}?format=json&h=shard,prirep,state,unassigned.reason"]
    failed_member, destination = step_with(held, sizes={"orders": 4096})
    destination.shards = [
        {"shard": "0", "prirep": "p", "state": "UNASSIGNED", "unassigned.reason": "NEW_INDEX_RESTORED"}
    ]
    with pytest.raises(StepFailed) as failed:
        failed_member.wait()
    message = str(failed.value)
    assert message.startswith(f"the restore of {TARGET} failed. {TARGET} shard 0: no (filter:")
    assert "of 2" not in message
    assert failed.value.cure is Cure.REPLAN


def restores_and_deletes(shards: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """A resumed run's look at the primaries (`_progress(heal=True)`): the restores and deletions it sent."""
    step, destination = step_with(None)
    destination.shards = shards
    restores: list[str] = []
    with patch.object(IndexRestore, "send", lambda self: restores.append(self.step_id)):
        step._progress(heal=True)
    return restores, [r for r in destination.requests if r.startswith("DELETE")]


def test_a_primary_whose_node_left_one_of_several_is_followed_not_restored_again():
    # one node of three stopped mid-restore: its primary waits for another node (or for its node), the restore lives
    restores, deletes = restores_and_deletes(
        [
            {"shard": "0", "prirep": "p", "state": "STARTED", "unassigned.reason": None},
            {"shard": "1", "prirep": "p", "state": "UNASSIGNED", "unassigned.reason": "NODE_LEFT"},
            {"shard": "2", "prirep": "p", "state": "INITIALIZING", "unassigned.reason": "NODE_LEFT"},
        ]
    )
    assert restores == [] and deletes == []


def test_a_restore_lost_to_a_restart_of_every_node_is_restored_again():
    restores, deletes = restores_and_deletes(
        [{"shard": "0", "prirep": "p", "state": "UNASSIGNED", "unassigned.reason": "CLUSTER_RECOVERED"}]
    )
    assert restores == [f"restore[{TARGET}]"] and deletes == [f"DELETE /{TARGET}"]


def test_every_read_the_recovery_sends_is_one_its_checks_list():
    """Polled (no held restore): `_recovery`, `_cat/shards` and the long poll of the index's health, then,
    on a stall, the allocation decision of its unassigned primary: each as the runbook lists it (the
    shard of the explanation is decided at run time)."""
    step, destination = step_with(None)
    destination.shards = [{"shard": "0", "prirep": "p", "state": "INITIALIZING", "unassigned.reason": None}]
    answers = iter(
        [
            destination.shards,
            destination.shards,
            [{"shard": "0", "prirep": "p", "state": "STARTED", "unassigned.reason": None}],
        ]
    )
    plain = destination.request

    def request(method: str, path: str, body: Any = None, **options: Any) -> tuple[int, Any]:
        if path.startswith("/_cat/shards"):
            destination.requests.append(f"{method} {path}")
            return 200, next(answers)
        return plain(method, path, body, **options)

    destination.request = request  # type: ignore[method-assign]
    with sends_only_listed(step, decided_at_run=("_cluster/allocation/explain",)):
        assert not step.observe().done
        assert step.wait() == {"bytes": 100, "reused_bytes": 30}
        destination.shards = [{"shard": "0", "prirep": "p", "state": "UNASSIGNED", "unassigned.reason": "NEW"}]
        destination.request = plain  # type: ignore[method-assign]
        assert "shard 0" in step._stall_reason()
    assert any("wait_for_no_initializing_shards" in r for r in destination.requests)


def test_a_member_its_batch_saw_restored_is_recovered_without_waiting_for_the_batch_answer_or_a_read():
    # Pipelining (issue 17): the batch's poll saw the index's primaries started while its request still runs.
    held: Future[Any] = Future()
    step, destination = step_with(held, sizes={"orders": 4096})
    assert step.observe().in_progress  # not seen yet: it waits on the held request
    step.ctx.held_restores.mark_done([TARGET])
    observation = step.observe()
    assert observation.done and observation.detail == {"bytes": 4096, "reused_bytes": 0}
    assert step.wait() == {"bytes": 4096, "reused_bytes": 0} and not held.done()
    assert destination.requests == []
    step.ctx.held_restores.keep(TARGET, Future())  # restored again (batch_heal): what was seen no longer holds
    assert step.observe().in_progress
