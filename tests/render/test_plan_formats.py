"""The dry run's formats from synthetic facts: the runbook lists every step's requests with secrets
masked, how to cancel and the estimates; the JSON schema; mermaid and dot give the DAG's nodes and edges."""

from __future__ import annotations

import json
import re

import networkx as nx

from migrator.migration.review import review
from migrator.render.plan import graph_dot, graph_mermaid, plan_document, plan_markdown, plan_text
from tests.render.conftest import MB, SECRETS


def parse_mermaid(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    names = dict(re.findall(r'^\s+(n\d+)\["([^"]+)"\]$', text, re.MULTILINE))
    edges = {(names[a], names[b]) for a, b in re.findall(r"^\s+(n\d+) --> (n\d+)$", text, re.MULTILINE)}
    return set(names.values()), edges


def parse_dot(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    nodes = set(re.findall(r'^\s+"([^"]+)";$', text, re.MULTILINE))
    edges = set(re.findall(r'^\s+"([^"]+)" -> "([^"]+)";$', text, re.MULTILINE))
    return nodes, edges


def test_mermaid_and_dot_give_the_nodes_and_edges_of_the_dag(opened):
    graph = review(opened()).plan.graph
    for parse, render in ((parse_mermaid, graph_mermaid), (parse_dot, graph_dot)):
        nodes, edges = parse(render(graph))
        assert nodes == set(graph.nodes) and edges == set(graph.edges)
    assert {"restore[new-orders]", "finish"} <= set(graph.nodes)


def test_the_runbook_lists_every_request_masked_with_waits_cancels_and_estimates(opened):
    reviewed = review(opened())
    runbook = plan_markdown(reviewed)
    for value in SECRETS.values():
        assert value not in runbook
    assert '"secret_access_key": "******"' in runbook and '"access_key_id": "******"' in runbook
    assert "PUT _snapshot/repo\n{" in runbook  # the document's console form: request line, then the body
    sections = re.split(r"^### \d+\. ", runbook, flags=re.MULTILINE)[1:]
    assert len(sections) == reviewed.plan.graph.number_of_nodes()
    for node, section in zip(nx.topological_sort(reviewed.plan.graph), sections, strict=True):
        step = reviewed.steps[node]
        assert section.startswith(f"`{node}`")
        for request in [*step.describe(), *step.checks()]:
            assert f"{request.method} {request.path}" in section, (node, request)
        assert "Waits for:" in section and "To cancel at this step:" in section
    restore = sections[list(nx.topological_sort(reviewed.plan.graph)).index("restore[new-logs-a]")]
    assert "DELETE new-logs-a" in restore and "DELETE _snapshot/repo/fixed-snap" in restore
    assert "| `logs-b` | `new-logs-b` | 2000 | 70.0 MB | 2 | 14 s |" in runbook  # 2 x 70 MB at 10 MB/s
    assert "| **total: 3** | | 3010 | 100.0 MB | 4 | 20 s |" in runbook


def test_the_json_form_has_the_documented_schema(opened):
    document = json.loads(json.dumps(plan_document(review(opened()))))
    assert document["schema"] == "migrator.plan/v1"
    assert set(document) >= {
        "name", "plan_hash", "snapshot", "repository", "source", "destination", "indices", "skipped", "totals",
        "estimate", "capacity", "problems", "warnings", "discovery", "steps", "graph",
    }  # fmt: skip
    assert document["totals"] == {"indices": 3, "docs": 3010, "primary_bytes": 100 * MB, "primary_shards": 4}
    assert document["estimate"]["total_seconds"] == 20.0 and document["estimate"]["throughput_mb_s"] == 10
    assert document["indices"][0] == {
        "source": "logs-a",
        "target": "new-logs-a",
        "docs": 1000,
        "primary_bytes": 30 * MB,
        "primary_shards": 1,
        "expected_seconds": 6.0,
        "status": "open",
        "version_created": "",
    }
    assert set(document["capacity"]) == {
        "data_nodes", "shards_now", "shards_added", "shard_limit", "bytes_needed", "bytes_room", "room_is",
    }  # fmt: skip
    step = next(s for s in document["steps"] if s["id"] == "validate[new-orders]")
    assert set(step) == {"id", "kind", "phase", "title", "after", "waits_for", "requests", "checks", "cancel"}
    assert [r["path"] for r in step["requests"] if r["method"] == "GET"][-1] == "new-orders/_mget"
    assert all(r["method"] == "GET" for r in step["requests"] + step["checks"])
    assert [tuple(e) for e in document["graph"]["edges"]] == sorted(review(opened()).plan.graph.edges)
    assert SECRETS["SK"] not in json.dumps(document)


def test_text_shows_the_estimate_and_each_step(opened):
    text = plan_text(review(opened()))
    assert "Expected duration: 20 s at 10 MB/s (snapshot 10 s, restore 10 s)" in text
    assert "[source] PUT _snapshot/repo/fixed-snap" in text and "waits for:" in text


def test_a_two_phase_plan_shows_where_the_write_freeze_begins(opened, tmp_path):
    plan = tmp_path / "cutover.yaml"
    plan.write_text((tmp_path / "plan.yaml").read_text() + "cutover: {enabled: true}\n")
    reviewed = review(opened(plan))
    markdown = plan_markdown(reviewed)
    heading = markdown.index("## Phase two: the cutover")
    assert markdown.index("validate[new-orders]") < heading < markdown.index("cutover.block")
    assert '"index.blocks.write": true' in markdown[heading:]
    assert "migrator rollback PLAN" in markdown[heading:]
    text = plan_text(reviewed)
    assert text.index("validate[new-orders]") < text.index("-- phase two") < text.index("cutover.block")
    phases = {step["id"]: step["phase"] for step in plan_document(reviewed)["steps"]}
    assert phases["restore[new-orders]"] == "bulk" and phases["cutover.switch"] == phases["finish"] == "cutover"
    cancel = {step["id"]: step["cancel"]["note"] for step in plan_document(reviewed)["steps"]}
    assert "migrator rollback" in cancel["cutover.restore[new-orders]"]


def test_the_dry_run_says_which_reads_of_a_recovery_are_conditional_and_on_what(opened):
    """A runbook is read as "what will be sent": the recovery's `_recovery` read is skipped when the held restore
    answers that every shard is restored, so its console form says so (a `#` line, which the Kibana console
    ignores), and the JSON form gives the condition as `when`; a request sent every time has no condition."""
    reviewed = review(opened())
    text, runbook = plan_text(reviewed), plan_markdown(reviewed)
    document = plan_document(reviewed)
    recovery = next(step for step in document["steps"] if step["id"] == "recovery[new-orders]")
    read = next(r for r in [*recovery["requests"], *recovery["checks"]] if r["path"] == "new-orders/_recovery")
    assert "held restore" in read["when"]
    assert f"# only when {read['when']}\nGET new-orders/_recovery" in runbook  # in a console block
    lines = [line.strip() for line in text.splitlines()]
    shown = lines.index("[destination] GET new-orders/_recovery")
    assert lines[shown - 1] == f"# only when {read['when']}"
    # The same kind: the versions a resumed run reads, an index's reads alone when its batch's did not answer.
    preflight = next(step for step in document["steps"] if step["kind"] == "preflight")
    assert preflight["checks"] and all("resumed run" in r["when"] for r in preflight["checks"])
    batched = [step for step in document["steps"] if step["kind"] == "validate" and step["checks"]]
    assert batched and all("joined reads did not answer" in r["when"] for s in batched for r in s["checks"])
    snapshot = next(step for step in document["steps"] if step["kind"] == "snapshot.create")
    assert snapshot["requests"] and all("when" not in r for r in snapshot["requests"])
