"""The planner, pure: selection, renames, refusals, the DAG and its hash, from synthetic facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import networkx as nx
import pytest

from migrator.discovery import ClusterFacts, Facts, IndexFacts
from migrator.planner import SMALLEST_WAVE, WAVES_PER_BATCH, build_plan, validation_waves
from migrator.spec import PlanError, parse_plan, render_snapshot_name

WHEN = datetime(2026, 11, 26, 12, 30, 5, tzinfo=UTC)
BASE = """
name: unit
source: {url: "http://127.0.0.1:9200"}
destination: {url: "http://127.0.0.1:9201"}
repository: {name: repo, type: fs, settings: {location: /tmp/repo}}
storage: {kind: local, path: /tmp/repo}
"""


def spec(extra: str):
    return parse_plan(BASE + extra)


def facts(source: list[str], destination: list[str] = (), versions=("7.17.29", "8.19.21")) -> Facts:
    def cluster(names, version):
        return ClusterFacts(
            url="http://x",
            version=version,
            health="green",
            free_disk_bytes=10**12,
            indices={n: IndexFacts(n, "open", "green", 10, 1000, 1000, 1) for n in names},
        )

    return Facts(cluster(source, versions[0]), cluster(destination, versions[1]))


def test_selection_wildcards_exclusions_and_dot_indices():
    plan = build_plan(
        spec('snapshot: {indices: ["logs-*", "orders", "*", ".kept"], exclude: ["logs-debug"]}'),
        facts(["logs-a", "logs-b", "logs-debug", "orders", ".hidden", ".kept", "other"]),
        WHEN,
    )
    assert [m.source for m in plan.moves] == [".kept", "logs-a", "logs-b", "orders", "other"]
    assert plan.skipped["logs-debug"] == "excluded by snapshot.exclude"
    assert "list it by name" in plan.skipped[".hidden"]
    assert plan.problems == []


def test_a_pattern_matching_nothing_is_a_problem_naming_its_position():
    plan = build_plan(spec('snapshot: {indices: ["orders", "nope-*"]}'), facts(["orders"]), WHEN)
    assert [p.field for p in plan.problems] == ["snapshot.indices[1]"]


def test_renames_follow_java_semantics_and_collisions_are_refused():
    ok = build_plan(
        spec('snapshot: {indices: ["logs-*"]}\nrestore: {rename_pattern: "logs-(.+)", rename_replacement: "v8-$1"}'),
        facts(["logs-a", "logs-b"]),
        WHEN,
    )
    assert [(m.source, m.target) for m in ok.moves] == [("logs-a", "v8-a"), ("logs-b", "v8-b")]
    clash = build_plan(
        spec('snapshot: {indices: ["logs-*"]}\nrestore: {rename_pattern: "logs-.*", rename_replacement: "same"}'),
        facts(["logs-a", "logs-b"]),
        WHEN,
    )
    assert [p.field for p in clash.problems] == ["restore.rename_pattern"]
    assert "'same'" in clash.problems[0].message


def test_an_existing_target_is_refused_unless_skip_or_ours():
    plan = build_plan(spec('snapshot: {indices: ["orders"]}'), facts(["orders"], ["orders"]), WHEN)
    assert [p.field for p in plan.problems] == ["restore.if_exists"]
    skip = build_plan(
        spec('snapshot: {indices: ["orders"]}\nrestore: {if_exists: skip}'), facts(["orders"], ["orders"]), WHEN
    )
    assert skip.moves == [] and "already exists" in skip.skipped["orders"]
    ours = build_plan(
        spec('snapshot: {indices: ["orders"]}'),
        facts(["orders"], ["orders"]),
        WHEN,
        owned_targets=frozenset({"orders"}),
    )
    assert ours.problems == [] and [m.target for m in ours.moves] == ["orders"]


def test_version_rule_is_a_plan_problem():
    plan = build_plan(spec('snapshot: {indices: ["orders"]}'), facts(["orders"], versions=("7.17.29", "9.5.4")), WHEN)
    assert any("'skipping-a-major'" in p.message and "way out" in p.message for p in plan.problems)


def test_dag_has_stable_ids_and_order():
    plan = build_plan(spec('snapshot: {indices: ["a", "b"]}\nfinish: {replicas: 1}'), facts(["a", "b"]), WHEN)
    graph = plan.graph
    assert nx.is_directed_acyclic_graph(graph)
    assert set(graph.nodes) == {
        "preflight",
        "repository.source",
        "snapshot.create",
        "snapshot.wait",
        "storage.verify",
        "repository.destination",
        "restore.batch[1]",
        "restore[a]",
        "restore[b]",
        "recovery[a]",
        "recovery[b]",
        "validate[a]",
        "validate[b]",
        "finish",
    }
    assert nx.has_path(graph, "storage.verify", "restore[a]")
    assert not nx.has_path(graph, "restore[a]", "restore[b]")
    assert set(graph.predecessors("finish")) == {"validate[a]", "validate[b]"}


def test_plan_hash_is_stable_and_changes_with_the_plan():
    first = build_plan(spec('snapshot: {indices: ["a"]}'), facts(["a"]), WHEN)
    again = build_plan(spec('snapshot: {indices: ["a"]}'), facts(["a"]), datetime.now(UTC))
    changed = build_plan(spec('snapshot: {indices: ["a"]}\nrestore: {include_aliases: true}'), facts(["a"]), WHEN)
    assert first.plan_hash == again.plan_hash
    assert first.plan_hash != changed.plan_hash


def test_snapshot_name_template():
    assert render_snapshot_name("{name}-{date:%Y.%m.%d-%H%M%S}", "Demo", WHEN) == "demo-2026.11.26-123005"
    assert render_snapshot_name("snap-{date}", "x", WHEN) == "snap-2026.11.26"


def test_a_writable_registration_of_the_same_location_on_the_destination_is_refused():
    the_spec = spec('snapshot: {indices: ["a"]}')
    base = facts(["a"])

    def with_repositories(repositories):
        destination = ClusterFacts(
            url="http://x", version="8.19.21", health="green", free_disk_bytes=10**12, repositories=repositories
        )
        return Facts(base.source, destination)

    writable = {"theirs": {"type": "fs", "settings": {"location": "/tmp/repo/"}}}
    plan = build_plan(the_spec, with_repositories(writable), WHEN)
    assert [p.field for p in plan.problems] == ["repository"] and "'theirs'" in plan.problems[0].message
    read_only = {"theirs": {"type": "fs", "settings": {"location": "/tmp/repo", "readonly": "true"}}}
    assert build_plan(the_spec, with_repositories(read_only), WHEN).problems == []
    elsewhere = {"theirs": {"type": "fs", "settings": {"location": "/tmp/other"}}}
    assert build_plan(the_spec, with_repositories(elsewhere), WHEN).problems == []


def with_registrations(base: Facts, source: dict[str, dict], destination: dict[str, dict]) -> Facts:
    return Facts(
        ClusterFacts(**{**vars(base.source), "repositories": source}),
        ClusterFacts(**{**vars(base.destination), "repositories": destination}),
    )


def test_a_registration_of_the_repository_name_with_other_settings_is_refused_unless_this_migration_made_it():
    """Before: no problem, and the repository steps re-pointed the user's registration with POST."""
    the_spec = spec('snapshot: {indices: ["a"]}')
    nightly = {"type": "fs", "settings": {"location": "/backups/nightly", "compress": "true"}}
    found = with_registrations(facts(["a"]), {"repo": nightly}, {})
    [problem] = build_plan(the_spec, found, WHEN).problems
    assert problem.field == "repository.name"
    assert "the source already has repository 'repo' (fs, at fs//backups/nightly)" in problem.message
    assert "compress: true -> not set; location: /backups/nightly -> /tmp/repo" in problem.message
    assert "choose another repository.name" in problem.fix and "DELETE _snapshot/repo" in problem.fix
    assert build_plan(the_spec, found, WHEN, owned_repositories=frozenset({"source"})).problems == []

    read_only = {"type": "fs", "settings": {"location": "/tmp/repo", "readonly": "true"}}
    [problem] = build_plan(the_spec, with_registrations(facts(["a"]), {"repo": read_only}, {}), WHEN).problems
    assert "readonly: true -> not set" in problem.message  # the source must write its snapshot
    other_type = {"repo": {"type": "url", "settings": {"url": "file:/tmp/repo"}}}
    [problem] = build_plan(the_spec, with_registrations(facts(["a"]), {}, other_type), WHEN).problems
    assert "the destination already has repository 'repo'" in problem.message and "type: url -> fs" in problem.message


def test_a_registration_with_the_planned_settings_is_adopted():
    the_spec = spec('snapshot: {indices: ["a"]}')
    source = {"repo": {"type": "fs", "settings": {"location": "/tmp/repo", "readonly": "false"}}}
    destination = {"repo": {"type": "fs", "settings": {"location": "/tmp/repo", "readonly": "true"}}}
    assert build_plan(the_spec, with_registrations(facts(["a"]), source, destination), WHEN).problems == []


def with_snapshots(base: Facts, snapshots: dict[str, dict]) -> Facts:
    source = ClusterFacts(**{**vars(base.source), "snapshots": snapshots})
    return Facts(source, base.destination)


def test_a_snapshot_name_already_in_the_repository_is_refused_unless_this_migration_took_it():
    old = {"uuid": "u-old", "state": "SUCCESS", "start_time": "2026-11-01T00:00:00.000Z"}
    found = with_snapshots(facts(["orders"]), {"nightly-fixed": old})
    plan = build_plan(spec('snapshot: {indices: ["orders"], name: nightly-fixed}'), found, WHEN)
    assert [p.field for p in plan.problems] == ["snapshot.name"]
    assert "'nightly-fixed' already exists in repository 'repo'" in plan.problems[0].message
    assert "{date" in plan.problems[0].fix and "DELETE _snapshot/repo/nightly-fixed" in plan.problems[0].fix
    own = build_plan(
        spec('snapshot: {indices: ["orders"], name: nightly-fixed}'),
        found,
        WHEN,
        owned_snapshots={"nightly-fixed": "u-old"},
    )
    assert own.problems == []
    replaced = build_plan(
        spec('snapshot: {indices: ["orders"], name: nightly-fixed}'),
        found,
        WHEN,
        owned_snapshots={"nightly-fixed": "u-ours-deleted-since"},
    )
    assert [p.field for p in replaced.problems] == ["snapshot.name"]


def test_the_cutover_snapshot_name_is_checked_too():
    found = with_snapshots(facts(["orders"]), {"nightly-fixed-cutover": {"uuid": "u", "state": "SUCCESS"}})
    plan = build_plan(
        spec('snapshot: {indices: ["orders"], name: nightly-fixed}\ncutover: {enabled: true}'), found, WHEN
    )
    assert [p.field for p in plan.problems] == ["snapshot.name"]
    assert "nightly-fixed-cutover" in plan.problems[0].message


def test_a_run_begun_before_uuids_were_recorded_owns_its_snapshot_by_name():
    found = with_snapshots(facts(["orders"]), {"nightly-fixed": {"uuid": "u", "state": "SUCCESS"}})
    plan = build_plan(
        spec('snapshot: {indices: ["orders"], name: nightly-fixed}'),
        found,
        WHEN,
        owned_snapshots={"nightly-fixed": None},
    )
    assert plan.problems == []


def with_templates(base: Facts, source_legacy: dict, destination_legacy: dict | None = None) -> Facts:
    def metadata(legacy):
        return {"templates": {"legacy": legacy, "composable": {}, "component": {}}, "pipelines": [], "policies": []}

    source = ClusterFacts(**{**vars(base.source), "metadata": metadata(source_legacy)})
    destination = ClusterFacts(**{**vars(base.destination), "metadata": metadata(destination_legacy or {})})
    return Facts(source, destination)


def test_templates_step_comes_after_preflight_and_before_every_restore():
    templates = {"logs": {"index_patterns": ["logs-*"], "order": 0}, "misc": {"index_patterns": ["misc-*"]}}
    plan = build_plan(spec('snapshot: {indices: ["logs-*"]}'), with_templates(facts(["logs-a"]), templates), WHEN)
    assert plan.problems == []
    node = plan.graph.nodes["metadata.templates"]
    assert [(t["kind"], t["name"]) for t in node["params"]["templates"]] == [("legacy", "logs")]
    assert set(plan.graph.predecessors("metadata.templates")) == {"preflight"}
    assert nx.has_path(plan.graph, "metadata.templates", "restore[logs-a]")
    none = build_plan(
        spec('snapshot: {indices: ["logs-*"]}\nmetadata: {templates: none}'),
        with_templates(facts(["logs-a"]), templates),
        WHEN,
    )
    assert "metadata.templates" not in none.graph


def test_a_conflicting_destination_template_refuses_the_plan():
    plan = build_plan(
        spec('snapshot: {indices: ["logs-*"]}'),
        with_templates(
            facts(["logs-a"]), {"logs": {"index_patterns": ["logs-*"]}}, {"logs": {"index_patterns": ["x"]}}
        ),
        WHEN,
    )
    assert [p.field for p in plan.problems] == ["metadata.if_exists"]


def test_restores_are_batched_by_count_and_by_bytes_and_each_index_keeps_its_steps():
    names = [f"logs-{number:03d}" for number in range(7)]
    plan = build_plan(spec('snapshot: {indices: ["logs-*"]}\nrestore: {batch_indices: 3}'), facts(names), WHEN)
    graph = plan.graph
    batches = sorted(node for node, kind in graph.nodes(data="kind") if kind == "restore.batch")
    assert batches == ["restore.batch[1]", "restore.batch[2]", "restore.batch[3]"]
    sizes = [len(graph.nodes[batch]["params"]["members"]) for batch in batches]
    assert sizes == [3, 3, 1]
    for name in names:  # restore (observed and checkpointed per index), recovery, validate: after its batch
        assert nx.has_path(graph, "repository.destination", f"restore[{name}]")
        [batch] = graph.predecessors(f"restore[{name}]")
        assert graph.nodes[batch]["kind"] == "restore.batch"
        assert graph.nodes[f"validate[{name}]"]["lane"] == graph.nodes[batch]["lane"]
    # each index has 1000 primary bytes (see facts): 2500 bytes allow two per batch
    by_bytes = build_plan(spec('snapshot: {indices: ["logs-*"]}\nrestore: {batch_size: "2500b"}'), facts(names), WHEN)
    members = [by_bytes.graph.nodes[n]["params"]["members"] for n in sorted(by_bytes.graph) if "batch" in n]
    assert [len(group) for group in members] == [2, 2, 2, 1]


def test_a_batch_s_indices_are_validated_in_waves_each_after_the_recovery_of_its_own_wave_only():
    # Pipelining (issue 17): a wave's validation waits for the recoveries of its wave (read together), not of its
    # batch: the wave's first validation waits for all of them, the others follow it (two edges per index).
    names = [f"logs-{number:03d}" for number in range(25)]
    graph = build_plan(spec('snapshot: {indices: ["logs-*"]}'), facts(names), WHEN).graph
    [members] = batch_members_of(graph)
    waves = [members[start : start + SMALLEST_WAVE] for start in (0, 10, 20)]
    assert [len(wave) for wave in waves] == [10, 10, 5] and validation_waves(members) == waves
    for first, *others in waves:
        assert set(graph.predecessors(f"validate[{first}]")) == {f"recovery[{name}]" for name in [first, *others]}
        for name in others:
            assert set(graph.predecessors(f"validate[{name}]")) == {f"recovery[{name}]", f"validate[{first}]"}
    assert not nx.has_path(graph, f"recovery[{waves[1][0]}]", f"validate[{waves[0][0]}]")
    # a large batch has WAVES_PER_BATCH waves, so its joined reads stay few
    assert [len(wave) for wave in validation_waves(list(range(250)))] == [25] * WAVES_PER_BATCH


def batch_members_of(graph: nx.DiGraph) -> list[list[str]]:
    batches = sorted(n for n, kind in graph.nodes(data="kind") if kind == "restore.batch")
    return [[member["source"] for member in graph.nodes[batch]["params"]["members"]] for batch in batches]


def test_by_default_500_small_indices_go_in_two_restore_requests_held_at_once():
    # Measured (docs/performance.md, 2026-11-30): with batches of 100 and `restore.parallel: 2`, 500 indices took
    # 48.9-55.7 s on a loaded machine against 23.5-34.2 s with batches of 250: a batch's next request was sent when
    # it answered, and only the one batch behind it (100 shards, about 3 s of recoveries) was queued meanwhile.
    names = [f"logs-{number:03d}" for number in range(500)]
    plan = build_plan(spec('snapshot: {indices: ["logs-*"]}'), facts(names), WHEN)
    assert [len(members) for members in batch_members(plan)] == [250, 250]
    assert plan.spec.restore.parallel == 2  # both requests held at once, as the minimal script's one request
    many = build_plan(spec('snapshot: {indices: ["logs-*"]}'), facts([f"logs-{n:04d}" for n in range(2000)]), WHEN)
    assert [len(members) for members in batch_members(many)] == [250] * 8


def batch_members(plan) -> list[list[str]]:
    graph = plan.graph
    batches = sorted((n for n, kind in graph.nodes(data="kind") if kind == "restore.batch"), key=lambda n: len(n))
    return [[member["source"] for member in graph.nodes[batch]["params"]["members"]] for batch in sorted(batches)]


def test_batches_follow_the_order_the_destination_recovers_in_newest_first():
    # Elasticsearch recovers the shards of every pending restore in one order (PriorityComparator): higher
    # index.priority, then newer index.creation_date, then the name in reverse. Batches cut in name order put
    # the oldest indices first: that batch's request answered last and held a restore slot the whole run.
    names = [f"logs-2026.11.{day:02d}" for day in range(1, 8)]
    found = facts(names)
    for day, name in enumerate(names, 1):
        created = replace(found.source.indices[name], creation_date=1_764_547_200_000 + day * 86_400_000)
        found.source.indices[name] = replace(created, priority=10) if day == 2 else created  # first, whatever its age
    plan = build_plan(spec('snapshot: {indices: ["logs-*"]}\nrestore: {batch_indices: 3}'), found, WHEN)
    assert batch_members(plan) == [
        ["logs-2026.11.02", "logs-2026.11.07", "logs-2026.11.06"],
        ["logs-2026.11.05", "logs-2026.11.04", "logs-2026.11.03"],
        ["logs-2026.11.01"],
    ]
    assert [m.source for m in plan.moves] == names  # the moves themselves (and the plan's listing) keep name order
    # Indices created in the same millisecond: the name decides, in reverse, as Elasticsearch does.
    same_time = build_plan(spec('snapshot: {indices: ["logs-*"]}\nrestore: {batch_indices: 4}'), facts(names), WHEN)
    assert batch_members(same_time)[0] == names[::-1][:4]
    # A priority the restore sets applies to every index alike: the creation date decides again.
    set_on_restore = spec(
        'snapshot: {indices: ["logs-*"]}\nrestore: {batch_indices: 3, index_settings: {"index.priority": 5}}'
    )
    assert batch_members(build_plan(set_on_restore, found, WHEN))[0] == names[::-1][:3]


def test_a_batch_size_of_nothing_is_refused_naming_the_field():
    with pytest.raises(PlanError) as error:
        spec('snapshot: {indices: ["a"]}\nrestore: {batch_size: "0"}')
    assert "restore.batch_size" in str(error.value) and "20gb" in str(error.value)
