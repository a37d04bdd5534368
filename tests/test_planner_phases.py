"""The planner's two phases and cross-region nodes, and the phase a run may execute: pure, from
synthetic facts and a throwaway state file."""

from __future__ import annotations

import networkx as nx
import pytest

from migrator.errors import NeedsAttention, UsageError
from migrator.planner import BULK, CUTOVER, build_plan, cutover_snapshot_name, phase_nodes
from migrator.selection import phase_selection
from migrator.spec import PlanError, parse_plan
from migrator.state import StateStore
from tests.test_planner import BASE, WHEN, facts, spec

TWO_PHASES = """
snapshot: {indices: ["logs-a", "orders"]}
cutover: {enabled: true}
finish: {aliases: {logs: ["logs-a"]}, delete_snapshot: true}
"""


def test_a_two_phase_plan_runs_the_cutover_after_every_validation():
    plan = build_plan(spec(TWO_PHASES), facts(["logs-a", "orders"]), WHEN, snapshot_name="snap")
    graph = plan.graph
    assert nx.is_directed_acyclic_graph(graph)
    bulk, cutover = phase_nodes(graph, BULK), phase_nodes(graph, CUTOVER)
    assert "validate[orders]" in bulk and "cutover.block" in cutover and "finish" in cutover
    assert set(graph.predecessors("cutover.block")) == {"validate[logs-a]", "validate[orders]"}
    order = list(nx.topological_sort(graph))
    for target in ("logs-a", "orders"):
        chain = ["cutover.storage.verify", f"cutover.restore[{target}]", f"cutover.recovery[{target}]"]
        chain += [f"cutover.validate[{target}]", "cutover.switch", "finish"]
        assert [order.index(node) for node in chain] == sorted(order.index(node) for node in chain)
        assert graph.nodes[f"validate[{target}]"]["params"]["counts"] == "informational"
        assert graph.nodes[f"cutover.validate[{target}]"]["params"]["counts"] == "exact"
    assert graph.nodes["cutover.snapshot.create"]["params"]["snapshot"] == "snap-cutover"
    assert graph.nodes["finish"]["params"]["cutover_snapshot"] == "snap-cutover"
    # nothing of the cutover comes before the bulk copy is validated
    assert not any(nx.has_path(graph, node, "validate[orders]") for node in cutover)


def test_each_cutover_attempt_takes_its_own_incremental_snapshot():
    again = build_plan(spec(TWO_PHASES), facts(["logs-a", "orders"]), WHEN, snapshot_name="snap", cutover_attempt=2)
    assert again.graph.nodes["cutover.snapshot.wait"]["params"]["snapshot"] == cutover_snapshot_name("snap", 2)
    assert cutover_snapshot_name("snap", 2) == "snap-cutover-2"


def test_a_one_phase_plan_validates_exactly_and_switches_aliases_in_finish():
    plan = build_plan(spec('snapshot: {indices: ["orders"]}'), facts(["orders"]), WHEN)
    assert phase_nodes(plan.graph, CUTOVER) == set()
    assert plan.graph.nodes["validate[orders]"]["params"]["counts"] == "exact"


REPLICATED = """
storage: {kind: oss, endpoint: "http://127.0.0.1:1", bucket: src, base_path: repo, region: cn-hangzhou,
          access_key_id: "${K}", access_key_secret: "${S}"}
snapshot: {indices: ["orders"]}
replication:
  method: %s
  storage: {kind: oss, endpoint: "http://127.0.0.1:1", bucket: dst, base_path: repo, region: cn-shanghai,
            access_key_id: "${K}", access_key_secret: "${S}"}
"""


def replicated(method: str, extra: str = "") -> str:
    base = BASE.replace("storage: {kind: local, path: /tmp/repo}\n", "")
    base = base.replace(
        "settings: {location: /tmp/repo}",
        "settings: {location: /tmp/repo}, destination_settings: {location: /tmp/replica}",
    )
    return base + REPLICATED % method + extra


@pytest.mark.parametrize(("method", "kind"), [("oss", "replication"), ("copy", "replica.copy")])
def test_cross_region_nodes_sit_between_the_verification_and_the_destination(method, kind):
    plan = build_plan(parse_plan(replicated(method, "cutover: {enabled: true}\n")), facts(["orders"]), WHEN)
    graph = plan.graph
    assert list(graph.successors("storage.verify")) == ["replication"]
    assert graph.nodes["replication"]["kind"] == kind
    assert list(graph.successors("replication")) == ["replica.verify"]
    assert list(graph.successors("replica.verify")) == ["repository.destination"]
    assert list(graph.successors("cutover.storage.verify")) == ["cutover.replication"]
    assert list(graph.successors("cutover.replica.verify")) == ["cutover.restore[orders]"]


def test_replication_plans_that_cannot_work_are_refused_naming_the_field():
    text = replicated("oss").replace(", destination_settings: {location: /tmp/replica}", "")
    with pytest.raises(PlanError) as refused:
        parse_plan(text)
    assert refused.value.problems[0].field.endswith("destination_settings.location")
    with pytest.raises(PlanError) as refused:
        parse_plan(replicated("oss").replace("base_path: repo, region: cn-shanghai", "base_path: other, region: x"))
    assert "replication.storage.base_path" in refused.value.problems[0].field
    local_source = replicated("oss").replace(
        'storage: {kind: oss, endpoint: "http://127.0.0.1:1", bucket: src, base_path: repo, region: cn-hangzhou,\n'
        '          access_key_id: "${K}", access_key_secret: "${S}"}',
        "storage: {kind: local, path: /tmp/repo}",
    )
    with pytest.raises(PlanError) as refused:
        parse_plan(local_source)
    assert "method: copy" in refused.value.problems[0].fix
    parse_plan(local_source.replace("method: oss", "method: copy"))  # a copy reads any storage


@pytest.fixture
def store(tmp_path):
    state = StateStore(tmp_path / "state.db")
    yield state
    state.close()


def test_apply_runs_the_bulk_copy_and_the_cutover_only_once_it_is_done(store):
    graph = build_plan(spec(TWO_PHASES), facts(["logs-a", "orders"]), WHEN, snapshot_name="snap").graph
    assert phase_selection(graph, store.statuses(), None, resuming=False) == phase_nodes(graph, BULK)
    with pytest.raises(NeedsAttention, match="bulk copy is not finished"):
        phase_selection(graph, store.statuses(), CUTOVER, resuming=False)
    for node in phase_nodes(graph, BULK):
        store.checkpoint(node, "done")
    assert phase_selection(graph, store.statuses(), CUTOVER, resuming=False) is None
    assert phase_selection(graph, store.statuses(), None, resuming=True) == phase_nodes(graph, BULK)
    store.checkpoint("cutover.block", "acting")
    assert phase_selection(graph, store.statuses(), None, resuming=True) is None  # a cutover that began is finished
    assert phase_selection(graph, store.statuses(), "all", resuming=False) is None


def test_a_plan_without_cutover_has_one_phase(store):
    graph = build_plan(spec('snapshot: {indices: ["orders"]}'), facts(["orders"]), WHEN).graph
    assert phase_selection(graph, store.statuses(), None, resuming=False) is None
    with pytest.raises(UsageError, match="cutover.enabled"):
        phase_selection(graph, store.statuses(), CUTOVER, resuming=False)
