"""`finish.aliases` (migrator.aliases): the actions that move an alias (removed from every other index in
the same request), and the plan problem of an alias whose sources are all left out."""

from __future__ import annotations

from datetime import UTC, datetime

from migrator.aliases import alias_actions, alias_problems, wanted_aliases
from migrator.discovery import ClusterFacts, Facts, IndexFacts
from migrator.planner import IndexMove, build_plan
from migrator.spec import parse_plan

PLAN = """
name: unit
source: {url: "http://127.0.0.1:9200"}
destination: {url: "http://127.0.0.1:9201"}
repository: {name: repo, type: fs, settings: {location: /tmp/repo}}
storage: {kind: local, path: /tmp/repo}
snapshot: {indices: ["orders-*"], exclude: [orders-old]}
restore: {rename_pattern: "(.+)", rename_replacement: "new-$1"}
"""


def test_an_alias_is_moved_off_every_other_index_in_the_same_request():
    wanted = {"orders-read": {"new-orders-2026"}, "orders-all": {"new-orders-2026", "new-orders-2025"}}
    current = {"orders-read": {"orders-v1", "new-orders-2026"}, "orders-all": set()}
    assert alias_actions(wanted, current) == [
        {"add": {"index": "new-orders-2025", "alias": "orders-all"}},
        {"add": {"index": "new-orders-2026", "alias": "orders-all"}},
        {"remove": {"index": "orders-v1", "alias": "orders-read"}},
    ]
    done = {"orders-read": ["new-orders-2026"], "orders-all": ["new-orders-2025", "new-orders-2026"]}
    assert alias_actions(wanted, done) == []


def test_the_wanted_indices_are_the_targets_of_the_migrated_sources():
    spec = parse_plan(PLAN + "finish: {aliases: {orders-read: [orders-2026, orders-old]}}")
    moves = [IndexMove("orders-2026", "new-orders-2026", 1, 1, 1)]
    assert wanted_aliases(spec, moves) == {"orders-read": {"new-orders-2026"}}


def test_an_alias_of_left_out_sources_only_is_a_problem_and_a_partly_left_out_one_a_warning():
    spec = parse_plan(
        PLAN + "finish: {aliases: {orders-old-read: [orders-old], orders-all: [orders-2026, orders-old]}}"
    )
    moves = [IndexMove("orders-2026", "new-orders-2026", 1, 1, 1)]
    problems, warnings = alias_problems(spec, moves, {"orders-old": "excluded by snapshot.exclude"}, {})
    assert [(p.field, p.message) for p in problems] == [
        ("finish.aliases.orders-old-read", "points at no migrated index (orders-old: excluded by snapshot.exclude)")
    ]
    assert "remove the alias from finish.aliases" in problems[0].fix
    assert warnings == [
        "finish.aliases.orders-all: left out of the migration, so not under the alias: "
        "orders-old: excluded by snapshot.exclude"
    ]


def test_the_planner_refuses_an_alias_whose_sources_are_all_excluded():
    spec = parse_plan(PLAN + "finish: {aliases: {orders-old-read: [orders-old]}}")
    indices = {n: IndexFacts(n, "open", "green", 1, 10, 10, 1) for n in ("orders-2026", "orders-old")}
    facts = Facts(
        ClusterFacts("http://s", "7.17.29", "green", indices=indices),
        ClusterFacts("http://d", "8.19.21", "green", free_disk_bytes=10**9),
    )
    plan = build_plan(spec, facts, datetime(2026, 11, 30, tzinfo=UTC))
    assert [p.field for p in plan.problems] == ["finish.aliases.orders-old-read"]


def test_an_alias_on_a_source_whose_blocks_refuse_it_is_a_problem():
    spec = parse_plan(PLAN + "finish: {aliases: {orders-read: [orders-2026]}}")
    moves = [IndexMove("orders-2026", "new-orders-2026", 1, 1, 1)]
    problems, _ = alias_problems(spec, moves, {}, {"orders-2026": {"index.blocks.read_only": "true"}})
    assert [p.field for p in problems] == ["finish.aliases.orders-read"]
    assert "index.blocks.read_only" in problems[0].message and "lift the block" in problems[0].fix
    assert alias_problems(spec, moves, {}, {"orders-2026": {"index.blocks.write": "true"}}) == ([], [])
