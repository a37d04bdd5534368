"""The ownership rules (migrator.ownership): what a migration may follow, count as done, or delete."""

from __future__ import annotations

from pathlib import Path

from migrator.ownership import Ledger, now_ms
from migrator.recorded_run import own_plan_options
from migrator.state import StateStore


def info(uuid: str, start_ms: int) -> dict:
    return {"snapshot": "nightly-fixed", "uuid": uuid, "state": "SUCCESS", "start_time_in_millis": start_ms}


def test_a_snapshot_without_a_recorded_intent_is_not_ours():
    ledger = Ledger()
    assert not ledger.claim_snapshot("repo", "nightly-fixed", info("u-old", now_ms()))
    assert not ledger.owns_snapshot("repo", "nightly-fixed")


def test_the_first_answer_after_the_intent_is_claimed_then_only_that_uuid():
    ledger = Ledger()
    ledger.intend_snapshot("repo", "nightly-fixed")
    started = now_ms() + 5
    assert ledger.claim_snapshot("repo", "nightly-fixed", info("u-ours", started))
    assert ledger.owns_snapshot("repo", "nightly-fixed")
    assert ledger.claim_snapshot("repo", "nightly-fixed", info("u-ours", started))
    # deleted behind our back and taken again by someone else under the same name: not ours
    assert not ledger.claim_snapshot("repo", "nightly-fixed", info("u-theirs", started + 1000))


def test_after_a_kill_between_the_create_and_its_record_a_snapshot_older_than_the_intent_is_not_claimed():
    ledger = Ledger()
    before = now_ms() - 60_000  # well beyond the clock slack
    ledger.intend_snapshot("repo", "nightly-fixed")
    assert not ledger.claim_snapshot("repo", "nightly-fixed", info("u-old", before))
    assert not ledger.owns_snapshot("repo", "nightly-fixed")
    assert ledger.claim_snapshot("repo", "nightly-fixed", info("u-ours", now_ms()))


def test_an_index_is_ours_only_when_restored_from_our_snapshot_after_it_began():
    ledger = Ledger()
    ledger.intend_snapshot("repo", "snap")
    started = now_ms()
    assert ledger.claim_snapshot("repo", "snap", {"uuid": "u", "start_time_in_millis": started})
    ours = {"repository": "repo", "snapshot": "snap", "start_time_in_millis": started + 3000}
    assert ledger.owns_index("repo", ours)
    assert ledger.owns_index("repo", {"repository": "repo", "snapshot": "snap"})  # under way: the current one
    # restored from an older snapshot of the same name, before ours existed
    assert not ledger.owns_index("repo", {**ours, "start_time_in_millis": started - 86_400_000})
    assert not ledger.owns_index("repo", {"repository": "repo", "snapshot": "other"})
    assert not ledger.owns_index("repo", {"repository": "elsewhere", "snapshot": "snap"})
    assert not ledger.owns_index("repo", {})  # not restored from a snapshot at all


def test_repositories_are_ours_only_when_recorded():
    ledger = Ledger()
    assert not ledger.owns_repository("source", "repo")
    ledger.record_repository("source", "repo")
    assert ledger.owns_repository("source", "repo") and not ledger.owns_repository("destination", "repo")


def test_records_live_in_the_state_file_and_a_run_begun_before_the_ledger_keeps_the_old_rule(tmp_path: Path):
    state = StateStore(tmp_path / "plan.state.db")
    try:
        ledger = Ledger(state)
        assert not ledger.legacy  # no run yet
        ledger.intend_snapshot("repo", "snap")
        assert ledger.claim_snapshot("repo", "snap", {"uuid": "u", "start_time_in_millis": now_ms()})
        assert Ledger(state).owns_snapshot("repo", "snap")
        assert set(Ledger(state).owned_snapshots()) == {"repo/snap"}
        # an older migrator's run in progress: no ownership mark, the run's snapshot is followed by name
        state.set_meta(status="running")
        old = Ledger(state)
        assert old.legacy and old.claim_snapshot("repo", "other", {"uuid": "x", "start_time_in_millis": 1})
        state.set_meta(ownership="1")
        assert not Ledger(state).legacy
    finally:
        state.close()


def test_a_new_run_owns_nothing_a_cancelled_run_made(tmp_path: Path):
    state = StateStore(tmp_path / "plan.state.db")
    try:
        ledger = Ledger(state)
        ledger.intend_snapshot("repo", "snap")
        ledger.claim_snapshot("repo", "snap", {"uuid": "u", "start_time_in_millis": now_ms()})
        ledger.record_repository("source", "repo")
        Ledger(state).start()
        fresh = Ledger(state)
        assert not fresh.owns_snapshot("repo", "snap") and not fresh.owns_repository("source", "repo")
        assert not fresh.claim_snapshot("repo", "snap", {"uuid": "u", "start_time_in_millis": now_ms()})
    finally:
        state.close()


def test_planning_a_run_of_an_older_migrator_counts_its_snapshots_by_name(tmp_path: Path):
    state = StateStore(tmp_path / "plan.state.db")
    try:
        state.set_meta(status="running", snapshot="snap", cutover_attempt="2")
        assert own_plan_options(state, "repo")["owned_snapshots"] == {
            "snap": None,
            "snap-cutover": None,
            "snap-cutover-2": None,
        }
        state.set_meta(ownership="1")  # a run with the ledger: only what it recorded
        assert own_plan_options(state, "repo")["owned_snapshots"] == {}
    finally:
        state.close()


def test_planning_a_recorded_run_counts_the_registrations_it_made_as_its_own(tmp_path: Path):
    """A replan after the plan's repository settings changed may update what the run registered itself."""
    state = StateStore(tmp_path / "plan.state.db")
    try:
        state.set_meta(status="running", ownership="1")
        assert own_plan_options(state, "repo")["owned_repositories"] == frozenset()
        Ledger(state).record_repository("destination", "repo")
        Ledger(state).record_repository("source", "other")
        assert own_plan_options(state, "repo")["owned_repositories"] == frozenset({"destination"})
    finally:
        state.close()
