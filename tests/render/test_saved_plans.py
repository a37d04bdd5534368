"""Saved plans without clusters: `plan --out` keeps the facts, snapshot name, hash and canonical spec
(no secret); applying it re-discovers and refuses, naming the change, when the plan would differ."""

from __future__ import annotations

import json
import stat

import pytest

import migrator.migration.opened as migration_module
from migrator.errors import NeedsAttention, PlanError
from migrator.migration.review import review
from migrator.migration.run import prepare
from migrator.migration.saved import save_plan
from migrator.render.plan import plan_document, plan_markdown
from migrator.state import StateStore
from tests.render.conftest import BASE_INDICES, MB, SECRETS, facts


def saved(opened, tmp_path):
    migration = opened()
    reviewed = review(migration)
    path = tmp_path / "reviewed.json"
    save_plan(migration, reviewed, plan_document(reviewed), path)
    return path, reviewed


def run_prepare(migration):
    state = migration.open_state()
    try:
        return prepare(migration, state, replan=False, confirm=lambda plan: True, resuming=False)
    finally:
        state.close()


def test_a_saved_plan_keeps_references_only_and_rebuilds_to_its_hash(opened, tmp_path, monkeypatch):
    path, reviewed = saved(opened, tmp_path)
    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(value not in text for value in SECRETS.values())
    data = json.loads(text)
    assert data["spec"]["repository"]["settings"]["secret_access_key"] == "${SK}"
    assert data["plan_hash"] == reviewed.plan.plan_hash and data["snapshot"] == "fixed-snap"

    monkeypatch.setattr(migration_module, "discover", lambda *clients: pytest.fail("a saved plan is not re-discovered"))
    again = review(opened(path))
    assert again.saved and again.plan.plan_hash == reviewed.plan.plan_hash
    assert "These requests were sent when the plan was saved" in plan_markdown(again)
    assert opened(path).state_path == tmp_path / "plan.state.db"


def test_apply_of_a_saved_plan_runs_it_when_only_sizes_changed(opened, tmp_path, discovered):
    path, reviewed = saved(opened, tmp_path)
    discovered(facts({**BASE_INDICES, "logs-a": (5000, 90 * MB, 1)}))
    plan = run_prepare(opened(path))
    assert plan.plan_hash == reviewed.plan.plan_hash and plan.snapshot == "fixed-snap"
    assert [m.docs for m in plan.moves] == [1000, 2000, 10]  # the saved facts, not the fresh ones


@pytest.mark.parametrize(
    ("fresh", "named"),
    [
        (facts({**BASE_INDICES, "logs-c": (1, 1, 1)}), "logs-c would now be migrated too (as new-logs-c)"),
        (facts({k: v for k, v in BASE_INDICES.items() if k != "logs-b"}), "logs-b would no longer be migrated"),
        (facts({**BASE_INDICES, "orders": (10, 0, 3)}), "orders has 3 primary shards now, not 1"),
        (facts(BASE_INDICES, versions=("7.17.29", "8.19.22")), "the destination now runs Elasticsearch 8.19.22"),
    ],
)
def test_apply_of_a_saved_plan_is_refused_naming_what_changed(opened, tmp_path, discovered, fresh, named):
    path, _ = saved(opened, tmp_path)
    discovered(fresh)
    with pytest.raises(NeedsAttention, match="the clusters changed since the plan was saved") as refused:
        run_prepare(opened(path))
    assert named in str(refused.value)
    state = StateStore(tmp_path / "plan.state.db")
    assert state.get_meta("status") is None and state.get_meta("plan_hash") is None
    state.close()


def test_a_saved_plan_is_refused_when_the_state_runs_another_plan(opened, tmp_path, discovered):
    run_prepare(opened())  # a run of the plan file, from other facts
    discovered(facts({**BASE_INDICES, "logs-a": (7, 1, 1)}))
    path, _ = saved(opened, tmp_path)
    with pytest.raises(NeedsAttention, match="holds a run of another plan"):
        run_prepare(opened(path))


def test_a_plan_with_problems_is_refused_before_anything_is_recorded(opened, tmp_path, discovered):
    discovered(facts({"logs-a": (1, 1, 1)}))  # "orders" is missing: the plan is refused
    with pytest.raises(PlanError, match="orders") as refused:
        run_prepare(opened())
    assert refused.value.refused
    state = StateStore(tmp_path / "plan.state.db")
    assert state.get_meta("status") is None
    state.close()
