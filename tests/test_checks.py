"""The dry run's checks (migrator/checks.py), pure: each rule on synthetic facts, one case refused and
its corrected plan accepted."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from migrator.checks import (
    capacity,
    created_version,
    headroom,
    invalid_index_name,
)
from migrator.discovery import ClusterFacts, Facts, IndexFacts, NodeFacts
from migrator.planner import build_plan
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


def test_rule1_target_names_elasticsearch_refuses():
    for bad in ("Mig-x", "_x", "-x", "+x", "a b", "a:b", "a#b", "a,b", "a\\b", "a*b", ".", "..", "", "é" * 128):
        assert invalid_index_name(bad), bad
    assert invalid_index_name("v8-orders.2026") is None
    refused = build_plan(
        spec('snapshot: {indices: ["orders"]}\nrestore: {rename_pattern: "(.+)", rename_replacement: "Mig-$1"}'),
        facts([index("orders")]),
        WHEN,
    )
    assert fields(refused) == ["restore.rename_replacement"]
    assert "'Mig-orders'" in refused.problems[0].message and "must be lowercase" in refused.problems[0].message
    fixed = build_plan(
        spec('snapshot: {indices: ["orders"]}\nrestore: {rename_pattern: "(.+)", rename_replacement: "mig-$1"}'),
        facts([index("orders")]),
        WHEN,
    )
    assert fixed.problems == []


def test_rule2_clashes_with_destination_aliases_data_streams_and_the_plans_own_names():
    source = [index("orders", aliases=["shop"]), index("logs")]
    destination = [index("existing", aliases=["orders-alias"]), index("shop")]
    by_alias = build_plan(
        spec('snapshot: {indices: ["orders"]}\nrestore: {rename_pattern: "(.+)", rename_replacement: "$1-alias"}'),
        facts(source, destination),
        WHEN,
    )
    assert fields(by_alias) == ["restore.rename_replacement"] and "an alias" in by_alias.problems[0].message
    by_stream = build_plan(spec('snapshot: {indices: ["logs"]}'), facts(source, [], data_streams=["logs"]), WHEN)
    assert "a data stream" in by_stream.problems[0].message
    restored_alias = build_plan(
        spec('snapshot: {indices: ["orders"]}\nrestore: {include_aliases: true}'), facts(source, destination), WHEN
    )
    assert fields(restored_alias) == ["restore.include_aliases"]
    alias_on_target = build_plan(
        spec('snapshot: {indices: ["orders", "logs"]}\nfinish: {aliases: {logs: [orders]}}'),
        facts(source, []),
        WHEN,
    )
    assert fields(alias_on_target) == ["finish.aliases.logs"]
    fixed = build_plan(
        spec('snapshot: {indices: ["orders", "logs"]}\nfinish: {aliases: {all-logs: [orders]}}'),
        facts(source, destination),
        WHEN,
    )
    assert fixed.problems == []


def test_rule3_an_index_created_two_majors_before_the_destination_is_refused_by_name():
    assert created_version("6082399") == (6, "6.8.23")
    assert created_version("8537000")[0] == 8 and created_version("") is None
    old = [index("legacy", version_created="6082399"), index("orders")]
    refused = build_plan(spec('snapshot: {indices: ["legacy", "orders"]}'), facts(old), WHEN)
    assert fields(refused) == ["snapshot.indices"]
    assert "'legacy' was created by Elasticsearch 6.8.23" in refused.problems[0].message
    assert "reindex" in refused.problems[0].fix
    fixed = build_plan(spec('snapshot: {indices: ["legacy", "orders"], exclude: ["legacy"]}'), facts(old), WHEN)
    assert fixed.problems == [] and [m.source for m in fixed.moves] == ["orders"]


def test_rule4_closed_indices_are_refused_by_default_named_with_their_size_skipped_or_restored_closed():
    source = [index("orders"), index("archive", status="close", docs=5, primary_bytes=15895)]
    refused = build_plan(spec('snapshot: {indices: ["orders", "archive"]}'), facts(source), WHEN)
    assert fields(refused) == ["snapshot.closed_indices"]
    assert "'archive' is closed on the source (5 documents, 15.5 KB)" in refused.problems[0].message
    skipped = build_plan(spec('snapshot: {indices: ["orders", "archive"], closed_indices: skip}'), facts(source), WHEN)
    assert skipped.problems == [] and [m.source for m in skipped.moves] == ["orders"]
    assert "closed on the source" in skipped.skipped["archive"]
    restored = build_plan(
        spec('snapshot: {indices: ["orders", "archive"], closed_indices: restore_closed}'), facts(source), WHEN
    )
    assert restored.problems == [] and any("'archive' is closed" in w for w in restored.warnings)
    assert list(restored.graph.successors("validate[archive]")) == ["close[archive]"]
    assert restored.graph.nodes["validate[archive]"]["params"]["closed"] is True
    assert "closed" not in restored.graph.nodes["validate[orders]"]["params"]
    with_cutover = build_plan(
        spec('snapshot: {indices: ["archive"], closed_indices: restore_closed}\ncutover: {enabled: true}'),
        facts(source),
        WHEN,
    )
    assert fields(with_cutover) == ["snapshot.closed_indices"]


def test_rule5_shard_limit_disk_watermark_and_allocation_filters():
    node = NODE
    assert headroom(node, ClusterFacts("u", "8.19.21", "green", high_watermark="90%")) == 40 * GB
    assert headroom(node, ClusterFacts("u", "8.19.21", "green", high_watermark="60gb")) == 0
    assert headroom(node, ClusterFacts("u", "8.19.21", "green", disk_threshold_enabled=False)) == 50 * GB
    many = [index("orders", primary_shards=5)]
    full = facts(many, [], shards=996)
    refused = build_plan(spec('snapshot: {indices: ["orders"]}'), full, WHEN)
    assert fields(refused) == ["destination"] and "cluster.max_shards_per_node" in refused.problems[0].message
    assert capacity(refused.spec, full, refused.moves)["shards_added"] == 5  # the default restores 0 replicas
    with_replicas = build_plan(
        spec('snapshot: {indices: ["orders"]}\nfinish: {replicas: 1}'), facts(many, [], shards=991), WHEN
    )
    assert fields(with_replicas) == ["destination"]  # 10 copies once finish adds the replica
    assert build_plan(spec('snapshot: {indices: ["orders"]}'), facts(many, [], shards=995), WHEN).problems == []
    big = [index("orders", primary_bytes=41 * GB)]
    assert (
        "below the high disk watermark"
        in build_plan(spec('snapshot: {indices: ["orders"]}'), facts(big), WHEN).problems[0].message
    )
    pinned = [index("orders", settings={"index.routing.allocation.require.zone": "b", "index.number_of_replicas": "0"})]
    refused = build_plan(spec('snapshot: {indices: ["orders"]}'), facts(pinned), WHEN)
    assert fields(refused) == ["restore.ignore_index_settings"] and "require.zone: b" in refused.problems[0].message
    ignored = spec(
        'snapshot: {indices: ["orders"]}\nrestore: {ignore_index_settings: ["index.routing.allocation.require.*"]}'
    )
    assert build_plan(ignored, facts(pinned), WHEN).problems == []
    overridden = spec(
        'snapshot: {indices: ["orders"]}\nrestore: {index_settings: {index.routing.allocation.require.zone: "a"}}'
    )
    assert build_plan(overridden, facts(pinned), WHEN).problems == []
    tiers = [index("orders", settings={"index.routing.allocation.include._tier_preference": "data_content"})]
    assert build_plan(spec('snapshot: {indices: ["orders"]}'), facts(tiers), WHEN).problems == []
    limited = [index("orders", primary_shards=3, settings={"index.routing.allocation.total_shards_per_node": "2"})]
    assert fields(build_plan(spec('snapshot: {indices: ["orders"]}'), facts(limited), WHEN)) == [
        "restore.index_settings"
    ]


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
        facts([index("orders")]),
        WHEN,
    )
    assert fixed.problems == [] and fixed.warnings == []


def test_rule7_system_indices_are_refused_by_flag_or_by_the_known_patterns():
    source = [index(".tasks", system=True), index(".security-7"), index(".my-app"), index("orders")]
    refused = build_plan(
        spec('snapshot: {indices: [".tasks", ".security-7", ".my-app", "orders"]}'), facts(source), WHEN
    )
    assert fields(refused) == ["snapshot.indices", "snapshot.indices"]
    messages = " ".join(p.message for p in refused.problems)
    assert "'.tasks' is a system index" in messages and "'.security-7' is a system index" in messages
    assert "feature states" in messages and "'.my-app'" not in messages
    fixed = build_plan(spec('snapshot: {indices: [".my-app", "orders"]}'), facts(source), WHEN)
    assert fixed.problems == []
