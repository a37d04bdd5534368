"""migrator.pipelines: which ingest pipelines and ILM policies move, what stays behind and why, conflicts
(canned facts, in the shapes GET _ingest/pipeline and GET _ilm/policy answer)."""

from __future__ import annotations

from typing import Any

from migrator.pipelines import called_pipelines, pipeline_changes, plan_pipelines, processor_types, same
from migrator.spec import MetadataSpec

INDICES = ["orders", "logs-1"]
POLICY = {"version": 3, "modified_date": "2026-11-01", "policy": {"phases": {"hot": {"actions": {"rollover": {}}}}}}


def cluster(pipelines: dict | None = None, policies: dict | None = None, **extra: Any) -> dict:
    return {"templates": {}, "pipelines": pipelines, "policies": policies, "processors": ["pipeline", "set"], **extra}


def run(source: dict, destination: dict, templates=(), versions=("7.17.29", "8.19.21"), **spec: Any):
    return plan_pipelines(MetadataSpec(**spec), source, destination, versions, INDICES, list(templates))


NAMING = {
    "orders": {"index.default_pipeline": "enrich", "index.lifecycle.name": "hot"},
    "logs-1": {"index.final_pipeline": "_none"},
}


def test_the_pipelines_and_policies_the_indices_name_move_called_pipelines_first() -> None:
    enrich = {"description": "x", "processors": [{"pipeline": {"name": "tag"}}, {"set": {"field": "a", "value": 1}}]}
    source = cluster(
        {"enrich": enrich, "tag": {"processors": []}, "unused": {"processors": []}},
        {"hot": POLICY},
        index_settings=NAMING,
    )
    plan = run(source, cluster({}, {}))
    assert plan.problems == [] and plan.warnings == []
    assert [m.path for m in plan.moves] == ["_ilm/policy/hot", "_ingest/pipeline/tag", "_ingest/pipeline/enrich"]
    assert plan.moves[0].body == {"policy": POLICY["policy"]}  # PUT takes the policy alone
    assert plan.moves[1].named_by == ("pipeline enrich",)
    assert plan.moves[2].named_by == ("index orders (index.default_pipeline)",)


def test_a_moved_template_naming_a_pipeline_takes_it_along() -> None:
    template = {
        "kind": "composable",
        "name": "logs",
        "body": {"index_patterns": ["logs-*"], "template": {"settings": {"index": {"final_pipeline": "stamp"}}}},
    }
    source = cluster({"stamp": {"processors": [], "created_date_millis": 5}}, {})
    plan = run(source, cluster({}, {}), [template])
    assert [(m.path, m.body, m.named_by) for m in plan.moves] == [
        ("_ingest/pipeline/stamp", {"processors": []}, ("_index_template/logs (index.final_pipeline)",))
    ]


def test_what_stays_behind_is_named_with_why() -> None:
    source = cluster({"enrich": {"processors": []}}, None, index_settings=NAMING)
    plan = run(source, cluster({}, None))
    assert plan.moves[0].path == "_ingest/pipeline/enrich"
    assert plan.warnings == [
        "ILM policy 'hot' (named by index orders (index.lifecycle.name)) stays behind: the source (7.17.29) and the "
        "destination (8.19.21) have no ILM policy API"
    ]
    to_opensearch = run(cluster({}, {"hot": POLICY}, index_settings=NAMING), cluster({}, None), versions=(
        "7.10.2", "opensearch-2.19.0"))  # fmt: skip
    assert any("OpenSearch manages lifecycles with ISM" in w for w in to_opensearch.warnings)
    missing = run(cluster({}, {}, index_settings=NAMING), cluster({}, {}))
    assert missing.warnings == [
        "ILM policy 'hot' (named by index orders (index.lifecycle.name)) stays behind: the source lacks it too",
        "ingest pipeline 'enrich' (named by index orders (index.default_pipeline)) stays behind: the source lacks it "
        "too (an index naming a missing pipeline refuses writes on both clusters)",
    ]
    off = run(source, cluster({}, None), pipelines="none")
    assert off.moves == [] and "stays behind: metadata.pipelines: none" in off.warnings[1]
    managed = cluster({"enrich": {"processors": [], "_meta": {"managed": True}}}, {}, index_settings=NAMING)
    assert "Elasticsearch manages it" in run(managed, cluster({}, {})).warnings[1]
    # already on the destination: nothing to say when it cannot or need not move
    assert run(cluster({}, None, index_settings=NAMING), cluster({"enrich": {}}, {"hot": POLICY})).warnings == []


def test_processors_a_destination_node_lacks_refuse_the_plan_naming_the_fix() -> None:
    body = {"processors": [{"foreach": {"field": "f", "processor": {"geoip": {"field": "ip"}}}}]}
    plan = run(cluster({"enrich": body}, {}, index_settings=NAMING), cluster({}, {}, processors=["foreach"]))
    assert [p.field for p in plan.problems] == ["metadata.pipelines"]
    assert "processor(s) geoip" in plan.problems[0].message and "metadata.pipelines: none" in plan.problems[0].fix
    assert run(cluster({"enrich": body}, {}, index_settings=NAMING), cluster({}, {}, processors=None)).problems == []


def test_a_same_name_on_the_destination_equal_skipped_other_refused_kept_or_overwritten() -> None:
    source = cluster({"enrich": {"processors": [], "version": 2}}, {"hot": POLICY}, index_settings=NAMING)
    # 9.x adds dates to a pipeline; ILM fills in defaults: both still equal
    filled = {"policy": {"phases": {"hot": {"min_age": "0ms", "actions": {"rollover": {}}}}}}
    equal = cluster({"enrich": {"processors": [], "version": 2, "created_date_millis": 1}}, {"hot": filled})
    plan = run(source, equal)
    assert plan.moves == [] and len(plan.warnings) == 2 and all("equal body; not sent" in w for w in plan.warnings)
    other = cluster({"enrich": {"processors": [], "version": 1}}, {"hot": POLICY})
    refused = run(source, other)
    assert [p.field for p in refused.problems] == ["metadata.if_exists"]
    assert '"version":1' in refused.problems[0].message and '"version":2' in refused.problems[0].message
    assert run(source, other, if_exists="skip").moves == []  # the policy is equal, the pipeline kept
    overwritten = run(source, other, if_exists="overwrite")
    assert [(m.path, m.replaces) for m in overwritten.moves] == [("_ingest/pipeline/enrich", True)]


def test_processor_walk_and_comparison_helpers() -> None:
    body = {
        "processors": [{"set": {"field": "a", "on_failure": [{"pipeline": {"name": "fallback"}}]}}],
        "on_failure": [{"pipeline": {"name": "{{_index}}-errors"}}],
    }
    assert processor_types(body) == {"set", "pipeline"}
    assert called_pipelines(body) == ["fallback"]  # a templated name cannot be followed
    assert not same("policy", {"policy": {"phases": {}}}, {"policy": {"phases": {"hot": {}}}})


def test_pipeline_changes_between_a_saved_plan_and_a_fresh_discovery_are_named() -> None:
    before = [{"kind": "pipeline", "name": "a", "body": {"processors": []}, "named_by": [], "replaces": False}]
    after = [{**before[0], "body": {"processors": [], "version": 2}}]
    assert pipeline_changes(before, after) == [
        "_ingest/pipeline/a would be put with another body (the source's changed)"
    ]
    assert pipeline_changes(before, []) == ["_ingest/pipeline/a would no longer be put on the destination"]
