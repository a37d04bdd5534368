"""Dry-run rules 3, 4 and 7 (migrator/checks/indices.py) on synthetic facts: refused, then the corrected
plan accepted."""

from __future__ import annotations

from dataclasses import replace

from migrator.checks.indices import created_version
from migrator.planner import build_plan
from tests.checks.facts import WHEN, facts, fields, index, spec


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


def test_rule4_restore_closed_is_refused_on_a_source_before_7_2():
    # Seen on 6.8.23: a closed index has no shard before 7.2; its snapshot answers 403 "index closed".
    source = [index("archive", status="close"), index("orders")]
    old = facts(source)
    old = replace(
        old, source=replace(old.source, version="6.8.23"), destination=replace(old.destination, version="7.10.2")
    )
    plan = spec('snapshot: {indices: ["orders", "archive"], closed_indices: restore_closed}')
    refused = build_plan(plan, old, WHEN)
    assert fields(refused) == ["snapshot.closed_indices"]
    assert "Elasticsearch 6.8.23 cannot snapshot a closed index" in refused.problems[0].message
    assert "POST <index>/_open" in refused.problems[0].fix
    assert build_plan(plan, facts(source), WHEN).problems == []  # a 7.17 source snapshots it
    default = build_plan(spec('snapshot: {indices: ["orders", "archive"]}'), old, WHEN).problems
    assert "it cannot be snapshotted" in default[0].message and "restore_closed" not in default[0].fix
