"""Migrations on real nodes, driven through the CLI exactly as a user would run them."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from migrator.clients.es import NODE_VERSIONS
from migrator.state import StateStore
from tests.helpers import (
    BIG_INDEX,
    background,
    cli,
    counts,
    load_script,
    repository_of,
    request_events,
    restore_requests,
    snapshot_waiting,
    throttle,
    wait_for_checkpoint,
)
from tests.rest_conformance import document_requests, log_requests, nonconforming

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize(
    ("source", "destination", "prefix"),
    [("7.17", "8", "a717"), ("7.10", "8", "a710"), ("8", "9", "a8")],
)
def test_migration_with_wildcard_exclusion_and_rename(seeded, tmp_path, source, destination, prefix):
    plan = seeded.write_plan(
        tmp_path,
        source,
        destination,
        name=prefix,
        snapshot={"indices": ["logs-*", "orders"], "exclude": ["logs-debug"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": f"{prefix}-$1"},
    )
    dry = cli(seeded, "plan", str(plan))
    assert f"logs-2026.11.01 -> {prefix}-logs-2026.11.01" in dry.stdout
    assert "logs-debug: excluded" in dry.stdout
    document = json.loads(cli(seeded, "plan", str(plan), "--format", "json").stdout)

    started = time.time()
    cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
    ended = time.time()
    # the dry run's and the run's requests are in the REST specification of each cluster's version
    versions = {side: document[side]["version"] for side in ("source", "destination")}
    problems = nonconforming(document_requests(document), versions)
    problems += nonconforming(log_requests(request_events(plan)), versions)
    assert problems == [], "\n".join(problems)
    # each cluster's version is read once in the run (by discovery; preflight takes that answer): before, preflight
    # sent `GET /` and the nodes' versions again
    version_reads = [
        (e.data["cluster"], e.data["path"])
        for e in request_events(plan, 1)
        if e.data["path"] in ("/", NODE_VERSIONS) and e.data["method"] == "GET"
    ]
    assert sorted(version_reads) == sorted((side, path) for side in versions for path in ("/", NODE_VERSIONS))

    expected = {
        f"{prefix}-{name}": count
        for name, count in counts(seeded, source, "logs-*,orders").items()
        if name != "logs-debug"
    }
    assert counts(seeded, destination, f"{prefix}-*") == expected
    assert len(expected) == 3
    # the bytes each restore copied, as the report has them (from the snapshot's sizes), are what the
    # destination's own recovery figures say
    report = json.loads(cli(seeded, "report", str(plan), "--format", "json").stdout)
    client = seeded.client(destination)
    try:
        for index in report["indices"]:
            shards = client.get(f"/{index['target']}/_recovery")[index["target"]]["shards"]
            assert index["recovered_bytes"] == sum(s["index"]["size"]["total_in_bytes"] for s in shards) > 0
    finally:
        client.close()
    # the report's timeline: every step of the run started and finished, the snapshot wait polled the source,
    # and the speed benchmark reads its phases from it
    timeline = report["timeline"]
    assert timeline["run"] == report["runs"] == 1
    spans = {step["step"]: step for step in timeline["steps"]}
    assert {step["step"] for step in report["steps"] if step["status"] == "done"} <= set(spans)
    assert all(started <= s["started"] <= s["finished"] <= ended for s in spans.values())
    assert timeline["waits"]["source"]["requests"] >= 1
    phases = load_script("bench_speed").migrator_phases(timeline, started, ended, spans["snapshot.wait"]["started"])
    assert len(phases) == 7 and all(seconds >= 0 for seconds in phases.values()), phases

    second = cli(seeded, "apply", str(plan), "--yes")
    assert "already done" in second.stdout
    store = StateStore(plan.with_name("plan.state.db"))
    last_run = store.run
    store.close()
    mutating = [e.message for e in request_events(plan, last_run) if e.data["method"] in ("PUT", "POST", "DELETE")]
    assert mutating == []


def test_dot_prefixed_index_is_left_out_unless_named(seeded, tmp_path):
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="dots",
        snapshot={"indices": ["*"], "exclude": ["logs-*", BIG_INDEX]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "dots-$1"},
    )
    dry = cli(seeded, "plan", str(plan), "--json")
    document = json.loads(dry.stdout)
    assert [item["source"] for item in document["indices"]] == ["orders"]
    assert ".sandbox-settings" in document["skipped"]


def test_seven_to_nine_is_refused_by_plan_naming_the_rule(seeded, tmp_path):
    plan = seeded.write_plan(tmp_path, "7.17", "9", snapshot={"indices": ["orders"]})
    result = cli(seeded, "plan", str(plan), check=False)
    assert result.returncode == 2
    assert "'skipping-a-major'" in result.stderr


def test_colliding_renames_are_refused_with_exit_2(seeded, tmp_path):
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        snapshot={"indices": ["logs-*"]},
        restore={"rename_pattern": "logs-.*", "rename_replacement": "same"},
    )
    result = cli(seeded, "apply", str(plan), "--yes", check=False)
    assert result.returncode == 2
    assert "restore.rename_pattern" in result.stderr and "'same'" in result.stderr


def test_kill_during_snapshot_and_recovery_then_resume(seeded, tmp_path):
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="kill",
        snapshot={"indices": [BIG_INDEX, "orders"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "kill-$1"},
    )
    throttle(plan)
    state_file = plan.with_name("plan.state.db")

    first = background(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
    wait_for_checkpoint(state_file, snapshot_waiting)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()

    second = background(seeded, "resume", str(plan), "--poll", "0.5")
    wait_for_checkpoint(  # the restore's long wait: its batch holds the request open (restore_batch)
        state_file,
        lambda cps: "restore.batch[1]" in cps and cps["restore.batch[1]"].status == "acting",
        timeout=300,
    )
    os.kill(second.pid, signal.SIGKILL)
    second.wait()

    cli(seeded, "resume", str(plan), "--poll", "0.5")

    source = seeded.client("7.17")
    snapshots = source.get(f"/_snapshot/{repository_of(plan)}/_all")["snapshots"]
    source.close()
    assert len(snapshots) == 1 and snapshots[0]["state"] == "SUCCESS"
    restores = restore_requests(plan)
    assert sorted(name for r in restores for name in r["body"]["indices"].split(",")) == sorted([BIG_INDEX, "orders"])
    assert counts(seeded, "8", "kill-*") == {
        f"kill-{name}": count for name, count in counts(seeded, "7.17", f"{BIG_INDEX},orders").items()
    }


def test_cancel_during_snapshot_leaves_no_snapshot(seeded, tmp_path):
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="cancel",
        snapshot={"indices": [BIG_INDEX]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "cancel-$1"},
    )
    throttle(plan, snapshot="100kb")
    state_file = plan.with_name("plan.state.db")
    running = background(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
    wait_for_checkpoint(state_file, snapshot_waiting)
    cancelled = cli(seeded, "cancel", str(plan), "--json")
    output, _ = running.communicate(timeout=120)
    assert running.returncode == 3, output
    assert "snapshot_deleted" in cancelled.stdout
    source = seeded.client("7.17")
    assert source.get(f"/_snapshot/{repository_of(plan)}/_all")["snapshots"] == []
    source.close()
    assert counts(seeded, "8", "cancel-*") == {}
    status = cli(seeded, "status", str(plan), "--json")
    assert '"status": "cancelled"' in status.stdout


def test_a_damaged_snapshot_stops_the_run_before_the_destination_is_touched(seeded, tmp_path):
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="damaged",
        repository_type="fs",  # deletes a blob from the folder
        snapshot={"indices": ["orders"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "damaged-$1"},
    )
    document = yaml.safe_load(plan.read_text())
    repository = document["repository"]
    # migrator takes the snapshot (one taken by hand under the plan's name would be refused as not its own)
    cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5", "--until", "snapshot.wait")
    source = seeded.client("7.17")
    (snapshot,) = [s["snapshot"] for s in source.get(f"/_snapshot/{repository['name']}/_all")["snapshots"]]
    source.close()
    location = Path(repository["settings"]["location"])
    data_blob = next(path for path in sorted(location.glob("indices/*/0/__*")) if path.stat().st_size > 0)
    data_blob.unlink()

    result = cli(seeded, "resume", str(plan), "--poll", "0.5", check=False)
    assert result.returncode == 1
    assert snapshot in result.stderr and data_blob.name in result.stderr and "missing" in result.stderr
    destination_requests = [e.data for e in request_events(plan) if e.data["cluster"] == "destination"]
    assert [r for r in destination_requests if r["method"] != "GET"] == []
    destination = seeded.client("8")
    status, _ = destination.request("GET", f"/_snapshot/{repository['name']}", ok=(200, 404))
    destination.close()
    assert status == 404


def test_second_apply_is_refused_while_the_first_holds_the_lock_and_a_changed_plan_needs_replan(seeded, tmp_path):
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="locked",
        snapshot={"indices": [BIG_INDEX]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "locked-$1"},
    )
    throttle(plan, snapshot="200kb")
    state_file = plan.with_name("plan.state.db")
    first = background(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
    try:
        wait_for_checkpoint(state_file, snapshot_waiting)
        second = cli(seeded, "apply", str(plan), "--yes", check=False)
        assert second.returncode == 3
        assert f"pid {first.pid}" in second.stderr and "--force-unlock" in second.stderr
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()

    document = yaml.safe_load(plan.read_text())
    document["restore"]["include_aliases"] = True
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    changed = cli(seeded, "resume", str(plan), check=False)
    assert changed.returncode == 3 and "the plan changed" in changed.stderr and "--replan" in changed.stderr
    cli(seeded, "resume", str(plan), "--replan", "--poll", "0.5")
    assert counts(seeded, "8", "locked-*") == {f"locked-{BIG_INDEX}": counts(seeded, "7.17", BIG_INDEX)[BIG_INDEX]}


def test_secrets_never_reach_output_or_state(seeded, tmp_path, monkeypatch):
    """A canary for every kind of secret: cluster password and API key, repository access key id, secret
    and STS token, a secret extra setting, and the storage key pair."""
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="secrets",
        repository_type="fs",  # the canary keys are no real keys: the oss plugin would refuse them
        snapshot={"indices": ["orders"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "secrets-$1"},
    )
    canaries = {
        "CANARY_PASSWORD": "canary-password-41d2",
        "CANARY_API_KEY": "canary-apikey-88f0",
        "CANARY_KEY_ID": "canary-keyid-1c9e",
        "CANARY_KEY_SECRET": "canary-keysecret-7b3a",
        "CANARY_TOKEN": "canary-ststoken-5e61",
        "CANARY_SECRET": "canary-extra-9f27",
    }
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    document = yaml.safe_load(plan.read_text())
    document["source"].update(username="elastic", password="${CANARY_PASSWORD}")
    document["destination"]["api_key"] = "${CANARY_API_KEY}"
    document["repository"]["settings"].update(
        access_key_id="${CANARY_KEY_ID}",
        secret_access_key="${CANARY_KEY_SECRET}",
        security_token="${CANARY_TOKEN}",
        extra={"canary_secret": "${CANARY_SECRET}"},
    )
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    outputs = [
        cli(seeded, "plan", str(plan)),
        cli(seeded, "plan", str(plan), "--json"),
        cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5"),
        cli(seeded, "apply", str(plan), "--yes"),
        cli(seeded, "status", str(plan), "--json"),
    ]
    secrets = [*canaries.values(), seeded.secret]
    for result in outputs:
        for secret in secrets:
            assert secret not in result.stdout and secret not in result.stderr
    written = [path for path in tmp_path.iterdir() if path.name != "plan.yaml"]
    assert any(path.name.startswith("plan.state.db") for path in written)
    for path in written:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, (secret, path)
    assert "******" in outputs[0].stdout


def test_a_bucket_migrator_cannot_read_stops_the_run_at_preflight(seeded, tmp_path):
    """A wrong key (or bucket) in the plan's storage section is found before anything changes, not when the
    snapshot is done; the message names the plan field, OSS's code and the fix, and never the secret."""
    plan = seeded.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="pfb",
        snapshot={"indices": ["orders"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "pfb-$1"},
        storage={"access_key_secret": "${WRONG_OSS_SECRET}"},
    )
    wrong = {"WRONG_OSS_SECRET": "not-the-secret-4711"}
    run = cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5", check=False, env=wrong)
    assert run.returncode == 1, run.stderr
    assert "of storage in the plan" in run.stderr and "SignatureDoesNotMatch" in run.stderr, run.stderr
    assert "check access_key_secret" in run.stderr
    assert "not-the-secret-4711" not in run.stdout + run.stderr
    mutating = [e.message for e in request_events(plan, 1) if e.data["method"] in ("PUT", "POST", "DELETE")]
    assert mutating == []  # no repository registered, no snapshot taken
