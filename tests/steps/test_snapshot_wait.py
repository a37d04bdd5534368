"""snapshot.wait: ends on the held answer at once, polls without it, stops on FAILED or PARTIAL naming the
failed shards, and takes a failed or missing snapshot again only in a later run."""

from __future__ import annotations

import threading
import time

import pytest

from migrator.steps.base import Cancelled, StepFailed
from migrator.steps.snapshot_create import CreateSnapshot
from migrator.steps.snapshot_wait import FollowSnapshot, copy_stats, index_bytes
from migrator.steps.stall import Stalled
from tests.steps.fakes import FakeSource, context
from tests.steps.listed import sends_only_listed

FAILURES = [{"index": "orders", "shard_id": 0, "reason": "AccessDeniedException[/repo/indices/x/0/index-y]"}]


def started(partial: bool = False, poll_s: float = 60.0):
    """A run that took the snapshot itself (the held request is open), and its wait step."""
    source = FakeSource()
    ctx = context(source, partial=partial, poll_s=poll_s)
    CreateSnapshot("snapshot.create", {}, ctx).act()
    return source, ctx, FollowSnapshot("snapshot.wait", {}, ctx)


def end_later(source: FakeSource, state: str, failures=None, delay: float = 0.3) -> None:
    threading.Timer(delay, source.end, args=(state, failures)).start()


def test_the_held_answer_ends_the_wait_at_once_with_no_status_poll():
    source, _, step = started(poll_s=60.0)
    before = source.count("GET")
    observation = step.observe()
    assert observation.in_progress and not observation.done
    end_later(source, "SUCCESS")
    began = time.monotonic()
    with sends_only_listed(step):
        detail = step.wait()
    assert time.monotonic() - began < 2  # not one poll period (60 s) late
    assert {"state": "SUCCESS", "shards": 2}.items() <= detail.items()
    assert step.observe().done  # from the held answer
    assert source.count("GET", "/_status") == 1  # once, after the end: the copy statistics
    assert source.count("GET") - before == 1  # and nothing else while it ran
    polled = [("GET", path) for method, path, _ in source.requests if path.endswith("/_status")]
    assert polled == [(r.method, r.sent_path) for r in step.checks() if r.path.endswith("/_status")]  # as shown
    assert step.describe() == []  # it sends nothing of its own: a read is not listed among the requests
    assert step.ctx.snapshot_index_bytes == {"snap-1": {"orders": 600, "logs": 400}}  # for the recovery figures


def test_without_a_held_request_it_polls_and_a_partial_snapshot_is_not_mistaken_for_success():
    # `_status` says SUCCESS for a PARTIAL snapshot (seen on 7.17): its info decides.
    source = FakeSource()
    ctx = context(source)
    source.taken_earlier(ctx, "snap-1", "IN_PROGRESS")
    step = FollowSnapshot("snapshot.wait", {}, ctx)
    end_later(source, "PARTIAL", FAILURES, delay=0.0)
    source.ended.wait(5)
    with pytest.raises(StepFailed) as failed:
        step.wait()
    message = str(failed.value)
    assert "ended PARTIAL (the plan does not allow a partial snapshot)" in message
    assert "1 of 2 shards failed" in message and "orders[0]: AccessDeniedException" in message
    assert "`migrator resume` deletes this snapshot and takes it again" in message
    assert ctx.progress.updates  # the polls showed progress


def test_a_partial_snapshot_the_plan_allows_is_done():
    source, _, step = started(partial=True)
    end_later(source, "PARTIAL", FAILURES)
    assert step.wait()["state"] == "PARTIAL"
    assert step.observe().done


def test_a_failed_snapshot_stops_the_run_that_took_it_without_taking_it_again():
    source, _, step = started()
    end_later(source, "FAILED", FAILURES)
    with pytest.raises(StepFailed, match="ended FAILED"):
        step.wait()
    observation = step.observe()
    assert not observation.done and not observation.in_progress
    with pytest.raises(StepFailed, match="ended FAILED"):
        step.act()  # the executor's retry in the same run: still no second snapshot
    assert source.count("DELETE") == 0 and source.count("PUT") == 1


def test_a_later_run_deletes_the_failed_snapshot_and_takes_it_again():
    source = FakeSource()
    ctx = context(source)
    source.taken_earlier(ctx, "snap-1", "FAILED", failures=FAILURES)
    step = FollowSnapshot("snapshot.wait", {}, ctx)
    observation = step.observe()
    assert not observation.done and not observation.in_progress and "taken again" in observation.summary
    step.act()
    assert source.count("DELETE") == 1 and source.count("PUT") == 1
    end_later(source, "SUCCESS")
    assert step.wait()["state"] == "SUCCESS"


def test_a_failed_snapshot_of_that_name_that_this_run_did_not_take_is_neither_followed_nor_deleted():
    source = FakeSource()
    source.snapshots["snap-1"] = {**source.snapshot_entry("snap-1", "FAILED"), "failures": FAILURES}
    step = FollowSnapshot("snapshot.wait", {}, context(source))
    with pytest.raises(StepFailed, match="this migration did not take it"):
        step.observe()
    with pytest.raises(StepFailed, match="snapshot.name"):
        step.act()
    assert source.count("DELETE") == 0 and source.count("PUT") == 0


def test_a_missing_snapshot_is_taken_again_by_a_later_run_and_named_in_the_run_that_lost_it():
    source = FakeSource()
    step = FollowSnapshot("snapshot.wait", {}, context(source))
    assert "missing" in step.observe().summary
    step.act()
    assert source.count("DELETE") == 0 and source.count("PUT") == 1

    source, _, step = started()
    source.snapshots.clear()  # failed before it reached the repository
    source.ended.set()
    with pytest.raises(StepFailed, match="is not in the repository"):
        step.wait()


def test_cancel_stops_the_wait_on_the_held_request():
    source, ctx, step = started()
    threading.Timer(0.2, lambda: setattr(ctx, "cancelled", True)).start()
    began = time.monotonic()
    with pytest.raises(Cancelled):
        step.wait()
    assert time.monotonic() - began < 3
    source.end("SUCCESS")


def test_copy_stats_of_every_status_shape():
    modern = {
        "stats": {
            "incremental": {"file_count": 3, "size_in_bytes": 30},
            "total": {"file_count": 9, "size_in_bytes": 90},
        }
    }
    assert copy_stats(modern) == {"incremental_bytes": 30, "incremental_files": 3, "total_bytes": 90, "total_files": 9}
    old = {"stats": {"number_of_files": 4, "processed_files": 4, "total_size_in_bytes": 40}}
    assert copy_stats(old) == {"incremental_bytes": 40, "incremental_files": 4}
    assert copy_stats({}) == {}


def test_index_bytes_only_from_a_status_that_counts_every_file():
    modern = {"indices": {"a": {"stats": {"total": {"size_in_bytes": 90}, "incremental": {"size_in_bytes": 30}}}}}
    assert index_bytes(modern) == {"a": 90}
    old = {"indices": {"a": {"stats": {"number_of_files": 4, "total_size_in_bytes": 40}}}}  # the copied part only
    assert index_bytes(old) == {}
    assert index_bytes({}) == {}


def test_a_snapshot_that_does_not_move_stops_after_stall_after():
    source = FakeSource()  # `_status` stays at shards 1/2, 400/1000 bytes
    ctx = context(source, stall_after=0.2)
    source.snapshots["snap-1"] = {"snapshot": "snap-1", "state": "IN_PROGRESS"}
    ctx.sleep = lambda seconds=None: time.sleep(0.05)
    with pytest.raises(Stalled) as stalled:
        FollowSnapshot("snapshot.wait", {}, ctx).wait()
    message = str(stalled.value)
    assert "snapshot snap-1 in repository repo has not moved for" in message
    assert "still at shards 1/2, 400/1000 bytes" in message and "`migrator resume`" in message
