"""Dry-run rule 5 (migrator/checks/capacity.py) on synthetic facts: shard limit, disk watermark, allocation filters."""

from __future__ import annotations

from dataclasses import replace

from migrator.checks.capacity import capacity, headroom
from migrator.discovery import ClusterFacts
from migrator.planner import build_plan
from tests.checks.facts import GB, NODE, WHEN, facts, fields, index, spec


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
    one = facts([index("orders", primary_bytes=41 * GB)])
    two = replace(one, destination=replace(one.destination, data_nodes=[NODE, NODE]))
    refused_shard = build_plan(spec('snapshot: {indices: ["orders"]}'), two, WHEN)  # 80 GB room, but 40 GB per node
    assert "no data node has more than 40.0 GB" in refused_shard.problems[0].message
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


def test_replicas_the_destination_has_no_nodes_for_are_a_warning():
    one_node = facts([index("orders")])
    yellow = build_plan(spec('snapshot: {indices: ["orders"]}\nfinish: {replicas: 1}'), one_node, WHEN)
    assert yellow.problems == [] and any("need 2 data nodes but the destination has 1" in w for w in yellow.warnings)
    two = replace(one_node, destination=replace(one_node.destination, data_nodes=[NODE, NODE]))
    served = build_plan(spec('snapshot: {indices: ["orders"]}\nfinish: {replicas: 1}'), two, WHEN)
    assert not any("data nodes but the destination has" in w for w in served.warnings)


def test_rule5_names_only_the_allocation_filters_no_node_satisfies():
    # Seen on the sandbox (7.17 -> 8): the refusal listed index.routing.allocation.include._tier_preference
    # (satisfied by every data node) beside the require._name no node has, and the fix said to drop them all.
    pinned = index(
        "orders",
        settings={
            "index.routing.allocation.include._tier_preference": "data_content",
            "index.routing.allocation.require._name": "no-such-node",
            "index.number_of_replicas": "0",
        },
    )
    refused = build_plan(spec('snapshot: {indices: ["orders"]}'), facts([pinned]), WHEN)
    assert fields(refused) == ["restore.ignore_index_settings"]
    message = refused.problems[0].message
    assert "index.routing.allocation.require._name: no-such-node" in message and "_tier_preference" not in message


def test_rule5_the_destinations_own_allocation_settings():
    # Seen on the sandbox (6.8 -> 7.10): with cluster.routing.allocation.enable none, or a cluster filter
    # excluding the only data node, the dry run passed and every restored shard failed or stayed unassigned.
    plan = spec('snapshot: {indices: ["orders"]}')
    with_replicas = spec('snapshot: {indices: ["orders"]}\nfinish: {replicas: 1}')
    none = build_plan(plan, facts([index("orders")], allocation_enable="none"), WHEN)
    assert fields(none) == ["destination"] and "cluster.routing.allocation.enable is none" in none.problems[0].message
    assert '"cluster.routing.allocation.enable": null' in none.problems[0].fix
    primaries = facts([index("orders")], allocation_enable="primaries")
    assert build_plan(plan, primaries, WHEN).problems == []  # a restored primary is allocated
    assert fields(build_plan(with_replicas, primaries, WHEN)) == ["destination"]  # its replica is not
    excluded = facts([index("orders")], allocation_filters={"exclude._name": "d0"})
    refused = build_plan(plan, excluded, WHEN)
    assert fields(refused) == ["destination"]
    assert "cluster.routing.allocation.exclude._name: d0" in refused.problems[0].message
    assert build_plan(plan, facts([index("orders")], allocation_filters={"exclude._name": "d9"}), WHEN).problems == []
    # the index's own filters and the cluster's apply together: zone a is the only node's, and it is excluded
    zoned = [index("orders", settings={"index.routing.allocation.require.zone": "a"})]
    assert fields(build_plan(plan, facts(zoned, allocation_filters={"exclude.zone": "a"}), WHEN)) == ["destination"]


def test_rule5_a_resumed_plan_does_not_count_the_targets_it_restored_already():
    # Seen on the sandbox (6.8 -> 7.10): kill -9 with 80 of 120 indices restored, then `resume --replan` (a new
    # restore.batch_indices) was refused: "this plan adds 120 shards but the destination has 948/1000", the 80
    # restored targets counted twice (in the shards there and as shards to add).
    restored = [index(f"logs-{n}", primary_shards=1) for n in range(3)]
    mine = [index(f"logs-{n}", primary_shards=1) for n in range(2)]  # restored by this migration (same names)
    near = facts(restored, mine, shards=998)
    plan = spec('snapshot: {indices: ["logs-*"]}\nrestore: {index_settings: {index.number_of_replicas: 0}}')
    owned = frozenset(i.name for i in mine)
    assert build_plan(plan, near, WHEN, owned_targets=owned).problems == []  # one shard to add: 999 of 1000
    assert capacity(plan, near, build_plan(plan, near, WHEN, owned_targets=owned).moves)["shards_added"] == 1
    full = facts(restored, mine, shards=1000)
    assert fields(build_plan(plan, full, WHEN, owned_targets=owned)) == ["destination"]
    replicas = spec('snapshot: {indices: ["logs-*"]}\nfinish: {replicas: 1}')  # restored with 0, finish adds 1 each
    assert capacity(replicas, near, build_plan(replicas, near, WHEN, owned_targets=owned).moves)["shards_added"] == 4
