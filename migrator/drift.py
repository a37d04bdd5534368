"""Drift: a finished migration looked at again before it is called complete, and redone only when asked.

Place in the flow: when every step a run would execute already has a `done` checkpoint (applying or
resuming a finished plan, or a finished phase), the executor calls `find_drift` instead of reporting
"complete" at once. It asks each done step whose work is meant to last (`Step.lasting`: the restored
targets, their validated counts, the finish's replicas and aliases, the cutover's aliases) what is no
longer as the run left it (`Step.drift`, read-only: the same GETs the step's observation sends). The CLI
prints each drift with the command that redoes exactly that part (`migrator resume PLAN --redo STEP`)
and exits 1; nothing is changed (a changed count is redone by its restore: `--redo` deletes the index this
migration restored and restores it again). `redo_steps` is what `--redo` forgets: the named step and what
follows it for the same target (and the finish), so the next run observes and redoes just those.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx

from migrator.dag import StepKind, StepStatus
from migrator.errors import UsageError
from migrator.planner import FINISH
from migrator.selection import steps_named
from migrator.state import Checkpoint
from migrator.steps.base import Step


@dataclass(frozen=True)
class Drift:
    """One done step whose work is no longer there as the run left it."""

    step: str
    what: str  # what changed, in the step's terms
    redo: str = ""  # the step `--redo` names to put it right (the step itself when empty)

    @property
    def redo_step(self) -> str:
        return self.redo or self.step


def _target(graph: nx.DiGraph, node: str) -> str | None:
    return graph.nodes[node]["params"].get("target")


def _superseded(graph: nx.DiGraph, node: str, done: set[str]) -> bool:
    """A later done step of the same kind and target has the last word (the cutover's validation after the
    bulk copy's)."""
    kind, target = graph.nodes[node]["kind"], _target(graph, node)
    return any(
        graph.nodes[later]["kind"] == kind and _target(graph, later) == target
        for later in nx.descendants(graph, node) & done
    )


def find_drift(
    graph: nx.DiGraph,
    steps: dict[str, Step],
    checkpoints: dict[str, Checkpoint],
    nodes: Iterable[str],
    tag: Callable[[str], None],
    redact: Callable[[str], str],
) -> list[Drift]:
    """The drift of the done, lasting steps among `nodes`, in the plan's order; a step after one that
    drifted for the same target is not asked (its drift follows from that one). `tag(node)` is called
    before a step is asked, so that its requests are logged under it."""
    wanted = set(nodes)
    done = {node for node, cp in checkpoints.items() if cp.status == StepStatus.DONE}
    found: list[Drift] = []
    drifted: set[str] = set()
    for node in nx.topological_sort(graph):
        step = steps[node]
        if node not in wanted or node not in done or not step.lasting or _superseded(graph, node, done):
            continue
        target = _target(graph, node)
        if target is not None and any(_target(graph, early) == target for early in nx.ancestors(graph, node) & drifted):
            continue
        tag(node)
        try:
            what = step.drift(checkpoints[node].detail)
        except Exception as exc:  # noqa: BLE001 - a refusal or a missing index is the drift itself
            what = str(exc)
        if what:
            found.append(Drift(node, redact(what), _redo_of(graph, node)))
            drifted.add(node)
    return found


def _redo_of(graph: nx.DiGraph, node: str) -> str:
    """A validated count that changed is put right by restoring the index again (its restore step, which
    `--redo` deletes and restores when it is ours); anything else by its own step."""
    if graph.nodes[node]["kind"] != "validate":
        return node
    target = _target(graph, node)
    restores = [
        n
        for n in nx.ancestors(graph, node)
        if graph.nodes[n]["kind"] == StepKind.RESTORE and _target(graph, n) == target
    ]
    return restores[0] if restores else node


def redo_steps(graph: nx.DiGraph, named: set[str]) -> set[str]:
    """What `--redo` forgets: each named step, the steps after it for the same target, and the finish; and
    the restore batch of a named restore, so that the indices `--redo` deletes are restored again by their
    batch's request (one `_restore` for all the batch's redone indices, as a resumed batch sends it), not
    by one request each (before: `--redo restore` of 200 indices sent 200 restores)."""
    redo = set(named)
    for node in named:
        if graph.nodes[node]["kind"] == StepKind.RESTORE:
            redo |= {pred for pred in graph.predecessors(node) if graph.nodes[pred]["kind"] == StepKind.RESTORE_BATCH}
        target = _target(graph, node)
        for later in nx.descendants(graph, node):
            if later == FINISH or (target is not None and _target(graph, later) == target):
                redo.add(later)
    return redo


TARGETED = re.compile(r"(?P<name>[^\[]+)\[(?P<target>.*)\]")  # a node id `restore[orders]`: name and target


DRIFTED = "drifted"  # `--redo drifted`: every step the last drift check named (the state file's drift record)
SHORT = 200  # characters of a --redo argument printed as it is; a longer one is said as `drifted`


def redo_argument(graph: nx.DiGraph, nodes: Iterable[str]) -> str:
    """The `--redo` argument that designates exactly `nodes`, short whatever their number: a kind when every step
    of it is named (`restore`), else the fewest `restore[prefix*]` patterns that match the named targets and no
    other (`restore[logs-1*],restore[logs-20]`; see selection.steps_named), else the ids; when that is longer
    than SHORT characters (targets scattered among others), `drifted` (see `redo_named`)."""
    named = set(nodes)
    by_kind: dict[str, set[str]] = defaultdict(set)
    for node in named:
        by_kind[graph.nodes[node]["kind"]].add(node)
    parts: list[str] = []
    for kind, chosen in sorted(by_kind.items()):
        same_kind = {node for node in graph.nodes if graph.nodes[node]["kind"] == kind}
        parts.extend([kind] if chosen == same_kind else _patterns(chosen, same_kind - chosen))
    argument = ",".join(parts)
    if steps_named(graph, argument, "--redo") != named:
        argument = ",".join(sorted(named))
    return argument if len(argument) <= SHORT else DRIFTED


def redo_named(graph: nx.DiGraph, redo: str, recorded: dict[str, Any] | None) -> set[str]:
    """The steps `--redo REDO` names: `drifted`, the redo step of every drift the last check recorded
    (`recorded`: the state file's `drift_record`), else what selection.steps_named designates. Raises
    UsageError for `drifted` when the last run found no drift."""
    if redo != DRIFTED:
        return steps_named(graph, redo, "--redo")
    named = {item["redo"] for item in (recorded or {}).get("drift", []) if item["redo"] in graph}
    if not named:
        raise UsageError(
            "--redo drifted: the last run found no drift to redo; `migrator status PLAN` shows the run, and "
            "--redo STEP names a step (an id, a kind or a pattern like 'restore[logs-*]')"
        )
    return named


def _patterns(chosen: set[str], others: set[str]) -> list[str]:
    """`name[prefix*]` patterns matching every id of `chosen` and none of `others` (ids `name[target]` of one
    name; any other shape: the ids themselves)."""
    shapes = [TARGETED.fullmatch(node) for node in chosen | others]
    names = {shape["name"] for shape in shapes if shape}
    if None in shapes or len(names) != 1:
        return sorted(chosen)
    [name] = names
    targets = {TARGETED.fullmatch(node)["target"] for node in chosen}  # type: ignore[index]
    rest = {TARGETED.fullmatch(node)["target"] for node in others}  # type: ignore[index]
    return [f"{name}[{prefix}]" for prefix in _prefixes(targets, rest, "")]


def _prefixes(chosen: set[str], others: set[str], prefix: str) -> list[str]:
    """`prefix*` when no other target starts with `prefix`; else the chosen target equal to it and the prefixes
    one character longer, each as far as needed."""
    if not others:
        return [prefix + "*"]
    found = [prefix] if prefix in chosen else []
    for char in sorted({target[len(prefix)] for target in chosen if len(target) > len(prefix)}):
        longer = prefix + char
        found += _prefixes(
            {t for t in chosen if t.startswith(longer)}, {t for t in others if t.startswith(longer)}, longer
        )
    return found


def drift_record(graph: nx.DiGraph, found: list[Drift]) -> dict[str, Any]:
    """What the state file keeps of a drift check, for `status --json` and scripts: `{"drift": [{"step", "what",
    "redo"}, ...], "redo": the --redo argument that redoes every one of them (redo_argument)}`."""
    return {
        "drift": [{**asdict(drift), "redo": drift.redo_step} for drift in found],
        "redo": redo_argument(graph, {drift.redo_step for drift in found}) if found else None,
    }
