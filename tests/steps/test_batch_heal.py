"""A batch member's restore given up (a failed primary, a restore lost), seen by its recovery step: the batch's
members given up are restored again in ONE request of their batch, after one DELETE of those this migration
owns; a foreign index is never touched, a healthy member never restored again. Fakes, no cluster."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import networkx as nx

from migrator.clients.tap import RequestTap
from migrator.ownership import Ledger, now_ms
from migrator.planner import restore_id
from migrator.steps.batch_heal import restore_again
from migrator.steps.handoffs import BatchHeals, HeldRequests
from migrator.steps.recovery import FollowRecovery, restore_given_up
from migrator.steps.restore_batch import RestoreBatch
from migrator.steps.validation_reads import ValidationReads
from tests.steps.fakes import Progress
from tests.steps.test_recovery import FILTERED

BATCH = "restore.batch[2]"
OURS = {"type": "SNAPSHOT", "repository": "repo", "snapshot": "snap"}
THEIRS = {"type": "SNAPSHOT", "repository": "their-repo", "snapshot": "snap"}  # someone else's restore, failed


def routing(state: str, source: dict[str, Any] | None, reason: str | None = "NEW_INDEX_RESTORED") -> dict[str, Any]:
    copy = {
        "state": state,
        "primary": True,
        "shard": 0,
        "recovery_source": source,
        "unassigned_info": {"reason": reason},
    }
    return {"shards": {"0": [copy]}}


class Destination:
    """Members by name: failed restores (unassigned primaries the explanation says failed), a started one, a
    foreign one; records every DELETE and restore."""

    def __init__(self, indices: dict[str, dict[str, Any]]) -> None:
        self.indices = indices
        self.deletes: list[str] = []
        self.restores: list[dict[str, Any]] = []
        self.requests: list[str] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        route = urlsplit(path).path
        self.requests.append(f"{method} {route}")
        if method == "DELETE":
            self.deletes.append(route)
            for name in route.strip("/").split(","):
                self.indices.pop(name, None)
            return 200, {}
        if method == "POST" and route.endswith("/_restore"):
            self.restores.append(body)
            targets = [f"moved-{name}" for name in body["indices"].split(",")]
            for target in targets:
                self.indices[target] = routing("INITIALIZING", OURS)
            return 200, {"snapshot": {"indices": targets, "shards": {"total": 1, "failed": 0, "successful": 1}}}
        if route == "/_cluster/allocation/explain":
            return 200, FILTERED
        names = route.split("/")[-1] if route.startswith(("/_cluster/state", "/_cat")) else route.split("/")[1]
        wanted = [name for name in names.split(",") if name in self.indices]
        if route.startswith("/_cluster/state/routing_table"):
            return 200, {"routing_table": {"indices": {name: self.indices[name] for name in wanted}}}
        if route.startswith("/_cluster/state/metadata"):
            uuids = {name: {"settings": {"index": {"uuid": f"uuid-{name}"}}} for name in wanted}
            return 200, {"metadata": {"indices": uuids}}
        if route.startswith("/_cat/shards"):
            copies = self.indices.get(names, {}).get("shards", {}).get("0", [])
            return 200, [
                {"shard": "0", "prirep": "p", "state": c["state"], "unassigned.reason": c["unassigned_info"]["reason"]}
                for c in copies
            ]
        return 200, {name: {"shards": []} for name in wanted}  # _recovery

    def get(self, path: str, **_: Any) -> Any:
        return self.request("GET", path)[1]


def context(destination: Destination, members: list[str]) -> SimpleNamespace:
    ledger = Ledger()
    ledger.intend_snapshot("repo", "snap")
    assert ledger.claim_snapshot("repo", "snap", {"uuid": "snap-uuid", "start_time_in_millis": now_ms()})
    graph = nx.DiGraph()
    listed = [{"source": name, "target": f"moved-{name}"} for name in members]
    graph.add_node(BATCH, params={"members": listed})
    for member in listed:
        graph.add_node(restore_id(member["target"]), params={**member, "batch": BATCH})
    restore = SimpleNamespace(
        rename_pattern="(.+)",
        rename_replacement="moved-$1",
        index_settings={},
        ignore_index_settings=[],
        include_aliases=False,
    )
    return SimpleNamespace(
        spec=SimpleNamespace(
            restore=restore,
            waits=SimpleNamespace(stall_after=900.0),
            validate=SimpleNamespace(doc_counts=True, mappings=True, settings=True, sample_docs=0),
        ),
        plan=SimpleNamespace(graph=graph),
        destination=destination,
        repository="repo",
        snapshot="snap",
        held_restores=HeldRequests(),
        requests=RequestTap(),
        batch_heals=BatchHeals(),
        validation_reads=ValidationReads(),
        ledger=ledger,
        progress=Progress(),
        poll_s=0.01,
        cancel_requested=lambda: False,
        sleep=lambda seconds=None: None,
    )


def recovery(ctx: SimpleNamespace, target: str) -> FollowRecovery:
    return FollowRecovery(f"recovery[{target}]", {"source": target.removeprefix("moved-"), "target": target}, ctx)


def test_a_resumed_run_restores_the_failed_members_of_a_batch_in_one_request_deleting_only_its_own():
    # Seen on 6.8 -> 7.10 and 7.17 -> 8: after an allocation exclude failed a batch's restore, the resumed run's
    # recovery steps each sent their own DELETE and their own restore (71 of each).
    failed = routing("UNASSIGNED", OURS)
    indices = {f"moved-{name}": failed for name in ("a", "b", "d", "e")}
    indices["moved-c"] = routing("STARTED", OURS, None)  # restored: never restored again
    indices["moved-f"] = routing("UNASSIGNED", THEIRS)  # not restored by this migration: never touched
    destination = Destination(indices)
    ctx = context(destination, ["a", "b", "c", "d", "e", "f"])
    first = recovery(ctx, "moved-a")
    done, *_ = first._progress(heal=True)
    assert not done
    heal_sent = list(destination.requests)
    assert [body["indices"] for body in destination.restores] == ["a,b,d,e"]  # one request for the batch
    assert destination.deletes == ["/moved-a,moved-b,moved-d,moved-e"]  # the owned failed members only
    assert "moved-f" in destination.indices and "moved-c" in destination.indices
    # the other members' recovery steps follow the request sent for them; they send none of their own
    for target in ("moved-b", "moved-d", "moved-e"):
        other = recovery(ctx, target)
        assert target in ctx.held_restores
        other._progress(heal=True)
    assert len(destination.restores) == 1 and len(destination.deletes) == 1
    # what the runbook lists for the batch and the recovery: every read (the explanation's body decided at run)
    # and the batch's request's path (naming fewer indices, as a resumed batch's does)
    batch = RestoreBatch(BATCH, ctx.plan.graph.nodes[BATCH]["params"], ctx)
    shown = [*batch.describe(), *batch.checks(), *first.describe(), *first.checks()]
    listed = {f"{r.method} /{r.path}".split("?")[0] for r in shown}
    sent = [r for r in heal_sent if not r.startswith("DELETE")]
    assert "POST /_snapshot/repo/snap/_restore" in sent and set(sent) - listed == set(), set(sent) - listed
    # the DELETE is listed too, as conditional, naming the batch's members (a run names those given up of them)
    [listed_delete] = [r for r in batch.checks() if r.method == "DELETE"]
    assert listed_delete.when and set(listed_delete.path.split(",")) >= {"moved-a", "moved-b", "moved-d", "moved-e"}


def test_a_member_given_up_again_in_the_same_run_is_not_restored_again():
    destination = Destination({"moved-a": routing("UNASSIGNED", OURS)})
    ctx = context(destination, ["a"])
    given_up = restore_given_up(ctx, "snap")
    step = recovery(ctx, "moved-a")
    assert restore_again(ctx, BATCH, "moved-a", given_up, step._given_up_now)
    # asked again while its new restore runs (another member's step healed it meanwhile): it is followed
    assert restore_again(ctx, BATCH, "moved-a", given_up, step._given_up_now)
    destination.indices["moved-a"] = routing("UNASSIGNED", OURS)  # failed again: the fix was not made
    assert not restore_again(ctx, BATCH, "moved-a", given_up, step._given_up_now)  # its recovery step stops
    assert [body["indices"] for body in destination.restores] == ["a"]  # a batch of one: its own index alone


def test_a_lost_restore_goes_back_to_its_batch_and_a_live_one_does_not():
    lost = routing("UNASSIGNED", OURS, "CLUSTER_RECOVERED")  # every node restarted mid-restore
    destination = Destination({"moved-a": lost, "moved-b": lost, "moved-c": routing("INITIALIZING", OURS)})
    ctx = context(destination, ["a", "b", "c"])
    recovery(ctx, "moved-a")._progress(heal=True)
    assert [body["indices"] for body in destination.restores] == ["a,b"]
    assert destination.deletes == ["/moved-a,moved-b"]
