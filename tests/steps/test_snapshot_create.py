"""snapshot.create: the create request held open from a background thread, the act back once accepted."""

from __future__ import annotations

import time

import pytest

from migrator.clients.es import EsError, Request
from migrator.steps.base import StepFailed
from migrator.steps.snapshot_create import CreateSnapshot
from tests.steps.fakes import FakeSource, context
from tests.steps.listed import sends_only_listed


def test_act_returns_once_the_snapshot_is_accepted_with_the_request_held_and_logged_for_the_step():
    source = FakeSource()
    ctx = context(source)
    step = CreateSnapshot("snapshot.create", {}, ctx)
    assert not step.observe().done
    started = time.monotonic()
    step.act()
    assert time.monotonic() - started < 5
    held = ctx.held_snapshots["snap-1"]
    assert not held.done()  # still held: the snapshot runs
    assert step.observe().done
    put = [r for r in source.requests if r[0] == "PUT"]
    assert put == [("PUT", "/_snapshot/repo/snap-1?wait_for_completion=true", "snapshot.create")]
    source.end("SUCCESS")
    assert held.result(timeout=5)["snapshot"]["state"] == "SUCCESS"


def test_what_describe_shows_is_the_create_request_act_sends():
    source = FakeSource()
    sent: list[tuple[str, str, object]] = []
    source.observer = lambda cluster, request, status: (
        status is None and sent.append((request.method, request.path.lstrip("/"), request.body))
    )
    step = CreateSnapshot("snapshot.create", {}, context(source))
    with sends_only_listed(step):
        assert not step.observe().done
        step.act()
        source.end("SUCCESS")
        step.ctx.held_snapshots["snap-1"].result(timeout=5)
    shown = [(r.method, r.path, r.body) for r in step.describe()]
    assert shown == [r for r in sent if r[0] == "PUT"]
    assert shown[0][1] == "_snapshot/repo/snap-1?wait_for_completion=true"


def test_a_second_snapshot_node_keeps_its_own_held_request():
    source = FakeSource()
    ctx = context(source)
    CreateSnapshot("cutover.snapshot.create", {"snapshot": "snap-2"}, ctx).act()
    assert list(ctx.held_snapshots) == ["snap-2"]
    assert "snap-2" in source.snapshots and "snap-1" not in source.snapshots
    source.end("SUCCESS")


@pytest.mark.parametrize(("status", "transient"), [(500, False), (400, False), (503, True), (None, True)])
def test_a_refused_create_request_stops_naming_the_answer(status, transient):
    source = FakeSource()
    source.create_error = EsError("source", Request("PUT", "/x"), status, "snapshot_exception: failed to create blob")
    step = CreateSnapshot("snapshot.create", {}, context(source))
    with pytest.raises(StepFailed) as failed:
        step.act()
    assert "snapshot snap-1 in repository repo failed" in str(failed.value)
    assert "failed to create blob" in str(failed.value) and "`migrator resume`" in str(failed.value)
    assert failed.value.transient is transient


def test_nothing_to_snapshot_is_refused():
    ctx = context(FakeSource())
    ctx.plan.moves = []
    with pytest.raises(StepFailed, match="selects nothing"):
        CreateSnapshot("snapshot.create", {}, ctx).act()


def test_a_snapshot_of_that_name_it_did_not_take_is_refused_naming_the_plan_field():
    source = FakeSource()
    source.snapshots["snap-1"] = source.snapshot_entry("snap-1", "SUCCESS", start_ms=1_000)
    step = CreateSnapshot("snapshot.create", {}, context(source))
    with pytest.raises(StepFailed) as refused:
        step.observe()
    message = str(refused.value)
    assert "snapshot snap-1 already exists in repository repo" in message
    assert "snapshot.name" in message and "this migration did not take it" in message
    assert source.count("PUT") == 0 and source.count("DELETE") == 0


def test_the_snapshot_it_took_is_recorded_by_uuid_and_recognised_by_it():
    source = FakeSource()
    ctx = context(source)
    step = CreateSnapshot("snapshot.create", {}, ctx)
    step.act()
    record = ctx.ledger.snapshot_record("repo", "snap-1")
    assert record["uuid"] == source.snapshots["snap-1"]["uuid"]
    assert step.observe().done
    source.end("SUCCESS")
    source.snapshots["snap-1"] = source.snapshot_entry("snap-1", "SUCCESS")  # replaced behind our back
    with pytest.raises(StepFailed, match="this migration did not take it"):
        step.observe()
