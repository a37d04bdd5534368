"""The finish step moving an alias of `finish.aliases`: the dry run shows the removal from the older
destination index (from the discovered aliases), apply sends one `POST _aliases` computed from the
aliases read just before, and a second look finds nothing to do."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from migrator.discovery import ClusterFacts, Facts, IndexFacts
from migrator.ownership import Ledger
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


class Cluster:
    """One cluster's answers to the finishing reads: the run's snapshot, the repository registration, the
    replicas setting, the shard copies (one data node: a replica cannot be placed, so all it holds is started)."""

    def __init__(self) -> None:
        self.snapshots = {"s": {"snapshot": "s", "uuid": "u-1", "start_time_in_millis": 2**62}}
        self.registered = True
        self.replicas = "0"
        self.sent: list[tuple[str, str]] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        where = urlsplit(path).path.strip("/").split("/")
        if method != "GET":
            self.sent.append((method, path))
            if method == "PUT":
                self.replicas = str(body["index"]["number_of_replicas"])
            elif len(where) == 3:
                self.snapshots.pop(where[2], None)
            else:
                self.registered = False
            return 200, {"acknowledged": True}
        if where[0] == "_snapshot" and len(where) == 3:
            found = self.snapshots.get(where[2])
            return 200, {"snapshots": [found] if found else []}
        if where[0] == "_snapshot":
            return (200, {"repo": {"type": "fs"}}) if self.registered else (404, {})
        if where[-1] == "index.number_of_replicas":
            return 200, {where[0]: {"settings": {"index": {"number_of_replicas": self.replicas}}}}
        if where[0] == "_cat":
            return 200, [{"index": "new-orders", "shard": "0", "prirep": "p", "state": "STARTED"}]
        if where == ["_cluster", "health"]:
            return 200, {"number_of_data_nodes": 1}
        return 200, {"new-orders": {"shards": []}}

    def get(self, path: str, **options: Any) -> Any:
        return self.request("GET", path, **options)[1]


def test_every_finishing_request_and_read_is_one_the_dry_run_lists():
    """Replicas, the snapshot deleted, both registrations removed: `_missing` sends the reads `checks()` lists
    (built once, as `Finishing` pairs) and `act` the requests `describe()` shows."""
    source, destination = Cluster(), Cluster()
    spec = parse_plan(
        PLAN.replace(
            "finish: {aliases: {orders-read: [orders]}}",
            "finish: {replicas: 1, delete_snapshot: true, unregister_repositories: true}",
        )
    )
    facts = Facts(
        ClusterFacts(
            "http://s", "7.17.29", "green", indices={"orders": IndexFacts("orders", "open", "green", 9, 1, 1, 1)}
        ),
        ClusterFacts("http://d", "8.19.21", "green", free_disk_bytes=10**9),
    )
    plan = build_plan(spec, facts, datetime(2026, 11, 30, tzinfo=UTC))
    ledger = Ledger()
    ledger.intend_snapshot("repo", "s")
    ledger.record_repository("source", "repo")
    ledger.record_repository("destination", "repo")
    ctx = SimpleNamespace(
        spec=spec,
        plan=plan,
        source=source,
        destination=destination,
        repository="repo",
        snapshot="s",
        ledger=ledger,
        poll_s=0.01,
    )
    step = Finish("finish", plan.graph.nodes["finish"]["params"], ctx)
    with sends_only_listed(step):
        assert not step.observe().done
        step.act()
        assert step.observe().done
    assert source.sent == [("DELETE", "/_snapshot/repo/s"), ("DELETE", "/_snapshot/repo")]
    assert destination.sent == [("PUT", "/new-orders/_settings"), ("DELETE", "/_snapshot/repo")]
