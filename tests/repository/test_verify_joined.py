"""The verifier's joined listing of `indices/` (one paginated listing for a snapshot holding most of the
repository's indices) against the per-index listings: the LIST requests sent, and the same findings.

A synthetic repository in Elasticsearch's 7.9+ layout (one shard per index, one data file per shard)
served by the sandbox OSS server, which pages listings by 1,000 keys. No Elasticsearch node needed.
"""

from __future__ import annotations

import json
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from migrator.clients.storage import ObjectInfo, OssStorage, StorageError
from migrator.repository import verify
from migrator.repository.blob import FOOTER_MAGIC, encode_blob
from migrator.repository.verify import VerifyResult, verify_snapshot
from migrator.repository.verify_index import base36
from migrator.sandbox.oss_server import BucketConfig, OssServer

BUCKET, REGION, AK, SK = "joined", "oss-cn-hangzhou", "joined-test-key", "joined-test-secret-value"
SNAPSHOT, OTHER = "snap-main", "snap-other"
KEYS_PER_INDEX = 4  # meta-<id>.dat, 0/snap-<uuid>.dat, 0/index-<gen>, 0/<data file>


def build(root: Path, mine: int, others: int) -> dict[str, str]:
    """A repository whose snapshot SNAPSHOT holds `mine` indices and OTHER holds `others` more; returns
    index name -> index id of SNAPSHOT's indices."""
    repository: dict = {"snapshots": [], "indices": {}, "min_version": "7.9.0", "index_metadata_identifiers": {}}
    ids: dict[str, str] = {}
    for snapshot, count, prefix in ((SNAPSHOT, mine, "main"), (OTHER, others, "other")):
        uuid, lookup = f"uuid-{snapshot}", {}
        for number in range(count):
            name, index_id = f"{prefix}-{number:04d}", f"id{prefix}{number:04d}"
            identifier = f"ident-{index_id}"
            lookup[index_id] = identifier
            repository["index_metadata_identifiers"][identifier] = f"m{index_id}"
            folder = root / "indices" / index_id
            (folder / "0").mkdir(parents=True)
            settings = {"index.number_of_shards": "1", "index.number_of_replicas": "0"}
            meta = {name: {"version": 1, "settings": settings, "mappings": []}}
            (folder / f"meta-m{index_id}.dat").write_bytes(encode_blob("index-metadata", meta))
            body = b"x" * 40 + struct.pack(">Ii", FOOTER_MAGIC, 0)
            crc = zlib.crc32(body)
            (folder / "0" / "__data").write_bytes(body + struct.pack(">q", crc))
            files = [{"name": "__data", "physical_name": "_0.cfs", "length": 56, "checksum": base36(crc)}]
            shard = {"name": snapshot, "index_version": 0, "start_time": 0, "time": 1, "files": files}
            (folder / "0" / f"snap-{uuid}.dat").write_bytes(encode_blob("snapshot", shard))
            shard_index = {"files": files, "snapshots": {snapshot: {"files": ["__data"]}}}
            (folder / "0" / "index-g1").write_bytes(encode_blob("snapshots", shard_index))
            repository["indices"][name] = {"id": index_id, "snapshots": [uuid], "shard_generations": ["g1"]}
            if snapshot == SNAPSHOT:
                ids[name] = index_id
        entry = {"name": snapshot, "uuid": uuid, "state": 1, "index_metadata_lookup": lookup, "version": "8.11.0"}
        repository["snapshots"].append(entry)
        names = sorted(n for n, i in repository["indices"].items() if i["snapshots"] == [uuid])
        info = {"snapshot": {"name": snapshot, "uuid": uuid, "indices": names, "state": "SUCCESS", "failures": []}}
        (root / f"snap-{uuid}.dat").write_bytes(encode_blob("snapshot", info))
        (root / f"meta-{uuid}.dat").write_bytes(encode_blob("metadata", {"meta-data": {}}))
    (root / "index-0").write_text(json.dumps(repository))
    (root / "index.latest").write_bytes((0).to_bytes(8, "big"))
    return ids


class RecordingStorage(OssStorage):
    """OssStorage that records the prefix of every listing it starts."""

    listed_prefixes: list[str]

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.listed_prefixes.append(prefix)
        return super().list(prefix)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, OssServer]]:
    bucket = tmp_path / BUCKET
    bucket.mkdir()
    with OssServer(tmp_path, [BucketConfig(BUCKET, region=REGION)], AK, SK) as server:
        yield bucket, server


def storage(server: OssServer, repository: str) -> RecordingStorage:
    found = RecordingStorage(server.endpoint, BUCKET, repository, AK, SK, region=REGION, backoff_s=0.01)
    found.listed_prefixes = []
    return found


def list_pages(server: OssServer) -> int:
    ops = server.stats()["requests_by_op"]
    return int(ops.get("ListObjects", 0) + ops.get("ListObjectsV2", 0))


def clean(result: VerifyResult) -> None:
    assert result.restorable, result.summary()
    assert [f for f in result.findings if f.severity != "garbage"] == []


def test_a_snapshot_of_every_index_lists_indices_once_in_pages(served):
    """300 indices, 1,200 keys under `indices/`: 2 pages of one listing, not 300 listings."""
    bucket, server = served
    build(bucket / "repo", 300, 0)
    reader = storage(server, "repo")
    before = list_pages(server)
    result = verify_snapshot(reader, SNAPSHOT)
    clean(result)
    assert result.indices == result.shards == 300
    assert result.listed == 300 * KEYS_PER_INDEX
    assert [p for p in reader.listed_prefixes if p.startswith("indices")] == ["indices/"]
    root_listings = len(reader.listed_prefixes) - 1  # index-, tests-, pending-, snap-, meta-, index- again
    assert list_pages(server) - before == root_listings + 2  # ceil(1,200 / 1,000) pages of indices/


def test_a_snapshot_of_few_of_the_repository_indices_lists_each_index(served):
    """10 indices of a repository of 40 (30 of another snapshot): never the whole `indices/`."""
    bucket, server = served
    ids = build(bucket / "repo", 10, 30)
    reader = storage(server, "repo")
    result = verify_snapshot(reader, SNAPSHOT)
    clean(result)
    assert result.indices == 10
    listed = [p for p in reader.listed_prefixes if p.startswith("indices")]
    assert sorted(listed) == sorted(f"indices/{index_id}/" for index_id in ids.values())


def test_half_of_the_repository_is_enough_for_the_joined_listing(served):
    """20 indices of 40: one listing of `indices/`; the other snapshot's keys are skipped, not checked."""
    bucket, server = served
    build(bucket / "repo", 20, 20)
    reader = storage(server, "repo")
    result = verify_snapshot(reader, SNAPSHOT)
    clean(result)
    assert [f for f in result.findings if f.severity == "garbage"] == []
    assert (result.indices, result.listed) == (20, 20 * KEYS_PER_INDEX)
    assert [p for p in reader.listed_prefixes if p.startswith("indices")] == ["indices/"]


def damage(root: Path, ids: dict[str, str]) -> None:
    """A truncated data file, a missing shard file list and a missing index folder, mid-listing."""
    folder = root / "indices"
    data = folder / ids["main-0150"] / "0" / "__data"
    data.write_bytes(data.read_bytes()[:-3])
    (folder / ids["main-0151"] / "0" / "snap-uuid-snap-main.dat").unlink()
    shutil.rmtree(folder / ids["main-0152"])
    (folder / ids["main-0153"] / "0" / "stray-blob").write_bytes(b"left over")


def test_damage_mid_listing_is_named_as_the_per_index_listings_name_it(served, monkeypatch):
    bucket, server = served
    ids = build(bucket / "repo", 300, 0)
    damage(bucket / "repo", ids)
    joined = verify_snapshot(storage(server, "repo"), SNAPSHOT)
    monkeypatch.setattr(verify, "joined_listing", lambda chosen, in_repository: False)
    per_index_reader = storage(server, "repo")
    per_index = verify_snapshot(per_index_reader, SNAPSHOT)
    assert len([p for p in per_index_reader.listed_prefixes if p.startswith("indices")]) == 299  # not main-0152's

    assert not joined.restorable
    found = {(f.code, f.index, f.shard) for f in joined.errors}
    assert found == {
        ("blob_size", "main-0150", 0),
        ("blob_missing", "main-0151", 0),
        ("blob_missing", "main-0152", None),
    }
    assert "blob __data is 53 bytes, expected 56 (truncated)" in joined.summary()
    assert [f.message for f in joined.findings] == [f.message for f in per_index.findings]
    for name in ("indices", "shards", "files", "blobs", "bytes", "listed"):
        assert getattr(joined, name) == getattr(per_index, name), name
    assert joined.requests == per_index.requests - 297  # 299 listings of one page each became one of 2 pages


def test_an_index_too_big_to_hold_is_checked_as_the_listing_streams(served, monkeypatch):
    """An index with more keys than a group may hold is not held and not listed again: it is checked
    while the joined listing streams its keys."""
    bucket, server = served
    ids = build(bucket / "repo", 16, 0)  # JOINED_FROM: fewer are listed per index
    big = bucket / "repo" / "indices" / ids["main-0003"]
    for number in range(3):
        (big / f"meta-old{number}.dat").write_bytes(b"left over")
    monkeypatch.setattr(verify, "_GROUP_KEYS", KEYS_PER_INDEX + 2)
    reader = storage(server, "repo")
    result = verify_snapshot(reader, SNAPSHOT)
    clean(result)
    assert [p for p in reader.listed_prefixes if p.startswith("indices")] == ["indices/"]
    assert result.listed == 16 * KEYS_PER_INDEX + 3
    assert [f.message for f in result.findings] == [
        f"snapshot {SNAPSHOT}, index main-0003: 3 blob(s) in indices/{ids['main-0003']}/ that no snapshot "
        "references (27 bytes; e.g. "
        + ", ".join(f"indices/{ids['main-0003']}/meta-old{n}.dat" for n in range(3))
        + "): left by failed or deleted snapshots, harmless"
    ]


def test_a_one_shard_index_reads_its_shard_file_list_in_its_own_thread(served, monkeypatch):
    """Before: each index of the joined listing handed its one shard's `snap-*.dat` to the verifier's pool and
    waited for it at once (a task and two hand-overs between threads per index, for no overlap). Now the thread
    that checks the index reads it."""
    bucket, server = served
    build(bucket / "repo", 20, 0)
    reader = storage(server, "repo")
    threads: dict[str, str] = {}
    read = OssStorage.read

    def recorded(self: OssStorage, key: str) -> bytes:
        threads[key] = threading.current_thread().name
        return read(self, key)

    monkeypatch.setattr(OssStorage, "read", recorded)
    clean(verify_snapshot(reader, SNAPSHOT))
    shard_reads = {key: name for key, name in threads.items() if key.endswith("/0/snap-uuid-snap-main.dat")}
    assert len(shard_reads) == 20
    assert {name.rpartition("_")[0] for name in shard_reads.values()} == {"verify-index"}


def test_the_index_pool_takes_groups_from_the_listing_without_a_task_per_index(served, monkeypatch):
    """Before: the listing thread handed each index's group to the index pool as a task (a future, a slot of
    a semaphore, a callback and two thread wake-ups per index). Now each of the pool's threads takes the next
    group from the listing itself: as many tasks as threads, whatever the number of indices."""
    bucket, server = served
    build(bucket / "repo", 40, 0)
    submitted: list[str] = []
    submit = ThreadPoolExecutor.submit

    def recorded(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if self._thread_name_prefix == "verify-index":
            submitted.append(fn.__name__)
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", recorded)
    result = verify_snapshot(storage(server, "repo"), SNAPSHOT)
    clean(result)
    assert result.indices == 40
    assert len(submitted) == verify._INDEX_WORKERS, submitted


def test_a_listing_that_fails_midway_stops_every_index_thread(served):
    bucket, server = served
    build(bucket / "repo", 40, 0)

    class FailingListing(RecordingStorage):
        def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
            for number, info in enumerate(super().list(prefix)):
                if prefix == "indices/" and number == 50:
                    raise StorageError("listing indices/ failed midway", transient=True)
                yield info

    reader = FailingListing(server.endpoint, BUCKET, "repo", AK, SK, region=REGION)
    reader.listed_prefixes = []
    with pytest.raises(StorageError, match="failed midway"):
        verify_snapshot(reader, SNAPSHOT)
