"""Dry-run rule 6 (migrator/checks/settings.py) on synthetic facts: restore settings refused, unknown names warned."""

from __future__ import annotations

from migrator.planner import build_plan
from tests.checks.facts import WHEN, facts, fields, index, spec


def test_rule6_restore_settings_elasticsearch_refuses_and_unknown_names():
    refused = build_plan(
        spec(
            'snapshot: {indices: ["orders"]}\nrestore: {index_settings: {number_of_shards: 2, '
            'index.refesh_interval: "5s"}, ignore_index_settings: ["index.number_of_replicas"]}'
        ),
        facts([index("orders")]),
        WHEN,
    )
    assert fields(refused) == ["restore.index_settings.number_of_shards", "restore.ignore_index_settings"]
    assert "cannot modify setting" in refused.problems[0].message
    assert [w for w in refused.warnings if "index.refesh_interval" in w and "archived" in w]
    fixed = build_plan(
        spec('snapshot: {indices: ["orders"]}\nrestore: {index_settings: {index.refresh_interval: "5s"}}'),
        facts([index("orders", settings={"index.number_of_replicas": "0"})]),  # one data node: no replica
        WHEN,
    )
    assert fixed.problems == [] and fixed.warnings == []
