"""The client-side snapshot copy: which blobs, in which order, and a copy that resumes, repairs and survives faults.

Folder to folder over the ES 5.6/6.8/7.10 fixtures, and bucket to bucket through the sandbox OSS server
(two buckets, two regions); every copy must verify as restorable from the target alone.
"""

from __future__ import annotations

import json
import random
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.clients.storage import MIN_PART_SIZE, LocalStorage, OssStorage, RangeReader, Storage
from migrator.repository.blob import FOOTER_MAGIC, encode_blob
from migrator.repository.copy import CopyError, CopyProgress, copy_snapshot
from migrator.repository.needed_blobs import (
    DATA,
    INDEX_LATEST,
    SHARD_METADATA,
    SnapshotBlobsError,
    SnapshotNotFound,
    copy_phase,
    snapshot_blobs,
)
from migrator.repository.repository_data import list_snapshots
from migrator.repository.verify import verify_snapshot
from migrator.repository.verify_index import base36
from migrator.sandbox.oss_server import BucketConfig, Faults, OssServer
from tests.repository import fixture_repositories

AK, SK = "LTAI-copy-key", "copy-secret-do-not-print"
SOURCE, TARGET = "source-bucket", "target-bucket"
REGIONS = {SOURCE: "cn-hangzhou", TARGET: "cn-shanghai"}
SYNTHETIC = "synthetic"


def fixture_snapshots() -> list[tuple[Path, str]]:
    return [(repo, snap.name) for repo in fixture_repositories() for snap in list_snapshots(LocalStorage(repo))[1]]


def lucene_file(length: int, rng: random.Random) -> tuple[bytes, str]:
    """`length` random bytes ending with a Lucene footer, and its checksum as a snapshot records it."""
    body = rng.randbytes(length - 16) + struct.pack(">Ii", FOOTER_MAGIC, 0)
    crc = zlib.crc32(body)
    return body + struct.pack(">q", crc), base36(crc)


def write_synthetic_repository(root: Path, lengths: list[int], part_size: int, seed: int = 1) -> str:
    """A 7.x-layout repository with one snapshot of one single-shard index whose files have `lengths` bytes
    (files over `part_size` split into `.partN` blobs); returns the snapshot's name."""
    rng = random.Random(seed)
    uuid, index_id, generation = "SynthSnapshotUuid00001", "SynthIndexId0000000001", "SynthShardGeneration01"
    shard = root / "indices" / index_id / "0"
    shard.mkdir(parents=True)
    files = []
    for number, length in enumerate(lengths):
        content, checksum = lucene_file(length, rng)
        name = f"__file{number}"
        if length > part_size:
            for part, start in enumerate(range(0, length, part_size)):
                (shard / f"{name}.part{part}").write_bytes(content[start : start + part_size])
        else:
            (shard / name).write_bytes(content)
        files.append(
            {
                "name": name,
                "physical_name": f"_{number}.cfs",
                "length": length,
                "checksum": checksum,
                "part_size": part_size,
            }
        )
    (shard / f"snap-{uuid}.dat").write_bytes(encode_blob("snapshot", {"name": SYNTHETIC, "files": files}))
    shard_index = {"files": files, "snapshots": {SYNTHETIC: {"files": [f["name"] for f in files]}}}
    (shard / f"index-{generation}").write_bytes(encode_blob("snapshots", shard_index))
    settings_ = {"index.number_of_shards": "1", "index.number_of_replicas": "0"}
    meta = encode_blob("index-metadata", {"big": {"version": 1, "settings": settings_, "mappings": []}})
    (root / "indices" / index_id / f"meta-{uuid}.dat").write_bytes(meta)
    info = {"name": SYNTHETIC, "uuid": uuid, "indices": ["big"], "state": "SUCCESS", "failures": []}
    (root / f"snap-{uuid}.dat").write_bytes(encode_blob("snapshot", {"snapshot": info}))
    (root / f"meta-{uuid}.dat").write_bytes(encode_blob("metadata", {"meta-data": {}}))
    repository = {
        "snapshots": [{"name": SYNTHETIC, "uuid": uuid, "state": 1, "version": "7.17.0"}],
        "indices": {"big": {"id": index_id, "snapshots": [uuid], "shard_generations": [generation]}},
        "min_version": "7.6.0",
    }
    (root / "index-4").write_text(json.dumps(repository))
    (root / "index.latest").write_bytes((4).to_bytes(8, "big"))
    return SYNTHETIC


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OssServer]:
    root = tmp_path_factory.mktemp("copy")
    for repo in fixture_repositories():
        shutil.copytree(repo, root / SOURCE / repo.name)
    write_synthetic_repository(root / SOURCE / SYNTHETIC, [700_000, 2 * MIN_PART_SIZE + 99, 5000], 300_000)
    buckets = [BucketConfig(name, region=f"oss-{region}") for name, region in REGIONS.items()]
    with OssServer(root, buckets, AK, SK) as srv:
        yield srv


@pytest.fixture(autouse=True)
def no_faults(server: OssServer) -> Iterator[None]:
    yield
    server.set_faults(Faults())


def oss(server: OssServer, bucket: str, base: str, **kwargs: object) -> OssStorage:
    options: dict = {"region": REGIONS[bucket], "backoff_s": 0.001, **kwargs}
    return OssStorage(server.endpoint, bucket, base, AK, SK, **options)


def target_files(storage: LocalStorage) -> set[str]:
    return {str(path.relative_to(storage.root).as_posix()) for path in storage.root.rglob("*") if path.is_file()}


def assert_restorable(storage: Storage, snapshot: str, indices: list[str] | None = None) -> None:
    result = verify_snapshot(storage, snapshot, full=True, indices=indices)
    assert result.restorable, result.summary()


# which blobs, in which order -----------------------------------------------------------------


@pytest.mark.parametrize(("repo", "snapshot"), fixture_snapshots(), ids=lambda v: getattr(v, "name", v))
def test_snapshot_blobs_are_exactly_what_a_restore_reads_in_a_safe_order(repo: Path, snapshot: str) -> None:
    source = LocalStorage(repo)
    blobs = snapshot_blobs(source, snapshot)
    keys = [blob.key for blob in blobs]
    assert len(set(keys)) == len(keys)
    assert keys[-1] == "index.latest" and copy_phase(keys[-2]) == copy_phase("index-0")
    phases = [copy_phase(key) for key in keys]
    assert phases == sorted(phases)
    for blob in blobs:
        if blob.key != "index.latest":
            assert source.size(blob.key) == blob.size
    position = {key: number for number, key in enumerate(keys)}
    for key in keys:  # every blob a shard's file list names comes before that list
        if copy_phase(key) == SHARD_METADATA and "/snap-" in key:
            folder = key.rpartition("/")[0] + "/"
            assert all(position[k] < position[key] for k in keys if k.startswith(folder) and copy_phase(k) == DATA)
    generation, listing = list_snapshots(source)
    others = [snap for snap in listing if snap.name != snapshot]
    for other in others:  # another snapshot's own root blobs are not needed
        assert f"snap-{other.uuid}.dat" not in keys
    assert f"index-{generation}" in keys


def test_snapshot_not_in_the_repository_is_a_clear_error(tmp_path: Path) -> None:
    source = LocalStorage(fixture_repositories()[0])
    with pytest.raises(SnapshotNotFound, match=r"snapshot nope is not in the live index-\d+ \(it lists: rfs_snapshot"):
        snapshot_blobs(source, "nope")
    with pytest.raises(SnapshotNotFound, match="no index-N"):
        snapshot_blobs(LocalStorage(tmp_path), "any")
    with pytest.raises(SnapshotBlobsError, match="has no index missing-index"):
        copy_snapshot(source, LocalStorage(tmp_path / "t"), "rfs_snapshot", indices=["missing-index"])
    assert not (tmp_path / "t").exists()


def test_missing_source_blob_is_refused_before_anything_is_copied(tmp_path: Path) -> None:
    repo = tmp_path / "damaged"
    shutil.copytree(fixture_repositories()[0], repo)
    victim = next(path for path in repo.rglob("__*"))
    victim.unlink()
    with pytest.raises(SnapshotBlobsError, match=f"{victim.name}.*is missing.*migrator verify"):
        copy_snapshot(LocalStorage(repo), LocalStorage(tmp_path / "t"), "rfs_snapshot")
    assert not (tmp_path / "t").exists()


# folder to folder ----------------------------------------------------------------------------


@pytest.mark.parametrize(("repo", "snapshot"), fixture_snapshots(), ids=lambda v: getattr(v, "name", v))
def test_local_copy_of_every_fixture_snapshot(repo: Path, snapshot: str, tmp_path: Path) -> None:
    source, target = LocalStorage(repo), LocalStorage(tmp_path / "copy")
    seen: list[CopyProgress] = []
    result = copy_snapshot(source, target, snapshot, workers=4, progress=seen.append)
    needed = snapshot_blobs(source, snapshot)
    assert result.complete and result.copied == result.blobs == len(needed) and result.skipped == 0
    assert result.copied_bytes == result.bytes == sum(blob.size for blob in needed)
    assert target_files(target) == {blob.key for blob in needed}  # exactly these: no pending- files, no extras
    assert [p.done for p in seen] == list(range(1, len(needed) + 1)) and seen[-1].done_bytes == result.bytes
    assert seen[-1].key == "index.latest"
    assert_restorable(target, snapshot)
    again = copy_snapshot(source, target, snapshot)
    assert again.complete and again.copied == 2 and again.skipped == len(needed) - 2  # only the root is rewritten


def test_copy_of_some_indices(tmp_path: Path) -> None:
    repo = next(repo for repo in fixture_repositories() if repo.name == "ES_7_10_BWC_Check")
    source, target = LocalStorage(repo), LocalStorage(tmp_path)
    _, [snapshot] = list_snapshots(source)
    chosen = snapshot.indices[:2]
    result = copy_snapshot(source, target, snapshot.name, indices=chosen)
    assert result.complete and result.blobs < len(snapshot_blobs(source, snapshot.name))
    assert_restorable(target, snapshot.name, indices=chosen)
    assert not verify_snapshot(target, snapshot.name).restorable  # the other indices were not copied


def test_newer_generation_in_the_target_is_refused(tmp_path: Path) -> None:
    target = LocalStorage(tmp_path)
    target.write("index-99", b"{}")
    with pytest.raises(CopyError, match="already has index-99, newer than the source's index-0"):
        copy_snapshot(LocalStorage(fixture_repositories()[0]), target, "rfs_snapshot")
    assert target_files(target) == {"index-99"}


# bucket to bucket ----------------------------------------------------------------------------


@pytest.mark.parametrize("repo", [repo.name for repo in fixture_repositories()] + [SYNTHETIC])
def test_oss_to_oss_copy_is_restorable(server: OssServer, repo: str) -> None:
    source, target = oss(server, SOURCE, repo), oss(server, TARGET, f"copies/{repo}")
    for snapshot in list_snapshots(source)[1]:
        result = copy_snapshot(source, target, snapshot.name, workers=4)
        assert result.complete, result.summary()
        assert result.source_requests > 0 and result.target_requests > 0
        assert_restorable(target, snapshot.name)
        assert_restorable(LocalStorage(server.root / TARGET / "copies" / repo), snapshot.name)


def test_big_blobs_are_streamed_in_parts(server: OssServer) -> None:
    source, target = oss(server, SOURCE, SYNTHETIC), oss(server, TARGET, "streamed")
    before = server.requests_by_op["UploadPart"]
    largest_read = 0
    original = source.read_range

    def recording_read_range(key: str, start: int, length: int) -> bytes:
        nonlocal largest_read
        largest_read = max(largest_read, length)
        return original(key, start, length)

    source.read_range = recording_read_range  # type: ignore[method-assign]
    result = copy_snapshot(source, target, SYNTHETIC, multipart_threshold=MIN_PART_SIZE, part_size=MIN_PART_SIZE)
    assert result.complete
    # the 300,000-byte .partN blobs and the 204,899-byte file go in 3 parts each, the 100,000-byte last part in one PUT
    assert server.requests_by_op["UploadPart"] - before == 3 * 3
    assert largest_read == MIN_PART_SIZE
    assert_restorable(target, SYNTHETIC)


def test_interrupted_copy_resumes_without_copying_twice(server: OssServer) -> None:
    source, target = oss(server, SOURCE, "ES_6_8_Single"), oss(server, TARGET, "interrupted")
    snapshot = "global_state_snapshot"
    needed = snapshot_blobs(source, snapshot)

    def crash_after_five(event: CopyProgress) -> None:
        if event.done == 5:
            raise KeyboardInterrupt("the operator pressed Ctrl-C")

    puts_before = server.requests_by_op["PutObject"]
    with pytest.raises(KeyboardInterrupt):
        copy_snapshot(source, target, snapshot, workers=2, progress=crash_after_five)
    there = {info.key for info in target.list()}
    assert (
        5 <= len(there) < len(needed) and "index.latest" not in there and not any(k.startswith("index-") for k in there)
    )
    assert not verify_snapshot(target, snapshot).restorable
    resumed = copy_snapshot(source, target, snapshot, workers=2)
    assert resumed.complete and resumed.skipped == len(there) and resumed.copied == len(needed) - len(there)
    assert server.requests_by_op["PutObject"] - puts_before == len(needed)  # every blob was written exactly once
    assert_restorable(target, snapshot)


def test_failed_blob_stops_before_the_root_and_a_rerun_finishes(server: OssServer) -> None:
    source, target = oss(server, SOURCE, "ES_7_10_Double", retries=1), oss(server, TARGET, "failing", retries=1)
    snapshot = "global_state_snapshot"
    victim = next(blob.key for blob in snapshot_blobs(source, snapshot) if copy_phase(blob.key) == DATA)
    server.set_faults(Faults(error_keys=[victim.rpartition("/")[2]]))
    failed = copy_snapshot(source, target, snapshot)
    assert not failed.complete and [f.key for f in failed.failures] == [victim]
    assert "500 InternalError" in failed.failures[0].message and SK not in failed.summary()
    assert failed.not_started > 0 and "run the copy again" in failed.summary()
    assert not any(info.key.startswith("index") for info in target.list())  # no root: the copy is invisible
    server.set_faults(Faults())
    finished = copy_snapshot(source, target, snapshot)
    assert finished.complete and finished.copied == 1 + failed.not_started
    assert_restorable(target, snapshot)


@pytest.mark.parametrize("backend", ["local", "oss"])
def test_corrupted_target_blob_is_detected_and_recopied(server: OssServer, backend: str, tmp_path: Path) -> None:
    repo = "ES_5_6_Updates_Deletes"
    if backend == "oss":
        source, target = oss(server, SOURCE, repo), oss(server, TARGET, "corrupted")
        folder = server.root / TARGET / "corrupted"
    else:
        source, target, folder = LocalStorage(server.root / SOURCE / repo), LocalStorage(tmp_path), tmp_path
    assert copy_snapshot(source, target, "rfs_snapshot").complete
    victim = max((path for path in folder.rglob("__*")), key=lambda path: path.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))  # same size, one byte different
    assert not verify_snapshot(target, "rfs_snapshot", full=True).restorable
    repaired = copy_snapshot(source, target, "rfs_snapshot")
    assert repaired.complete and repaired.replaced == 1 and repaired.copied == 1 + 2
    assert_restorable(target, "rfs_snapshot")


def test_injected_faults_still_end_in_a_complete_copy(server: OssServer) -> None:
    source = oss(server, SOURCE, SYNTHETIC, retries=15)
    target = oss(server, TARGET, "faulty", retries=15)
    server.set_faults(Faults(error_rate=0.2, truncate_rate=0.1, latency_ms=2, seed=21))
    result = copy_snapshot(source, target, SYNTHETIC, workers=4, multipart_threshold=MIN_PART_SIZE)
    assert result.complete, result.summary()
    server.set_faults(Faults())
    assert_restorable(target, SYNTHETIC)
    assert result.source_requests + result.target_requests > 2 * result.blobs


class DamagingTarget(LocalStorage):
    """A folder that stores the wrong bytes (same length) for the first `times` writes of one key."""

    def __init__(self, root: Path, victim: str, times: int) -> None:
        super().__init__(root)
        self.victim, self.times = victim, times

    def write_stream(self, key: str, size: int, read: RangeReader, part_size: int = MIN_PART_SIZE) -> int:
        if key == self.victim and self.times > 0:
            self.times -= 1
            return super().write_stream(key, size, lambda start, length: bytes(length), part_size)
        return super().write_stream(key, size, read, part_size)


def test_a_crc_mismatch_after_writing_is_copied_again(tmp_path: Path) -> None:
    source = LocalStorage(fixture_repositories()[0])
    victim = next(blob.key for blob in snapshot_blobs(source, "rfs_snapshot") if copy_phase(blob.key) == DATA)
    healed = copy_snapshot(source, DamagingTarget(tmp_path / "healed", victim, 2), "rfs_snapshot")
    assert healed.complete and healed.crc_retries == 2
    assert_restorable(LocalStorage(tmp_path / "healed"), "rfs_snapshot")
    broken = copy_snapshot(source, DamagingTarget(tmp_path / "broken", victim, 3), "rfs_snapshot", attempts=3)
    assert not broken.complete and [failure.key for failure in broken.failures] == [victim]
    assert "after 3 copies the target's CRC64" in broken.failures[0].message and broken.not_started > 0


def test_only_a_finished_snapshot_is_copied(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_synthetic_repository(root, [1000], 4096)
    repository = json.loads((root / "index-4").read_text())
    repository["snapshots"][0]["state"] = 0
    (root / "index-4").write_text(json.dumps(repository))
    with pytest.raises(SnapshotBlobsError, match="is IN_PROGRESS in index-4: only a SUCCESS"):
        copy_snapshot(LocalStorage(root), LocalStorage(tmp_path / "t"), SYNTHETIC)


def test_source_moving_on_during_the_copy_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_synthetic_repository(root, [1000, 2000], 4096)

    def delete_the_generation(event: CopyProgress) -> None:
        if copy_phase(event.key) == DATA:
            (root / "index-4").unlink(missing_ok=True)

    result = copy_snapshot(LocalStorage(root), LocalStorage(tmp_path / "t"), SYNTHETIC, progress=delete_the_generation)
    assert [failure.key for failure in result.failures] == ["index-4"] and result.not_started == 1
    assert "moved to a newer generation meanwhile" in result.failures[0].message
    assert result.to_dict()["complete"] is False and result.to_dict()["failures"][0]["key"] == "index-4"


# property: from any partial target, a copy does exactly the missing work, phase by phase -------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_partial_target_is_completed_with_exactly_the_missing_work(data: st.DataObject, tmp_path: Path) -> None:
    repo, snapshot = data.draw(st.sampled_from(fixture_snapshots()), label="snapshot")
    source = LocalStorage(repo)
    needed = snapshot_blobs(source, snapshot)
    target_root = tmp_path / f"t{random.getrandbits(64):x}"
    target = LocalStorage(target_root)
    present = data.draw(st.sets(st.sampled_from([blob.key for blob in needed[:-2]])), label="present")
    damaged = data.draw(st.sets(st.sampled_from(sorted(present))) if present else st.just(set()), label="damaged")
    for key in present:
        content = bytearray(source.read(key))
        if key in damaged and content:
            content[0] ^= 0x01
        target.write(key, bytes(content))
    order: list[str] = []
    result = copy_snapshot(source, target, snapshot, workers=3, progress=lambda event: order.append(event.key))
    really_damaged = {key for key in damaged if source.size(key)}
    assert result.complete
    assert result.skipped == len(present) - len(really_damaged) and result.replaced == len(really_damaged)
    assert result.copied == len(needed) - result.skipped
    phases = [copy_phase(key) for key in order]
    assert phases == sorted(phases) and order[-1] == "index.latest" and phases.count(INDEX_LATEST) == 1
    assert_restorable(target, snapshot)
    shutil.rmtree(target_root)
