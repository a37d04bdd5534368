"""The restore batch's watch of its members (migrator.steps.batch_watch): one routing table read per group of
names per poll, only for groups with a member still to see, an interval that backs off while nothing starts
and is short again once something did, and only the members this migration restores are released. A canned
routing table, no cluster."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from migrator.dag import restore_id
from migrator.steps import batch_watch
from migrator.steps.batch_watch import FIRST_POLL_S, LAST_POLL_S, MemberWatch, primaries_started
from migrator.steps.handoffs import EarlyReleases, HeldRequests


class Routing:
    """The destination's routing table: `started` names have every primary STARTED, the others one initializing."""

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.reads: list[list[str]] = []

    def get(self, path: str) -> dict[str, Any]:
        names = unquote(urlsplit(path).path).split("/")[-1].split(",")
        self.reads.append(names)
        started = {"0": [{"primary": True, "state": "STARTED"}, {"primary": False, "state": "UNASSIGNED"}]}
        restoring = {"0": [{"primary": True, "state": "STARTED"}], "1": [{"primary": True, "state": "INITIALIZING"}]}
        indices = {name: {"shards": started if name in self.started else restoring} for name in names}
        return {"routing_table": {"indices": indices}}


class Clock:
    """Seconds, moved on by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def watch_of(members: list[str], candidates: set[str], clock: Clock | None = None) -> tuple[MemberWatch, Routing]:
    routing = Routing()
    held = HeldRequests()
    for name in members:
        held.keep(name, Future())
    ctx = SimpleNamespace(destination=routing, held_restores=held, releases=EarlyReleases())
    return MemberWatch(ctx, "restore.batch[1]", members, candidates, clock or Clock()), routing


def test_a_primary_still_initializing_or_none_at_all_is_not_started():
    assert primaries_started({"shards": {"0": [{"primary": True, "state": "STARTED"}]}})
    assert not primaries_started({"shards": {"0": [{"primary": True, "state": "UNASSIGNED"}]}})
    assert not primaries_started({})  # absent from the routing table


def test_the_interval_backs_off_while_nothing_starts_up_to_its_bound():
    clock = Clock()
    watch, routing = watch_of(["a", "b", "c"], {"a", "b", "c"}, clock)
    assert watch.delay == FIRST_POLL_S
    delays = []
    for _ in range(6):
        clock.now += watch.delay
        assert watch.poll() == []
        delays.append(watch.delay)
    assert delays == [0.2, 0.4, 0.8, 1.6, LAST_POLL_S, LAST_POLL_S]  # every wait between two reads is bounded
    clock.now += watch.delay
    routing.started.add("b")
    assert watch.poll() == ["b"] and watch.delay == LAST_POLL_S  # one in 1.6 s: a wave takes longer than that
    assert watch.ctx.releases.take() == [("restore.batch[1]", restore_id("b"))]
    assert watch.ctx.held_restores.marked_done("b") and not watch.ctx.held_restores.marked_done("a")
    assert all(read == ["a", "b", "c"] for read in routing.reads)  # the batch's names, as its checks list them


def test_after_members_start_the_next_poll_comes_when_a_wave_should_have_started_at_the_rate_seen():
    names = [f"m{number:02d}" for number in range(60)]
    clock = Clock()
    watch, routing = watch_of(names, set(names), clock)
    assert watch.wave == 10  # planner.wave_size of 60 members
    clock.now += 0.4
    routing.started |= set(names[:20])  # 20 in 0.4 s (the polls' own time included): a wave of 10 in 0.2 s
    assert len(watch.poll()) == 20 and watch.delay == pytest.approx(0.2)
    clock.now += 0.2
    routing.started |= set(names[20:55])  # 35 in 0.2 s: faster than FIRST_POLL_S would see, which bounds it
    assert len(watch.poll()) == 35 and watch.delay == FIRST_POLL_S
    clock.now += 0.5
    routing.started |= set(names[55:56])  # 1 in 0.5 s: a wave in 5 s, longer than LAST_POLL_S, which bounds it
    assert watch.poll() == ["m55"] and watch.delay == LAST_POLL_S


def test_only_groups_with_a_member_to_see_are_read_and_only_candidates_are_released(monkeypatch):
    # two groups of names (as if the names filled a request line each): a, b | c, d
    monkeypatch.setattr(batch_watch, "name_groups", lambda names: [names[:2], names[2:]])
    watch, routing = watch_of(["a", "b", "c", "d"], {"a", "b", "c"})  # d: not restored by this migration
    routing.started |= {"d"}
    assert watch.poll() == [] and routing.reads == [["a", "b"]]  # nothing started yet: the first group only
    routing.reads.clear()
    routing.started |= {"a", "b"}
    assert watch.poll() == ["a", "b"] and routing.reads == [["a", "b"]]
    routing.reads.clear()
    assert watch.poll() == [] and routing.reads == [["c", "d"]]  # a and b seen: their group is not read again
    routing.started.add("c")
    assert watch.poll() == ["c"] and not watch.pending and watch.seen == {"a", "b", "c"}
    released = [successor for _, successor in watch.ctx.releases.take()]
    assert released == [restore_id(name) for name in "abc"]


@pytest.mark.parametrize("members", [["a"], ["a", "b"]])
def test_a_member_already_released_is_never_released_again(members):
    watch, routing = watch_of(members, set(members))
    routing.started |= set(members)
    assert watch.poll() == members
    routing.reads.clear()
    assert watch.poll() == [] and routing.reads == []  # nothing left to see: no read
    assert len(watch.ctx.releases.take()) == len(members)
