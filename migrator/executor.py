"""The executor: runs the plan's DAG in topological order, independent steps in parallel.

For each ready step: skip it when its checkpoint says done; else observe the real clusters and
bucket, record an `acting` checkpoint, act only when nothing is under way already, wait, and
record `done`. Transient failures (as `migrator.errors` classifies them: overload, connection
errors, storage faults) are retried with backoff; anything else stops the run cleanly: steps in flight
finish their current request, nothing new starts, and `resume` picks up from the checkpoints.
Every request sent to a cluster is recorded in the event log, redacted. A run may be limited to
some steps (`selected`), and a `gate` may be asked before each step sends anything (step by step).
A running step may let some of its successors start before it is done (`EarlyReleases`: a restore batch
releases the members it saw restored while its held request still runs); its own checkpoint, and
everything for steps that release nothing, is as above.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from migrator import failpoints
from migrator.clients.es import Request
from migrator.clients.tap import RequestTap
from migrator.dag import StepStatus
from migrator.drift import Drift, find_drift
from migrator.errors import Cure, MigratorError
from migrator.redact import Redactor
from migrator.state import StateStore
from migrator.steps import STEP_KINDS
from migrator.steps.base import Cancelled, Observation, Step, StepContext, StepFailed
from migrator.steps.handoffs import EarlyReleases

# A transient failure (as migrator.errors classifies it) is retried with backoff (2, 4, 8, 16 s, then every
# 30 s) until the pauses add up to RETRY_BUDGET_S: long enough for a node restart or a master election on
# a loaded cluster (a restart of one 8.x node took up to a minute on the 2-core test bed), short enough
# that an outage is reported within minutes. The pauses are counted, not the clock, so a test can fake them.
RETRY_BUDGET_S = 180.0
MUTATING = ("PUT", "POST", "DELETE")


@dataclass
class RunResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    cure: Cure = Cure.RESUME  # what continues after the failures: REPLAN when one of them needs a plan change
    cancelled: bool = False
    declined: str | None = None  # the step the gate refused
    not_run: list[str] = field(default_factory=list)  # steps left for a later run
    drift: list[Drift] = field(default_factory=list)  # done steps whose work is no longer there (all were done)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled and not self.drift


class RequestLog:
    """A listener of the migration's `RequestTap` (migrator.clients.tap): every request becomes a redacted
    `request` event tagged with its step, written before it is sent, and its answer a `response` event."""

    def __init__(self, state: StateStore, redactor: Redactor) -> None:
        self.state = state
        self.redactor = redactor

    def __call__(self, cluster: str, request: Request, status: int | None, step: str | None = None) -> None:
        data: dict[str, object] = {"cluster": cluster, "method": request.method, "path": request.path}
        if status is not None:
            data["status"] = status
        elif request.body is not None and not isinstance(request.body, bytes):
            data["body"] = request.body
        kind = "request" if status is None else "response"
        self.state.event(
            kind, self.redactor.text(f"{request.method} {request.path}"), step=step, data=self.redactor.data(data)
        )


def build_steps(graph: nx.DiGraph, ctx: StepContext) -> dict[str, Step]:
    return {node: STEP_KINDS[attrs["kind"]](node, attrs["params"], ctx) for node, attrs in graph.nodes(data=True)}


def is_transient(exc: Exception) -> bool:
    """Whether trying the step again later may succeed by itself (see `migrator.errors`)."""
    return isinstance(exc, MigratorError) and exc.transient


def cure_of(exc: Exception) -> Cure:
    """What continues after this failure: `resume --replan` when the fix is a plan change, else `resume`."""
    return exc.cure if isinstance(exc, MigratorError) else Cure.RESUME


class ReadySet:
    """The steps whose predecessors are all finished, kept as steps finish (each edge is counted once):
    the cost of a run grows with the graph, not with its square. Steps pop in `order` (topological, by
    lane), so earlier work (an index's recovery and validation) goes before later work. A step may name
    a `slots` group in its node (the restore batches do): each group runs up to `parallel` steps of its
    own, so the restores keep going while the steps of restored indices run beside them."""

    def __init__(self, graph: nx.DiGraph, order: list[str], finished: set[str], selected: set[str] | None) -> None:
        self.graph = graph
        self.order = order
        self.rank = {node: position for position, node in enumerate(order)}
        self.selected = selected
        self.blocking = {
            node: sum(1 for pred in graph.predecessors(node) if pred not in finished)
            for node in order
            if node not in finished
        }
        self.heaps: dict[str, list[int]] = {}
        self.released: set[tuple[str, str]] = set()  # edges counted before their step finished
        self.done: set[str] = set(finished)
        for node, count in self.blocking.items():
            if count == 0 and self._wanted(node):
                self._push(node)

    def _wanted(self, node: str) -> bool:
        return self.selected is None or node in self.selected

    def group(self, node: str) -> str:
        return str(self.graph.nodes[node].get("slots", "steps"))

    def _push(self, node: str) -> None:
        heapq.heappush(self.heaps.setdefault(self.group(node), []), self.rank[node])

    def pop(self, full: set[str] | frozenset[str] = frozenset()) -> str | None:
        """The earliest ready step of a group not `full` (it is not handed out again); None when there is none."""
        heads = [(heap[0], group) for group, heap in self.heaps.items() if heap and group not in full]
        if not heads:
            return None
        return self.order[heapq.heappop(self.heaps[min(heads)[1]])]

    def finished(self, node: str) -> None:
        """`node` is done: its successors with no other unfinished predecessor become ready."""
        self.done.add(node)
        for successor in self.graph.successors(node):
            if (node, successor) not in self.released:
                self._count(successor)

    def release(self, node: str, successor: str) -> bool:
        """The edge `node` -> `successor` is satisfied before `node` finished (`node` released it early): counted
        now, once (not again when `node` finishes). False, and nothing changes, when it is not an edge of the
        graph, `node` finished already, or it was released before."""
        edge = (node, successor)
        if node in self.done or edge in self.released or not self.graph.has_edge(node, successor):
            return False
        self.released.add(edge)
        self._count(successor)
        return True

    def _count(self, successor: str) -> None:
        """One more predecessor of `successor` is satisfied: it becomes ready when it was the last."""
        if successor not in self.blocking:
            return
        self.blocking[successor] -= 1
        if self.blocking[successor] == 0 and self._wanted(successor):
            self._push(successor)


class Executor:
    def __init__(
        self,
        graph: nx.DiGraph,
        ctx: StepContext,
        state: StateStore,
        tap: RequestTap,
        redactor: Redactor,
        *,
        parallel: int = 2,
        on_step: Callable[[str, str, str], None] | None = None,
        steps: dict[str, Step] | None = None,
        gate: Callable[[Step], bool] | None = None,
        selected: set[str] | None = None,
        releases: EarlyReleases | None = None,
    ) -> None:
        self.graph = graph
        self.ctx = ctx
        self.state = state
        self.tap = tap  # the clients' RequestTap: the executor says which step each thread works on
        self.redactor = redactor
        self.parallel = max(1, parallel)
        self.on_step = on_step or (lambda step, status, text: None)
        self.steps = steps if steps is not None else build_steps(graph, ctx)
        self.gate = gate
        self.selected = selected
        # where running steps release successors early (the steps' `ctx.releases`); None: none do
        self.releases = releases if releases is not None else EarlyReleases()
        self._stop = threading.Event()

    def run(self) -> RunResult:
        result = RunResult()
        checkpoints = self.state.checkpoints()
        finished = {node for node, cp in checkpoints.items() if cp.status == StepStatus.DONE and node in self.graph}
        if finished != set(self.graph):
            finished -= self._undone_behind_our_back(finished)
        result.skipped.extend(sorted(finished))
        order = list(nx.lexicographical_topological_sort(self.graph, key=self._lane))
        for node in order:
            if node in finished:
                self.on_step(node, "skipped", "already done (checkpoint)")
        wanted = set(self.graph) if self.selected is None else self.selected
        if wanted and wanted <= finished:
            result.drift = self._drift(wanted)
            return result
        ready = ReadySet(self.graph, order, finished, self.selected)
        groups = {ready.group(node) for node in order}
        running: dict[Future[str], str] = {}
        # Step by step (a gate) runs one step at a time, whatever its group.
        workers = self.parallel if self.gate is not None else self.parallel * len(groups)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="step") as pool:
            while True:
                while not self._stop.is_set() and len(running) < workers:
                    busy = Counter(ready.group(node) for node in running.values())
                    full = {group for group, count in busy.items() if count >= self.parallel}
                    node = ready.pop(full if self.gate is None else frozenset())
                    if node is None:
                        break
                    if self.gate is not None and not self.gate(self.steps[node]):
                        result.declined = node
                        self.state.event("step.declined", "not confirmed: the run stops before it", step=node)
                        self._stop.set()
                        break
                    running[pool.submit(self._run_step, node)] = node
                if not running:
                    break
                waited: list[Future[Any]] = [*running, self.releases.signal()]
                completed, _ = wait(waited, return_when=FIRST_COMPLETED)
                self._release(ready, set(running.values()))
                for future in [future for future in completed if future in running]:
                    node = running.pop(future)
                    try:
                        future.result()
                        finished.add(node)
                        ready.finished(node)
                        result.done.append(node)
                    except Cancelled:
                        result.cancelled = True
                        self._stop.set()
                    except Exception as exc:  # noqa: BLE001 - every failure is reported, none is lost
                        message = self.redactor.text(str(exc))
                        result.failed[node] = message
                        if cure_of(exc) is Cure.REPLAN:
                            result.cure = Cure.REPLAN
                        self.state.checkpoint(node, StepStatus.FAILED, {"error": message})
                        self.state.event("step.failed", message, step=node)
                        self.on_step(node, "failed", message)
                        self._stop.set()
        result.not_run = [node for node in order if node not in finished]
        return result

    def _release(self, ready: ReadySet, running: set[str]) -> None:
        """The successors running steps released early become ready (when nothing else holds them); an edge
        from a step that is not running (any more) is ignored: a step's finish counts its edges."""
        released: dict[str, list[str]] = {}
        for node, successor in self.releases.take():
            if node in running and ready.release(node, successor):
                released.setdefault(node, []).append(successor)
        for node, successors in released.items():
            text = f"{len(successors)} of its successors may start before it is done: {', '.join(successors)}"
            self.state.event("step.release", text, step=node, data={"successors": successors})

    def _drift(self, nodes: set[str]) -> list[Drift]:
        """Everything asked is done: look at the lasting steps again (read-only), record and report drift."""

        tag = self.tap.working_on
        found = find_drift(self.graph, self.steps, self.state.checkpoints(), nodes, tag, self.redactor.text)
        for drift in found:
            self.state.event("step.drift", drift.what, step=drift.step)
            self.on_step(drift.step, "drift", drift.what)
        return found

    def _lane(self, node: str) -> tuple[int, str]:
        """Order among steps ready at once: a restore batch and its indices' steps share a lane (the
        batch's number), so an earlier batch's indices are followed and validated before a later batch
        starts; steps without a lane (the shared chain, the cutover) come first when ready."""
        return (self.graph.nodes[node].get("lane", 0), node)

    def _undone_behind_our_back(self, finished: set[str]) -> set[str]:
        """Done steps of an unfinished run whose work is gone now (observed again), with what follows them."""
        redo: set[str] = set()
        for node in nx.topological_sort(self.graph):
            step = self.steps[node]
            if node not in finished or node in redo or not step.recheck:
                continue
            self.tap.working_on(node)
            try:
                observation = step.observe()
            except Exception as exc:  # noqa: BLE001 - the step runs again and reports it properly
                observation = Observation(False, summary=self.redactor.text(str(exc)))
            if not observation.done:
                message = f"done before, but not any more ({observation.summary}): doing it again"
                self.state.event("step.recheck", message, step=node)
                self.on_step(node, "recheck", message)
                redo |= {node} | nx.descendants(self.graph, node)
        return redo

    def _run_step(self, node: str) -> str:
        self.tap.working_on(node)
        step = self.steps[node]
        started = time.monotonic()
        paused, attempt = 0.0, 0
        while True:
            attempt += 1
            try:
                self._attempt(step)
                break
            except Cancelled:
                raise
            except Exception as exc:
                delay = min(30.0, 2.0**attempt)
                if paused + delay > RETRY_BUDGET_S or not is_transient(exc):
                    raise
                paused += delay
                budget = f"{paused:.0f} of {RETRY_BUDGET_S:.0f} s"
                message = self.redactor.text(f"transient failure, retry {attempt} in {delay:.0f} s ({budget}): {exc}")
                self.state.event("step.retry", message, step=node)
                self.on_step(node, "retry", message)
                self.ctx.sleep(delay)
        elapsed = time.monotonic() - started
        self.state.event("step.done", f"{node} done in {elapsed:.1f} s", step=node, data={"seconds": elapsed})
        return node

    def _attempt(self, step: Step) -> None:
        if self.ctx.cancel_requested():
            raise Cancelled("cancel requested")
        self.on_step(step.id, "start", step.title)
        observation = step.observe()
        self.state.event("step.observe", observation.summary, step=step.id, data={"done": observation.done})
        if observation.done:
            self.state.checkpoint(step.id, StepStatus.DONE, observation.detail)
            failpoints.hit(step.id, "done")
            self.on_step(step.id, "done", observation.summary)
            return
        previous = self.state.get_checkpoint(step.id)
        self.state.checkpoint(step.id, StepStatus.ACTING, observation.detail)
        failpoints.hit(step.id, "acting")
        if observation.in_progress:
            self.on_step(step.id, "attach", f"already under way ({observation.summary}): following it")
        else:
            if previous is not None and previous.status == StepStatus.ACTING:
                self.state.event("step.reattempt", "acting before, nothing under way now: acting again", step=step.id)
            step.act()
            failpoints.hit(step.id, "acted")
        detail = step.wait()
        after = step.observe()
        if not after.done:
            raise StepFailed(f"{step.id}: still not done after acting ({after.summary})", transient=True)
        self.state.checkpoint(step.id, StepStatus.DONE, {**detail, **after.detail})
        failpoints.hit(step.id, "done")
        self.on_step(step.id, "done", after.summary)
