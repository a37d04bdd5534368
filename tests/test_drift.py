"""Drift: a finished plan observed again (read-only) and what `--redo` forgets, with fake steps."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import networkx as nx
import pytest

from migrator.clients.tap import RequestTap
from migrator.drift import drift_record, redo_named, redo_steps
from migrator.executor import Executor
from migrator.planner import FINISH
from migrator.redact import Redactor
from migrator.state import StateStore
from migrator.steps.base import ConsoleRequest, Observation, Step


class TargetStep(Step):
    """A lasting step whose work is `world.present[node]`; it counts its acts."""

    kind = "restore"
    title = "fake restore"
    lasting = True

    def __init__(self, node_id, params, world):
        super().__init__(node_id, params, world.ctx)
        self.world = world

    def describe(self):
        return [ConsoleRequest("destination", "POST", self.id)]

    def observe(self):
        present = self.world.present.get(self.id, False)
        return Observation(present, summary=f"{self.id} {'there' if present else 'does not exist'}")

    def act(self):
        self.world.acts.append(self.id)
        self.world.present[self.id] = True


class ValidateStep(TargetStep):
    kind = "validate"


def graph_of(targets):
    graph = nx.DiGraph()
    for target in targets:
        graph.add_node(f"restore[{target}]", kind="restore", params={"target": target})
        graph.add_node(f"validate[{target}]", kind="validate", params={"target": target})
        graph.add_edge(f"restore[{target}]", f"validate[{target}]")
        graph.add_node(FINISH, kind="finish", params={})
        graph.add_edge(f"validate[{target}]", FINISH)
    return graph


def run(tmp_path, graph, world):
    state = StateStore(tmp_path / "state.db")
    state.begin_run()
    steps = {
        node: (ValidateStep if kind == "validate" else TargetStep)(node, graph.nodes[node]["params"], world)
        for node, kind in graph.nodes(data="kind")
    }
    redactor = Redactor([])
    try:
        return Executor(graph, world.ctx, state, RequestTap(), redactor, steps=steps).run()
    finally:
        state.close()


def test_a_finished_plan_reports_the_target_gone_and_acts_on_nothing(tmp_path):
    world = SimpleNamespace(present={}, acts=[], ctx=SimpleNamespace(cancel_requested=lambda: False))
    world.lock = threading.Lock()
    graph = graph_of(["a", "b"])
    assert run(tmp_path, graph, world).ok and len(world.acts) == 5
    world.acts.clear()
    assert run(tmp_path, graph, world).ok  # nothing changed: complete, nothing sent
    world.present["restore[b]"] = False  # someone deleted target b
    result = run(tmp_path, graph, world)
    assert [d.step for d in result.drift] == ["restore[b]"]  # validate[b] follows from it: not listed
    assert "restore[b] does not exist" in result.drift[0].what
    assert not result.ok and world.acts == []


def test_redo_forgets_the_step_and_what_follows_it_for_the_same_target_and_the_finish():
    graph = graph_of(["a", "b"])
    assert redo_steps(graph, {"restore[b]"}) == {"restore[b]", "validate[b]", FINISH}
    assert redo_steps(graph, {"validate[a]"}) == {"validate[a]", FINISH}


def test_redo_of_a_batched_restore_forgets_its_batch_so_the_batch_restores_it_again():
    # Before: only restore[b] was forgotten, so the redone index was restored by a request of its own, one per index
    # (`--redo restore` of 200 batched indices sent 200 restores).
    graph = graph_of(["a", "b", "c"])
    graph.add_node("restore.batch[1]", kind="restore.batch", params={"members": []})
    for target in ("a", "b", "c"):
        graph.add_edge("restore.batch[1]", f"restore[{target}]")
    assert redo_steps(graph, {"restore[b]"}) == {"restore.batch[1]", "restore[b]", "validate[b]", FINISH}
    assert redo_steps(graph, {"validate[b]"}) == {"validate[b]", FINISH}  # no restore named: the batch stays done


@pytest.mark.parametrize("drifted", [range(100, 400), range(1, 400, 2)], ids=["a-range", "scattered"])
def test_the_printed_redo_of_300_drifted_indices_redoes_exactly_them(tmp_path, drifted):
    """What a drift report prints (`redo_argument`) and `--redo` then names (`redo_named`, given the drift record
    the run keeps) restores again exactly the drifted targets: none more, none less."""
    targets = [f"logs-{number:03d}" for number in range(400)]
    world = SimpleNamespace(present={}, acts=[], ctx=SimpleNamespace(cancel_requested=lambda: False))
    graph = graph_of(targets)
    assert run(tmp_path, graph, world).ok
    gone = {f"restore[{targets[number]}]" for number in drifted}
    for node in gone:
        world.present[node] = False
    result = run(tmp_path, graph, world)
    assert {d.redo_step for d in result.drift} == gone
    argument = drift_record(graph, result.drift)["redo"]
    assert len(argument) <= 200
    state = StateStore(tmp_path / "state.db")
    try:
        state.reset(sorted(redo_steps(graph, redo_named(graph, argument, drift_record(graph, result.drift)))))
    finally:
        state.close()
    world.acts.clear()
    assert run(tmp_path, graph, world).ok
    assert sorted(world.acts) == sorted(gone)  # the fake validation and finish see their work still there
