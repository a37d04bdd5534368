"""Index templates travelling with the data, on real nodes (7.10 -> 8, 7.17 -> 8, 8 -> 9).

Each test makes templates and indices of its own (a unique prefix) on the source, so the templates
of one test never match the indices of another; what a test puts on a destination it removes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from migrator.clients.es import EsClient, build_path
from migrator.steps.metadata_templates import current_template
from migrator.templates import normalised
from tests.helpers import cli

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("leave_the_clusters_as_found")]

PAIRS = [("7.10", "8"), ("7.17", "8"), ("8", "9")]


def legacy_body(prefix: str) -> dict:
    return {
        "index_patterns": [f"{prefix}-logs-*"],
        "order": 3,
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": {"msg": {"type": "keyword"}, "at": {"type": "date", "format": "yyyy-MM-dd"}}},
    }


def make_source(bed, alias: str, prefix: str, extra_settings: dict | None = None) -> list[str]:
    """A legacy template (with `extra_settings`), a composable one composing a component template, an
    unrelated template, and one index matching each of the first two (with a document). Returns the
    index names."""
    client = bed.client(alias)
    try:
        legacy = legacy_body(prefix)
        legacy["settings"].update(extra_settings or {})
        client.request("PUT", build_path("_template", f"{prefix}-legacy"), legacy)
        client.request("PUT", build_path("_template", f"{prefix}-other"), {"index_patterns": [f"{prefix}-zzz-*"]})
        shared = {"template": {"mappings": {"properties": {"amount": {"type": "long"}}}}}
        client.request("PUT", build_path("_component_template", f"{prefix}-shared"), shared)
        orders = {
            "index_patterns": [f"{prefix}-orders*"],
            "composed_of": [f"{prefix}-shared"],
            "priority": 7,
            "template": {
                "settings": {"number_of_replicas": 0},
                "mappings": {"properties": {"who": {"type": "keyword"}}},
            },
        }
        client.request("PUT", build_path("_index_template", f"{prefix}-orders"), orders)
        names = [f"{prefix}-logs-2026.11.01", f"{prefix}-orders"]
        for name, doc in zip(names, ({"msg": "hello", "at": "2026-11-01"}, {"who": "ann", "amount": 3}), strict=True):
            client.request("POST", build_path(name, "_doc", params={"refresh": "true"}), doc, ok=(201,))
        return names
    finally:
        client.close()


def remove_prefixed(client: EsClient, prefix: str) -> None:
    """Delete the test's indices and templates (index templates before the component template they use)."""
    for row in client.indices(f"{prefix}-*"):
        client.request("DELETE", build_path(row["index"]), ok=(200, 404))
    for path, name in (
        ("_index_template", "orders"),
        ("_index_template", "legacy"),  # a legacy template converted to composable
        ("_template", "legacy"),
        ("_template", "other"),
        ("_component_template", "shared"),
    ):
        client.request("DELETE", build_path(path, f"{prefix}-{name}"), ok=(200, 400, 404))


@pytest.fixture
def prefix(testbed) -> Iterator[str]:
    """A unique prefix; its indices and templates are removed from every node afterwards."""
    value = "tm" + uuid.uuid4().hex[:8]
    yield value
    for alias in testbed.urls:
        client = testbed.client(alias)
        try:
            remove_prefixed(client, value)
        finally:
            client.close()


def templates_plan(bed, tmp_path: Path, source: str, destination: str, prefix: str, **sections) -> Path:
    return bed.write_plan(tmp_path, source, destination, name=prefix, snapshot={"indices": [f"{prefix}-*"]}, **sections)


def new_index_mapping(client: EsClient, index: str, doc: dict) -> dict:
    client.request("POST", build_path(index, "_doc", params={"refresh": "true"}), doc, ok=(201,))
    return client.get(build_path(index, "_mapping"))[index]["mappings"]["properties"]


@pytest.mark.parametrize(("source", "destination"), PAIRS, ids=[f"{s}->{d}" for s, d in PAIRS])
def test_templates_move_before_the_restores_and_shape_new_indices(testbed, tmp_path, prefix, source, destination):
    # 7.17 takes index.mapper.dynamic (deprecated; 7.10 refuses it); 8.0 removed it: dropped, with a warning.
    removed = {"index.mapper.dynamic": True} if source == "7.17" else {}
    make_source(testbed, source, prefix, removed)
    plan = templates_plan(testbed, tmp_path, source, destination, prefix)

    document = json.loads(cli(testbed, "plan", str(plan), "--json").stdout)
    dropped = f"template '{prefix}-legacy': setting index.mapper.dynamic dropped"
    assert any(w.startswith(dropped) for w in document["warnings"]) == bool(removed)
    step = next(s for s in document["steps"] if s["id"] == "metadata.templates")
    assert [(r["method"], r["path"]) for r in step["requests"]] == [
        ("PUT", f"_component_template/{prefix}-shared"),
        ("PUT", f"_index_template/{prefix}-orders"),
        ("PUT", f"_template/{prefix}-legacy"),
    ]
    assert step["after"] == ["preflight"]
    runbook = cli(testbed, "plan", str(plan), "--format", "markdown").stdout
    for request in step["requests"]:
        assert f"PUT {request['path']}\n" in runbook
    restores = [s for s in document["steps"] if s["kind"] == "restore.batch"]  # each sends its indices' restore
    assert restores and all("repository.destination" in s["after"] for s in restores)
    edges = [tuple(edge) for edge in document["graph"]["edges"]]
    assert ("metadata.templates", "repository.destination") in edges

    cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")

    client = testbed.client(destination)
    try:
        for kind, name in (("legacy", "legacy"), ("composable", "orders"), ("component", "shared")):
            assert current_template(client, kind, f"{prefix}-{name}") is not None, f"{kind} {name} not moved"
        assert current_template(client, "legacy", f"{prefix}-other") is None  # matches no migrated index
        moved = current_template(client, "legacy", f"{prefix}-legacy")
        assert normalised("legacy", moved) == normalised("legacy", legacy_body(prefix))
        # After the migration, a new daily index gets the source template's mappings, not dynamic ones.
        logs = new_index_mapping(client, f"{prefix}-logs-2026.12.01", {"msg": "next day", "at": "2026-12-01"})
        assert logs["msg"] == {"type": "keyword"} and logs["at"]["format"] == "yyyy-MM-dd"
        orders = new_index_mapping(client, f"{prefix}-orders-2", {"who": "bob", "amount": 5})
        assert orders["who"] == {"type": "keyword"} and orders["amount"] == {"type": "long"}
    finally:
        client.close()


def test_a_conflicting_template_is_refused_in_the_dry_run_then_overwritten_and_put_back_by_cancel(
    testbed, tmp_path, prefix
):
    source, destination = "8", "9"
    make_source(testbed, source, prefix)
    theirs = {"index_patterns": [f"{prefix}-logs-*"], "order": 1, "mappings": {"properties": {"msg": {"type": "text"}}}}
    client = testbed.client(destination)
    try:
        client.request("PUT", build_path("_template", f"{prefix}-legacy"), theirs)
        before = current_template(client, "legacy", f"{prefix}-legacy")
        plan = templates_plan(testbed, tmp_path, source, destination, prefix)

        refused = cli(testbed, "plan", str(plan), "--json", check=False)
        assert refused.returncode != 0
        problems = json.loads(refused.stdout)["problems"]
        assert [p["field"] for p in problems] == ["metadata.if_exists"]
        assert f"_template/{prefix}-legacy" in problems[0]["message"] and '"order":1' in problems[0]["message"]
        assert "overwrite" in problems[0]["fix"]
        assert cli(testbed, "apply", str(plan), "--yes", check=False).returncode != 0
        assert current_template(client, "legacy", f"{prefix}-legacy") == before  # nothing was sent

        document = yaml.safe_load(plan.read_text())
        document["metadata"] = {"if_exists": "overwrite"}
        plan.write_text(yaml.safe_dump(document))
        cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")
        moved = current_template(client, "legacy", f"{prefix}-legacy")
        assert normalised("legacy", moved) == normalised("legacy", legacy_body(prefix))

        cancelled = cli(testbed, "cancel", str(plan))
        assert f"_template/{prefix}-legacy" in cancelled.stdout + cancelled.stderr
        # The run had finished: its restored indices are kept, and named (a later apply refuses them).
        assert "(restored and recovered; delete it before applying this plan again)" in cancelled.stdout
        assert current_template(client, "legacy", f"{prefix}-legacy") == before
        assert current_template(client, "composable", f"{prefix}-orders") is None
        assert current_template(client, "component", f"{prefix}-shared") is None
    finally:
        client.close()


def test_rollback_of_a_cutover_leaves_the_destination_templates_as_they_were_until_the_next_apply(
    testbed, tmp_path, prefix
):
    source, destination = "8", "9"
    names = make_source(testbed, source, prefix)
    theirs = {"index_patterns": [f"{prefix}-logs-*"], "order": 1}
    client = testbed.client(destination)
    try:
        client.request("PUT", build_path("_template", f"{prefix}-legacy"), theirs)
        before = current_template(client, "legacy", f"{prefix}-legacy")
        plan = templates_plan(
            testbed,
            tmp_path,
            source,
            destination,
            prefix,
            restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
            cutover={"enabled": True},
            finish={"aliases": {f"{prefix}-live": names}},
            metadata={"if_exists": "overwrite"},
        )
        cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")
        cli(testbed, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.3")
        assert current_template(client, "composable", f"{prefix}-orders") is not None

        rolled = cli(testbed, "rollback", str(plan))
        assert f"put them back with: migrator apply {plan}" in rolled.stdout
        assert current_template(client, "legacy", f"{prefix}-legacy") == before
        assert current_template(client, "composable", f"{prefix}-orders") is None
        assert current_template(client, "component", f"{prefix}-shared") is None

        again = cli(testbed, "apply", str(plan), "--phase", "cutover", "--yes", check=False)
        assert again.returncode == 3 and "metadata.templates" in again.stdout + again.stderr
        cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")
        assert current_template(client, "composable", f"{prefix}-orders") is not None
        cli(testbed, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.3")
        cli(testbed, "rollback", str(plan))
        for index in names:
            client.request("DELETE", build_path(f"moved-{index}"), ok=(200, 404))
    finally:
        client.close()


def test_the_dry_run_names_the_pipeline_left_behind_and_a_destination_template_that_would_win(
    testbed, tmp_path, prefix
):
    """The integ-test distributions have the ingest API but no processor (7.10) or one (7.17+): an empty
    pipeline is enough to be named by `index.default_pipeline`, and it moves (tests/e2e/test_pipelines_e2e.py);
    one the source lacks too stays behind, named. They have no ILM API at all. A destination template with
    a higher priority on overlapping patterns is a warning too."""
    client, destination = testbed.client("8"), testbed.client("9")
    try:
        client.request("PUT", build_path("_ingest", "pipeline", f"{prefix}-enrich"), {"processors": []})
        settings = {"settings": {"index.default_pipeline": f"{prefix}-enrich", "number_of_replicas": 0}}
        client.request("PUT", build_path(f"{prefix}-events"), settings)
        missing = {"settings": {"index.final_pipeline": f"{prefix}-gone", "number_of_replicas": 0}}
        client.request("PUT", build_path(f"{prefix}-evlost"), missing)  # 8.x makes it; its writes are refused
        template = {"index_patterns": [f"{prefix}-ev*"], "priority": 5}
        client.request("PUT", build_path("_index_template", f"{prefix}-orders"), template)
        rival = {"index_patterns": [f"{prefix}-*"], "priority": 100}
        destination.request("PUT", build_path("_index_template", f"{prefix}-legacy"), rival)
        plan = templates_plan(testbed, tmp_path, "8", "9", prefix)
        document = json.loads(cli(testbed, "plan", str(plan), "--json").stdout)
    finally:
        for index in ("events", "evlost"):
            client.request("DELETE", build_path(f"{prefix}-{index}"), ok=(200, 404))
        client.request("DELETE", build_path("_ingest", "pipeline", f"{prefix}-enrich"), ok=(200, 404))
        client.close()
        destination.close()
    warnings = document["warnings"]
    rival_wins = (
        f"_index_template/{prefix}-orders: the destination's composable '{prefix}-legacy' with priority 100 > 5"
    )
    assert any(w.startswith(rival_wins) for w in warnings), warnings
    assert (
        f"ingest pipeline '{prefix}-gone' (named by index {prefix}-evlost (index.final_pipeline)) stays behind: the "
        "source lacks it too (an index naming a missing pipeline refuses writes on both clusters)"
    ) in warnings
    step = next(s for s in document["steps"] if s["id"] == "metadata.pipelines")
    assert [r["path"] for r in step["requests"]] == [f"_ingest/pipeline/{prefix}-enrich"]


def test_a_legacy_template_converted_to_composable_when_the_plan_asks(testbed, tmp_path, prefix):
    make_source(testbed, "7.17", prefix)
    plan = templates_plan(testbed, tmp_path, "7.17", "8", prefix, metadata={"legacy_as": "composable"})
    warnings = json.loads(cli(testbed, "plan", str(plan), "--json").stdout)["warnings"]
    assert (
        f"_index_template/{prefix}-legacy: legacy template converted to composable (order 3 -> priority 3)" in warnings
    )
    cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")
    client = testbed.client("8")
    try:
        assert current_template(client, "legacy", f"{prefix}-legacy") is None
        converted = current_template(client, "composable", f"{prefix}-legacy")
        assert converted["priority"] == 3 and converted["index_patterns"] == [f"{prefix}-logs-*"]
        logs = new_index_mapping(client, f"{prefix}-logs-2026.12.01", {"msg": "next day", "at": "2026-12-01"})
        assert logs["msg"] == {"type": "keyword"}
    finally:
        client.close()
