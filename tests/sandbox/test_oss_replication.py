"""Cross-region replication: the sandbox OSS server's emulation (through unmodified oss2) and migrator's client."""

from __future__ import annotations

import json
import os
import stat
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import oss2
import pytest

from migrator.clients.replication import BucketReplication, ReplicationError, ReplicationProgress
from migrator.clients.storage import NotFound, StorageError
from migrator.sandbox.oss_server import BucketConfig, Faults, OssServer

AK = "LTAI-replication-key"
SK = "replication-secret-value"
SOURCE, TARGET, OTHER = "src-bucket", "replica-bucket", "other-bucket"
TARGET_LOCATION = "oss-cn-shanghai"
BUCKETS = [
    BucketConfig(SOURCE),
    BucketConfig(TARGET, region=TARGET_LOCATION),
    BucketConfig(OTHER, region="oss-cn-beijing"),
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OssServer]:
    with OssServer(tmp_path / "root", BUCKETS, AK, SK) as srv:
        yield srv


@pytest.fixture(params=["v1", "v4"])
def version(request: pytest.FixtureRequest) -> str:
    return request.param


def source_bucket(server: OssServer, version: str = "v4") -> oss2.Bucket:
    if version == "v4":
        return oss2.Bucket(oss2.AuthV4(AK, SK), server.endpoint, SOURCE, region="cn-hangzhou")
    return oss2.Bucket(oss2.Auth(AK, SK), server.endpoint, SOURCE)


def client(server: OssServer, **options: object) -> BucketReplication:
    return BucketReplication(server.endpoint, SOURCE, AK, SK, **{"region": "oss-cn-hangzhou", **options})


def rule(rule_id: str = "r1", target: str = TARGET, location: str = TARGET_LOCATION, **options: object):
    return oss2.models.ReplicationRule(
        rule_id=rule_id, target_bucket_name=target, target_bucket_location=location, **options
    )


def write(root: Path, bucket: str, key: str, data: bytes, mtime: float | None = None) -> Path:
    """A file written straight to the bucket directory, as Elasticsearch's fs repository does."""
    path = root / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def wait_for(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s")
        time.sleep(0.05)


def server_error(call: Callable[[], object]) -> oss2.exceptions.ServerError:
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        call()
    return caught.value


# the server ------------------------------------------------------------------------------------


def test_rule_lifecycle(server: OssServer, version: str) -> None:
    bucket = source_bucket(server, version)
    assert server_error(bucket.get_bucket_replication).code == "NoSuchReplicationConfiguration"
    bucket.put_bucket_replication(rule(prefix_list=["repo/"], action_list=["ALL"]))
    (listed,) = bucket.get_bucket_replication().rule_list
    assert (listed.rule_id, listed.target_bucket_name, listed.target_bucket_location) == ("r1", TARGET, TARGET_LOCATION)
    assert (listed.prefix_list, listed.action_list, listed.target_transfer_type) == (["repo/"], ["ALL"], "internal")
    assert listed.is_enable_historical_object_replication is True
    assert listed.status in ("starting", "doing")
    wait_for(lambda: bucket.get_bucket_replication_progress("r1").progress.status == "doing")
    progress = bucket.get_bucket_replication_progress("r1").progress
    assert progress.historical_object_progress == 1.0  # nothing to copy
    assert progress.new_object_progress.endswith(".000Z")
    assert bucket.get_bucket_replication_location().location_list == ["oss-cn-beijing", "oss-cn-shanghai"]
    bucket.delete_bucket_replication("r1")
    wait_for(lambda: not _has_rules(bucket))


def _has_rules(bucket: oss2.Bucket) -> bool:
    try:
        return bool(bucket.get_bucket_replication().rule_list)
    except oss2.exceptions.ServerError as error:
        assert (error.status, error.code) == (404, "NoSuchReplicationConfiguration")
        return False


def test_closing_until_the_next_pass(server: OssServer) -> None:
    bucket = source_bucket(server)
    bucket.put_bucket_replication(rule())
    bucket.delete_bucket_replication("r1")
    statuses = {r.status for r in bucket.get_bucket_replication().rule_list} if _has_rules(bucket) else {"gone"}
    assert statuses <= {"closing", "gone"}
    wait_for(lambda: not _has_rules(bucket))
    bucket.put_bucket_replication(rule())  # the ID and the target are free again


def test_errors_like_oss(server: OssServer) -> None:
    bucket = source_bucket(server)
    error = server_error(lambda: bucket.put_bucket_replication(rule(target="no-such-bucket")))
    assert (error.status, error.code) == (404, "NoSuchBucket")
    assert error.details["BucketName"] == "no-such-bucket"
    error = server_error(lambda: bucket.put_bucket_replication(rule(location="oss-cn-beijing")))
    assert (error.status, error.code) == (400, "BadReplicationLocation")
    error = server_error(lambda: bucket.put_bucket_replication(rule(target=SOURCE, location="oss-cn-hangzhou")))
    assert (error.status, error.code) == (400, "InvalidArgument")
    error = server_error(lambda: bucket.put_bucket_replication(rule(action_list=["COPY"])))
    assert (error.status, error.code) == (400, "InvalidArgument")
    bucket.put_bucket_replication(rule())
    error = server_error(lambda: bucket.put_bucket_replication(rule(target=OTHER, location="oss-cn-beijing")))
    assert (error.status, error.code) == (400, "BucketReplicationAlreadyExist")  # same ID
    error = server_error(lambda: bucket.put_bucket_replication(rule("r2")))
    assert (error.status, error.code) == (400, "BucketReplicationAlreadyExist")  # same target
    bucket.put_bucket_replication(rule("r2", target=OTHER, location="oss-cn-beijing"))
    assert [r.rule_id for r in bucket.get_bucket_replication().rule_list] == ["r1", "r2"]
    for call in (
        lambda: bucket.get_bucket_replication_progress("nope"),
        lambda: bucket.delete_bucket_replication("nope"),
    ):
        error = server_error(call)
        assert (error.status, error.code) == (404, "NoSuchReplicationRule")
    replica = oss2.Bucket(oss2.AuthV4(AK, SK), server.endpoint, TARGET, region="cn-shanghai")
    assert server_error(replica.get_bucket_replication).code == "NoSuchReplicationConfiguration"  # rules are per bucket


def test_replicates_files_written_on_disk(server: OssServer) -> None:
    root = server.root
    old = time.time() - 3600
    write(root, SOURCE, "repo/index-0", b"historical", mtime=old)
    write(root, SOURCE, "repo/indices/a/0/__1", b"x" * 5000, mtime=old)
    write(root, SOURCE, "elsewhere/file", b"not replicated")
    bucket = source_bucket(server)
    bucket.put_bucket_replication(rule(prefix_list=["repo/"]))
    target = root / TARGET
    wait_for(lambda: (target / "repo/indices/a/0/__1").is_file())
    assert (target / "repo/index-0").read_bytes() == b"historical"
    assert not (target / "elsewhere").exists()
    copied = (target / "repo/indices/a/0/__1").stat()
    assert stat.S_IMODE(copied.st_mode) == 0o644
    assert stat.S_IMODE((target / "repo/indices").stat().st_mode) == 0o755
    assert copied.st_mtime_ns == (root / SOURCE / "repo/indices/a/0/__1").stat().st_mtime_ns
    wait_for(lambda: bucket.get_bucket_replication_progress("r1").progress.historical_object_progress == 1.0)

    write(root, SOURCE, "repo/index-1", b"new")  # a new object
    write(root, SOURCE, "repo/index-0", b"historical, rewritten")  # a changed one
    wait_for(lambda: (target / "repo/index-1").is_file())
    wait_for(lambda: (target / "repo/index-0").read_bytes() == b"historical, rewritten")
    os.unlink(root / SOURCE / "repo/index-1")  # Action ALL: deletes follow
    wait_for(lambda: not (target / "repo/index-1").exists())
    (root / SOURCE / "repo/indices/a/0/__1").unlink()
    wait_for(lambda: not (target / "repo/indices").exists())  # emptied directories go too

    replica = oss2.Bucket(oss2.AuthV4(AK, SK), server.endpoint, TARGET, region="cn-shanghai")
    original = bucket.get_object("repo/index-0")
    copy = replica.get_object("repo/index-0")
    assert copy.read() == original.read()
    assert (copy.etag, copy.server_crc) == (original.etag, original.server_crc)


def test_put_only_keeps_deleted_objects_and_prefixes_do_not_leak(server: OssServer) -> None:
    root = server.root
    write(root, SOURCE, "a/one", b"1")
    write(root, SOURCE, "b/two", b"2")
    write(root, SOURCE, "c/three", b"3")
    source_bucket(server).put_bucket_replication(rule(prefix_list=["a/", "b/"], action_list=["PUT"]))
    wait_for(lambda: (root / TARGET / "a/one").is_file() and (root / TARGET / "b/two").is_file())
    (root / SOURCE / "a/one").unlink()
    server.replicate_now()
    server.replicate_now()
    assert (root / TARGET / "a/one").is_file()
    assert not (root / TARGET / "c").exists()


def test_historical_disabled(server: OssServer) -> None:
    root = server.root
    write(root, SOURCE, "repo/before", b"old", mtime=time.time() - 60)
    bucket = source_bucket(server)
    bucket.put_bucket_replication(rule(is_enable_historical_object_replication=False))
    write(root, SOURCE, "repo/after", b"new")
    wait_for(lambda: (root / TARGET / "repo/after").is_file())
    assert not (root / TARGET / "repo/before").exists()
    progress = bucket.get_bucket_replication_progress("r1").progress
    assert progress.is_enable_historical_object_replication is False
    assert progress.status == "doing"
    assert client(server).progress("r1").historical is None


def test_replication_delay_makes_it_asynchronous(server: OssServer) -> None:
    server.set_faults(Faults(replication_delay_ms=2500))
    bucket = source_bucket(server)
    bucket.put_bucket_replication(rule())
    write(server.root, SOURCE, "repo/late", b"late")
    written = datetime.now(UTC)
    time.sleep(0.7)
    assert not (server.root / TARGET / "repo/late").exists()
    progress = client(server).progress("r1")
    assert progress.new_object_progress is not None and progress.new_object_progress < written
    assert not progress.covers(written)
    wait_for(lambda: (server.root / TARGET / "repo/late").is_file(), timeout_s=10)
    wait_for(lambda: client(server).progress("r1").covers(written.replace(microsecond=0)), timeout_s=10)


def test_rules_survive_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with OssServer(root, BUCKETS, AK, SK) as first:
        source_bucket(first).put_bucket_replication(rule(prefix_list=["repo/"]))
        wait_for(lambda: source_bucket(first).get_bucket_replication().rule_list[0].status == "doing")
    assert json.loads((root / ".oss-server" / "replication.json").read_text())[0]["id"] == "r1"
    write(root, SOURCE, "repo/while-down", b"d")
    with OssServer(root, BUCKETS, AK, SK) as second:
        (listed,) = source_bucket(second).get_bucket_replication().rule_list
        assert (listed.rule_id, listed.status, listed.prefix_list) == ("r1", "doing", ["repo/"])
        wait_for(lambda: (root / TARGET / "repo/while-down").is_file())


def test_admin_endpoint_sets_the_replication_delay(server: OssServer) -> None:
    request = urllib.request.Request(
        f"{server.endpoint}/-/faults", data=json.dumps({"replication_delay_ms": 250}).encode(), method="PUT"
    )
    with urllib.request.urlopen(request) as answer:
        assert json.loads(answer.read())["replication_delay_ms"] == 250
    assert server.faults.replication_delay_ms == 250
    with pytest.raises(ValueError, match="replication_delay_ms"):
        Faults(replication_delay_ms=-1)


# the client ------------------------------------------------------------------------------------


def test_client_ensure_rule_is_idempotent(server: OssServer) -> None:
    replication = client(server)
    assert replication.rules() == []
    created = replication.ensure_rule("migrate-1", "snapshots/x/", TARGET, TARGET_LOCATION)
    assert (created.rule_id, created.prefixes, created.target_bucket, created.target_location) == (
        "migrate-1",
        ("snapshots/x/",),
        TARGET,
        TARGET_LOCATION,
    )
    assert created.historical and created.action == "ALL" and created.status in ("starting", "doing")
    again = replication.ensure_rule("migrate-1", "snapshots/x/", TARGET, TARGET_LOCATION)
    assert again.rule_id == "migrate-1"
    assert server.stats()["requests_by_op"]["PutBucketReplication"] == 1
    # a rule under another ID that covers the prefix is reused too
    assert replication.ensure_rule("migrate-2", "snapshots/x/sub/", TARGET, TARGET_LOCATION).rule_id == "migrate-1"
    assert [r.rule_id for r in replication.rules()] == ["migrate-1"]

    write(server.root, SOURCE, "snapshots/x/index-0", b"i")
    written = datetime.now(UTC).replace(microsecond=0)
    wait_for(lambda: replication.progress("migrate-1").covers(written))
    progress = replication.progress("migrate-1")
    assert (progress.status, progress.historical) == ("doing", 1.0)
    assert progress.new_object_progress is not None and progress.new_object_progress.tzinfo is not None
    assert (server.root / TARGET / "snapshots/x/index-0").read_bytes() == b"i"

    assert replication.delete_rule("migrate-1") is True
    wait_for(lambda: replication.rules() == [])
    assert replication.delete_rule("migrate-1") is False
    with pytest.raises(NotFound, match="migrate-1"):
        replication.progress("migrate-1")


def test_client_refuses_rules_in_the_way(server: OssServer) -> None:
    replication = client(server, signature="v1", region=None)
    assert replication.ensure_rule("r1", "repo-a/", TARGET, "cn-shanghai").target_location == TARGET_LOCATION
    with pytest.raises(StorageError, match="other settings") as caught:
        replication.ensure_rule("r1", "repo-b/", OTHER, "oss-cn-beijing")
    assert "delete it or choose another rule ID" in str(caught.value)
    with pytest.raises(StorageError, match="one rule per target bucket") as caught:
        replication.ensure_rule("r2", "repo-b/", TARGET, TARGET_LOCATION)
    assert not caught.value.transient


def test_client_errors_name_operation_bucket_and_fix(server: OssServer) -> None:
    replication = client(server)
    with pytest.raises(ReplicationError) as caught:
        replication.ensure_rule("r1", "repo/", "no-such-bucket", TARGET_LOCATION)
    error = caught.value
    assert error.code == "NoSuchBucket" and not error.transient
    assert (
        "PutBucketReplication 'r1'" in str(error)
        and SOURCE in str(error)
        and "check the source and target" in str(error)
    )
    with pytest.raises(ReplicationError, match="target_location must be the target bucket's region"):
        replication.ensure_rule("r1", "repo/", TARGET, "oss-cn-beijing")
    wrong = BucketReplication(server.endpoint, SOURCE, AK, "wrong-secret", region="cn-hangzhou")
    with pytest.raises(StorageError, match="check access_key_secret") as caught:
        wrong.rules()
    assert "wrong-secret" not in str(caught.value) and SK not in str(caught.value)


def test_client_retries_transient_faults(server: OssServer) -> None:
    server.set_faults(Faults(error_rate=1.0))
    replication = client(server, retries=2, backoff_s=0)
    with pytest.raises(StorageError, match="still failing after 3 attempts") as caught:
        replication.rules()
    assert caught.value.transient
    assert server.stats()["request_count"] == 3
    server.set_faults(Faults(error_rate=0.5, seed=7))
    replication = client(server, retries=20, backoff_s=0)
    assert replication.ensure_rule("r1", "repo/", TARGET, TARGET_LOCATION).rule_id == "r1"
    assert replication.target_locations() == ["oss-cn-beijing", "oss-cn-shanghai"]


def test_client_checks_its_options(server: OssServer) -> None:
    with pytest.raises(ValueError, match="region"):
        BucketReplication(server.endpoint, SOURCE, AK, SK, region=None)
    with pytest.raises(ValueError, match="signature"):
        BucketReplication(server.endpoint, SOURCE, AK, SK, region="cn-hangzhou", signature="v2")  # type: ignore[arg-type]


def test_progress_covers() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert ReplicationProgress("r", "doing", 1.0, now).covers(now)
    assert ReplicationProgress("r", "doing", None, now).covers(now - timedelta(seconds=1))
    assert not ReplicationProgress("r", "doing", 0.5, now).covers(now)
    assert not ReplicationProgress("r", "doing", 1.0, now).covers(now + timedelta(seconds=1))
    assert not ReplicationProgress("r", "starting", 1.0, None).covers(now)
