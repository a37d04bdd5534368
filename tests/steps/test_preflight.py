"""Preflight's plugin check: a node without the repository type's plugin is named, with where to get it; its
reads of both clusters and the bucket sent at once."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from migrator.clients.tap import RequestTap
from migrator.steps.preflight import Preflight, missing_plugin
from tests.steps.listed import sends_only_listed

WITH_OSS = {"nodes": {"n1": {"plugins": [{"name": "elasticsearch-repository-oss"}], "modules": []}}}
WITHOUT = {"nodes": {"n1": {"plugins": [], "modules": [{"name": "repository-url"}]}, "n2": {"plugins": []}}}


def test_nodes_with_the_plugin_pass() -> None:
    assert missing_plugin("source", WITH_OSS, "oss") == []


def test_each_node_without_the_oss_plugin_is_named_with_where_to_get_it() -> None:
    problems = missing_plugin("destination", WITHOUT, "oss")
    assert [p.split(" lacks")[0] for p in problems] == ["destination node n1", "destination node n2"]
    assert "'elasticsearch-repository-oss'" in problems[0]
    assert "Alibaba Cloud Elasticsearch clusters ship it" in problems[0]
    assert "migrator sandbox up" in problems[0]


def test_other_types_name_the_install_command() -> None:
    [problem] = missing_plugin("source", {"nodes": {"n1": {"plugins": []}}}, "s3")
    assert "bin/elasticsearch-plugin install repository-s3" in problem


class Cluster:
    """Answers preflight's reads; each waits (up to 5 s) until the other cluster and the bucket have been asked
    too, and notes whether they had: read at once, or one after the other."""

    def __init__(self, met: threading.Barrier, version: str) -> None:
        self.met, self.version_text = met, version
        self.at_once: list[bool] = []
        self.observer = None

    def version(self) -> str:
        try:
            self.met.wait(timeout=5)
            self.at_once.append(True)
        except threading.BrokenBarrierError:
            self.at_once.append(False)
        return self.version_text

    def get(self, path: str) -> dict[str, Any]:
        return {"indices": {}}


def test_both_clusters_and_the_bucket_are_read_at_once() -> None:
    # Before: source, then destination, then the bucket, each waiting for the previous answer.
    met = threading.Barrier(3)
    source, destination = Cluster(met, "7.17.29"), Cluster(met, "8.19.21")
    listed: list[bool] = []

    def bucket() -> Any:
        try:
            met.wait(timeout=5)
            listed.append(True)
        except threading.BrokenBarrierError:
            listed.append(False)
        return SimpleNamespace(list=lambda prefix: iter(()))

    spec = SimpleNamespace(
        repository=SimpleNamespace(type="fs"),
        snapshot=SimpleNamespace(partial=False),
        replication=None,
        storage_spec=lambda: SimpleNamespace(location="oss://bucket/base"),
    )
    ctx = SimpleNamespace(
        spec=spec,
        source=source,
        destination=destination,
        plan=SimpleNamespace(moves=[]),
        storage=bucket,
        replica_factory=None,
        requests=RequestTap(),
    )
    preflight = Preflight("preflight", {}, ctx)  # type: ignore[arg-type]
    with sends_only_listed(preflight):
        observation = preflight.observe()
    assert observation.done and observation.summary == "source 7.17.29, destination 8.19.21"
    assert source.at_once == destination.at_once == listed == [True]
