"""Dry-run rules 1 and 2 (migrator/checks/names.py) on synthetic facts: refused, then the corrected plan accepted."""

from __future__ import annotations

from migrator.checks.names import invalid_index_name
from migrator.planner import build_plan
from tests.checks.facts import WHEN, facts, fields, index, spec


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


def test_rule2_a_restored_alias_that_already_serves_other_destination_indices_is_refused():
    # Seen on the sandbox (7.17 -> 8): 'serving' pointed at the destination's live index; the restore with
    # include_aliases added the restored, not yet validated index to it, and the dry run said nothing.
    source = [index("orders", aliases=["serving"])]
    live = [index("live-orders", aliases=["serving"])]
    refused = build_plan(
        spec('snapshot: {indices: ["orders"]}\nrestore: {include_aliases: true}'), facts(source, live), WHEN
    )
    assert fields(refused) == ["restore.include_aliases"]
    message = refused.problems[0].message
    assert "'serving'" in message and "live-orders" in message, message
    assert "finish.aliases" in refused.problems[0].fix
    # The plan's own target already in the alias (a repeated run that skips it) is no clash.
    again = build_plan(
        spec(
            'snapshot: {indices: ["orders"]}\nrestore: {include_aliases: true, if_exists: skip, '
            'rename_pattern: "(.+)", rename_replacement: "moved-$1"}'
        ),
        facts(source, [index("moved-orders", aliases=["serving"])]),
        WHEN,
    )
    assert again.problems == []
    fixed = build_plan(spec('snapshot: {indices: ["orders"]}'), facts(source, live), WHEN)
    assert fixed.problems == []
