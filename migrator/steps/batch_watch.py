"""restore batch -> its members' steps: the members whose primaries all started, released while the batch's
held restore still runs (issue 17, "pipelining").

Place in the flow: executor -> steps (restore_batch.wait) -> this module -> clients, and back to the executor
(`EarlyReleases`) and to the members' restore and recovery steps (`HeldRequests.mark_done`). Elasticsearch restores a
batch's primaries a few at a time (`cluster.routing.allocation.node_initial_primaries_recoveries`, 4 per
node by default), and the batch's request answers only when the last has started. Meanwhile the batch's
step reads the routing table of its members: one `_cluster/state/routing_table/<names>` per group of
names that fits a request line (`name_groups`), filtered to the shard copies' states (`poll_path`), as
the batch's checks list it, and only for the groups with a member still to see (until a member started, the
first of them: the destination restores in the batch's order). The first poll comes
after FIRST_POLL_S, the next twice as long after a poll that saw nothing new, and, after one that saw
members start, as long as one validation wave (planner.wave_size) takes to start at the rate
just seen: always between FIRST_POLL_S and LAST_POLL_S. Polling more often would not validate sooner (a
wave waits for its last member) and would log a path naming the batch's members each time (the event
log: on the sandbox at 50 indices, 25 polls at a fixed 0.1 s after each start took 3 KB of state file
per index). A member whose every primary is STARTED, and that this migration restored
(its `index.uuid` recorded in the ledger by this batch once its request was under way, or observed ours by the
batch before it), is marked done in `ctx.held_restores` and its restore step released to the executor: its
restore, recovery and validation run while the later members still restore, and read what this poll saw
instead of polling the cluster themselves. A member with a failed or waiting primary is never released: it
waits for the batch's answer as before (its recovery step names it and heals it; the batch's stall watch
ends the wait).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from migrator.clients.es import build_path, name_groups
from migrator.dag import restore_id
from migrator.planner import wave_size

# The poll reads only each shard copy's state and whether it is the primary: a routing table entry is ~10x that.
ROUTING_STATES = "routing_table.indices.*.shards.*.state,routing_table.indices.*.shards.*.primary"
FIRST_POLL_S = 0.1  # a batch's first members start within a few tenths of a second on a small index
LAST_POLL_S = 1.6  # the longest pause between two reads while nothing new starts (a large index restoring)


def poll_path(names: list[str]) -> str:
    """`GET _cluster/state/routing_table/<names>?filter_path=...`: the poll of one group of a batch's names."""
    return build_path("_cluster", "state", "routing_table", ",".join(names), params={"filter_path": ROUTING_STATES})


def primaries_started(routing: dict[str, Any]) -> bool:
    """Whether every primary of an index's routing table entry (`{"shards": {"0": [copy, ...]}}`) is STARTED:
    its restore is over (a primary starts once every file is restored from the snapshot)."""
    primaries = [copy for shard in (routing.get("shards") or {}).values() for copy in shard if copy.get("primary")]
    return bool(primaries) and all(copy.get("state") == "STARTED" for copy in primaries)


class MemberWatch:
    """The members of one restore batch seen restored while its held request runs (see the module).

    `members`: every member's target name, in the batch's order (the groups of names read, as listed);
    `candidates`: those this migration restored or restores (others are never released); `clock`: seconds,
    for the rate at which members start (the time between two polls, the polls' own included)."""

    def __init__(
        self,
        ctx: Any,
        batch: str,
        members: list[str],
        candidates: set[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.clock = clock
        self.polled = clock()  # when the last poll ended (first: when the watch began)
        self.batch = batch
        self.groups = name_groups(members)
        self.pending = set(candidates)
        self.seen: set[str] = set()  # the members seen started (released)
        self.delay = FIRST_POLL_S  # seconds until the next poll
        self.wave = wave_size(len(members))  # the members one validation wave holds

    def poll(self) -> list[str]:
        """Read the routing table of the groups holding a pending member (until one member started, the first of
        them only); the members whose primaries all started now (recorded as started and their restore steps
        released), in the batch's order."""
        started: list[str] = []
        groups = [group for group in self.groups if not self.pending.isdisjoint(group)]
        # Until one member started, the first such group only: the destination restores in the batch's order
        # (planner.recovery_order), so it starts first; a batch queued behind another polls one group, not all.
        for group in groups if self.seen else groups[:1]:
            routed = (self.ctx.destination.get(poll_path(group)) or {}).get("routing_table", {}).get("indices", {})
            started += [name for name in group if name in self.pending and primaries_started(routed.get(name, {}))]
        if started:
            self.pending.difference_update(started)
            self.seen.update(started)
            self.ctx.held_restores.mark_done(started)
            self.ctx.releases.release(self.batch, [restore_id(name) for name in started])
        now = self.clock()
        since, self.polled = now - self.polled, now
        # seconds for a wave to start at the rate seen since the last poll (none: twice as long as the last pause)
        pause = since * self.wave / len(started) if started else 2 * self.delay
        self.delay = min(max(pause, FIRST_POLL_S), LAST_POLL_S)
        return started
