"""Ingest pipelines travelling with the data, on real nodes (7.10 -> 8, 7.17 -> 8, 8 -> 9).

What the test bed can show: its integ-test distributions have the ingest API, with no processor on 7.10
and only `set_security_user` (x-pack-security) on 7.17, 8.x and 9.x, so the pipelines here are empty or
use that one; none of them has ILM (7.10 and 7.17 answer GET _ilm/policy 405, 8.x and 9.x 400), so
moving policies is shown on canned answers only (tests/test_pipelines.py). An index naming a missing
pipeline refuses every write on these nodes: that is what a migration without its pipelines leaves.

Each test works under a unique prefix and removes its indices, templates and pipelines from every node
(indices first: 7.17+ refuse to delete a pipeline an index names). Only this module's imports that the
code before `metadata.pipelines` had are used, so the module runs against that code too."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from migrator.clients.es import EsClient, build_path
from tests.helpers import cli

pytestmark = pytest.mark.cluster

PAIRS = [("7.10", "8"), ("7.17", "8"), ("8", "9")]
DATES = ("created_date_millis", "modified_date_millis")


def pipeline(client: EsClient, name: str) -> dict | None:
    """The pipeline as PUT took it (less the dates 9.x adds), or None."""
    status, answer = client.request("GET", build_path("_ingest", "pipeline", name), ok=(200, 404))
    body = answer.get(name) if status == 200 else None
    return None if body is None else {key: value for key, value in body.items() if key not in DATES}


def index_doc(client: EsClient, index: str, doc: dict) -> tuple[int, dict]:
    return client.request("POST", build_path(index, "_doc", params={"refresh": "true"}), doc, ok=(201, 400, 404))


def make_source(bed, alias: str, prefix: str) -> dict[str, dict]:
    """Pipelines `enrich` (named by the index `events`), `stamp` (named only by the legacy template `logs`,
    put after its index was made) and, where a processor exists (7.17+), `user` (named by the index
    `audit`, never written to: set_security_user refuses documents without security). Returns the bodies."""
    client = bed.client(alias)
    try:
        bodies = {f"{prefix}-enrich": {"description": "tags events", "processors": [], "version": 2}}
        bodies[f"{prefix}-stamp"] = {"processors": []}
        if alias != "7.10":  # 7.10 knows no pipeline `_meta` and no processor at all
            bodies[f"{prefix}-enrich"]["_meta"] = {"owner": prefix}
            bodies[f"{prefix}-user"] = {"processors": [{"set_security_user": {"field": "user"}}]}
        for name, body in bodies.items():
            client.request("PUT", build_path("_ingest", "pipeline", name), body)
        single = {"number_of_shards": 1, "number_of_replicas": 0}
        indices = {f"{prefix}-events": f"{prefix}-enrich", f"{prefix}-logs-1": None}
        if alias != "7.10":
            indices[f"{prefix}-audit"] = f"{prefix}-user"
        for index, named in indices.items():
            extra = {"index.default_pipeline": named} if named else {}
            client.request("PUT", build_path(index), {"settings": {**single, **extra}})
        for index in (f"{prefix}-events", f"{prefix}-logs-1"):
            assert index_doc(client, index, {"msg": "hello"})[0] == 201
        template = {"index_patterns": [f"{prefix}-logs-*"], "order": 1, "settings": {"index.final_pipeline": (
            f"{prefix}-stamp")}}  # fmt: skip
        client.request("PUT", build_path("_template", f"{prefix}-logs"), template)
        return bodies
    finally:
        client.close()


def remove_prefixed(client: EsClient, prefix: str) -> None:
    for row in client.indices(f"*{prefix}-*"):
        client.request("DELETE", build_path(row["index"]), ok=(200, 404))
    client.request("DELETE", build_path("_template", f"{prefix}-logs"), ok=(200, 404))
    status, names = client.request("GET", "/_ingest/pipeline", ok=(200, 404))
    for name in names if status == 200 else {}:
        if name.startswith(f"{prefix}-"):
            client.request("DELETE", build_path("_ingest", "pipeline", name), ok=(200, 404))


@pytest.fixture
def prefix(testbed) -> Iterator[str]:
    value = "pl" + uuid.uuid4().hex[:8]
    yield value
    for alias in testbed.urls:
        client = testbed.client(alias)
        try:
            remove_prefixed(client, value)
        finally:
            client.close()


def pipelines_plan(bed, tmp_path: Path, source: str, destination: str, prefix: str, **sections) -> Path:
    return bed.write_plan(tmp_path, source, destination, name=prefix, snapshot={"indices": [f"{prefix}-*"]}, **sections)


@pytest.mark.parametrize(("source", "destination"), PAIRS, ids=[f"{s}->{d}" for s, d in PAIRS])
def test_the_pipelines_indices_and_templates_name_move_before_them_and_writes_go_through(
    testbed, tmp_path, prefix, source, destination
):
    bodies = make_source(testbed, source, prefix)
    plan = pipelines_plan(testbed, tmp_path, source, destination, prefix)

    document = json.loads(cli(testbed, "plan", str(plan), "--json").stdout)
    step = next(s for s in document["steps"] if s["id"] == "metadata.pipelines")
    assert [(r["method"], r["path"], r["body"]) for r in step["requests"]] == [
        ("PUT", f"_ingest/pipeline/{name}", body) for name, body in sorted(bodies.items())
    ]
    assert step["after"] == ["preflight"]
    edges = [tuple(edge) for edge in document["graph"]["edges"]]
    assert ("metadata.pipelines", "metadata.templates") in edges
    runbook = cli(testbed, "plan", str(plan), "--format", "markdown").stdout
    assert all(f"PUT {request['path']}\n" in runbook for request in step["requests"])

    cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")

    client = testbed.client(destination)
    try:
        assert {name: pipeline(client, name) for name in bodies} == bodies
        # The restored index takes writes (without its pipeline: "pipeline with id [...] does not exist").
        status, answer = index_doc(client, f"{prefix}-events", {"msg": "after the move"})
        assert status == 201, answer
        # A new index the moved template makes names the moved pipeline and takes writes too.
        assert index_doc(client, f"{prefix}-logs-2", {"msg": "next day"})[0] == 201
        settings = client.get(build_path(f"{prefix}-logs-2", "_settings"))[f"{prefix}-logs-2"]["settings"]
        assert settings["index"]["final_pipeline"] == f"{prefix}-stamp"
    finally:
        client.close()


def test_a_conflicting_pipeline_is_refused_in_the_dry_run_then_overwritten_and_put_back_by_cancel(
    testbed, tmp_path, prefix
):
    source, destination = "8", "9"
    bodies = make_source(testbed, source, prefix)
    theirs = {"description": "the destination's own", "processors": []}
    client = testbed.client(destination)
    try:
        client.request("PUT", build_path("_ingest", "pipeline", f"{prefix}-enrich"), theirs)
        plan = pipelines_plan(testbed, tmp_path, source, destination, prefix)

        refused = cli(testbed, "plan", str(plan), "--json", check=False)
        assert refused.returncode != 0
        problems = json.loads(refused.stdout)["problems"]
        assert [p["field"] for p in problems] == ["metadata.if_exists"]
        assert f"_ingest/pipeline/{prefix}-enrich" in problems[0]["message"]
        assert "the destination's own" in problems[0]["message"] and "overwrite" in problems[0]["fix"]
        assert cli(testbed, "apply", str(plan), "--yes", check=False).returncode != 0
        assert pipeline(client, f"{prefix}-enrich") == theirs and pipeline(client, f"{prefix}-stamp") is None

        document = yaml.safe_load(plan.read_text())
        document["metadata"] = {"if_exists": "overwrite"}
        plan.write_text(yaml.safe_dump(document))
        cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")
        assert pipeline(client, f"{prefix}-enrich") == bodies[f"{prefix}-enrich"]

        cancelled = cli(testbed, "cancel", str(plan), "--json")
        report = json.loads(cancelled.stdout)
        assert report["pipelines_restored"] == [f"_ingest/pipeline/{prefix}-enrich"]
        assert f"_ingest/pipeline/{prefix}-stamp" in report["pipelines_deleted"]  # named by the template alone
        assert pipeline(client, f"{prefix}-enrich") == theirs
        assert pipeline(client, f"{prefix}-stamp") is None
        # `user` is named by the restored `audit`, which cancel keeps (it finished recovering): 9.x refuses to
        # delete it, so it is kept and named.
        assert [kept.split(" ")[0] for kept in report["pipelines_kept"]] == [f"_ingest/pipeline/{prefix}-user"]
        assert pipeline(client, f"{prefix}-user") == bodies[f"{prefix}-user"]
    finally:
        client.close()


def test_rollback_keeps_the_pipeline_a_restored_index_uses_and_a_later_rollback_deletes_it(testbed, tmp_path, prefix):
    source, destination = "8", "9"
    make_source(testbed, source, prefix)
    plan = pipelines_plan(
        testbed,
        tmp_path,
        source,
        destination,
        prefix,
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
        cutover={"enabled": True},
        finish={"aliases": {f"{prefix}-live": [f"{prefix}-events"]}},
    )
    client = testbed.client(destination)
    try:
        cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")
        cli(testbed, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.3")

        rolled = cli(testbed, "rollback", str(plan), "--json")
        report = json.loads(rolled.stdout)
        assert report["pipelines_deleted"] == [f"_ingest/pipeline/{prefix}-stamp"]
        kept = sorted(item.split(" ")[0] for item in report["pipelines_kept"])
        assert kept == [f"_ingest/pipeline/{prefix}-enrich", f"_ingest/pipeline/{prefix}-user"]
        assert all("refuses to delete it" in item for item in report["pipelines_kept"])
        assert pipeline(client, f"{prefix}-enrich") is not None and pipeline(client, f"{prefix}-stamp") is None

        cli(testbed, "apply", str(plan), "--yes", "--poll", "0.3")  # puts back what rollback removed
        assert pipeline(client, f"{prefix}-stamp") is not None
        for index in (f"moved-{prefix}-events", f"moved-{prefix}-audit", f"moved-{prefix}-logs-1"):
            client.request("DELETE", build_path(index), ok=(200, 404))
        again = json.loads(cli(testbed, "rollback", str(plan), "--json").stdout)
        # the record of what the first rollback kept survived it: migrator still knows they are its own
        assert sorted(again["pipelines_deleted"]) == [
            f"_ingest/pipeline/{prefix}-{name}" for name in ("enrich", "stamp", "user")
        ]
        assert all(pipeline(client, f"{prefix}-{name}") is None for name in ("enrich", "stamp", "user"))
    finally:
        client.close()
