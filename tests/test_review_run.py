"""Running part of a plan without clusters: the executor's gate (step by step) and selection (--until,
--only), the JSON-lines event log, status and report from a state file."""

from __future__ import annotations

import io
import json
import stat
import threading
import time
from datetime import UTC, datetime

import networkx as nx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from migrator.cli.main import app
from migrator.clients.es import Request
from migrator.discovery import ClusterFacts, Facts, IndexFacts
from migrator.errors import NeedsAttention, UsageError
from migrator.executor import RequestLog
from migrator.migration.files import JournaledState, event_log_path
from migrator.migration.readback import report, status
from migrator.migration.run import record_run
from migrator.planner import build_plan
from migrator.redact import Redactor
from migrator.render.report import report_markdown
from migrator.render.status import status_text, status_view
from migrator.selection import selection
from migrator.spec import parse_plan
from tests.test_executor import diamond, make_world

PLAN = """
name: unit
source: {url: "http://127.0.0.1:1"}
destination: {url: "http://127.0.0.1:2"}
repository: {name: repo, type: fs, settings: {location: /tmp/repo}}
storage: {kind: local, path: /tmp/repo}
snapshot: {indices: ["a", "b"], name: snap}
finish: {replicas: 1}
"""


def unit_plan():
    def cluster(names, version):
        indices = {n: IndexFacts(n, "open", "green", 100, 4096, 4096, 2) for n in names}
        return ClusterFacts(url="http://x", version=version, health="green", indices=indices)

    facts = Facts(cluster(["a", "b"], "7.17.29"), cluster([], "8.19.21"))
    return build_plan(parse_plan(PLAN), facts, datetime(2026, 1, 2, tzinfo=UTC))


def test_the_gate_is_asked_before_each_step_and_a_no_stops_the_run(tmp_path):
    world, state, executor, steps = make_world(tmp_path, diamond())
    asked: list[tuple[str, list[str]]] = []

    def gate(step):
        asked.append((step.id, list(world.order)))
        return step.id != "d"

    executor.gate, executor.parallel = gate, 1
    result = executor.run()
    assert [step for step, _ in asked] == ["a", "b", "c", "d"]
    assert all(step not in acted for step, acted in asked)  # nothing of a step ran before its answer
    assert result.declined == "d" and result.not_run == ["d"] and steps["d"].acts == 0
    assert [e.step for e in state.events(kind="step.declined")] == ["d"]


def test_selected_steps_only_run_and_the_rest_stays_pending(tmp_path):
    world, state, executor, _ = make_world(tmp_path, diamond())
    executor.selected = {"a", "b"}
    result = executor.run()
    assert sorted(result.done) == ["a", "b"] and result.not_run == ["c", "d"] and result.ok


def test_until_and_only_name_a_step_or_a_kind(tmp_path):
    graph = unit_plan().graph
    state = JournaledState(tmp_path / "plan.state.db")
    assert selection(graph, state.statuses(), None, None) is None
    assert selection(graph, state.statuses(), "snapshot.wait", None) == {
        "preflight", "repository.source", "snapshot.create", "snapshot.wait",
    }  # fmt: skip
    until_restores = selection(graph, state.statuses(), "restore", None)
    assert {"restore[a]", "restore[b]", "repository.destination"} <= until_restores
    assert not any(node.startswith("recovery") for node in until_restores)
    with pytest.raises(NeedsAttention, match=r"--only recovery\[a\]: first finish restore\[a\]"):
        selection(graph, state.statuses(), None, "recovery[a]")
    with pytest.raises(NeedsAttention, match=r"--only restore\[a\]: first finish repository.destination"):
        selection(graph, state.statuses(), None, "restore[a]")
    for node in ("preflight", "repository.source", "snapshot.create", "snapshot.wait", "storage.verify"):
        state.checkpoint(node, "done")
    state.checkpoint("repository.destination", "done")
    assert selection(graph, state.statuses(), None, "restore[a]") == {
        "restore.batch[1]",
        "restore[a]",
    }  # its batch sends it
    state.checkpoint("restore[a]", "done")
    assert selection(graph, state.statuses(), None, "recovery[a]") == {"recovery[a]"}
    with pytest.raises(UsageError, match="no such step"):
        selection(graph, state.statuses(), "nope", None)
    with pytest.raises(UsageError, match="exclude each other"):
        selection(graph, state.statuses(), "finish", "finish")
    state.close()


def test_events_are_mirrored_to_a_private_json_lines_file(tmp_path):
    state = JournaledState(tmp_path / "plan.state.db")
    state.begin_run()
    log = RequestLog(state, Redactor(["hunter2-secret"]))
    log("source", Request("PUT", "/_snapshot/r", {"settings": {"token": "hunter2-secret"}}), None)
    log("source", Request("PUT", "/_snapshot/r"), 200)
    state.close()
    path = event_log_path(tmp_path / "plan.state.db")
    assert path.name == "plan.events.jsonl" and stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["kind"], line["run"], line["message"]) for line in lines] == [
        ("request", 1, "PUT /_snapshot/r"),
        ("response", 1, "PUT /_snapshot/r"),
    ]
    assert lines[0]["data"]["body"] == {"settings": {"token": "******"}}
    assert "hunter2-secret" not in path.read_text()


def test_status_and_report_from_the_state_file(tmp_path):
    plan = unit_plan()
    state = JournaledState(tmp_path / "plan.state.db")
    state.begin_run()
    record_run(state, plan, datetime(2026, 1, 2, tzinfo=UTC), Redactor([]))
    state.set_meta(status="done")
    for node in nx.topological_sort(plan.graph):
        state.checkpoint(node, "acting")
        state.checkpoint(node, "done")
        state.event("step.done", f"{node} done", step=node, data={"seconds": 1.5})
    state.event("step.retry", "transient failure, retry 1 in 2 s: 503", step="restore[b]")
    state.event("run.cpu", "CPU", data={"startup_cpu_s": 0.4, "run_cpu_s": 0.25, "run_wall_s": 12.5})
    detail = {"source_docs": 100, "destination_docs": 100, "warnings": ["a stores no _source: sample skipped"]}
    state.checkpoint("validate[a]", "done", detail)
    state.checkpoint("recovery[a]", "done", {"bytes": 4096})
    state.set_progress("recovery[a]", {"completed": 4096, "total": 4096, "unit": "bytes", "text": ""})
    state.close()

    data = report(tmp_path / "plan.state.db")
    index_a = next(i for i in data["indices"] if i["source"] == "a")
    assert index_a == {
        "source": "a",
        "target": "a",
        "primary_shards": 2,
        "primary_bytes": 4096,
        "docs_planned": 100,
        "source_docs": 100,
        "destination_docs": 100,
        "recovered_bytes": 4096,
        "validated": True,
    }
    restore_b = next(s for s in data["steps"] if s["step"] == "restore[b]")
    assert restore_b["retries"] == 1 and restore_b["seconds"] == 1.5 and restore_b["attempts"] == 1
    assert any("503" in w for w in data["warnings"]) and any("sample skipped" in w for w in data["warnings"])
    assert data["totals"]["seconds"] == 1.5 * plan.graph.number_of_nodes()
    markdown = report_markdown(data)
    assert "| `a` | `a` | 100 | 100 | 4.0 KB | 4.0 KB | 2 | yes |" in markdown
    assert "| `restore[b]` | done | 2 s | 1 | 1 |" in markdown
    assert data["cpu"] == [{"run": 1, "startup_cpu_s": 0.4, "run_cpu_s": 0.25, "run_wall_s": 12.5}]
    assert "| migrator's CPU, run 1 | 0.40 s starting, 0.25 s while running 12 s (2.0% of it) |" in markdown

    current = status(tmp_path / "plan.state.db")
    assert current["status"] == "done" and not current["live"]
    assert current["event_log"].endswith("plan.events.jsonl")
    assert "done      restore[a] 2 s" in status_text(current)
    console = Console(file=io.StringIO(), width=160, record=True)
    console.print(status_view(current))
    shown = console.export_text()
    assert "recovery[a]" in shown and "4.0 KB" not in shown  # progress is shown while a step acts only


def test_status_watch_follows_the_run_until_it_ends(tmp_path):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(PLAN)
    state = JournaledState(tmp_path / "plan.state.db")
    state.acquire_lock("apply of plan.yaml")
    record_run(state, unit_plan(), datetime(2026, 1, 2, tzinfo=UTC), Redactor([]))
    state.set_meta(status="running")
    state.checkpoint("preflight", "acting")

    def finish() -> None:
        time.sleep(1.0)
        state.checkpoint("preflight", "done")
        state.set_meta(status="failed")
        state.release_lock()

    worker = threading.Thread(target=finish)
    worker.start()
    started = time.monotonic()
    result = CliRunner().invoke(app, ["status", str(plan_file), "--watch", "--interval", "0.2"])
    worker.join()
    state.close()
    assert time.monotonic() - started >= 1.0 and result.exit_code == 1, result.output
    assert "preflight" in result.output and "failed" in result.output
