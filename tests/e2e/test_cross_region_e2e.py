"""Cross-region migrations on real nodes: the source writes the repository into one bucket, the
destination reads a second bucket (another region) that OSS replication (emulated by the test bed's
OSS server) or migrator's own copy fills; the replica is verified before the destination reads it."""

from __future__ import annotations

import json

import pytest
import yaml

from migrator.clients.es import build_path
from migrator.clients.replication import BucketReplication
from migrator.state import StateStore
from tests.conftest import BUCKET, REPLICA_BUCKET
from tests.helpers import cli, counts, repository_of

pytestmark = pytest.mark.cluster

INDICES = ["logs-2026.11.01", "orders"]


def cross_region_plan(bed, tmp_path, prefix: str, method: str, **sections):
    plan = bed.write_plan(
        tmp_path,
        "7.17",
        "8",
        name=prefix,
        snapshot={"indices": INDICES},
        restore={"rename_pattern": "(.+)", "rename_replacement": f"{prefix}-$1"},
        **sections,
    )
    document = yaml.safe_load(plan.read_text())
    base_path = document["storage"]["base_path"]
    document["repository"]["destination_settings"] = {"bucket": REPLICA_BUCKET, "extra": {"region": "cn-shanghai"}}
    document["replication"] = {
        "method": method,
        "storage": {**document["storage"], "bucket": REPLICA_BUCKET, "region": "cn-shanghai"},
    }
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    return plan, base_path


def replication_rules(bed):
    return BucketReplication(bed.oss.endpoint, BUCKET, bed.key_id, bed.secret, region="cn-hangzhou").rules()


@pytest.mark.parametrize("method", ["oss", "copy"])
def test_cross_region_migration_through_two_buckets(seeded, tmp_path, method):
    prefix = f"xr{method}"
    plan, base_path = cross_region_plan(
        seeded, tmp_path, prefix, method, finish={"unregister_repositories": True, "delete_snapshot": True}
    )
    dry = cli(seeded, "plan", str(plan))
    assert "replica.verify" in dry.stdout
    cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5")

    expected = {f"{prefix}-{name}": count for name, count in counts(seeded, "7.17", ",".join(INDICES)).items()}
    assert counts(seeded, "8", f"{prefix}-*") == expected
    replica_files = {p.relative_to(seeded.replica_dir / base_path) for p in (seeded.replica_dir / base_path).rglob("*")}
    assert any(str(name).startswith("index-") for name in replica_files)
    store = StateStore(plan.with_name("plan.state.db"))
    try:
        checkpoints = store.checkpoints()
        assert checkpoints["replication"].status == "done"
        assert checkpoints["replica.verify"].status == "done"
        assert checkpoints["replica.verify"].detail["files"] > 0
        if method == "copy":
            assert checkpoints["replication"].detail["copied"] > 0
        else:
            assert checkpoints["replication"].detail["rule_id"] == f"migrator-{prefix}"
        registered = [
            e.data for e in store.events(kind="request") if e.data.get("path") == f"/_snapshot/{repository_of(plan)}"
        ]
        destination_put = [r for r in registered if r["cluster"] == "destination" and r["method"] == "PUT"]
        assert destination_put[0]["body"]["settings"]["bucket"] == REPLICA_BUCKET
        assert destination_put[0]["body"]["settings"]["readonly"] is True
    finally:
        store.close()
    # finish removed the rule (OSS allows one per target bucket: the next migration needs its own)
    assert [rule.rule_id for rule in replication_rules(seeded) if rule.status != "closing"] == []


def test_copy_is_verified_and_a_damaged_replica_stops_the_restore(seeded, tmp_path):
    """A replica blob damaged after the copy: the replica's verification fails and nothing is restored."""
    prefix = "xrbad"
    plan, base_path = cross_region_plan(seeded, tmp_path, prefix, "copy")
    cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5", "--until", "replication")
    replica_root = seeded.replica_dir / base_path
    data_blob = max((p for p in replica_root.rglob("__*") if p.is_file()), key=lambda p: p.stat().st_size)
    data_blob.unlink()
    failed = cli(seeded, "resume", str(plan), "--poll", "0.5", check=False)
    assert failed.returncode == 1
    assert "replica.verify" in failed.stderr
    assert counts(seeded, "8", f"{prefix}-*") == {}
    # The copy is resumable: run it again and it brings back just the missing blob.
    store = StateStore(plan.with_name("plan.state.db"))
    store.reset(["replication", "replica.verify"])
    store.close()
    cli(seeded, "resume", str(plan), "--poll", "0.5")
    expected = {f"{prefix}-{name}": count for name, count in counts(seeded, "7.17", ",".join(INDICES)).items()}
    assert counts(seeded, "8", f"{prefix}-*") == expected
    store = StateStore(plan.with_name("plan.state.db"))
    copied = store.checkpoints()["replication"].detail
    store.close()
    assert copied["copied"] >= 1 and copied["skipped"] > 0


@pytest.mark.parametrize("method", ["oss", "copy"])
def test_cross_region_cutover_replicates_the_incremental_snapshot(seeded, tmp_path, method):
    prefix = f"xrcut{method}"
    client = seeded.client("7.17")
    names = [f"{prefix}-live"]
    client.request("PUT", build_path(names[0]), {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    for number in range(200):
        client.request("POST", build_path(names[0], "_doc"), {"n": number}, ok=(201,))
    plan, _ = cross_region_plan(seeded, tmp_path, prefix, method, cutover={"enabled": True})
    document = yaml.safe_load(plan.read_text())
    document["snapshot"] = {"indices": names}
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
    for number in range(200, 260):
        client.request("POST", build_path(names[0], "_doc"), {"n": number}, ok=(201,))
    cli(seeded, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.5")
    client.request("POST", build_path(names[0], "_refresh"))
    client.close()
    assert counts(seeded, "8", f"{prefix}-*") == {f"{prefix}-{names[0]}": 260}
    report = json.loads(cli(seeded, "report", str(plan), "--format", "json").stdout)
    steps = {step["step"]: step["status"] for step in report["steps"]}
    assert steps["cutover.replication"] == steps["cutover.replica.verify"] == "done"
    store = StateStore(plan.with_name("plan.state.db"))
    replicated = store.checkpoints()["cutover.replication"].detail
    store.close()
    if method == "copy":  # only what the incremental snapshot added crossed
        assert 0 < replicated["copied"] < replicated["blobs"] and replicated["skipped"] > 0
    cli(seeded, "rollback", str(plan))
    if method == "oss":
        rules = BucketReplication(seeded.oss.endpoint, BUCKET, seeded.key_id, seeded.secret, region="cn-hangzhou")
        rules.delete_rule(replicated["rule_id"])
    client = seeded.client("7.17")
    client.request("DELETE", build_path(names[0]))  # the shared source keeps only the seeded indices
    client.close()


def test_a_replica_bucket_that_does_not_exist_stops_the_run_at_preflight(seeded, tmp_path):
    plan, _ = cross_region_plan(seeded, tmp_path, "xrpf", "copy")
    document = yaml.safe_load(plan.read_text())
    document["replication"]["storage"]["bucket"] = "no-such-replica"
    document["repository"]["destination_settings"]["bucket"] = "no-such-replica"  # the plan reads it there
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    run = cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5", check=False)
    assert run.returncode == 1, run.stderr
    assert "oss://no-such-replica/" in run.stderr and "of replication.storage in the plan" in run.stderr, run.stderr
    assert "NoSuchBucket" in run.stderr and "check the bucket name" in run.stderr
    store = StateStore(plan.with_name("plan.state.db"))
    try:
        assert store.checkpoints()["preflight"].status != "done"
        assert not [e for e in store.events(kind="request") if e.data.get("method") in ("PUT", "POST", "DELETE")]
    finally:
        store.close()
