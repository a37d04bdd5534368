"""Replica copies of restored indices on a cluster of several nodes: counted against what the data nodes can
hold, followed until started (peer recovery bytes as progress), followed by the recovery step when the restore
gives replicas and by finish with `finish.replicas`. Canned answers, no cluster."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest

from migrator.steps import copies
from migrator.steps.finish import Finish
from migrator.steps.handoffs import HeldRequests, SnapshotSizes
from migrator.steps.recovery import FollowRecovery
from migrator.steps.stall import Stalled
from migrator.steps.validation_reads import ValidationReads
from tests.steps.fakes import Progress

TARGET = "new-orders"


def rows(*states: str, shards: int = 2) -> list[dict[str, str]]:
    """`_cat/shards` rows: per shard a primary STARTED and one replica per state given."""
    found = []
    for shard in range(shards):
        found.append({"index": TARGET, "shard": str(shard), "prirep": "p", "state": "STARTED", "ur": ""})
        found.extend({"index": TARGET, "shard": str(shard), "prirep": "r", "state": s, "ur": ""} for s in states)
    return found


class Cluster:
    """A destination of `data_nodes` nodes whose `_cat/shards` answers are `rounds` in turn (the last stays)."""

    def __init__(self, data_nodes: int, *rounds: list[dict[str, str]]) -> None:
        self.data_nodes = data_nodes
        self.rounds = list(rounds)
        self.requests: list[str] = []
        self.peer_bytes = 0

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        self.requests.append(f"{method} {path}")
        if path.startswith("/_cat/shards"):
            return 200, self.rounds.pop(0) if len(self.rounds) > 1 else self.rounds[0]
        if path == "/_cluster/health":
            return 200, {"number_of_data_nodes": self.data_nodes}
        if path.endswith("/_recovery"):
            self.peer_bytes += 10
            primary = {"primary": True, "type": "SNAPSHOT", "index": {"size": {"total_in_bytes": 100}}}
            replica = {"index": {"size": {"total_in_bytes": 100, "recovered_in_bytes": min(self.peer_bytes, 100)}}}
            return 200, {TARGET: {"shards": [primary, {**replica, "primary": False, "type": "PEER"}]}}
        return 200, {}

    def get(self, path: str, **_: Any) -> Any:
        return self.request("GET", path)[1]


def context(destination: Cluster, stall_after: float = 900.0, **spec: Any) -> SimpleNamespace:
    return SimpleNamespace(
        spec=SimpleNamespace(waits=SimpleNamespace(stall_after=stall_after), **spec),
        destination=destination,
        progress=Progress(),
        poll_s=0.01,
        cancel_requested=lambda: False,
        sleep=lambda seconds=None: None,
        held_restores=HeldRequests(),
        validation_reads=ValidationReads(),
        snapshot="snap",
        snapshot_index_bytes=SnapshotSizes(),
        repository="repo",
    )


def test_copies_count_what_the_data_nodes_can_hold():
    assert copies.count(Cluster(3, rows("STARTED", "INITIALIZING")), [TARGET]) == copies.Copies(4, 6, 10, 100)
    assert copies.count(Cluster(3, rows("STARTED", "STARTED")), [TARGET]).done
    # one data node holds one copy of a shard: its replicas can never start, and are not waited for
    assert copies.count(Cluster(1, rows("UNASSIGNED")), [TARGET]).done
    # two nodes, two replicas: one replica per shard can start
    two = copies.count(Cluster(2, rows("STARTED", "UNASSIGNED")), [TARGET])
    assert two.done and (two.started, two.wanted) == (4, 4)


def test_follow_waits_for_the_peer_recoveries_showing_their_bytes():
    cluster = Cluster(3, rows("INITIALIZING"), rows("INITIALIZING"), rows("STARTED"))
    ctx = context(cluster)
    assert copies.follow(ctx, "recovery[x]", [TARGET]) == {"copies": 4, "replica_bytes": 100}
    assert [update for update in ctx.progress.updates] == [(10, 100), (20, 100), (30, 100)]
    assert any(r.startswith(f"GET /_cluster/health/{TARGET}?wait_for_no_initializing_shards") for r in cluster.requests)


def test_follow_stops_when_the_replicas_do_not_move():
    cluster = Cluster(3, rows("UNASSIGNED"))
    cluster.peer_bytes = -(10**9)  # `_recovery` answers the same figures every time
    cluster.request = _frozen(cluster.request)  # type: ignore[method-assign]
    with pytest.raises(Stalled, match=f"the replicas of {TARGET} has not moved"):
        copies.follow(context(cluster, stall_after=0.05), "recovery[x]", [TARGET])


def _frozen(request: Any) -> Any:
    def answer(method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        if path.endswith("/_recovery"):
            return 200, {TARGET: {"shards": []}}
        return request(method, path, body, **kwargs)

    return answer


def answered() -> Future[Any]:
    held: Future[Any] = Future()
    held.set_result({"snapshot": {"shards": {"total": 2, "failed": 0, "successful": 2}}})
    return held


def test_recovery_with_restored_replicas_ends_when_they_have_started():
    cluster = Cluster(3, rows("INITIALIZING"), rows("INITIALIZING"), rows("STARTED"))
    ctx = context(cluster)
    ctx.held_restores.keep(TARGET, answered())
    ctx.snapshot_index_bytes.record("snap", {"orders": 200})
    step = FollowRecovery(f"recovery[{TARGET}]", {"source": "orders", "target": TARGET, "replicas": 1}, ctx)
    observed = step.observe()
    assert not observed.done and observed.in_progress and "2/4 shard copies started" in observed.summary
    assert step.wait() == {"bytes": 200, "reused_bytes": 0, "copies": 4, "replica_bytes": 100}
    assert step.observe().done
    assert [r.path for r in step.checks()][:3] == [  # the reads as sent, query included (issue 16: built once)
        f"_cat/shards/{TARGET}?format=json&h=index,shard,prirep,state",
        "_cluster/health",
        f"{TARGET}/_recovery",
    ]


def test_recovery_without_replicas_sends_no_copy_request():
    cluster = Cluster(3, rows("UNASSIGNED"))
    ctx = context(cluster)
    ctx.held_restores.keep(TARGET, answered())
    ctx.snapshot_index_bytes.record("snap", {"orders": 200})
    step = FollowRecovery(f"recovery[{TARGET}]", {"source": "orders", "target": TARGET}, ctx)
    assert step.observe().done and step.wait() == {"bytes": 200, "reused_bytes": 0}
    assert cluster.requests == []


def test_finish_replicas_end_when_the_new_copies_have_started():
    cluster = Cluster(3, rows("STARTED", "INITIALIZING"), rows("STARTED", "STARTED"))
    finish = SimpleNamespace(
        replicas=2, aliases={}, delete_snapshot=False, unregister_repositories=False, cutover=False
    )
    ctx = context(cluster, finish=finish, cutover=SimpleNamespace(enabled=False))
    ctx.plan = SimpleNamespace(moves=[SimpleNamespace(source="orders", target=TARGET)])
    step = Finish("finish", {}, ctx)
    step._missing = lambda: []  # type: ignore[method-assign] # the settings are sent (see test_finish)
    step.kept = []
    observed = step.observe()
    assert not observed.done and observed.in_progress, observed
    assert step.wait() == {"copies": 6, "replica_bytes": 100}
    assert step.observe().done
    assert "_cluster/health" in [r.path for r in step.checks()]


@pytest.mark.parametrize("poll_s", [0.01, 0.5, 2.0, 7.0])
def test_the_long_poll_the_run_sends_is_the_one_the_runbook_lists_whatever_its_poll(poll_s):
    # The runbook is made without `--poll` (the plan has none); before, the long poll's timeout followed the
    # run's `--poll` (`timeout=2s` at `--poll 0.5`, `10s` at 2 s), so the run sent a request no runbook showed.
    cluster = Cluster(3, rows("INITIALIZING"), rows("STARTED"))
    ctx = context(cluster)
    ctx.poll_s = poll_s
    copies.follow(ctx, "recovery[x]", [TARGET])
    listed = {"/" + request.path for request in copies.checks([TARGET])}
    polls = [r.split(" ", 1)[1] for r in cluster.requests if "wait_for_no_initializing_shards" in r]
    assert polls and set(polls) <= listed
