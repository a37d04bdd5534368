"""migrator.templates: which templates move, how they are transformed, and conflicts (canned facts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from migrator.discovery import ClusterFacts, Facts, IndexFacts
from migrator.migration.run import plan_changes
from migrator.planner import build_plan
from migrator.spec import MetadataSpec, parse_plan
from migrator.templates import normalised, plan_templates, template_changes

INDICES = ["logs-2026.11.01", "orders"]


def facts(legacy: dict | None = None, composable: dict | None = None, component: dict | None = None) -> dict:
    return {"templates": {"legacy": legacy or {}, "composable": composable or {}, "component": component or {}}}


def run(source: dict, destination: dict | None = None, versions=("7.17.29", "8.19.21"), **spec: Any):
    return plan_templates(MetadataSpec(**spec), source, destination or facts(), versions, INDICES)


def test_matching_selects_templates_of_migrated_indices_with_their_components_first() -> None:
    source = facts(
        legacy={"logs": {"order": 1, "index_patterns": ["logs-*"], "settings": {"index": {"number_of_shards": "2"}}}},
        composable={
            "orders": {"index_patterns": ["orders*"], "composed_of": ["shared"], "priority": 10},
            "metrics": {"index_patterns": ["metrics-*"]},
            "fleet": {"index_patterns": ["logs-*"], "_meta": {"managed": True}},
        },
        component={"shared": {"template": {"mappings": {"properties": {"id": {"type": "keyword"}}}}}},
    )
    plan = run(source)
    assert [(m.kind, m.name) for m in plan.moves] == [
        ("component", "shared"),
        ("composable", "orders"),
        ("legacy", "logs"),
    ]
    assert plan.moves[2].body == {"index_patterns": ["logs-*"], "order": 1, "settings": {"index.number_of_shards": "2"}}
    assert any("'fleet' left out" in w and "manages it" in w for w in plan.warnings)
    assert not plan.problems


def test_none_moves_nothing_and_an_unknown_listed_name_is_refused_naming_the_field() -> None:
    source = facts(legacy={"logs": {"index_patterns": ["logs-*"]}})
    assert run(source, templates="none").moves == []
    plan = run(source, templates=["logs", "nope-*"])
    assert [m.name for m in plan.moves] == ["logs"]
    assert [p.field for p in plan.problems] == ["metadata.templates[1]"]


def test_5x_template_field_and_one_mapping_type_become_7x_shapes_each_change_named() -> None:
    source = facts(
        legacy={
            "logs": {
                "template": "logs-*",
                "order": 0,
                "mappings": {"event": {"_all": {"enabled": False}, "properties": {"msg": {"type": "text"}}}},
            }
        }
    )
    plan = run(source, versions=("5.6.16", "6.8.23"))
    assert plan.moves[0].body["index_patterns"] == ["logs-*"]
    assert "5.x `template` -> `index_patterns`" in plan.moves[0].changes
    assert "event" in plan.moves[0].body["mappings"]  # 6.x still has one mapping type
    plan = run(source, versions=("6.8.23", "7.17.29"))
    assert plan.moves[0].body["mappings"] == {"properties": {"msg": {"type": "text"}}}
    assert any("mapping type 'event' removed" in w for w in plan.warnings)
    assert any("`_all` removed" in w for w in plan.warnings)


def test_several_mapping_types_are_refused_with_the_fix() -> None:
    source = facts(legacy={"logs": {"index_patterns": ["logs-*"], "mappings": {"a": {}, "b": {"properties": {}}}}})
    plan = run(source, versions=("6.8.23", "7.17.29"))
    assert plan.moves == []
    assert [p.field for p in plan.problems] == ["metadata.templates"]
    assert "2 mapping types (a, b)" in plan.problems[0].message and "merge" in plan.problems[0].fix


def test_settings_the_destination_refuses_are_dropped_with_a_warning() -> None:
    settings = {"index": {"mapper": {"dynamic": "false"}, "number_of_shards": "1"}}
    source = facts(legacy={"logs": {"index_patterns": ["logs-*"], "settings": settings}})
    plan = run(source)
    assert plan.moves[0].body["settings"] == {"index.number_of_shards": "1"}
    assert any("index.mapper.dynamic dropped" in w for w in plan.warnings)
    assert run(source, versions=("8.19.21", "9.5.4")).moves[0].body["settings"]["index.mapper.dynamic"] == "false"


def test_legacy_kept_legacy_or_converted_to_composable_when_asked() -> None:
    source = facts(legacy={"logs": {"index_patterns": ["logs-*"], "order": 3, "aliases": {"all-logs": {}}}})
    assert run(source).moves[0].kind == "legacy"
    move = run(source, legacy_as="composable").moves[0]
    assert (move.kind, move.path) == ("composable", "_index_template/logs")
    assert move.body == {"index_patterns": ["logs-*"], "template": {"aliases": {"all-logs": {}}}, "priority": 3}
    assert "order 3 -> priority 3" in move.changes[0]


def test_same_name_equal_after_normalising_is_skipped_different_is_refused_naming_both() -> None:
    ours = {"index_patterns": ["orders*"], "template": {"settings": {"number_of_shards": 1}}, "priority": 5}
    stored = {
        "index_patterns": ["orders*"],
        "template": {"settings": {"index": {"number_of_shards": "1"}}},
        "priority": 5,
        "created_date_millis": 1,
        "composed_of": [],
    }
    plan = run(facts(composable={"orders": ours}), facts(composable={"orders": stored}))
    assert plan.moves == [] and not plan.problems
    assert any("already on the destination with an equal body" in w for w in plan.warnings)

    other = {**stored, "priority": 7}
    plan = run(facts(composable={"orders": ours}), facts(composable={"orders": other}))
    assert [p.field for p in plan.problems] == ["metadata.if_exists"]
    message, fix = plan.problems[0].message, plan.problems[0].fix
    assert "differs in priority" in message and '"priority":5' in message and '"priority":7' in message
    assert "skip" in fix and "overwrite" in fix
    assert run(facts(composable={"orders": ours}), facts(composable={"orders": other}), if_exists="skip").moves == []
    replaced = run(facts(composable={"orders": ours}), facts(composable={"orders": other}), if_exists="overwrite")
    assert replaced.moves[0].replaces and not replaced.problems


def test_a_destination_template_that_would_win_is_a_warning() -> None:
    source = facts(composable={"orders": {"index_patterns": ["orders*"], "priority": 5}})
    destination = facts(composable={"catch-all": {"index_patterns": ["*"], "priority": 50}})
    plan = run(source, destination)
    assert any("'catch-all' with priority 50 > 5 would win" in w for w in plan.warnings)
    lower = facts(composable={"catch-all": {"index_patterns": ["*"], "priority": 1}})
    assert not any("would win" in w for w in run(source, lower).warnings)


def test_normalised_unwraps_the_doc_type_and_flattens_settings() -> None:
    stored = {"order": 0, "index_patterns": ["a*"], "settings": {"index": {"refresh_interval": "5s"}}, "aliases": {}}
    stored["mappings"] = {"_doc": {"properties": {}}}
    put = {"index_patterns": ["a*"], "order": 0, "settings": {"index.refresh_interval": "5s"}, "mappings": {}}
    put["mappings"] = {"properties": {}}
    assert normalised("legacy", stored) == normalised("legacy", put)


def test_lifecycle_settings_are_dropped_where_the_destination_has_no_ilm() -> None:
    settings = {"index.lifecycle.name": "hot-warm", "index.number_of_shards": "1"}
    source = facts(legacy={"logs": {"index_patterns": ["logs-*"], "settings": settings}})
    without = run(source, {**facts(), "policies": None})
    assert without.moves[0].body["settings"] == {"index.number_of_shards": "1"}
    assert any("index.lifecycle.name dropped" in w for w in without.warnings)
    assert run(source, {**facts(), "policies": []}).moves[0].body["settings"] == settings


def test_several_mapping_types_are_refused_for_a_6x_destination_too_and_kept_for_5x() -> None:
    source = facts(legacy={"logs": {"template": "logs-*", "mappings": {"a": {}, "b": {}}}})
    assert [p.field for p in run(source, versions=("5.6.16", "6.8.23")).problems] == ["metadata.templates"]
    assert run(source, versions=("5.6.16", "5.6.16")).moves[0].body["mappings"] == {"a": {}, "b": {}}


def test_a_composable_template_keeps_what_its_template_holds_beyond_settings_mappings_aliases() -> None:
    lifecycle = {"data_retention": "7d"}
    source = facts(composable={"orders": {"index_patterns": ["orders*"], "template": {"lifecycle": lifecycle}}})
    move = run(source, versions=("8.19.21", "9.5.4")).moves[0]
    assert move.body["template"] == {"lifecycle": lifecycle}


def test_template_changes_between_a_saved_plan_and_a_fresh_discovery_are_named() -> None:
    source = facts(legacy={"logs": {"index_patterns": ["logs-*"]}, "orders": {"index_patterns": ["orders"]}})
    before = [m.to_params() for m in run(source).moves]
    source["templates"]["legacy"]["logs"]["order"] = 4
    del source["templates"]["legacy"]["orders"]
    after = [m.to_params() for m in run(source).moves]
    assert template_changes(before, after) == [
        "_template/orders would no longer be put on the destination",
        "_template/logs would be put with another body (the source's template changed)",
    ]
    assert template_changes(before, before) == []


def test_a_saved_plan_is_refused_when_a_moved_template_changed_on_the_source() -> None:
    spec = parse_plan(
        "name: unit\nsource: {url: 'http://a:9200'}\ndestination: {url: 'http://b:9200'}\n"
        "repository: {type: fs, settings: {location: /srv/repo}}\nstorage: {kind: local, path: /srv/repo}\n"
        "snapshot: {indices: [logs-a]}\n"
    )

    def plan(order: int):
        index = {"logs-a": IndexFacts("logs-a", "open", "green", 1, 10, 10, 1)}
        source = ClusterFacts(
            "http://a",
            "7.17.29",
            "green",
            index,
            metadata=facts({"logs": {"index_patterns": ["logs-*"], "order": order}}),
        )
        destination = ClusterFacts("http://b", "8.19.21", "green", metadata=facts())
        return build_plan(spec, Facts(source, destination), datetime(2026, 11, 30, tzinfo=UTC))

    assert plan_changes(plan(1), plan(1)) == []
    assert plan_changes(plan(1), plan(2)) == [
        "_template/logs would be put with another body (the source's template changed)"
    ]


def test_index_mapper_dynamic_is_dropped_for_a_7x_destination_too() -> None:
    source = facts(legacy={"logs": {"index_patterns": ["logs-*"], "settings": {"index.mapper.dynamic": "true"}}})
    assert "settings" not in run(source, versions=("6.8.23", "7.10.2")).moves[0].body
