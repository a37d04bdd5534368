"""The metadata.pipelines step on a fake destination: it puts only what is missing, records what it creates
or overwrites before acting (the record survives a resume), and undo puts the destination back, keeping
what an index still uses (as 7.17+ refuse to delete a pipeline an index names)."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import networkx as nx
import pytest

from migrator.clients.es import EsError, Request
from migrator.pipelines import PipelineMove
from migrator.planner import METADATA_PIPELINES
from migrator.state import StateStore
from migrator.steps.base import StepFailed
from migrator.steps.metadata_pipelines import MovePipelines, planned_undo, undo_pipelines, undo_recorded
from tests.steps.listed import sends_only_listed

ENRICH = PipelineMove("pipeline", "enrich", {"description": "d", "processors": []}, ("index orders",))
HOT = PipelineMove("policy", "hot", {"policy": {"phases": {"hot": {"actions": {}}}}}, ("index orders",))


class FakeDestination:
    """Pipelines and policies by path, answered as Elasticsearch 9 does (a pipeline with its dates, a policy
    with defaults filled in); a DELETE of one in `in_use` is refused with 400."""

    def __init__(self, stored: dict[str, dict[str, Any]] | None = None, in_use: tuple[str, ...] = ()) -> None:
        self.stored = stored or {}
        self.in_use = in_use
        self.sent: list[str] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        key = path.strip("/")
        if method != "GET":
            self.sent.append(f"{method} {key}")
        if method == "PUT":
            self.stored[key] = copy.deepcopy(body)
            return 200, {"acknowledged": True}
        if method == "DELETE":
            if key in self.in_use:
                message = f"illegal_argument_exception: pipeline [{key}] cannot be deleted because it is the default"
                raise EsError("destination", Request(method, path), 400, message)
            return (200, {}) if self.stored.pop(key, None) is not None else (404, {})
        if key not in self.stored:
            return 404, {}
        name = key.rsplit("/", 1)[1]
        if key.startswith("_ilm/"):
            policy = copy.deepcopy(self.stored[key]["policy"])
            for phase in policy.get("phases", {}).values():
                phase.setdefault("min_age", "0ms")
            return 200, {name: {"version": 1, "modified_date": "2026-11-30", "policy": policy}}
        return 200, {name: {**self.stored[key], "created_date_millis": 1}}


def step(destination: FakeDestination, if_exists: str = "fail", moves=(HOT, ENRICH)) -> MovePipelines:
    params = {"moves": [m.to_params() for m in moves], "if_exists": if_exists}
    return MovePipelines(METADATA_PIPELINES, params, SimpleNamespace(destination=destination))


def run_once(store: StateStore, move: MovePipelines, *, crash_after_act: bool = False) -> None:
    """What the executor does: observe, record `acting` with the observation's detail, act, observe, done."""
    observation = move.observe()
    if observation.done:
        store.checkpoint(move.id, "done", observation.detail)
        return
    store.checkpoint(move.id, "acting", observation.detail)
    move.act()
    if not crash_after_act:
        store.checkpoint(move.id, "done", move.observe().detail)


def test_describe_is_what_act_sends_and_what_the_destination_adds_still_counts_as_done() -> None:
    destination = FakeDestination()
    move = step(destination)
    described = [f"{r.method} {r.path}" for r in move.describe()]
    with sends_only_listed(move):
        assert not move.observe().done
        move.act()
    assert destination.sent == described == ["PUT _ilm/policy/hot", "PUT _ingest/pipeline/enrich"]
    assert [r.body for r in move.describe()] == [HOT.body, ENRICH.body]
    assert move.observe().done  # a pipeline's dates, a policy's defaults


def test_an_overwritten_body_is_recorded_before_acting_and_survives_a_resume(tmp_path: Path) -> None:
    theirs = {"description": "theirs", "processors": [], "version": 7}
    destination = FakeDestination({"_ingest/pipeline/enrich": copy.deepcopy(theirs)})
    store = StateStore(tmp_path / "state.db")
    try:
        run_once(store, step(destination, "overwrite"), crash_after_act=True)
        assert destination.stored["_ingest/pipeline/enrich"] == ENRICH.body
        run_once(store, step(destination, "overwrite"))  # the resumed run: everything in place already
        detail = store.get_checkpoint(METADATA_PIPELINES).detail
        assert detail["pipeline:_ingest/pipeline/enrich"]["previous"] == theirs  # without the dates 9.x adds
        report, remaining = undo_pipelines(destination, detail)
    finally:
        store.close()
    assert report == {
        "pipelines_deleted": ["_ilm/policy/hot"],
        "pipelines_restored": ["_ingest/pipeline/enrich"],
        "pipelines_kept": [],
    }
    assert remaining == {} and destination.stored == {"_ingest/pipeline/enrich": theirs}


def test_one_that_appeared_since_the_dry_run_is_refused_or_kept_never_overwritten_silently() -> None:
    other = {"processors": [], "version": 1}
    with pytest.raises(StepFailed, match=r"_ingest/pipeline/enrich exists on the destination with another body"):
        step(FakeDestination({"_ingest/pipeline/enrich": dict(other)}), moves=(ENRICH,)).observe()
    destination = FakeDestination({"_ingest/pipeline/enrich": dict(other)})
    observation = step(destination, "skip", moves=(ENRICH,)).observe()
    assert observation.done and "kept: _ingest/pipeline/enrich" in observation.summary and destination.sent == []


def test_undo_keeps_what_an_index_uses_and_what_changed_since_and_remembers_the_first(tmp_path: Path) -> None:
    destination = FakeDestination(in_use=("_ingest/pipeline/enrich",))
    store = StateStore(tmp_path / "state.db")
    try:
        run_once(store, step(destination))
        destination.stored["_ilm/policy/hot"] = {"policy": {"phases": {"warm": {}}}}  # changed by someone
        report = undo_recorded(destination, store)
        assert report["pipelines_deleted"] == [] and report["pipelines_restored"] == []
        assert report["pipelines_kept"][0] == "_ilm/policy/hot (changed on the destination since migrator put it)"
        assert report["pipelines_kept"][1].startswith("_ingest/pipeline/enrich (the destination refuses to delete it")
        left = store.get_checkpoint(METADATA_PIPELINES)
        assert left.status == "pending" and list(left.detail) == ["pipeline:_ingest/pipeline/enrich"]
        destination.in_use = ()  # the index that used it is gone: a later undo deletes it
        report, _ = undo_pipelines(destination, left.detail)
    finally:
        store.close()
    assert report["pipelines_deleted"] == ["_ingest/pipeline/enrich"]
    assert "_ingest/pipeline/enrich" not in destination.stored


def test_the_cancel_advice_lists_the_undo_of_each_planned_move() -> None:
    graph = nx.DiGraph()
    replaced = PipelineMove("pipeline", "enrich", ENRICH.body, replaces=True)
    graph.add_node(METADATA_PIPELINES, params={"moves": [HOT.to_params(), replaced.to_params()]})
    assert [(r.method, r.path) for r in planned_undo(graph)] == [
        ("DELETE", "_ilm/policy/hot"),
        ("PUT", "_ingest/pipeline/enrich"),
    ]
    assert planned_undo(nx.DiGraph()) == []


def test_the_cancel_advice_is_what_the_undo_sends_in_its_order(tmp_path: Path) -> None:
    """Planned pipelines first (the planner's order), undone by path: the advice follows the undo, as both
    come from `undo_order` and `undo_request` (before: the advice kept the plan's order)."""
    theirs = {"description": "theirs", "processors": []}
    destination = FakeDestination({"_ingest/pipeline/enrich": copy.deepcopy(theirs)})
    moves = (PipelineMove("pipeline", "enrich", ENRICH.body, replaces=True), HOT)
    store = StateStore(tmp_path / "state.db")
    try:
        run_once(store, step(destination, "overwrite", moves=moves))
        detail = store.get_checkpoint(METADATA_PIPELINES).detail
    finally:
        store.close()
    destination.sent.clear()
    undo_pipelines(destination, detail)
    graph = nx.DiGraph()
    graph.add_node(METADATA_PIPELINES, params={"moves": [m.to_params() for m in moves]})
    assert (
        [f"{r.method} {r.path}" for r in planned_undo(graph)]
        == destination.sent
        == [
            "DELETE _ilm/policy/hot",
            "PUT _ingest/pipeline/enrich",
        ]
    )
    assert destination.stored == {"_ingest/pipeline/enrich": theirs}
