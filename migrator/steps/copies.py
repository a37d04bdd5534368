"""Every copy of a restored index started: the replicas the destination builds from the restored primaries.

Place in the flow: recovery (the replicas a restore gives an index: restore.index_settings, else the
source's) and finish (`finish.replicas`) -> copies (this module) -> clients.es. A restore answers once
its primaries are restored; each replica is then copied node to node from its primary (a peer recovery,
`_recovery` shards with `primary: false`). Until they have started the index is yellow, and a node lost
now loses the only copy. So those steps end only when every shard has as many STARTED copies as the
destination can hold: 1 + replicas, or the number of data nodes when fewer (a node holds one copy of a
shard; the dry run warns of it: those replicas stay unassigned and the index yellow for good). Reads
per look: `_cat/shards/<targets>`, `_cluster/health` (`number_of_data_nodes`) and `<targets>/_recovery`;
between looks a long poll (`_cluster/health/<targets>?wait_for_no_initializing_shards`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from migrator.clients.es import EsClient, build_path
from migrator.steps.base import Cancelled, ConsoleRequest
from migrator.steps.stall import StallWatch


@dataclass(frozen=True)
class Copies:
    """Shard copies of some indices: `started` of `wanted` (per shard min(1 + replicas, data nodes), summed),
    and the bytes of their peer recoveries (`peer_bytes` recovered of `peer_total`)."""

    started: int
    wanted: int
    peer_bytes: int = 0
    peer_total: int = 0

    @property
    def done(self) -> bool:
        """Every copy the data nodes can hold has started (nothing to wait for when no shard is listed: a
        closed index before 7.x lists none)."""
        return self.started >= self.wanted

    def shown(self) -> str:
        return f"{self.started}/{self.wanted} shard copies started, replicas {self.peer_bytes}/{self.peer_total} bytes"


LONG_POLL = "5s"  # one long poll of the health; the same whatever `--poll`, so the runbook shows what is sent


def shards_request(targets: list[str]) -> ConsoleRequest:
    """`GET _cat/shards/<targets>?format=json&h=index,shard,prirep,state`: every copy of the targets."""
    path = build_path("_cat", "shards", ",".join(targets), params={"format": "json", "h": "index,shard,prirep,state"})
    return ConsoleRequest("destination", "GET", path.lstrip("/"))


def data_nodes_request() -> ConsoleRequest:
    """`GET _cluster/health`: its `number_of_data_nodes` bounds the copies the destination can hold."""
    return ConsoleRequest("destination", "GET", "_cluster/health")


def recovery_request(targets: list[str]) -> ConsoleRequest:
    """`GET <targets>/_recovery`: the peer recoveries' bytes."""
    return ConsoleRequest("destination", "GET", build_path(",".join(targets), "_recovery").lstrip("/"))


def health_request(targets: list[str]) -> ConsoleRequest:
    """`GET _cluster/health/<targets>?wait_for_no_initializing_shards=true&timeout=5s`: returns as
    soon as no shard of the targets is initializing any more (or after the timeout, 408)."""
    params = {"wait_for_no_initializing_shards": True, "timeout": LONG_POLL}
    return ConsoleRequest(
        "destination", "GET", build_path("_cluster", "health", ",".join(targets), params=params).lstrip("/")
    )


def checks(targets: list[str]) -> list[ConsoleRequest]:
    """The reads `count` and `follow` send (the same objects), for the runbook."""
    return [shards_request(targets), data_nodes_request(), recovery_request(targets), health_request(targets)]


def count(client: EsClient, targets: list[str]) -> Copies:
    """The copies of `targets` now (see Copies); an index that does not exist counts as nothing started."""
    status, rows = client.request("GET", shards_request(targets).sent_path, ok=(200, 404))
    data_nodes = max(1, int(client.get(data_nodes_request().sent_path).get("number_of_data_nodes", 1)))
    states: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows if status == 200 else []:
        states[(row.get("index", ""), str(row.get("shard")))].append(str(row.get("state")))
    wanted = sum(min(len(copies), data_nodes) for copies in states.values())
    started = sum(min(copies.count("STARTED"), data_nodes) for copies in states.values())
    status, body = client.request("GET", recovery_request(targets).sent_path, ok=(200, 404))
    replicas = [
        shard
        for index in (body.values() if status == 200 else [])
        for shard in index.get("shards", [])
        if not shard.get("primary", True)
    ]
    sizes = [shard.get("index", {}).get("size", {}) for shard in replicas]
    peer_bytes = sum(size.get("recovered_in_bytes", 0) + size.get("reused_in_bytes", 0) for size in sizes)
    return Copies(started, wanted, peer_bytes, sum(size.get("total_in_bytes", 0) for size in sizes))


def follow(ctx: Any, step_id: str, targets: list[str]) -> dict[str, int]:
    """Wait until every copy of `targets` that the destination can hold has started, showing the peer
    recoveries' bytes; returns `{"copies": started, "replica_bytes": total}`. Raises Stalled when neither
    the copies nor the bytes move for `waits.stall_after`, Cancelled on a cancel request."""
    watch = StallWatch(ctx, f"the replicas of {', '.join(targets)}")
    while True:
        copies = count(ctx.destination, targets)
        ctx.progress.update(step_id, copies.peer_bytes, copies.peer_total, "bytes", "replicas")
        if copies.done:
            return {"copies": copies.started, "replica_bytes": copies.peer_total}
        watch.see((copies.started, copies.peer_bytes, copies.peer_total), copies.shown())
        if ctx.cancel_requested():
            raise Cancelled("cancel requested")
        started = time.monotonic()
        health = health_request(targets)
        ctx.destination.request("GET", health.sent_path, ok=(200, 408), timeout_s=ctx.poll_s * 10 + 30)
        if time.monotonic() - started < ctx.poll_s:  # nothing initializing: replicas queued or delayed
            ctx.sleep()
