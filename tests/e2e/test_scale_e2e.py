"""Many indices on real nodes (7.17 -> 8): restores in batches shown by the dry run as sent, pipelined,
correct at `restore.parallel: 32`, a run that ends with a restore still in flight exits cleanly and is
finished by `resume` without restoring anything twice, and a foreign index of a member's name stops only
that member; a plan with the default batches restores 251 indices in two requests."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor

import pexpect
import pytest
import yaml

from migrator.clients.es import build_path
from migrator.planner import validation_waves
from migrator.state import StateStore
from migrator.steps.batch_watch import poll_path
from tests.e2e.test_review_e2e import console_requests
from tests.e2e.test_review_e2e import sent as review_sent
from tests.helpers import BIG_INDEX, background, cli, counts, restore_requests, throttle, wait_for_checkpoint

pytestmark = pytest.mark.cluster

INDICES = [f"many-{number:03d}" for number in range(60)]
NEWEST_FIRST = INDICES[::-1]  # created one after the other in name order by the fixture


@pytest.fixture(scope="module")
def many(testbed):
    """60 one-shard indices of 20 documents on 7.17, deleted after this module (other modules select `*`)."""
    client = testbed.client("7.17")
    try:
        for name in INDICES:
            settings = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}
            client.request("PUT", build_path(name), settings)
        lines = []
        for name in INDICES:
            for number in range(20):
                lines += [json.dumps({"index": {"_index": name, "_id": str(number)}}), json.dumps({"n": number})]
        client.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), timeout_s=300)
        client.request("POST", build_path("many-*", "_refresh"))
        yield testbed
    finally:
        client.request("DELETE", build_path("many-*"), ok=(200, 404))
        client.close()


def restored_names(plan) -> list[str]:
    return sorted(name for request in restore_requests(plan) for name in request["body"]["indices"].split(","))


def test_batches_are_sent_as_the_dry_run_shows_and_an_earlier_batch_is_validated_before_a_later_starts(many, tmp_path):
    plan = many.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="batches",
        snapshot={"indices": ["many-*"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "bt-$1", "batch_indices": 20, "parallel": 1},
    )
    dry = json.loads(cli(many, "plan", str(plan), "--format", "json").stdout)
    shown = [step["requests"] for step in dry["steps"] if step["kind"] == "restore.batch"]
    assert [len(requests) for requests in shown] == [1, 1, 1]
    # Cut in the order the destination recovers (planner.recovery_order): the fixture created the indices in
    # name order, so the newest come first and the first batch's request answers first.
    assert [request["body"]["indices"].split(",") for [request] in shown] == [
        NEWEST_FIRST[n : n + 20] for n in (0, 20, 40)
    ]
    assert all(step["requests"] == [] for step in dry["steps"] if step["kind"] == "restore")

    cli(many, "apply", str(plan), "--yes", "--poll", "0.5")

    store = StateStore(plan.with_name("plan.state.db"))
    try:
        events, snapshot = store.events(), store.get_meta("snapshot")
    finally:
        store.close()
    sent = restore_requests(plan)
    sent_requests = sorted(({"path": r["path"], "body": r["body"]} for r in sent), key=lambda r: r["body"]["indices"])
    assert sent_requests == sorted(  # the snapshot is named when the run starts; batches 1 and 2 are sent at once
        (
            {"path": "/" + request["path"].replace(dry["snapshot"], snapshot), "body": request["body"]}
            for [request] in shown
        ),
        key=lambda r: r["body"]["indices"],
    )
    assert restored_names(plan) == INDICES  # each index in one request, once
    assert counts(many, "8", "bt-*") == {f"bt-{name}": 20 for name in INDICES}
    first = {}
    for event in events:
        first.setdefault(event.step, event.id)
    batch_one = [f"validate[bt-{name}]" for name in NEWEST_FIRST[:20]]
    # Pipelining (one batch restoring at a time): the first batch's indices are validated while the second
    # restores, not after every restore (tests/test_executor.py shows the order without timing).
    assert min(first[step] for step in batch_one) < first["restore.batch[3]"]
    # Validation reads each batch's indices together (migrator.steps.validation_reads): once every member's
    # recovery has ended, one `_search` (and `_mapping`, `_settings`) per side names the whole batch.
    # Per wave of the batch (planner.validation_waves: 10 of its indices, validated while its later ones restore).
    requests = [event for event in events if event.kind == "request" and event.data]
    for number in range(3):
        batch = [f"bt-{name}" for name in NEWEST_FIRST[20 * number : 20 * (number + 1)]]
        for wave in validation_waves(batch):
            joined = f"/{','.join(wave)}/_search?ignore_unavailable=true"
            senders = {e.step for e in requests if e.data["path"] == joined}
            assert senders == {f"restore.batch[{number + 1}]"}, (number, senders)  # sent for the batch: it lists it
    joined_kinds = ("/_search?", "/_mapping?", "/_settings?flat_settings=true&")  # the batch's joined reads
    validating = [
        e for e in requests if str(e.step).startswith("validate[") or any(k in e.data["path"] for k in joined_kinds)
    ]
    assert len(validating) < 6 * len(INDICES) / 2  # alone: _search, _mapping and _settings on each side


def test_a_batch_s_first_indices_are_validated_before_its_restore_request_answers(many, tmp_path):
    # Before (issue 17, pipelining): each index's restore, recovery and validation waited for its batch's held
    # restore to answer, i.e. for the batch's LAST index to be restored. 60 one-shard indices in one batch, the
    # destination restoring 4 primaries at a time (node_initial_primaries_recoveries left at its default): the
    # first waves are restored long before the last, a state (the order of the event log), not a race.
    plan = many.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="pipelined",
        snapshot={"indices": ["many-*"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "pl-$1"},
    )
    cli(many, "apply", str(plan), "--yes", "--poll", "0.5")
    store = StateStore(plan.with_name("plan.state.db"))
    try:
        events, checkpoints = store.events(), store.checkpoints()
    finally:
        store.close()
    assert restored_names(plan) == INDICES  # one request, each index once
    assert counts(many, "8", "pl-*") == {f"pl-{name}": 20 for name in INDICES}
    assert checkpoints["restore.batch[1]"].status == "done"
    done = {event.step: event.id for event in events if event.kind == "step.done"}
    answered = done["restore.batch[1]"]
    validated_before = [name for name in INDICES if done[f"validate[pl-{name}]"] < answered]
    assert validated_before, "no index was validated before its batch's restore request answered"
    released = [event for event in events if event.kind == "step.release" and event.step == "restore.batch[1]"]
    assert released and all(event.id < answered for event in released)
    # Until the batch's request answered, the members' restore and recovery steps sent nothing: they read what
    # the batch's poll saw (one routing table read for the 60 names per poll).
    requests = [event for event in events if event.kind == "request" and event.id < answered]
    by_members = [e for e in requests if str(e.step).startswith(("restore[", "recovery["))]
    assert by_members == [], [(e.step, e.message) for e in by_members[:5]]
    polls = {
        e.data["path"] for e in requests if e.step == "restore.batch[1]" and "filter_path=routing" in e.data["path"]
    }
    assert polls == {poll_path([f"pl-{name}" for name in NEWEST_FIRST])}


def test_parallel_32_completes_without_resume(many, tmp_path):
    plan = many.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="p32",
        snapshot={"indices": ["many-*"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "p32-$1", "batch_indices": 10, "parallel": 32},
    )
    cli(many, "apply", str(plan), "--yes", "--poll", "0.5")
    assert restored_names(plan) == INDICES
    assert counts(many, "8", "p32-*") == {f"p32-{name}": 20 for name in INDICES}


def test_a_run_ending_with_its_restore_in_flight_exits_cleanly_and_resume_attaches(seeded, tmp_path):
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="inflight",
        snapshot={"indices": [BIG_INDEX, "orders"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "fl-$1"},
    )
    throttle(plan, snapshot="50mb", restore="200kb")
    state_file = plan.with_name("plan.state.db")
    first = background(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
    wait_for_checkpoint(state_file, lambda cps: "restore.batch[1]" in cps, timeout=300)
    store = StateStore(state_file)
    store.set_meta(cancel_requested="1")  # what `migrator cancel` asks first: the run stops at its next poll
    store.close()
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 3, output  # "cancelled", not a crash (a signal gives a negative code)
    store = StateStore(state_file)
    try:  # the restore request was sent and still unanswered when the run ended
        events = [e for e in store.events(run=1) if e.step == "restore.batch[1]" and e.kind in ("request", "response")]
    finally:
        store.close()
    restores = [e for e in events if e.data["method"] == "POST"]
    assert len(restores) == 1 and not any(e.kind == "response" and e.data["method"] == "POST" for e in events)

    cli(seeded, "resume", str(plan), "--poll", "0.5", timeout=900)
    assert restored_names(plan) == sorted([BIG_INDEX, "orders"])  # never restored twice
    assert counts(seeded, "8", "fl-*") == {
        f"fl-{name}": count for name, count in counts(seeded, "7.17", f"{BIG_INDEX},orders").items()
    }


def test_a_foreign_index_of_a_member_name_stops_only_that_member_and_resume_restores_it_once_removed(many, tmp_path):
    names = INDICES[:6]
    plan = many.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="foreign",
        snapshot={"indices": names},
        restore={"rename_pattern": "(.+)", "rename_replacement": "fo-$1", "batch_indices": 3},
    )
    destination = many.client("8")
    first_batch = names[::-1][:3]  # the newest first (planner.recovery_order)
    foreign = f"fo-{first_batch[1]}"  # made by someone else after the plan was checked: no dry run can refuse it
    transcript = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "migrator", "apply", str(plan), "--step-by-step", "--yes", "--poll", "0.5"],
        env={**os.environ, **many.environment()},
        encoding="utf-8",
        timeout=600,
    )
    child.logfile_read = transcript
    try:
        while child.expect([r"next step: (\S+): ", pexpect.EOF]) == 0:
            step = child.match.group(1)
            child.expect(r"Send these requests\? ")
            if step == "restore.batch[1]":
                destination.request("PUT", build_path(foreign), {"settings": {"number_of_replicas": 0}})
                document = build_path(foreign, "_doc", "theirs", params={"refresh": "true"})
                destination.request("PUT", document, {"kept": True}, ok=(200, 201))
            child.sendline("y")
        child.close()
        output = transcript.getvalue()
        # Before: restore.batch[1] failed at its observation and none of its three indices was restored.
        assert child.exitstatus == 1, output
        assert f"{foreign} exists on the destination and was not restored by this migration" in output
        left_out = f"{first_batch[0]},{first_batch[2]}"
        assert restore_requests(plan)[0]["body"]["indices"] == left_out  # the foreign one is left out
        assert counts(many, "8", foreign) == {foreign: 1}  # never overwritten
        restored = counts(many, "8", "fo-*")
        assert restored[f"fo-{first_batch[0]}"] == restored[f"fo-{first_batch[2]}"] == 20

        destination.request("DELETE", build_path(foreign))
        cli(many, "resume", str(plan), "--poll", "0.5", timeout=600)
        assert counts(many, "8", "fo-*") == {f"fo-{name}": 20 for name in names}
        assert restored_names(plan) == sorted(names)  # each index in one request, once
    finally:
        destination.request("DELETE", build_path("fo-*"), ok=(200, 404))
        destination.close()


WIDE = [f"wide-{number:03d}" for number in range(251)]


@pytest.fixture(scope="module")
def wide(testbed):
    """251 one-shard indices of 2 documents on 7.17 (one more than a default restore batch), deleted after."""
    client = testbed.client("7.17")
    settings = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda name: client.request("PUT", build_path(name), settings), WIDE))
        lines = []
        for name in WIDE:
            for number in range(2):
                lines += [json.dumps({"index": {"_index": name, "_id": str(number)}}), json.dumps({"n": number})]
        client.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), timeout_s=300)
        client.request("POST", build_path("wide-*", "_refresh"))
        yield testbed
    finally:
        client.request("DELETE", build_path("wide-*"), ok=(200, 404))
        client.close()


def test_a_default_plan_restores_251_indices_in_two_requests_as_the_dry_run_shows(wide, tmp_path):
    plan = wide.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="wide",
        snapshot={"indices": ["wide-*"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "wd-$1"},
    )
    dry = json.loads(cli(wide, "plan", str(plan), "--format", "json").stdout)
    shown = [step["requests"] for step in dry["steps"] if step["kind"] == "restore.batch"]
    assert [len(request["body"]["indices"].split(",")) for [request] in shown] == [250, 1]
    cli(wide, "apply", str(plan), "--yes", "--poll", "0.5")
    sent = restore_requests(plan)
    assert sorted(len(r["body"]["indices"].split(",")) for r in sent) == [1, 250]
    assert restored_names(plan) == WIDE  # each index in one request, once
    assert counts(wide, "8", "wd-*") == {f"wd-{name}": 2 for name in WIDE}


def test_a_batch_resumed_with_some_members_restored_sends_what_the_runbook_shows(many, tmp_path):
    """Reported by breaker5 (6.8 -> 7.10, kill -9 in a batch's restore, then `restore.batch_indices` changed and
    `resume --replan`): a batch whose members were partly restored read their uuids for the members left,
    `GET _cluster/state/metadata/<some members>`, a path the runbook did not show. Here the first batch of 20
    is restored (`--until`), then batches of 30 put 20 restored members and 10 new ones in one batch."""
    plan = many.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="partial",
        snapshot={"indices": ["many-*"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "pb-$1", "batch_indices": 20, "parallel": 1},
    )
    cli(many, "apply", str(plan), "--yes", "--poll", "0.5", "--until", "restore.batch[1]")
    document = yaml.safe_load(plan.read_text())
    document["restore"]["batch_indices"] = 30
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    runbook = cli(many, "plan", str(plan), "--format", "markdown").stdout
    cli(many, "resume", str(plan), "--replan", "--poll", "0.5")

    store = StateStore(plan.with_name("plan.state.db"))
    try:
        snapshot, last = store.get_meta("snapshot"), store.run
        sent = [e for e in store.events(kind="request", run=last)]
    finally:
        store.close()
    dry_snapshot = re.search(r"partial-\d{4}\.\d\d\.\d\d-\d{6}", runbook)
    listed = console_requests(runbook.replace(dry_snapshot.group(0), snapshot) if dry_snapshot else runbook)
    unlisted = [
        (e.step, review_sent(e)) for e in sent if review_sent(e) not in listed.get(e.step or "discovery", set())
    ]
    assert unlisted == []
    batch_one = [r for r in restore_requests(plan) if len(r["body"]["indices"].split(",")) == 10]
    assert len(batch_one) == 1  # the new batch 1 restored only its 10 members not restored before
    assert restored_names(plan) == INDICES  # each index once
    assert counts(many, "8", "pb-*") == {f"pb-{name}": 20 for name in INDICES}
