"""The executor with fake steps: order, parallelism, checkpoints, retries, failures, cancel."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import networkx as nx

from migrator.clients.es import EsError, Request
from migrator.clients.tap import RequestTap
from migrator.executor import Executor
from migrator.redact import Redactor
from migrator.state import StateStore
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepFailed


class FakeStep(Step):
    kind = "fake"
    title = "fake"

    def __init__(self, node_id, world, *, fail_times=0, error=None, duration=0.0):
        super().__init__(node_id, {}, world.ctx)
        self.world = world
        self.fail_times = fail_times
        self.error = error
        self.duration = duration
        self.acts = 0

    def describe(self):
        return [ConsoleRequest("source", "PUT", self.id)]

    def observe(self):
        return Observation(self.id in self.world.done)

    def act(self):
        with self.world.lock:
            self.world.running += 1
            self.world.peak = max(self.world.peak, self.world.running)
            self.world.order.append(self.id)
        try:
            time.sleep(self.duration)
            self.acts += 1
            if self.acts <= self.fail_times:
                raise self.error
            self.world.done.add(self.id)
        finally:
            with self.world.lock:
                self.world.running -= 1


def make_world(tmp_path, graph, **step_options):
    world = SimpleNamespace(done=set(), order=[], running=0, peak=0, lock=threading.Lock(), cancel=False)
    world.ctx = SimpleNamespace(cancel_requested=lambda: world.cancel, sleep=lambda seconds=None: None)
    state = StateStore(tmp_path / "state.db")
    state.begin_run()
    redactor = Redactor(["s3cr3t-value"])
    steps = {node: FakeStep(node, world, **step_options.get(node, {})) for node in graph}
    executor = Executor(graph, world.ctx, state, RequestTap(), redactor, parallel=2, steps=steps)
    return world, state, executor, steps


def diamond() -> nx.DiGraph:
    graph = nx.DiGraph()
    nx.add_path(graph, ["a", "b", "d"])
    nx.add_path(graph, ["a", "c", "d"])
    return graph


def test_topological_order_parallel_branches_and_checkpoints(tmp_path):
    world, state, executor, _ = make_world(tmp_path, diamond(), b={"duration": 0.2}, c={"duration": 0.2})
    result = executor.run()
    assert result.ok and sorted(result.done) == ["a", "b", "c", "d"]
    assert world.order[0] == "a" and world.order[-1] == "d"
    assert world.peak == 2
    assert {step: cp.status for step, cp in state.checkpoints().items()} == dict.fromkeys("abcd", "done")


def test_done_checkpoints_are_skipped_without_observing(tmp_path):
    world, state, executor, steps = make_world(tmp_path, diamond())
    for node in "abcd":
        state.checkpoint(node, "done")
    result = executor.run()
    assert result.done == [] and sorted(result.skipped) == ["a", "b", "c", "d"]
    assert all(step.acts == 0 for step in steps.values())


def test_transient_errors_are_retried_permanent_ones_stop_the_run(tmp_path):
    transient = EsError("source", Request("PUT", "/x"), 503, "unavailable")
    world, state, executor, steps = make_world(tmp_path, diamond(), b={"fail_times": 2, "error": transient})
    assert executor.run().ok and steps["b"].acts == 3

    permanent = StepFailed("broken for good, token s3cr3t-value")
    world, state, executor, steps = make_world(tmp_path / "2", diamond(), c={"fail_times": 9, "error": permanent})
    result = executor.run()
    assert list(result.failed) == ["c"] and "s3cr3t-value" not in result.failed["c"] and "******" in result.failed["c"]
    assert "d" not in world.order and steps["c"].acts == 1
    assert state.get_checkpoint("c").status == "failed"


def test_a_transient_outage_is_retried_for_the_retry_budget_then_reported(tmp_path):
    # A node restarting on a loaded machine answered nothing for up to a minute; before, a step gave up after
    # three retries (14 s of pauses) and the run stopped (test_destination_restarted_during_recovery).
    refused = EsError("destination", Request("GET", "/x/_recovery"), None, "connection refused")
    world, state, executor, steps = make_world(tmp_path, diamond(), b={"fail_times": 9, "error": refused})
    assert executor.run().ok and steps["b"].acts == 10  # 180 s of pauses: 2, 4, 8, 16, then 30 s five times
    world, state, executor, steps = make_world(tmp_path / "2", diamond(), b={"fail_times": 10, "error": refused})
    result = executor.run()
    assert list(result.failed) == ["b"] and steps["b"].acts == 10
    assert "(180 of 180 s)" in state.events("step.retry")[-1].message


def test_cancel_stops_before_the_next_step(tmp_path):
    world, state, executor, _ = make_world(tmp_path, diamond(), a={"error": Cancelled("stop"), "fail_times": 1})
    result = executor.run()
    assert result.cancelled and world.order == ["a"]


def test_a_permanent_500_is_not_retried_and_asks_for_a_plan_change(tmp_path):
    refused = EsError(
        "destination",
        Request("POST", "/_snapshot/r/s/_restore"),
        500,
        "snapshot_restore_exception: [r:s/u] cannot restore index [a] because it cannot be upgraded",
    )
    world, state, executor, steps = make_world(tmp_path, diamond(), b={"fail_times": 9, "error": refused})
    result = executor.run()
    assert list(result.failed) == ["b"] and steps["b"].acts == 1  # today: 4 acts, each logged "transient"
    assert result.cure.value == "replan"
    assert state.events("step.retry") == []


class CountingGraph(nx.DiGraph):
    """A DAG that counts how often the executor asks for a step's predecessors."""

    asked = 0

    def predecessors(self, n):
        type(self).asked += 1
        return super().predecessors(n)


def test_the_ready_set_costs_grow_with_the_graph_not_its_square(tmp_path):
    graph = CountingGraph()
    nx.add_path(graph, ["preflight", "repository"])
    for index in range(300):
        nx.add_path(graph, ["repository", f"restore[{index}]", f"recovery[{index}]", f"validate[{index}]"])
    CountingGraph.asked = 0
    world, state, executor, _ = make_world(tmp_path, graph)
    result = executor.run()
    assert result.ok and len(result.done) == graph.number_of_nodes()
    # Each step's predecessors are counted once when the run starts: ~900 asks, not ~900 x 900.
    assert CountingGraph.asked <= 2 * graph.number_of_nodes()


def test_restore_batches_have_slots_of_their_own_so_restored_indices_are_validated_while_the_next_restores(tmp_path):
    graph = nx.DiGraph()
    for lane in (1, 2):
        nx.add_path(graph, ["repository", f"batch{lane}", f"restore{lane}", f"validate{lane}"])
        graph.nodes[f"batch{lane}"].update(lane=lane, slots="restores")
        graph.nodes[f"restore{lane}"]["lane"] = graph.nodes[f"validate{lane}"]["lane"] = lane
    world, state, executor, steps = make_world(tmp_path, graph)
    executor.parallel = 1
    batch_two_running, first_validated = threading.Event(), threading.Event()
    seen = {}

    def restore_one():  # the first index's steps begin only once the next batch restores beside them
        seen["batch2 ran beside restore1"] = batch_two_running.wait(10)

    def batch_two():
        batch_two_running.set()
        seen["validate1 done while batch2 ran"] = first_validated.wait(10)

    for node, act in (("restore1", restore_one), ("batch2", batch_two), ("validate1", first_validated.set)):
        steps[node].act = lambda act=act, node=node: (act(), world.done.add(node))
    assert executor.run().ok
    assert seen == {"batch2 ran beside restore1": True, "validate1 done while batch2 ran": True}


def releasing_world(tmp_path, graph):
    """A world whose executor and steps share one EarlyReleases (as a run's ctx.releases)."""
    from migrator.steps.handoffs import EarlyReleases

    world, state, executor, steps = make_world(tmp_path, graph)
    world.ctx.releases = executor.releases = EarlyReleases()
    return world, state, executor, steps


def test_a_running_step_releases_some_successors_which_run_to_their_end_before_it_is_done(tmp_path):
    """A batch that releases member a while it runs: a's steps run to their end before the batch is done; b (not
    released) and c (released, but waiting for another predecessor too) start only after the batch is done."""
    graph = nx.DiGraph()
    nx.add_path(graph, ["batch", "restore[a]", "validate[a]"])
    nx.add_path(graph, ["batch", "restore[b]", "validate[b]"])
    nx.add_path(graph, ["restore[b]", "other", "restore[c]"])  # c waits for b's step too
    graph.add_edge("batch", "restore[c]")
    graph.nodes["batch"]["slots"] = "restores"
    world, state, executor, steps = releasing_world(tmp_path, graph)
    a_validated = threading.Event()
    seen = {}

    def batch():
        # "validate[b]" is not an edge of the batch's: ignored. Released twice: counted once.
        world.ctx.releases.release("batch", ["restore[a]", "restore[c]", "validate[b]", "restore[a]"])
        deadline = time.monotonic() + 10
        while "validate[a]" not in {e.step for e in state.events("step.done")} and time.monotonic() < deadline:
            time.sleep(0.01)  # until a's validation is recorded done (a state; the deadline only ends the test)
        seen["a validated while the batch ran"] = a_validated.is_set()
        seen["started while the batch ran"] = sorted(set(world.order) - {"batch"})

    steps["batch"].act = lambda: (batch(), world.done.add("batch"))
    steps["validate[a]"].act = lambda: (world.order.append("validate[a]"), a_validated.set(), world.done.add("v"))
    steps["validate[a]"].observe = lambda: Observation("v" in world.done)
    result = executor.run()
    assert result.ok and sorted(result.done) == sorted(graph), result
    assert seen == {
        "a validated while the batch ran": True,
        "started while the batch ran": ["restore[a]", "validate[a]"],
    }
    done = [event.step for event in state.events("step.done")]
    assert done.index("validate[a]") < done.index("batch") < done.index("restore[b]")
    assert done.index("batch") < done.index("other") < done.index("restore[c]")
    released = state.events("step.release")
    assert [event.data["successors"] for event in released] == [["restore[a]", "restore[c]"]]
    assert {step: cp.status for step, cp in state.checkpoints().items()} == dict.fromkeys(graph, "done")


def test_a_released_step_that_fails_stops_the_run_and_the_releasing_step_still_ends_and_is_checkpointed(tmp_path):
    """A released member's failure stops the run as any failure does: nothing new starts (b, not released, stays
    for a later run), the releasing step runs to its end and records done; a resume runs only what is left."""
    graph = nx.DiGraph()
    nx.add_path(graph, ["batch", "restore[a]", "validate[a]"])
    nx.add_path(graph, ["batch", "restore[b]"])
    world, state, executor, steps = releasing_world(tmp_path, graph)
    failed = threading.Event()

    def batch():
        world.ctx.releases.release("batch", ["restore[a]"])
        failed.wait(10)

    steps["batch"].act = lambda: (batch(), world.done.add("batch"))

    def validate_a():
        failed.set()
        raise StepFailed("validate[a]: counts differ")

    steps["validate[a]"].act = validate_a
    result = executor.run()
    assert result.failed == {"validate[a]": "validate[a]: counts differ"}
    assert sorted(result.done) == ["batch", "restore[a]"] and sorted(result.not_run) == ["restore[b]", "validate[a]"]
    statuses = {step: cp.status for step, cp in state.checkpoints().items()}
    assert statuses == {"batch": "done", "restore[a]": "done", "validate[a]": "failed"}

    steps["validate[a]"].act = lambda: world.done.add("validate[a]")
    world.order.clear()
    state.begin_run()
    resumed = Executor(graph, world.ctx, state, RequestTap(), Redactor([]), steps=steps, releases=world.ctx.releases)
    again = resumed.run()
    assert again.ok and sorted(again.done) == ["restore[b]", "validate[a]"] and "batch" in again.skipped
    assert sorted(world.order) == ["restore[b]"]  # nothing done before is acted on again
