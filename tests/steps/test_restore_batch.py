"""The restore batch step: one request for the members not yet restored, never a member twice, a foreign
index never overwritten and only its own member stopped, a refusal attributed to the members it names, a
wait that ends on a stall, the dry run showing the request as sent. A fake destination, no cluster."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import networkx as nx
import pytest

from migrator.clients.es import EsError, Request
from migrator.errors import Cure
from migrator.ownership import Ledger, now_ms
from migrator.planner import restore_id
from migrator.steps import restore_batch
from migrator.steps.base import StepFailed
from migrator.steps.batch_watch import poll_path
from migrator.steps.handoffs import EarlyReleases, HeldRequests
from migrator.steps.restore import Restore
from migrator.steps.restore_batch import RestoreBatch
from migrator.steps.stall import Stalled
from tests.steps.fakes import Progress
from tests.steps.listed import sends_only_listed

MEMBERS = [{"source": name, "target": f"moved-{name}"} for name in ("a", "b", "c")]
OURS = {"type": "SNAPSHOT", "repository": "repo", "snapshot": "snap"}
FOREIGN: dict[str, Any] = {}  # created by someone else (an empty store, no snapshot)
EXISTS = "snapshot_restore_exception: [repo:snap/u] cannot restore index [moved-b] because an open index with same name already exists in the cluster"  # noqa: E501


class Destination:
    """Indices by name with their recovery source; a restore creates the ones it names, restored from `snap`.
    `refuse` (an EsError, once) refuses the next restore; `hold` keeps the restore request open."""

    def __init__(self, existing: dict[str, dict[str, Any]] | None = None) -> None:
        self.indices = dict(existing or {})
        self.restores: list[tuple[str, dict[str, Any]]] = []
        self.reads: list[str] = []
        self.observer = None
        self.lock = threading.Lock()
        self.refuse: tuple[EsError, dict[str, dict[str, Any]]] | None = None
        self.hold = threading.Event()
        self.hold.set()

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        route = urlsplit(path).path
        if method == "POST" and route.endswith("/_restore"):
            return self._restore(path, body)
        with self.lock:
            self.reads.append(route)
            names = route.split("/")[-1] if route.startswith("/_cluster") else route.split("/")[1]
            wanted = [name for name in names.split(",") if name in self.indices]
            if route.startswith("/_cluster/state/routing_table"):
                started = {name: {"shards": {"0": [{"state": "STARTED"}]}} for name in wanted}
                return 200, {"routing_table": {"indices": started}}
            if route.startswith("/_cluster/state/metadata"):
                uuids = {name: {"settings": {"index": {"uuid": f"uuid-{name}"}}} for name in wanted}
                return 200, {"metadata": {"indices": uuids}}
            recovery = {
                name: {
                    "shards": [
                        {
                            "type": self.indices[name].get("type", "EMPTY_STORE"),
                            "source": self.indices[name],
                            "start_time_in_millis": 2**42,  # after the snapshot began
                            "index": {"size": {"total_in_bytes": 10, "recovered_in_bytes": 0}},
                        }
                    ]
                }
                for name in wanted
            }
            return 200, recovery

    def _restore(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            self.restores.append((path, body))
            if self.refuse is not None:
                error, made = self.refuse
                self.refuse = None
                self.indices.update(made)
                raise error
        targets = [f"moved-{source}" for source in body["indices"].split(",")]
        with self.lock:  # the restore makes every index at once when it begins
            self.indices.update(dict.fromkeys(targets, OURS))
        self.hold.wait(30)
        total = len(targets)
        return 200, {"snapshot": {"indices": targets, "shards": {"total": total, "failed": 0, "successful": total}}}

    def get(self, path: str) -> Any:
        return self.request("GET", path)[1]


def batch_with(destination: Destination, stall_after: float = 900.0) -> RestoreBatch:
    restore = SimpleNamespace(
        rename_pattern="(.+)",
        rename_replacement="moved-$1",
        index_settings={"index.number_of_replicas": 0},
        ignore_index_settings=[],
        include_aliases=False,
    )
    ledger = Ledger()
    ledger.intend_snapshot("repo", "snap")
    assert ledger.claim_snapshot("repo", "snap", {"uuid": "snap-uuid", "start_time_in_millis": now_ms()})
    graph = nx.DiGraph()  # the plan: this batch and its members' restore steps (their validation reads the batch)
    graph.add_node("restore.batch[1]", params={"members": MEMBERS})
    for member in MEMBERS:
        graph.add_node(restore_id(member["target"]), params=member)
    validate = SimpleNamespace(doc_counts=True, mappings=True, settings=True, sample_docs=0)
    ctx = SimpleNamespace(
        spec=SimpleNamespace(restore=restore, waits=SimpleNamespace(stall_after=stall_after), validate=validate),
        plan=SimpleNamespace(graph=graph),
        destination=destination,
        repository="repo",
        snapshot="snap",
        held_restores=HeldRequests(),
        releases=EarlyReleases(),
        ledger=ledger,
        progress=Progress(),
        cancel_requested=lambda: False,
        sleep=lambda seconds=None: None,
    )
    return RestoreBatch("restore.batch[1]", {"members": MEMBERS}, ctx)


def run(step: RestoreBatch) -> dict[str, Any]:
    """What the executor does with a step that is not done: observe, act, wait, observe again."""
    observation = step.observe()
    assert not observation.done
    step.act()
    detail = step.wait()
    assert step.observe().done
    return detail


def test_one_request_restores_every_member_and_hands_its_answer_to_each_recovery():
    destination = Destination()
    step = batch_with(destination)
    with sends_only_listed(step):  # a fresh batch: every member restored by the one request the dry run shows
        assert run(step) == {"restored": 3, "shards": {"total": 3, "failed": 0, "successful": 3}}
    [(path, body)] = destination.restores
    assert path == "/_snapshot/repo/snap/_restore?wait_for_completion=true" and body["indices"] == "a,b,c"
    assert body["rename_pattern"] == "(.+)" and body["rename_replacement"] == "moved-$1"
    held = step.ctx.held_restores
    assert set(held) == {"moved-a", "moved-b", "moved-c"} and len({id(future) for future in held.values()}) == 1
    [request] = step.describe()  # the dry run shows the request as it is sent
    assert (request.method, "/" + request.path, request.body) == ("POST", path, body)
    # the answered members' uuids are in the ledger (one read for the batch): they stay ours after a close
    assert all(step.ctx.ledger.owns_index_uuid(m["target"], f"uuid-{m['target']}") for m in MEMBERS)
    assert destination.reads.count("/_cluster/state/metadata/moved-a,moved-b,moved-c") == 1


class FailingShards(Destination):
    """A restore that answers with every shard failed (seen with cluster.routing.allocation.enable: none)."""

    def _restore(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        status, answer = super()._restore(path, body)
        shards = answer["snapshot"]["shards"]
        answer["snapshot"]["shards"] = {**shards, "failed": shards["total"], "successful": 0}
        return status, answer


def test_a_batch_answered_with_failed_shards_does_not_say_its_indices_were_restored():
    # Seen on the sandbox (7.17 -> 8): allocation disabled on the destination, the batch's request answered
    # with every shard failed and the step reported "5 of 5 indices restored".
    step = batch_with(FailingShards())
    run(step)
    summary = step.observe().summary
    assert "restored (" not in summary and "3 failed shard(s)" in summary, summary


def test_a_resumed_batch_restores_only_the_members_not_yet_restored_and_a_done_one_nothing():
    destination = Destination({"moved-b": OURS})
    run(batch_with(destination))
    assert [body["indices"] for _, body in destination.restores] == ["a,c"]
    again = batch_with(destination)
    assert again.observe().done  # every member ours now: nothing is sent again
    assert len(destination.restores) == 1


def test_a_foreign_index_with_a_member_name_is_left_out_and_stops_only_that_member():
    # Before: the batch step failed at its observation and no member was restored.
    destination = Destination({"moved-c": FOREIGN})
    step = batch_with(destination)
    run(step)
    assert [body["indices"] for _, body in destination.restores] == ["a,b"]
    assert step.observe().detail == {"members": ["moved-a", "moved-b"], "foreign": ["moved-c"]}
    assert any("moved-c exist on the destination" in text for _, text in step.ctx.progress.messages)
    member = Restore("restore[moved-c]", {"source": "c", "target": "moved-c", "batch": step.id}, step.ctx)
    with pytest.raises(StepFailed, match="moved-c exists on the destination and was not restored by this migration"):
        member.observe()
    assert destination.indices["moved-c"] is FOREIGN  # never overwritten


def test_a_refusal_naming_a_member_made_by_someone_else_meanwhile_leaves_it_out_and_restores_the_others():
    destination = Destination()
    step = batch_with(destination)
    assert not step.observe().done
    refusal = EsError("destination", Request("POST", "/_snapshot/repo/snap/_restore"), 500, EXISTS)
    destination.refuse = (refusal, {"moved-b": FOREIGN})  # made between the observation and the request
    step.act()
    step.wait()
    assert [body["indices"] for _, body in destination.restores] == ["a,b,c", "a,c"]
    assert step.foreign == ["moved-b"] and step.observe().done


def test_a_refusal_naming_a_member_is_reported_against_that_member_with_its_cure():
    destination = Destination()
    step = batch_with(destination)
    assert not step.observe().done
    reason = "snapshot_restore_exception: [repo:snap/u] cannot restore index [moved-b] because it cannot be upgraded"
    destination.refuse = (EsError("destination", Request("POST", "/x"), 500, reason), {})
    with pytest.raises(StepFailed) as failed:
        step.act()
    assert str(failed.value).startswith("the restore of moved-b (in restore.batch[1]) was refused:")
    assert failed.value.cure is Cure.REPLAN and not failed.value.transient
    assert len(destination.restores) == 1


class PartlyStarted(Destination):
    """`moved-b` started, the other members still restoring from `snap` (their routing names the snapshot)."""

    def request(self, method: str, path: str, body: Any = None, **options: Any) -> tuple[int, Any]:
        route = urlsplit(path).path
        if route.startswith("/_cluster/state/routing_table"):
            names = [name for name in route.split("/")[-1].split(",") if name in self.indices]
            restoring = {"state": "INITIALIZING", "recovery_source": OURS}
            routed = {
                name: {"shards": {"0": [{"state": "STARTED"} if name == "moved-b" else restoring]}} for name in names
            }
            return 200, {"routing_table": {"indices": routed}}
        return super().request(method, path, body, **options)


def test_a_batch_partly_restored_reads_only_what_the_dry_run_lists():
    # Seen on the sandbox after a kill and resume (7.17 -> 8): with some members started and others still
    # restoring, `_recovery` was read for the started ones only, a path no runbook showed.
    destination = PartlyStarted({target: OURS for target in ("moved-a", "moved-b", "moved-c")})
    step = batch_with(destination)
    with sends_only_listed(step) as sent:
        assert step.observe().done
    assert "/moved-a,moved-b,moved-c/_recovery?ignore_unavailable=true" in [path for _, _, path, _ in sent]


def test_a_resumed_batch_restoring_some_members_reads_only_what_the_dry_run_lists():
    # Seen on the sandbox (6.8 -> 7.10, kill -9 in a batch's restore, then resume): the members' uuids and the
    # "under way" read were sent for the members left to restore, paths (subsets of names) no runbook showed.
    destination = Destination({"moved-a": OURS})
    step = batch_with(destination)
    restore_path = step.path().lstrip("/").split("?")[0]  # its body names the members left: decided at run
    with sends_only_listed(step, decided_at_run=(restore_path,)) as sent:
        run(step)
    assert [body["indices"] for _, body in destination.restores] == ["b,c"]
    assert "/_cluster/state/metadata/moved-a,moved-b,moved-c" in [path.split("?")[0] for _, _, path, _ in sent]
    assert step.ctx.ledger.owns_index_uuid("moved-b", "uuid-moved-b")


def test_a_refusal_naming_no_member_names_the_members_the_request_was_for():
    # Seen on the sandbox (7.17 -> 8): cluster.max_shards_per_node lowered during the run refused a batch,
    # and the error named the request only, not which indices were left unrestored.
    destination = Destination()
    step = batch_with(destination)
    assert not step.observe().done
    reason = (
        "validation_exception: Validation Failed: 1: this action would add [3] shards, but this cluster "
        "currently has [622]/[620] maximum normal shards open;"
    )
    destination.refuse = (EsError("destination", Request("POST", "/x"), 400, reason), {})
    with pytest.raises(StepFailed) as failed:
        step.act()
    assert str(failed.value).startswith("the restore of moved-a, moved-b, moved-c (in restore.batch[1]) was refused:")
    assert "maximum normal shards open" in str(failed.value) and not failed.value.transient
    assert len(destination.restores) == 1


def test_a_batch_whose_restore_does_not_move_stops_after_stall_after(monkeypatch):
    monkeypatch.setattr(restore_batch, "PROGRESS_EVERY_S", 0.05)
    destination = Destination()
    destination.hold.clear()  # the restore request never answers
    step = batch_with(destination, stall_after=0.3)
    assert not step.observe().done
    step.held = Future()  # under way (its first member restoring), as act leaves it
    destination.indices.update(dict.fromkeys((m["target"] for m in MEMBERS), OURS))
    began = time.monotonic()
    with pytest.raises(Stalled) as stalled:
        step.wait()
    assert time.monotonic() - began < 5
    assert "the restore of moved-a, moved-b, moved-c (restore.batch[1]) has not moved for" in str(stalled.value)
    assert "still at 0/30 bytes" in str(stalled.value)
    sizes = [read for read in destination.reads if read.endswith("/_recovery")]
    assert sizes and all(read == "/moved-a,moved-b,moved-c/_recovery" for read in sizes)
    destination.hold.set()


def test_the_members_uuids_are_recorded_while_the_restore_runs_not_after_its_answer():
    destination = Destination()
    destination.hold.clear()
    step = batch_with(destination)
    assert not step.observe().done
    step.act()  # under way: its first member shows as restoring
    waiting = threading.Thread(target=step.wait)
    waiting.start()
    deadline = time.monotonic() + 10
    while not step.recorded and time.monotonic() < deadline:
        time.sleep(0.01)
    assert step.recorded == {"moved-a", "moved-b", "moved-c"} and not step.held.done()
    destination.hold.set()
    waiting.join(10)
    assert destination.reads.count("/_cluster/state/metadata/moved-a,moved-b,moved-c") == 1  # not again after


def test_the_batch_lists_its_validation_joined_reads_which_are_sent_for_it():
    # Sent by whichever member's validate step asks first once every member recovered, logged under the batch:
    # before, they were listed under the first member's validate step only, and a run in which another member
    # asked first sent reads its step's runbook entry did not show (tests/e2e/test_review_e2e.py saw it).
    listed = [(r.cluster, r.path) for r in batch_with(Destination()).checks()]
    assert listed[-6:] == [
        ("source", "a,b,c/_search?ignore_unavailable=true"),
        ("source", "a,b,c/_mapping?ignore_unavailable=true"),
        ("source", "a,b,c/_settings?flat_settings=true&ignore_unavailable=true"),
        ("destination", "moved-a,moved-b,moved-c/_search?ignore_unavailable=true"),
        ("destination", "moved-a,moved-b,moved-c/_mapping?ignore_unavailable=true"),
        ("destination", "moved-a,moved-b,moved-c/_settings?flat_settings=true&ignore_unavailable=true"),
    ]


class Restoring(Destination):
    """Primaries restoring a few at a time, as the canned routing table says: `started` (names) STARTED, the
    other members INITIALIZING from `snap` (their routing names the snapshot); the restore held until `hold`."""

    def __init__(self) -> None:
        super().__init__()
        self.started: set[str] = set()

    def request(self, method: str, path: str, body: Any = None, **options: Any) -> tuple[int, Any]:
        route = urlsplit(path).path
        if route.startswith("/_cluster/state/routing_table"):
            with self.lock:
                self.reads.append(route)
                names = [name for name in route.split("/")[-1].split(",") if name in self.indices]
                restoring = {"state": "INITIALIZING", "primary": True, "recovery_source": OURS}
                routed = {
                    name: {
                        "shards": {"0": [{"state": "STARTED", "primary": True} if name in self.started else restoring]}
                    }
                    for name in names
                }
            return 200, {"routing_table": {"indices": routed}}
        return super().request(method, path, body, **options)


def released_now(step: RestoreBatch) -> list[tuple[str, str]]:
    """The edges the batch releases next (waiting for them: a state; the timeout only ends a broken test)."""
    step.ctx.releases.signal().result(timeout=10)
    return step.ctx.releases.take()


def test_members_whose_primaries_started_are_released_while_the_held_restore_runs():
    # Before (issue 17, pipelining): no member's own steps began before the batch's request answered, so the
    # first members restored waited for the last (2 s of restore at 50 indices on the sandbox, then every count).
    destination = Restoring()
    destination.hold.clear()
    step = batch_with(destination)
    with sends_only_listed(step) as sent:
        assert not step.observe().done
        step.act()
        destination.started.add("moved-b")  # b's primary started first; a and c still restore
        waiting = threading.Thread(target=step.wait)
        waiting.start()
        assert released_now(step) == [("restore.batch[1]", restore_id("moved-b"))]
        held = step.ctx.held_restores
        assert held.marked_done("moved-b") and not held.marked_done("moved-a") and not held.marked_done("moved-c")
        assert not step.held.done() and waiting.is_alive()  # the batch's request still runs: the step is not done
        # the member's restore step takes what the batch's poll saw: done, without a read of its own
        reads = len(destination.reads)
        member = Restore(restore_id("moved-b"), {**MEMBERS[1], "batch": step.id}, step.ctx)
        assert member.observe().done and len(destination.reads) == reads
        destination.started |= {"moved-a", "moved-c"}
        assert sorted(released_now(step)) == [("restore.batch[1]", restore_id(t)) for t in ("moved-a", "moved-c")]
        destination.hold.set()
        waiting.join(10)
    assert not waiting.is_alive() and step.observe().done
    # one routing table read per group of the batch's names per poll, as listed (never one per member)
    reads = [path for _, _, path, _ in sent if path.startswith("/_cluster/state/routing_table/")]
    polls = [path for path in reads if "filter_path" in path]
    assert len(polls) >= 2 and set(polls) == {poll_path(["moved-a", "moved-b", "moved-c"])}
    # and before: the observation's read of the group, the request's "under way" read of its first member
    assert set(reads) - set(polls) == {
        f"/_cluster/state/routing_table/{n}" for n in ("moved-a,moved-b,moved-c", "moved-a")
    }
    assert step.ctx.releases.take() == []  # each member released once


def test_a_member_whose_primary_never_starts_is_not_released_and_the_stall_names_it(monkeypatch):
    monkeypatch.setattr(restore_batch, "PROGRESS_EVERY_S", 0.05)
    destination = Restoring()
    destination.hold.clear()  # the restore request never answers
    step = batch_with(destination, stall_after=0.5)
    assert not step.observe().done
    step.act()
    destination.started |= {"moved-a", "moved-b"}
    explained = []
    monkeypatch.setattr(restore_batch, "why_unassigned", lambda client, target: explained.append(target) or [])
    with pytest.raises(Stalled) as stalled:
        step.wait()
    assert sorted(t for _, t in step.ctx.releases.take()) == [restore_id("moved-a"), restore_id("moved-b")]
    assert "has not moved for" in str(stalled.value) and explained == ["moved-c"]  # why the one not started waits
    assert "Not restored yet: moved-c." in str(stalled.value)
    assert not step.ctx.held_restores.marked_done("moved-c")
    destination.hold.set()
