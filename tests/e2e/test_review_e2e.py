"""Review before cutover on real nodes, through the CLI: the runbook printed by the dry run lists every
request the real run sends, no secret reaches any output or file, the DAG formats are the executor's
DAG, a saved plan is refused when the clusters changed, step by step sends nothing before each answer,
--until/--only pause and resume, and validation catches a changed index."""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pexpect
import pytest
import yaml

from migrator.clients.es import build_path
from migrator.migration.opened import open_migration
from migrator.migration.review import describe_steps
from migrator.sandbox.seed_data import seed_cluster
from migrator.state import StateStore
from migrator.steps.base import StepFailed
from tests.helpers import cli
from tests.render.test_plan_formats import parse_dot, parse_mermaid

pytestmark = pytest.mark.cluster
MUTATING = ("PUT", "POST", "DELETE")
CANARIES = {"RVW_CANARY": "canary-rvw-7d1e0c9b44", "RVW_PASSWORD": "canary-pw-5a8f33e1c2"}


@pytest.fixture(scope="module")
def bed(testbed):
    """The example indices on the sources these tests read (the same documents as test_migration_e2e's)."""
    for alias in ("7.10", "7.17"):
        client = testbed.client(alias)
        seed_cluster(client, 400)
        client.close()
    return testbed


def events(state_file: Path, kind: str | None = "request", run: int | None = None) -> list:
    store = StateStore(state_file)
    try:
        return store.events(kind=kind, run=run)
    finally:
        store.close()


def console_requests(markdown: str) -> dict[str, set[tuple[str, str, str]]]:
    """Per runbook section (`discovery` or a step id): (cluster, method, path without query) in its code blocks."""
    found: dict[str, set[tuple[str, str, str]]] = {}
    section, cluster, fenced = "", "", False
    for line in markdown.splitlines():
        if line.startswith("## "):
            section = "discovery" if line.startswith("## Discovery") else ""
        elif heading := re.match(r"^### \d+\. `([^`]+)`", line):
            section = heading.group(1)
        elif where := re.match(r"^on the (source|destination) ", line):
            cluster = where.group(1)
        elif line.startswith("```"):
            fenced = not fenced
        elif fenced and (request := re.match(r"^(GET|HEAD|PUT|POST|DELETE) (\S+)", line)):
            path = unquote(request.group(2).split("?")[0]).lstrip("/")
            found.setdefault(section, set()).add((cluster, request.group(1), path))
    return found


def sent(event) -> tuple[str, str, str]:
    return event.data["cluster"], event.data["method"], unquote(event.data["path"].split("?")[0]).lstrip("/")


def test_the_runbook_lists_every_request_the_run_sends_and_no_secret_leaks(bed, tmp_path, monkeypatch):
    plan = bed.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="rvw",
        snapshot={"indices": ["logs-*", "orders"], "exclude": ["logs-debug"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "rvw-$1"},
        validate={"sample_docs": 25},
        finish={"replicas": 0, "aliases": {"rvw-orders-live": ["orders"]}, "delete_snapshot": True},
    )
    document = yaml.safe_load(plan.read_text())
    document["repository"]["settings"]["extra"] = {"canary_secret": "${RVW_CANARY}"}
    document["source"].update(username="elastic", password="${RVW_PASSWORD}")
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    saved, state_file = tmp_path / "reviewed.json", tmp_path / "plan.state.db"

    outputs = {fmt: cli(bed, "plan", str(plan), "--format", fmt) for fmt in ("text", "json", "mermaid", "dot")}
    outputs["markdown"] = cli(bed, "plan", str(plan), "--format", "markdown", "--out", str(saved))
    runbook = outputs["markdown"].stdout
    assert "******" in runbook and "PUT _snapshot/repo_" in runbook
    outputs["apply"] = cli(bed, "apply", str(saved), "--yes", "--poll", "0.5")
    outputs["again"] = cli(bed, "apply", str(saved), "--yes")
    for command in (("status",), ("status", "--json"), ("status", "--watch"), ("report",)):
        outputs[" ".join(command)] = cli(bed, *command, str(plan))
    outputs["report json"] = cli(bed, "report", str(plan), "--format", "json")

    # every request of the real run (the dry run's discovery included) is in the runbook, under its step
    listed = console_requests(runbook)
    requests = events(state_file)
    assert {e.step for e in requests} >= {"preflight", "restore.batch[1]", "validate[rvw-orders]", "finish", None}
    missing = [(e.step, sent(e)) for e in requests if sent(e) not in listed.get(e.step or "discovery", set())]
    assert missing == []
    assert any(e.data["path"].endswith("/_mget") for e in requests)  # the sample of documents was compared
    store = StateStore(state_file)
    last_run, dag = store.run, store.get_json("dag")
    store.close()
    assert last_run == 2 and [e for e in events(state_file, run=last_run) if e.data["method"] in MUTATING] == []

    # the DAG formats describe the DAG the executor ran
    for parse, fmt in ((parse_mermaid, "mermaid"), (parse_dot, "dot")):
        nodes, edges = parse(outputs[fmt].stdout)
        assert nodes == set(dag["nodes"]) and edges == {tuple(edge) for edge in dag["edges"]}

    # the JSON-lines event log mirrors the state's events
    journal = [json.loads(line) for line in (tmp_path / "plan.events.jsonl").read_text().splitlines()]
    assert [(j["kind"], j["step"]) for j in journal] == [(e.kind, e.step) for e in events(state_file, kind=None)]

    # the report: per index the documents on both sides, equal to the source's
    data = json.loads(outputs["report json"].stdout)
    assert data["status"] == "done" and {i["target"] for i in data["indices"]} == {
        "rvw-logs-2026.11.01", "rvw-logs-2026.11.02", "rvw-orders",
    }  # fmt: skip
    assert all(i["source_docs"] == i["destination_docs"] == 400 and i["validated"] for i in data["indices"])
    assert "| `orders` | `rvw-orders` | 400 | 400 |" in outputs["report"].stdout

    # no secret anywhere: outputs, state file, event log, saved plan
    for name, result in outputs.items():
        for secret in (*CANARIES.values(), bed.secret):
            assert secret not in result.stdout + result.stderr, name
    for path in tmp_path.iterdir():
        data_bytes = path.read_bytes()
        for secret in (*CANARIES.values(), bed.secret):
            assert secret.encode() not in data_bytes, path.name

    # validation catches documents and a mapping changed on the destination
    destination = bed.client("8")
    touch = "".join(f'{{"update":{{"_id":"{n}"}}}}\n{{"doc":{{"rvw_touched":1}}}}\n' for n in range(400))
    destination.request("POST", build_path("rvw-orders", "_bulk", params={"refresh": True}), touch.encode())
    destination.close()
    migration = open_migration(saved, environ={**os.environ, **bed.environment()})
    try:
        step = describe_steps(migration, migration.saved_plan())["validate[rvw-orders]"]
        with pytest.raises(StepFailed) as failed:
            step.observe()
    finally:
        migration.close()
    assert "mappings differ at properties.rvw_touched" in str(failed.value)
    assert "sampled documents differ" in str(failed.value)


def test_a_saved_plan_is_refused_when_the_destination_changed(bed, tmp_path):
    plan = bed.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="rvc",
        snapshot={"indices": ["orders"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "rvc-$1"},
    )
    saved = tmp_path / "reviewed.json"
    cli(bed, "plan", str(plan), "--out", str(saved))
    destination = bed.client("8")
    destination.request("PUT", "/rvc-orders")
    try:
        result = cli(bed, "apply", str(saved), "--yes", check=False)
    finally:
        destination.request("DELETE", "/rvc-orders")
        destination.close()
    assert result.returncode == 3, result.stderr
    assert "changed since the plan was saved" in result.stderr and "'rvc-orders', which already exists" in result.stderr
    assert [sent(e) for e in events(tmp_path / "plan.state.db") if e.data["method"] in MUTATING] == []


def test_step_by_step_through_a_terminal_sends_nothing_before_each_answer(bed, tmp_path):
    plan = bed.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="rvs",
        snapshot={"indices": ["orders"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "rvs-$1"},
    )
    state_file = tmp_path / "plan.state.db"
    env = {**os.environ, **bed.environment()}
    transcript = io.StringIO()

    def drive(args: list[str], answer) -> tuple[list[str], int]:
        child = pexpect.spawn(sys.executable, ["-m", "migrator", *args], env=env, encoding="utf-8", timeout=120)
        child.logfile_read = transcript
        asked = []
        while child.expect([r"next step: (\S+): ", pexpect.EOF]) == 0:
            step = child.match.group(1)
            child.expect(r"Send these requests\? ")
            before = events(state_file) if state_file.exists() else []
            assert [e for e in before if e.step == step] == [], f"{step} sent a request before the answer"
            time.sleep(0.5)  # nothing is sent while the question waits
            assert len(events(state_file) if state_file.exists() else []) == len(before)
            asked.append(step)
            child.sendline(answer(step))
        child.close()
        return asked, child.exitstatus

    first, code = drive(
        ["apply", str(plan), "--step-by-step", "--yes", "--poll", "0.5"],
        lambda step: "n" if step.startswith("validate[") else "y",
    )
    assert code == 3, transcript.getvalue()
    assert first[0] == "preflight" and first[-1] == "validate[rvs-orders]" and len(first) == 10  # with restore.batch[1]
    requested = {e.step for e in events(state_file)}
    # storage.verify reads the bucket; the waits, and the restore of an index its batch's request answered,
    # may learn the end from the held requests alone
    quiet = {"storage.verify", "snapshot.wait", "restore[rvs-orders]", "recovery[rvs-orders]"}
    assert set(first[:-1]) - quiet <= requested and "validate[rvs-orders]" not in requested

    second, code = drive(["resume", str(plan), "--step-by-step"], lambda step: "a")
    assert code == 0 and second == ["validate[rvs-orders]"]
    assert "validate[rvs-orders]" in {e.step for e in events(state_file)}


def test_until_only_and_resume_then_status_watch_and_report(bed, tmp_path):
    plan = bed.write_plan(
        tmp_path,
        "7.10",
        "8",
        name="rvu",
        snapshot={"indices": ["orders"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "rvu-$1"},
    )

    def steps() -> dict[str, str]:
        report = json.loads(cli(bed, "status", str(plan), "--json").stdout)
        return {step["step"]: step["status"] for step in report["steps"]} | {"": report["status"]}

    paused = cli(bed, "apply", str(plan), "--yes", "--until", "snapshot.wait", "--poll", "0.5")
    assert "paused as asked" in paused.stdout
    assert steps() == {
        "": "paused", "preflight": "done", "repository.source": "done", "snapshot.create": "done",
        "snapshot.wait": "done", "storage.verify": "pending", "repository.destination": "pending",
        "restore.batch[1]": "pending", "restore[rvu-orders]": "pending", "recovery[rvu-orders]": "pending",
        "validate[rvu-orders]": "pending",
    }  # fmt: skip
    early = cli(bed, "resume", str(plan), "--only", "restore", check=False)
    assert early.returncode == 3 and "first finish repository.destination" in early.stderr
    unknown = cli(bed, "resume", str(plan), "--until", "restroe", check=False)
    assert unknown.returncode == 2 and "no such step" in unknown.stderr

    cli(bed, "resume", str(plan), "--until", "repository.destination", "--poll", "0.5")
    cli(bed, "resume", str(plan), "--only", "restore[rvu-orders]", "--poll", "0.5")
    assert steps()["restore[rvu-orders]"] == "done" and steps()["recovery[rvu-orders]"] == "pending"
    cli(bed, "resume", str(plan), "--poll", "0.5")
    assert set(steps().values()) == {"done"}

    watched = cli(bed, "status", str(plan), "--watch", "--interval", "0.2", timeout=30)
    assert "validate[rvu-orders]" in watched.stdout and "done" in watched.stdout
    report = json.loads(cli(bed, "report", str(plan), "--format", "json").stdout)
    assert report["indices"][0]["source_docs"] == report["indices"][0]["destination_docs"] == 400
    assert all(step["seconds"] is not None for step in report["steps"])
    # every executor run recorded its own CPU: some for starting (Python, imports), some while running
    runs = [run["run"] for run in report["cpu"]]
    assert len(runs) >= 4 and runs == sorted(set(runs))
    assert all(run["startup_cpu_s"] > 0.05 and 0 < run["run_cpu_s"] < run["run_wall_s"] for run in report["cpu"])


def test_step_by_step_asks_for_the_cutover_on_its_own(bed, tmp_path):
    """Even after `a` (all the rest), the cutover's write block waits for its own answer; `n` stops before it."""
    client = bed.client("7.17")
    client.request("PUT", "/rvc-live", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    client.request("POST", "/rvc-live/_doc?refresh=true", {"n": 1}, ok=(201,))
    client.close()
    plan = bed.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="rvc",
        snapshot={"indices": ["rvc-live"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
        cutover={"enabled": True},
    )
    env = {**os.environ, **bed.environment()}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "migrator", "apply", str(plan), "--step-by-step", "--yes", "--poll", "0.5"],
        env=env,
        encoding="utf-8",
        timeout=120,
    )
    child.expect(r"next step: preflight: ")
    child.expect(r"Send these requests\? ")
    child.sendline("a")
    child.expect(r"PHASE TWO, the cutover")
    child.expect(r"next step: cutover.block: ")
    child.expect(r"Send these requests\? ")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    client = bed.client("7.17")
    settings = client.get("/rvc-live/_settings/index.blocks.write?flat_settings=true")
    client.close()
    assert settings == {}  # never blocked
    client = bed.client("7.17")
    client.request("DELETE", "/rvc-live")  # the shared source keeps only the seeded indices
    client.close()
