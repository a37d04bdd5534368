"""The cutover's alias switch: one atomic `POST _aliases` that moves each alias of `finish.aliases` off
any other destination index (shown by the dry run), with what it removes recorded before it is sent,
once, so that `rollback` can give the alias back."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from migrator.aliases import RemovedAliases
from migrator.discovery import ClusterFacts, Facts, IndexFacts
from migrator.planner import build_plan
from migrator.spec import parse_plan
from migrator.steps.alias_switch import SwitchAliases
from tests.steps.fakes import FakeIndices, indices_with_aliases
from tests.steps.listed import sends_only_listed

PLAN = """
name: unit
source: {url: "http://127.0.0.1:9200"}
destination: {url: "http://127.0.0.1:9201"}
repository: {name: repo, type: fs, settings: {location: /tmp/repo}}
storage: {kind: local, path: /tmp/repo}
snapshot: {indices: [orders]}
restore: {rename_pattern: "(.+)", rename_replacement: "new-$1"}
cutover: {enabled: true}
finish: {aliases: {orders-read: [orders]}}
"""
MOVE = {
    "actions": [
        {"remove": {"index": "orders-v1", "alias": "orders-read"}},
        {"add": {"index": "new-orders", "alias": "orders-read"}},
    ]
}


def switch(destination: FakeIndices, record: RemovedAliases) -> SwitchAliases:
    facts = Facts(
        ClusterFacts(
            "http://s", "7.17.29", "green", indices={"orders": IndexFacts("orders", "open", "green", 9, 1, 1, 1)}
        ),
        ClusterFacts(
            "http://d",
            "8.19.21",
            "green",
            free_disk_bytes=10**9,
            indices=indices_with_aliases({"orders-read": ["orders-v1"]}),
        ),
    )
    spec = parse_plan(PLAN)
    plan = build_plan(spec, facts, datetime(2026, 11, 30, tzinfo=UTC))
    ctx = SimpleNamespace(spec=spec, plan=plan, destination=destination, removed_aliases=record)
    return SwitchAliases("cutover.switch", {}, ctx)


def test_the_switch_moves_the_alias_and_records_what_it_removed_before_sending():
    destination = FakeIndices({"orders-v1": {}, "new-orders": {}}, {"orders-read": {"orders-v1"}})
    record = RemovedAliases()
    step = switch(destination, record)
    assert [(r.method, r.path, r.body) for r in step.describe()] == [("POST", "_aliases", MOVE)]
    with sends_only_listed(step):
        assert not step.observe().done
        step.act()
    assert destination.sent == [("POST", "/_aliases", MOVE)]
    assert destination.sent == [(r.method, r.sent_path, r.body) for r in step.describe()]  # shown is sent
    assert record.get() == {"orders-read": ["orders-v1"]}
    assert step.observe().done

    # resumed after a kill that followed the switch: nothing left to send, the record kept
    resumed = switch(destination, record)
    resumed.act()
    assert len(destination.sent) == 1 and record.get() == {"orders-read": ["orders-v1"]}
