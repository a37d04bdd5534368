"""Preflight's plugin check: a node without the repository type's plugin is named, with where to get it."""

from __future__ import annotations

from migrator.steps.preflight import missing_plugin

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
