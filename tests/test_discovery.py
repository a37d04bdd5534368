"""Discovery on canned answers: the extra facts the dry run's checks read, in a fixed number of requests."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from migrator.clients.es import EsError, Request
from migrator.discovery import (
    CLOSED_STATS,
    COUNT_SHARDS_AT_ONCE,
    COUNT_TIMEOUT_S,
    FS,
    METADATA,
    NODES,
    READS_AT_ONCE,
    SlowCount,
    discover,
    discover_cluster,
)

ROWS = [
    {"index": "orders", "status": "open", "health": "green", "docs.count": "1500", "pri.store.size": "900", "pri": "1"},
    {"index": "archive", "status": "close", "health": "green", "docs.count": None, "pri.store.size": None, "pri": "2"},
]
ANSWERS: dict[str, Any] = {
    "/_nodes?filter_path=nodes.*.version": {"nodes": {"a": {"version": "8.19.21"}}},
    "/_cluster/health": {"status": "green", "active_shards": 7, "initializing_shards": 1, "unassigned_shards": 2},
    METADATA: {
        "metadata": {
            "indices": {
                "orders": {
                    "state": "open",
                    "settings": {
                        "index": {
                            "version": {"created": "7172999"},
                            "routing": {"allocation": {"require": {"zone": "a"}}},
                            "creation_date": "1764547200000",
                            "priority": "7",
                        }
                    },
                    "aliases": ["shop"],
                    "system": False,
                },
                "archive": {"state": "close", "settings": {"index": {"version": {"created": "6082399"}}}},
            },
            "data_stream": {"data_stream": {"logs-app": {"name": "logs-app"}}},
        }
    },
    CLOSED_STATS: {"indices": {"archive": {"primaries": {"docs": {"count": 30}, "store": {"size_in_bytes": 15895}}}}},
    "/_snapshot/_all": {},
    NODES: {
        "nodes": {
            "n1": {
                "name": "d1",
                "host": "h",
                "ip": "10.0.0.1",
                "roles": ["data_hot", "master"],
                "attributes": {"zone": "a"},
            },
            "n2": {"name": "m1", "host": "h", "ip": "10.0.0.2", "roles": ["master"], "attributes": {}},
        }
    },
    FS: {"nodes": {"n1": {"fs": {"total": {"total_in_bytes": 1000, "available_in_bytes": 600}}}}},
}


TEMPLATE_READS = (
    "/_template", "/_index_template", "/_component_template", "/_all/_settings", "/_ingest", "/_ilm", "/_nodes/ingest"
)  # fmt: skip


class Canned:
    """Answers GETs from ANSWERS and the counting search; records every request."""

    url = "http://canned"
    label = "source"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        self.sent.append((method, path, body))
        if "/_search" in path:
            return 200, {"aggregations": {"docs": {"buckets": [{"key": "orders", "doc_count": 500}]}}}
        if path.startswith("/_cat/indices"):
            return 200, ROWS
        if path.startswith("/_cluster/settings"):
            return 200, {
                "defaults": {
                    "cluster": {
                        "max_shards_per_node": "1000",
                        "routing": {"allocation": {"disk": {"watermark": {"high": "90%"}}}},
                    }
                },
                "persistent": {
                    "cluster": {
                        "max_shards_per_node": "20",
                        "routing": {"allocation": {"exclude": {"_name": "d9", "zone": ""}, "enable": "primaries"}},
                    }
                },
                "transient": {"cluster": {"routing": {"allocation": {"enable": "none"}}}},
            }
        if path.startswith(TEMPLATE_READS):  # migrator.template_facts: none on this cluster
            return 200, {}
        return 200, ANSWERS[path]

    def get(self, path: str, **_: Any) -> Any:
        return self.request("GET", path)[1]

    def version(self) -> str:
        return "8.19.21"

    def expand_wildcards(self, value: str) -> str:
        return value

    def health(self) -> dict[str, Any]:
        return self.get("/_cluster/health")

    def indices(self, *_: Any, **__: Any) -> list[dict[str, Any]]:
        return self.get("/_cat/indices")


def test_the_facts_the_checks_need_come_from_a_fixed_set_of_requests():
    client = Canned()
    facts = discover_cluster(client, ["orders", "archive"], capacity=True)  # type: ignore[arg-type]
    orders, archive = facts.indices["orders"], facts.indices["archive"]
    assert orders.docs == 500  # top-level documents from the search, not _cat's 1500 (nested included)
    assert (archive.docs, archive.primary_bytes) == (30, 15895)  # closed: from _stats, not 0 and 0 B
    assert orders.version_created == "7172999" and archive.version_created == "6082399"
    assert orders.settings == {"index.routing.allocation.require.zone": "a"} and orders.aliases == ["shop"]
    assert (orders.creation_date, orders.priority) == (1764547200000, 7)  # the order a restore recovers in
    assert (archive.creation_date, archive.priority) == (0, 1)  # unknown: oldest; unset: Elasticsearch's 1
    assert facts.data_streams == ["logs-app"] and facts.shards == 10
    assert [n.name for n in facts.data_nodes] == ["d1"] and facts.data_nodes[0].disk_available_bytes == 600
    assert facts.max_shards_per_node == 20 and facts.high_watermark == "90%"  # persistent over the default
    assert facts.allocation_enable == "none" and facts.allocation_filters == {"exclude._name": "d9"}  # transient first
    assert all(method == "GET" for method, _, _ in client.sent)  # discovery only reads
    searches = [r for r in client.sent if "/_search" in r[1]]
    assert len(searches) == 1 and searches[0][1].startswith("/orders,archive/_search?ignore_unavailable=true")
    assert searches[0][2]["aggs"]["docs"]["terms"]["field"] == "_index"


def test_an_index_no_shard_of_which_can_answer_leaves_the_counts_of_cat_indices():
    class Unassigned(Canned):
        def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
            if "/_search" in path:
                raise EsError("source", Request(method, path), 503, "no_shard_available_action_exception: None")
            return super().request(method, path, body, **kwargs)

    facts = discover_cluster(Unassigned(), ["orders"], capacity=True)  # type: ignore[arg-type]
    assert facts.indices["orders"].docs == 1500  # `_cat/indices`: preflight then names the red index


def test_a_counting_search_with_no_answer_in_time_is_sent_once_and_names_the_cause_and_the_fix():
    # Before: a 30-s timeout, retried 5 times (about 3 minutes with no output), then "unreachable ... check the URL".
    class Cold(Canned):
        asked: list[dict[str, Any]] = []

        def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
            if "/_search" in path:
                self.asked.append(kwargs)
                raise EsError("source", Request(method, path), None, "unreachable (ConnectionTimeout)")
            return super().request(method, path, body, **kwargs)

    with pytest.raises(SlowCount) as raised:
        discover_cluster(Cold(), ["orders"])  # type: ignore[arg-type]
    assert Cold.asked == [{"timeout_s": COUNT_TIMEOUT_S, "retry_timeout": False}]
    message = str(raised.value)
    assert "index.search.idle.after" in message and "POST <snapshot.indices>/_refresh" in message
    assert f"more than {COUNT_TIMEOUT_S:.0f} s" in message and not raised.value.transient


def test_the_counting_search_asks_many_shards_at_once():
    client = Canned()
    discover_cluster(client, ["orders"])  # type: ignore[arg-type]
    [search] = [path for _, path, _ in client.sent if "/_search" in path]
    assert f"max_concurrent_shard_requests={COUNT_SHARDS_AT_ONCE}" in search and COUNT_SHARDS_AT_ONCE >= 100


class Slow(Canned):
    """Canned answers, each after `LATENCY` seconds (a cluster some way off, or busy); counts the reads in flight."""

    LATENCY = 0.05

    def __init__(self, in_flight: list[int], lock: threading.Lock) -> None:
        super().__init__()
        self.in_flight, self.lock, self.most = in_flight, lock, 0
        self.own, self.own_most, self.beside_other = 0, 0, False

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        with self.lock:
            self.in_flight[0] += 1
            self.own += 1
            self.most = max(self.most, self.in_flight[0])
            self.own_most = max(self.own_most, self.own)
            self.beside_other |= self.in_flight[0] > self.own  # the other cluster had a read in flight too
        time.sleep(self.LATENCY)
        try:
            return super().request(method, path, body, **kwargs)
        finally:
            with self.lock:
                self.in_flight[0] -= 1
                self.own -= 1


def test_both_clusters_are_read_at_once_with_a_few_reads_in_flight_each():
    # Before: one read after the other, source then destination: 2 x 15 round trips (about 1.5 s here).
    in_flight, lock = [0], threading.Lock()
    source, destination = Slow(in_flight, lock), Slow(in_flight, lock)
    facts = discover(source, destination, ["orders", "archive"])  # type: ignore[arg-type]
    assert facts.source.indices["orders"].docs == 500 and facts.destination.max_shards_per_node == 20
    assert len(source.sent) + len(destination.sent) >= 25
    # States, not times (a loaded machine stretches any wall-clock bound): each cluster had several reads in
    # flight at once, never more than READS_AT_ONCE, and the two clusters were read at the same moment.
    assert 1 < source.own_most <= READS_AT_ONCE and 1 < destination.own_most <= READS_AT_ONCE
    assert source.beside_other or destination.beside_other
    assert max(source.most, destination.most) <= 2 * READS_AT_ONCE


def test_the_counting_search_does_not_wait_for_cat_indices():
    # Before: the search was sent once `_cat/indices` had answered (the version, then `_cat/indices`, then the
    # search: three round trips in a row); it follows the metadata now, read at once with the version.
    class CatLast(Canned):
        def __init__(self) -> None:
            super().__init__()
            self.searched = threading.Event()
            self.search_first: list[bool] = []

        def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
            if "/_search" in path:
                self.searched.set()
            if path.startswith("/_cat/indices"):
                self.search_first.append(self.searched.wait(timeout=5))
            return super().request(method, path, body, **kwargs)

    client = CatLast()
    facts = discover_cluster(client, ["orders", "archive"], capacity=True)  # type: ignore[arg-type]
    assert client.search_first == [True]
    assert facts.indices["orders"].docs == 500 and facts.indices["archive"].docs == 30  # the counts as before


def test_the_template_and_pipeline_reads_are_sent_at_once():
    # Before: `_template`, `_index_template`, `_component_template`, the settings naming pipelines,
    # `_ingest/pipeline`, `_ilm/policy` and `_nodes/ingest` went one after the other (discovery's longest chain).
    class TemplatesWait(Canned):
        def __init__(self) -> None:
            super().__init__()
            self.pipelines_asked = threading.Event()
            self.together: list[bool] = []

        def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
            if path.startswith("/_ingest/pipeline"):
                self.pipelines_asked.set()
            if path == "/_template":
                self.together.append(self.pipelines_asked.wait(timeout=5))
            return super().request(method, path, body, **kwargs)

    client = TemplatesWait()
    facts = discover_cluster(client, ["orders"], capacity=True)  # type: ignore[arg-type]
    assert client.together == [True]
    assert facts.metadata["pipelines"] == {} and facts.metadata["templates"]["legacy"] == {}
