"""Planner side, pure: which steps of a planned DAG a run may execute (`--until`, `--only`, `--redo`, phases).

Place in the flow: planner side, pure (no I/O): given the DAG and the status of each step as the
state file records it (`{node id: "done" | "acting" | ...}`), the set of nodes to run, or None for
all. Raises `UsageError` for a step name the plan does not have and `NeedsAttention` for a selection
that would run a step before what it needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import networkx as nx

from migrator.dag import StepKind, StepStatus
from migrator.errors import NeedsAttention, UsageError
from migrator.planner import BULK, CUTOVER, phase_nodes


def steps_named(graph: nx.DiGraph, name: str, option: str) -> set[str]:
    """The nodes a step name designates: one node id (`restore[orders]`), every node of a kind (`restore`), the
    node ids a pattern matches (`*` any text: `restore[logs-2024-*]`), or a comma list of these (what a drift
    report's `--redo` names). Raises UsageError naming a part that designates no step."""
    nodes: set[str] = set()
    for part in (item.strip() for item in name.split(",")):
        matches = re.compile(".*".join(map(re.escape, part.split("*")))).fullmatch
        found = {node for node, kind in graph.nodes(data="kind") if part in (node, kind) or matches(node)}
        if not found:
            known = ", ".join(nx.topological_sort(graph))
            raise UsageError(f"{option} {part}: no such step in this plan; steps: {known}")
        nodes |= found
    return nodes


def selection(graph: nx.DiGraph, statuses: Mapping[str, str], until: str | None, only: str | None) -> set[str] | None:
    """The steps this run may execute: all (None), up to and including `until`, or `only` (whose predecessors
    `statuses`, node id -> checkpoint status, must say done)."""
    if until is not None and only is not None:
        raise UsageError("--until and --only exclude each other")
    if until is not None:
        named = steps_named(graph, until, "--until")
        return set().union(*(nx.ancestors(graph, node) | {node} for node in named))
    if only is not None:
        named = steps_named(graph, only, "--only")
        # A restore in a batch is sent by its batch (restoring every member not yet restored): it runs too.
        named |= {
            pred
            for node in named
            for pred in graph.predecessors(node)
            if graph.nodes[pred]["kind"] == StepKind.RESTORE_BATCH
        }
        done = {step for step, status in statuses.items() if status == StepStatus.DONE}
        missing = sorted({pred for node in named for pred in graph.predecessors(node)} - done - named)
        if missing:
            raise NeedsAttention(f"--only {only}: first finish {', '.join(missing)} (e.g. with --until)")
        return named
    return None


def phase_selection(
    graph: nx.DiGraph, statuses: Mapping[str, str], phase: str | None, resuming: bool
) -> set[str] | None:
    """The steps of the phase this run may execute (None: all of them); `statuses`: node id -> checkpoint status.

    A plan without a cutover has one phase. With one, `apply` runs the bulk copy only; `--phase cutover`
    runs the cutover once the bulk copy is done (never before: the freeze would last the whole copy);
    `resume` continues the cutover when it began, else the bulk copy; `--phase all` (step by step, where
    the cutover waits for an answer anyway) runs both."""
    cutover = phase_nodes(graph, CUTOVER)
    if not cutover:
        if phase == CUTOVER:
            raise UsageError("--phase cutover: this plan has no cutover; set cutover.enabled: true in the plan")
        return None
    if phase == "all":
        return None
    if phase == CUTOVER:
        left = sorted(node for node in phase_nodes(graph, BULK) if statuses.get(node) != StepStatus.DONE)
        if left:
            raise NeedsAttention(
                f"the bulk copy is not finished ({', '.join(left[:5])}{' ...' if len(left) > 5 else ''} left): "
                "finish it with `migrator apply PLAN` (or resume) first; the cutover blocks writes only after it"
            )
        return None
    if phase is None and resuming and any(node in cutover for node in statuses):
        return None
    return phase_nodes(graph, BULK)
