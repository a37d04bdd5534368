"""Synthetic facts for the dry run's checks (tests/checks/test_*.py): a 7.17 source, an 8.19 destination
with one data node, and plans built from a base."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from migrator.discovery import ClusterFacts, Facts, IndexFacts, NodeFacts
from migrator.spec import parse_plan

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BASE = """
name: unit
source: {url: "http://127.0.0.1:9200"}
destination: {url: "http://127.0.0.1:9201"}
repository: {name: repo, type: fs, settings: {location: /tmp/repo}}
storage: {kind: local, path: /tmp/repo}
"""
GB = 1024**3
NODE = NodeFacts("d0", "10.0.0.5", "10.0.0.5", ["data", "master"], {"zone": "a"}, 100 * GB, 50 * GB)


def spec(extra: str):
    return parse_plan(BASE + extra)


def index(name: str, **changes) -> IndexFacts:
    base = IndexFacts(name, "open", "green", 500, 1000, 1000, 1, "7172999", {"index.number_of_replicas": "1"})
    return replace(base, **changes)


def facts(source: list[IndexFacts], destination: list[IndexFacts] = (), **cluster) -> Facts:
    src = ClusterFacts(url="http://s", version="7.17.29", health="green", indices={i.name: i for i in source})
    dst = ClusterFacts(
        url="http://d",
        version="8.19.21",
        health="green",
        indices={i.name: i for i in destination},
        data_nodes=[NODE],
        max_shards_per_node=1000,
        **cluster,
    )
    return Facts(src, dst)


def fields(plan) -> list[str]:
    return [p.field for p in plan.problems]
