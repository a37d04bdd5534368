"""migration.run without clusters: when the recorded run began, and a plan file changed under a run."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import networkx as nx
import pytest

from migrator.dag import StepKind, StepStatus
from migrator.errors import NeedsAttention
from migrator.migration.run import prepare, recut_batches, run_started
from migrator.state import StateStore
from tests.render.conftest import SECRETS


def test_the_start_of_the_recorded_run_is_read_back(tmp_path):
    state = StateStore(tmp_path / "plan.state.db")
    try:
        when = datetime(2026, 11, 30, 14, 37, tzinfo=UTC)
        state.set_meta(started=when.isoformat())
        assert run_started(state) == when
    finally:
        state.close()


def test_a_state_file_without_a_start_time_needs_attention_not_a_traceback(tmp_path):
    # Before: datetime.fromisoformat(None) raised TypeError out of `resume` and `status`.
    state = StateStore(tmp_path / "plan.state.db")
    try:
        with pytest.raises(NeedsAttention, match="without its start time"):
            run_started(state)
    finally:
        state.close()


def prepare_again(migration, *, replan: bool = False):
    state = migration.open_state()
    try:
        return prepare(migration, state, replan=replan, confirm=lambda plan: True, resuming=True)
    finally:
        state.close()


def start(opened):
    migration = opened()
    state = migration.open_state()
    try:
        return prepare(migration, state, replan=False, confirm=lambda plan: True, resuming=False), migration.state_path
    finally:
        state.close()


def test_a_plan_file_changed_under_a_run_is_named_field_by_field(opened, tmp_path):
    first, _ = start(opened)
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(plan_file.read_text().replace("sample_docs: 10", "sample_docs: 25"))
    with pytest.raises(NeedsAttention) as refused:
        prepare_again(opened())
    message = str(refused.value)
    assert f"hash {first.plan_hash} -> " in message
    assert "\n  - validate.sample_docs: 10 -> 25\n" in message
    assert message.count("\n  - ") == 1 and "--replan" in message
    assert prepare_again(opened(), replan=True).spec.validate.sample_docs == 25


def test_a_setting_added_by_a_newer_migrator_is_named_as_such(opened):
    # A run begun by a migrator without `restore.batch_indices`: its recorded spec lacks the field, and the
    # newer migrator's default changes the hash. Before, the message said only "the plan changed".
    first, state_path = start(opened)
    state = StateStore(state_path)
    try:
        spec = state.get_json("spec")
        del spec["restore"]["batch_indices"]
        state.set_json("spec", spec)
        state.set_meta(plan_hash="0123456789abcdef")
    finally:
        state.close()
    with pytest.raises(NeedsAttention) as refused:
        prepare_again(opened())
    default = first.spec.restore.batch_indices
    assert (
        f"\n  - restore.batch_indices: not in the run's plan (added by this version of migrator) -> {default}\n"
        in str(refused.value)
    )


def test_the_same_file_planned_differently_says_the_file_reads_the_same(opened):
    _, state_path = start(opened)
    state = StateStore(state_path)
    try:
        state.set_meta(plan_hash="0123456789abcdef")  # as if an older migrator had planned other steps
    finally:
        state.close()
    with pytest.raises(NeedsAttention, match="the plan file reads the same; this version of migrator plans it"):
        prepare_again(opened())


def test_the_recorded_plan_file_keeps_secret_references_only(opened):
    _, state_path = start(opened)
    state = StateStore(state_path)
    try:
        spec = state.get_json("spec")
    finally:
        state.close()
    assert spec["repository"]["settings"]["secret_access_key"] == "${SK}"
    assert not any(value in state_path.read_bytes().decode("latin-1") for value in SECRETS.values())


def test_a_replan_forgets_the_restore_batches_cut_anew_under_the_same_ids(tmp_path):
    # Seen on real nodes (7.17 -> 8): batch 1 of 20 done, then restore.batch_indices 30 and `resume --replan`: the
    # new batch 1 (the 20 and 10 more) kept the old one's done checkpoint, and the 10 were restored one request
    # each by their restore steps, requests no runbook showed.
    graph = nx.DiGraph()
    members = [{"source": name, "target": f"m-{name}"} for name in ("a", "b", "c")]
    graph.add_node("restore.batch[1]", kind=StepKind.RESTORE_BATCH, params={"members": members})
    graph.add_node(
        "restore.batch[2]", kind=StepKind.RESTORE_BATCH, params={"members": [members[0] | {"target": "m-d"}]}
    )
    graph.add_node("restore.batch[3]", kind=StepKind.RESTORE_BATCH, params={"members": members[:1]})
    graph.add_node("restore[m-a]", kind=StepKind.RESTORE, params=members[0])
    state = StateStore(tmp_path / "plan.state.db")
    try:
        state.checkpoint("restore.batch[1]", StepStatus.DONE, {"members": ["m-a", "m-b"], "restored": 2})
        state.checkpoint("restore.batch[2]", StepStatus.DONE, {"members": [], "foreign": ["m-d"]})  # the same one
        state.checkpoint("restore.batch[3]", StepStatus.DONE, {"restored": 1})  # no members recorded: kept
        state.checkpoint("restore[m-a]", StepStatus.DONE, {})
        assert recut_batches(SimpleNamespace(graph=graph), state) == ["restore.batch[1]"]  # type: ignore[arg-type]
    finally:
        state.close()
