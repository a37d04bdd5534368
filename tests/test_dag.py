"""Typed names of the DAG: node ids parse and print back, and a state file an earlier migrator wrote reads the same."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from migrator.dag import NodeId, RunStatus, StepKind, StepStatus
from migrator.discovery import Facts
from migrator.migration.readback import report, status
from migrator.planner import build_plan
from migrator.recorded_run import own_plan_options
from migrator.spec import parse_plan
from migrator.state import StateStore
from migrator.steps import STEP_KINDS

WRITTEN_BY_MAIN = Path(__file__).parent / "fixtures" / "state" / "main-e5c10a0"


@pytest.mark.parametrize(
    ("text", "name", "target"),
    [
        ("snapshot.wait", "snapshot.wait", None),
        ("restore[orders-v2]", "restore", "orders-v2"),
        ("cutover.recovery[logs-2024.01.02]", "cutover.recovery", "logs-2024.01.02"),
        ("validate[.kibana_1]", "validate", ".kibana_1"),
    ],
)
def test_node_ids_parse_and_print_back(text, name, target):
    node = NodeId.parse(text)
    assert (node.name, node.target) == (name, target)
    assert str(node) == text
    assert node.in_cutover is text.startswith("cutover.")


@pytest.mark.parametrize("text", ["", "restore[", "restore[]", "restore[a]b", "Restore[a]", "restore[a[b]]"])
def test_a_malformed_node_id_is_refused(text):
    with pytest.raises(ValueError, match="not a step id"):
        NodeId.parse(text)


def test_every_step_class_has_its_kind():
    assert set(STEP_KINDS) == set(StepKind)
    assert all(isinstance(kind, StepKind) for kind in STEP_KINDS)


def test_a_state_file_written_by_main_reads_the_same(tmp_path):
    """The fixture was written by commit e5c10a0's code (tests/fixtures/state/make_main_state.py): its ids,
    statuses and records read with today's names and give the same status, report and ownership."""
    for name in ("plan.state.db", "plan.events.jsonl"):
        shutil.copy(WRITTEN_BY_MAIN / name, tmp_path / name)
    path = tmp_path / "plan.state.db"
    state = StateStore(path)
    try:
        nodes = state.get_json("nodes")
        assert [str(NodeId.parse(node)) for node in nodes] == nodes
        assert state.statuses() == {
            "preflight": StepStatus.DONE,
            "repository.source": StepStatus.DONE,
            "snapshot.create": StepStatus.DONE,
            "snapshot.wait": StepStatus.DONE,
            "storage.verify": StepStatus.DONE,
            "repository.destination": StepStatus.DONE,
            "restore[a]": StepStatus.DONE,
            "recovery[a]": StepStatus.DONE,
            "restore[b]": StepStatus.ACTING,
            "validate[a]": StepStatus.FAILED,
        }
        assert RunStatus(state.get_meta("status")) is RunStatus.FAILED
        options = own_plan_options(state, "repo")
        assert options["owned_targets"] == {"a", "b"} and options["snapshot_name"] == "snap"
        assert options["owned_snapshots"] == {"snap": "uuid-snap"}
        replanned = build_plan(
            parse_plan((WRITTEN_BY_MAIN / "plan.yaml").read_text()),
            Facts.from_json(state.get_json("facts")),
            datetime.fromisoformat(state.get_meta("started")),
        )
        # The recorded facts plan the same moves. (Not the same hash: a spec field added since, with its
        # default, changes it, and `resume` then asks for --replan, as for a plan saved by another version.)
        assert [vars(move) for move in replanned.moves] == state.get_json("moves")
    finally:
        state.close()

    current = status(path)
    assert current["status"] == RunStatus.FAILED and current["runs"] == 1 and not current["live"]
    by_step = {step["step"]: step for step in current["steps"]}
    assert by_step["validate[a]"]["status"] == StepStatus.FAILED
    assert by_step["cutover.switch"]["status"] == StepStatus.PENDING
    assert by_step["restore[b]"]["progress"]["completed"] == 1024
    assert by_step["recovery[a]"]["seconds"] == 1.5

    data = report(path)
    index_a = next(index for index in data["indices"] if index["source"] == "a")
    assert index_a["recovered_bytes"] == 4096 and not index_a["validated"]
    steps = {step["step"]: step for step in data["steps"]}
    assert steps["restore[b]"]["retries"] == 1 and steps["validate[a]"]["error"].startswith("a: 99 documents")
    assert data["cpu"] == [{"run": 1, "startup_cpu_s": 0.4, "run_cpu_s": 0.25, "run_wall_s": 12.5}]
    lines = [json.loads(line) for line in (tmp_path / "plan.events.jsonl").read_text().splitlines()]
    assert {line["kind"] for line in lines} >= {"request", "response", "step.done", "step.failed"}
