"""What a migration treats as its own, and a finished one looked at again, on real nodes (7.17 -> 8)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from migrator.clients.es import build_path
from migrator.state import StateStore
from tests.helpers import cli, request_events

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("leave_the_clusters_as_found")]


def make_index(bed, alias: str, name: str, docs: dict[str, dict]) -> None:
    client = bed.client(alias)
    try:
        client.request("PUT", build_path(name), {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
        for doc_id, body in docs.items():
            client.request("PUT", build_path(name, "_doc", doc_id), body, ok=(200, 201))
        client.request("POST", build_path(name, "_refresh"))
    finally:
        client.close()


def register_like_the_plan(bed, plan: Path) -> str:
    """Register the plan's repository on the source by hand (as a user's existing repository)."""
    repository = yaml.safe_load(plan.read_text())["repository"]
    client = bed.client("7.17")
    try:
        client.request(
            "PUT", build_path("_snapshot", repository["name"]), {"type": "fs", "settings": repository["settings"]}
        )
    finally:
        client.close()
    return repository["name"]


def snapshot_uuid(bed, repository: str, snapshot: str) -> str | None:
    client = bed.client("7.17")
    try:
        status, body = client.request("GET", build_path("_snapshot", repository, snapshot), ok=(200, 404))
        found = (body.get("snapshots") or []) if status == 200 else []
        return found[0]["uuid"] if found else None
    finally:
        client.close()


def test_an_existing_snapshot_of_the_plan_name_is_refused_never_adopted_nor_deleted(testbed, tmp_path):
    index = f"own-status-{uuid.uuid4().hex[:6]}"
    make_index(testbed, "7.17", index, {"1": {"status": "old"}})
    plan = testbed.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="own1",
        repository_type="fs",  # registered by hand below as the user's own repository
        snapshot={"indices": [index], "name": "nightly-fixed"},
        finish={"delete_snapshot": True, "unregister_repositories": True},
    )
    repository = register_like_the_plan(testbed, plan)
    source = testbed.client("7.17")
    try:
        path = build_path("_snapshot", repository, "nightly-fixed", params={"wait_for_completion": True})
        source.request("PUT", path, {"indices": index, "include_global_state": False})
        source.request("PUT", build_path(index, "_doc", "1"), {"status": "new"}, ok=(200, 201))
        source.request("POST", build_path(index, "_refresh"))
    finally:
        source.close()
    old_uuid = snapshot_uuid(testbed, repository, "nightly-fixed")

    dry = cli(testbed, "plan", str(plan), check=False)
    assert dry.returncode == 2, dry.stdout + dry.stderr
    assert "snapshot.name: snapshot 'nightly-fixed' already exists in repository" in dry.stdout + dry.stderr
    as_json = json.loads(cli(testbed, "plan", str(plan), "--json", check=False).stdout)
    assert [p["field"] for p in as_json["problems"]] == ["snapshot.name"]
    applied = cli(testbed, "apply", str(plan), "--yes", check=False)
    assert applied.returncode == 2, applied.stdout + applied.stderr
    assert snapshot_uuid(testbed, repository, "nightly-fixed") == old_uuid  # neither adopted nor deleted
    destination = testbed.client("8")
    try:
        assert destination.request("GET", build_path(index), ok=(200, 404))[0] == 404
    finally:
        destination.close()

    # the fix the refusal names: a name of its own; the data restored is today's, and the clean-up
    # deletes the snapshot it took, not the user's, and unregisters only the destination registration it made
    document = yaml.safe_load(plan.read_text())
    document["snapshot"]["name"] = "{name}-{date:%Y%m%d-%H%M%S}"
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    cli(testbed, "apply", str(plan), "--yes", "--poll", "0.5")
    destination = testbed.client("8")
    try:
        assert destination.get(build_path(index, "_doc", "1"))["_source"] == {"status": "new"}
        assert destination.request("GET", build_path("_snapshot", repository), ok=(200, 404))[0] == 404
    finally:
        destination.close()
    assert snapshot_uuid(testbed, repository, "nightly-fixed") == old_uuid
    store = StateStore(plan.with_name("plan.state.db"))
    taken = store.get_meta("snapshot")
    store.close()
    assert taken.startswith("own1-") and snapshot_uuid(testbed, repository, taken) is None  # ours: deleted
    source = testbed.client("7.17")
    try:  # the user's registration on the source stays
        assert source.request("GET", build_path("_snapshot", repository), ok=(200, 404))[0] == 200
    finally:
        source.close()


def test_a_snapshot_of_the_name_that_appears_during_the_run_is_refused_and_cancel_keeps_it(testbed, tmp_path):
    index = f"own-between-{uuid.uuid4().hex[:6]}"
    make_index(testbed, "7.17", index, {"1": {"status": "old"}})
    plan = testbed.write_plan(
        tmp_path, "7.17", "8", name="own2", snapshot={"indices": [index], "name": "between-fixed"}
    )
    cli(testbed, "apply", str(plan), "--yes", "--until", "repository.source")
    repository = yaml.safe_load(plan.read_text())["repository"]["name"]
    source = testbed.client("7.17")
    try:  # someone takes a snapshot of that name after the dry run
        path = build_path("_snapshot", repository, "between-fixed", params={"wait_for_completion": True})
        source.request("PUT", path, {"indices": index, "include_global_state": False})
    finally:
        source.close()
    theirs = snapshot_uuid(testbed, repository, "between-fixed")

    resumed = cli(testbed, "resume", str(plan), check=False)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "this migration did not take it" in resumed.stderr and "snapshot.name" in resumed.stderr
    cancelled = cli(testbed, "cancel", str(plan))
    assert "not taken by this migration" in cancelled.stdout + cancelled.stderr
    assert snapshot_uuid(testbed, repository, "between-fixed") == theirs


def test_a_finished_migration_is_observed_again_and_drift_is_reported_with_the_command_that_redoes_it(
    testbed, tmp_path
):
    tag = uuid.uuid4().hex[:6]
    first, second = f"own-a-{tag}", f"own-b-{tag}"
    for name in (first, second):
        make_index(testbed, "7.17", name, {str(n): {"n": n} for n in range(5)})
    alias = f"own-read-{tag}"
    plan = testbed.write_plan(
        tmp_path, "7.17", "8", name="own3", snapshot={"indices": [first, second]}, finish={"aliases": {alias: [first]}}
    )
    cli(testbed, "apply", str(plan), "--yes", "--poll", "0.5")

    destination = testbed.client("8")
    try:
        destination.request("DELETE", build_path(second))  # a target gone
        destination.request("DELETE", build_path(first, "_doc", "0"))  # a count changed
        destination.request("POST", build_path(first, "_refresh"))
        destination.request("POST", "/_aliases", {"actions": [{"remove": {"index": first, "alias": alias}}]})
    finally:
        destination.close()
    for command in ("apply", "resume"):
        drifted = cli(testbed, command, str(plan), *(["--yes"] if command == "apply" else []), check=False)
        assert drifted.returncode == 1, drifted.stdout + drifted.stderr
        assert f"drift: restore[{second}]: {second} does not exist on the destination" in drifted.stderr
        assert f"drift: validate[{first}]: {first} has 4 documents on the destination, 5 when validated" in (
            drifted.stderr
        )
        assert "drift: finish: POST _aliases to send again" in drifted.stderr  # an alias moved
        assert f"migrator resume {plan} --redo 'restore[{second}]'" in drifted.stderr
        # a changed count is put right by restoring the index again (before: `--redo validate[...]`, which fails)
        assert f"migrator resume {plan} --redo 'restore[{first}]'" in drifted.stderr
        assert "complete" not in drifted.stdout
        store = StateStore(plan.with_name("plan.state.db"))
        last_run = store.run
        store.close()
        sent = [e.data for e in request_events(plan, last_run)]
        assert sent and all(request["method"] == "GET" for request in sent)  # nothing redone unasked
    # status says so too (before: "done", exit 0, after a run that reported drift)
    assert json.loads(cli(testbed, "status", str(plan), "--json").stdout)["status"] == "drifted"
    assert cli(testbed, "status", str(plan), "--watch", check=False).returncode == 1

    cli(testbed, "resume", str(plan), "--redo", f"restore[{second}]", "--poll", "0.5")
    store = StateStore(plan.with_name("plan.state.db"))
    redo_run = store.run
    store.close()
    restores = [
        e for e in request_events(plan, redo_run) if e.data["method"] == "POST" and "/_restore" in e.data["path"]
    ]
    # the batch restores the redone index again, in its own request form (before: restore[...] sent one of its own)
    assert [e.step for e in restores] == ["restore.batch[1]"], [(e.step, e.data["path"]) for e in restores]
    assert restores[0].data["body"]["indices"] == second  # the redone index alone
    destination = testbed.client("8")
    try:
        assert destination.doc_count(second) == 5
        assert destination.request("GET", build_path(first, "_alias", alias), ok=(200, 404))[0] == 200  # finish redone
    finally:
        destination.close()
    redone = cli(testbed, "resume", str(plan), "--redo", f"restore[{first}]", "--poll", "0.5")
    assert f"deleted {first} (restored by this migration) to restore it again" in redone.stdout + redone.stderr
    destination = testbed.client("8")
    try:
        assert destination.doc_count(first) == 5  # the snapshot's documents again, validated
    finally:
        destination.close()
    assert cli(testbed, "apply", str(plan), "--yes").returncode == 0  # no drift left

    # the dry run beside the finished run: its targets are its own, not collisions
    again = cli(testbed, "plan", str(plan))
    assert "run          done since" in again.stdout and "REFUSED" not in again.stdout
    assert json.loads(cli(testbed, "plan", str(plan), "--json").stdout)["run"]["status"] == "done"


def test_killed_between_the_create_and_its_recorded_uuid_the_resumed_run_claims_its_snapshot(testbed, tmp_path):
    index = f"own-kill-{uuid.uuid4().hex[:6]}"
    make_index(testbed, "7.17", index, {"1": {"status": "old"}})
    plan = testbed.write_plan(tmp_path, "7.17", "8", name="own4", snapshot={"indices": [index]})
    killed = cli(
        testbed, "apply", str(plan), "--yes", env={"MIGRATOR_FAILPOINT": "snapshot.create:accepted"}, check=False
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    store = StateStore(plan.with_name("plan.state.db"))
    try:
        snapshot = store.get_meta("snapshot")
        repository = store.get_meta("repository")
        record = store.get_json(f"owned.snapshot.{repository}/{snapshot}")
    finally:
        store.close()
    assert record["intent_ms"] and record["uuid"] is None  # the intent only: killed in the window

    cli(testbed, "resume", str(plan), "--poll", "0.5")
    store = StateStore(plan.with_name("plan.state.db"))
    try:
        record = store.get_json(f"owned.snapshot.{repository}/{snapshot}")
    finally:
        store.close()
    assert record["uuid"] == snapshot_uuid(testbed, repository, snapshot)
    destination = testbed.client("8")
    try:
        assert destination.doc_count(index) == 1
    finally:
        destination.close()
