"""The metadata.templates step on a fake destination: it puts only what is missing, records what it
creates or overwrites before acting (the record survives a resume), and undo puts the destination back."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from migrator.state import StateStore
from migrator.steps.base import StepFailed
from migrator.steps.metadata_templates import MoveTemplates, undo_requests, undo_templates
from migrator.templates import TemplateMove
from tests.steps.listed import sends_only_listed

LEGACY = TemplateMove("legacy", "logs", {"index_patterns": ["logs-*"], "order": 2}, "legacy")
COMPONENT = TemplateMove(
    "component", "shared", {"template": {"settings": {"index.number_of_shards": "1"}}}, "component"
)
COMPOSABLE = TemplateMove(
    "composable", "orders", {"index_patterns": ["orders*"], "composed_of": ["shared"], "priority": 5}, "composable"
)


class FakeDestination:
    """Templates by path, answered as Elasticsearch 9 does (settings nested, dates added)."""

    def __init__(self, templates: dict[str, dict[str, Any]] | None = None) -> None:
        self.templates = templates or {}
        self.sent: list[str] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        key = path.strip("/")
        if method != "GET":
            self.sent.append(f"{method} {key}")
        if method == "PUT":
            self.templates[key] = copy.deepcopy(body)
            return 200, {"acknowledged": True}
        if method == "DELETE":
            return (200, {}) if self.templates.pop(key, None) is not None else (404, {})
        kind, name = key.split("/")
        if key not in self.templates:
            return 404, {}
        stored = {**self.templates[key], "created_date_millis": 1}
        if kind == "_template":
            return 200, {name: stored}
        listing = {"_index_template": "index_template", "_component_template": "component_template"}[kind]
        return 200, {listing + "s": [{"name": name, listing: stored}]}


def step(destination: FakeDestination, if_exists: str = "fail", moves=(COMPONENT, COMPOSABLE, LEGACY)) -> MoveTemplates:
    params = {"templates": [m.to_params() for m in moves], "if_exists": if_exists}
    return MoveTemplates("metadata.templates", params, SimpleNamespace(destination=destination))


def run_once(store: StateStore, move: MoveTemplates, *, crash_after_act: bool = False) -> None:
    """What the executor does: observe, record `acting` with the observation's detail, act, observe, done."""
    observation = move.observe()
    if observation.done:
        store.checkpoint(move.id, "done", observation.detail)
        return
    store.checkpoint(move.id, "acting", observation.detail)
    move.act()
    if crash_after_act:
        return
    store.checkpoint(move.id, "done", move.observe().detail)


def test_describe_is_what_act_sends_components_first(tmp_path: Path) -> None:
    destination = FakeDestination()
    move = step(destination)
    described = [f"{r.method} {r.path}" for r in move.describe()]
    with sends_only_listed(move):
        assert not move.observe().done
        move.act()
    assert (
        destination.sent
        == described
        == [
            "PUT _component_template/shared",
            "PUT _index_template/orders",
            "PUT _template/logs",
        ]
    )
    assert move.observe().done  # equal after normalising what the destination adds


def test_an_overwritten_body_is_recorded_before_acting_and_survives_a_resume(tmp_path: Path) -> None:
    theirs = {"index_patterns": ["logs-*"], "order": 9, "settings": {"index": {"refresh_interval": "5s"}}}
    destination = FakeDestination({"_template/logs": copy.deepcopy(theirs)})
    store = StateStore(tmp_path / "state.db")
    try:
        run_once(store, step(destination, "overwrite"), crash_after_act=True)
        assert destination.templates["_template/logs"] == LEGACY.body
        run_once(store, step(destination, "overwrite"))  # the resumed run: everything in place already
        detail = store.get_checkpoint("metadata.templates").detail
        assert detail["template:_template/logs"]["previous"]["order"] == 9
        report = undo_templates(destination, detail)
    finally:
        store.close()
    assert report == {
        "templates_deleted": ["_index_template/orders", "_component_template/shared"],
        "templates_restored": ["_template/logs"],
        "templates_kept": [],
    }
    assert destination.templates == {"_template/logs": theirs}
    assert destination.sent[-3:] == [
        "DELETE _index_template/orders",
        "PUT _template/logs",
        "DELETE _component_template/shared",
    ]


def test_a_template_that_appeared_since_the_dry_run_is_refused_or_kept_never_overwritten_silently() -> None:
    other = {"index_patterns": ["logs-*"], "order": 1}
    with pytest.raises(StepFailed, match=r"_template/logs exists on the destination with another body"):
        step(FakeDestination({"_template/logs": dict(other)}), moves=(LEGACY,)).observe()
    destination = FakeDestination({"_template/logs": dict(other)})
    observation = step(destination, "skip", moves=(LEGACY,)).observe()
    assert observation.done and "kept: _template/logs" in observation.summary and destination.sent == []


def test_undo_of_an_empty_record_sends_nothing() -> None:
    destination = FakeDestination({"_template/logs": {"index_patterns": ["x"]}})
    assert undo_templates(destination, {}) == {"templates_deleted": [], "templates_restored": [], "templates_kept": []}
    assert destination.sent == []


def test_the_cancel_advice_lists_the_undo_of_each_planned_template() -> None:
    replaced = TemplateMove("legacy", "logs", LEGACY.body, "legacy", replaces=True)
    params = {"templates": [m.to_params() for m in (COMPONENT, COMPOSABLE, replaced)], "if_exists": "overwrite"}
    assert [(r.method, r.path) for r in undo_requests(params)] == [
        ("DELETE", "_index_template/orders"),
        ("PUT", "_template/logs"),
        ("DELETE", "_component_template/shared"),
    ]


def test_undo_keeps_a_template_changed_on_the_destination_since_migrator_put_it(tmp_path: Path) -> None:
    destination = FakeDestination()
    store = StateStore(tmp_path / "state.db")
    try:
        run_once(store, step(destination))
        detail = store.get_checkpoint("metadata.templates").detail
    finally:
        store.close()
    theirs = {**COMPOSABLE.body, "priority": 20, "_meta": {"owner": "destination team"}}
    destination.templates["_index_template/orders"] = copy.deepcopy(theirs)  # replaced after the migration
    report = undo_templates(destination, detail)
    assert report["templates_kept"] == [
        "_index_template/orders (changed on the destination since migrator put it)",
        "_component_template/shared (composed by a template kept on the destination)",
    ]
    assert destination.templates["_index_template/orders"] == theirs
    assert "_component_template/shared" in destination.templates  # Elasticsearch refuses to delete it in use
    assert report["templates_deleted"] == ["_template/logs"]


def test_the_cancel_advice_is_what_the_undo_sends_in_its_order(tmp_path: Path) -> None:
    """Planned in another order than the undo takes them (legacy first): the advice follows the undo, as
    both come from `undo_order` and `undo_request` (before: the advice kept the plan's order)."""
    theirs = {"index_patterns": ["logs-*"], "order": 9}
    destination = FakeDestination({"_template/logs": copy.deepcopy(theirs)})
    replaced = TemplateMove("legacy", "logs", LEGACY.body, "legacy", replaces=True)
    moves = (replaced, COMPOSABLE, COMPONENT)
    store = StateStore(tmp_path / "state.db")
    try:
        run_once(store, step(destination, "overwrite", moves=moves))
        detail = store.get_checkpoint("metadata.templates").detail
    finally:
        store.close()
    destination.sent.clear()
    undo_templates(destination, detail)
    params = {"templates": [m.to_params() for m in moves], "if_exists": "overwrite"}
    assert (
        [f"{r.method} {r.path}" for r in undo_requests(params)]
        == destination.sent
        == [
            "DELETE _index_template/orders",
            "PUT _template/logs",
            "DELETE _component_template/shared",
        ]
    )
    assert destination.templates == {"_template/logs": theirs}
