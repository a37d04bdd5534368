"""The finish step moving an alias of `finish.aliases`: the dry run shows the removal from the older
destination index (from the discovered aliases), apply sends one `POST _aliases` computed from the
aliases read just before, and a second look finds nothing to do."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from migrator.discovery import ClusterFacts, Facts, IndexFacts
from migrator.planner import build_plan
from migrator.spec import parse_plan
from migrator.steps.finish import Finish
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
finish: {aliases: {orders-read: [orders]}}
"""


def finish_step(destination: FakeIndices, discovered_aliases: dict[str, list[str]]) -> Finish:
    facts = Facts(
        ClusterFacts(
            "http://s", "7.17.29", "green", indices={"orders": IndexFacts("orders", "open", "green", 9, 1, 1, 1)}
        ),
        ClusterFacts(
            "http://d", "8.19.21", "green", free_disk_bytes=10**9, indices=indices_with_aliases(discovered_aliases)
        ),
    )
    spec = parse_plan(PLAN)
    plan = build_plan(spec, facts, datetime(2026, 11, 30, tzinfo=UTC))
    ctx = SimpleNamespace(spec=spec, plan=plan, destination=destination, repository="repo", snapshot="s")
    return Finish("finish", plan.graph.nodes["finish"]["params"], ctx)


def test_finish_moves_the_alias_off_the_older_index_as_the_dry_run_shows():
    destination = FakeIndices({}, {"orders-read": {"orders-v1"}})
    step = finish_step(destination, {"orders-read": ["orders-v1"]})
    moved = {
        "actions": [
            {"remove": {"index": "orders-v1", "alias": "orders-read"}},
            {"add": {"index": "new-orders", "alias": "orders-read"}},
        ]
    }
    assert [(r.method, r.path, r.body) for r in step.describe()] == [("POST", "_aliases", moved)]
    assert [r.path for r in step.checks()] == ["_alias/orders-read"]

    with sends_only_listed(step):
        assert not step.observe().done
        step.act()
    assert destination.sent == [("POST", "/_aliases", moved)]
    assert destination.aliases == {"orders-read": {"new-orders"}}
    assert step.observe().done


def test_apply_follows_the_destination_as_it_is_when_it_differs_from_the_dry_run():
    destination = FakeIndices({}, {"orders-read": {"orders-v1", "orders-v2"}})
    step = finish_step(destination, {})
    step.act()
    assert destination.sent[0][2]["actions"][:2] == [
        {"remove": {"index": "orders-v1", "alias": "orders-read"}},
        {"remove": {"index": "orders-v2", "alias": "orders-read"}},
    ]
    assert destination.aliases == {"orders-read": {"new-orders"}}
