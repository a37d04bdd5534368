"""Exactly the blobs a restore of one snapshot reads, in an order that is safe to copy them in.

Place in the flow: repository.copy (the client-side cross-region copy) -> needed_blobs (this module)
-> shard_walker (the layout) / repository_data / blob -> storage. The walk is the verifier's, without
its judgement of garbage: the live root `index-N` names the snapshot, its root `snap-<uuid>.dat`
names failed shards, each index's metadata blob gives its shard count, each shard's
`snap-<uuid>.dat` lists its files (and so its data blobs, `.partN` chunks included), and the shard's
live `index-<gen>` is kept so the copy is a repository Elasticsearch can also snapshot into later.

The order is by phase (`copy_phase`): data blobs, then shard `snap-*.dat` and `index-<gen>`, then
index metadata, then the root `snap-`/`meta-` blobs, then the root `index-N`, and `index.latest`
last. A copier that finishes each phase before the next one never publishes a blob that names one
not yet there; a reader of the copy sees the snapshot only once everything it needs is in place.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrator.clients.storage import NotFound, ObjectInfo, Storage
from migrator.repository.blob import BlobError, decode_blob
from migrator.repository.repository_data import GENERATION, RepositoryData, read_repository_data
from migrator.repository.shard_walker import (
    Shard,
    failed_shards,
    index_metadata_key,
    index_shards,
    shard_count,
    shard_files,
)

DATA, SHARD_METADATA, INDEX_METADATA, ROOT_BLOBS, ROOT_INDEX, INDEX_LATEST = range(6)
PHASES = ("data", "shard metadata", "index metadata", "root blobs", "root index-N", "index.latest")


class SnapshotBlobsError(Exception):
    """The snapshot's blobs cannot be listed for a copy: the message names the blob and what to do."""


class SnapshotNotFound(SnapshotBlobsError):
    """The live index-N of the repository does not list the snapshot."""


def copy_phase(key: str) -> int:
    """The phase a repository key is copied in (DATA .. INDEX_LATEST): a blob is never needed before its phase."""
    if key == "index.latest":
        return INDEX_LATEST
    depth = key.count("/")
    if depth == 0:
        return ROOT_INDEX if GENERATION.match(key) else ROOT_BLOBS
    if depth == 2:
        return INDEX_METADATA
    name = key.rpartition("/")[2]
    return SHARD_METADATA if name.startswith(("snap-", "index-")) else DATA


def snapshot_blobs(
    storage: Storage, snapshot: str, indices: Collection[str] | None = None, *, workers: int = 8
) -> list[ObjectInfo]:
    """Every blob a restore of `snapshot` (or of only `indices` of it) reads, with its size, in copy order.

    Raises SnapshotNotFound when the live index-N does not list the snapshot, SnapshotBlobsError when it is
    not SUCCESS/PARTIAL or a blob it needs is missing or has the wrong size (copying would not make it
    restorable: run `migrator verify` on the source), StorageError when the storage cannot be read."""
    data = read_repository_data(storage)
    if data is None:
        raise SnapshotNotFound(
            f"{storage.description}: no index-N at the repository's root, so there is no snapshot {snapshot} "
            "to copy: check the bucket and base path"
        )
    entry = data.snapshots.get(snapshot)
    if entry is None:
        names = ", ".join(sorted(data.snapshots)[:20]) or "none"
        raise SnapshotNotFound(
            f"{storage.description}: snapshot {snapshot} is not in the live index-{data.generation} (it lists: "
            f"{names}): check the snapshot name and the repository"
        )
    if entry.state not in ("SUCCESS", "PARTIAL"):
        raise SnapshotBlobsError(
            f"{storage.description}: snapshot {snapshot} is {entry.state} in index-{data.generation}: only a "
            "SUCCESS (or PARTIAL) snapshot can be restored, so there is nothing to copy"
        )
    chosen = list(entry.indices)
    if indices is not None:
        unknown = sorted(set(indices) - set(entry.indices))
        if unknown:
            raise SnapshotBlobsError(
                f"{storage.description}: snapshot {snapshot} has no index {', '.join(unknown)} "
                f"(it has: {', '.join(entry.indices) or 'none'})"
            )
        chosen = [name for name in entry.indices if name in set(indices)]
    walk = _Walk(storage, data, snapshot, entry.uuid)
    root = [walk.sized(f"snap-{entry.uuid}.dat"), walk.sized(f"meta-{entry.uuid}.dat")]
    failed = failed_shards(walk.decoded(root[0].key, "snapshot"))
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="needed-blobs") as pool:
        shards = [
            pool.submit(walk.shard, shard)
            for name in chosen
            for shard in index_shards(data, name, walk.index(name), failed)
        ]
        found = [blob for future in shards for blob in future.result()]
    found += [walk.sized(index_metadata_key(data, name, entry.uuid)) for name in chosen]
    found += root
    found += [walk.sized(f"index-{data.generation}"), ObjectInfo("index.latest", 8)]
    unique = {blob.key: blob for blob in found}
    return sorted(unique.values(), key=lambda blob: (copy_phase(blob.key), blob.key))


class _Walk:
    """The reads of one snapshot's metadata; every error names the blob."""

    def __init__(self, storage: Storage, data: RepositoryData, snapshot: str, uuid: str) -> None:
        self.storage = storage
        self.data = data
        self.snapshot = snapshot
        self.uuid = uuid

    def damaged(self, problem: str) -> SnapshotBlobsError:
        return SnapshotBlobsError(
            f"{self.storage.description}: snapshot {self.snapshot}: {problem}; a copy would not be restorable: "
            "run `migrator verify` on the source repository"
        )

    def sized(self, key: str) -> ObjectInfo:
        try:
            return ObjectInfo(key, self.storage.size(key))
        except NotFound:
            raise self.damaged(f"{key} is missing") from None

    def decoded(self, key: str, codec: str) -> Any:
        try:
            return decode_blob(key, self.storage.read(key), codec)
        except NotFound:
            raise self.damaged(f"{key} is missing") from None
        except BlobError as exc:
            raise self.damaged(str(exc)) from None

    def index(self, name: str) -> int:
        """The index's shard count, from its metadata blob."""
        key = index_metadata_key(self.data, name, self.uuid)
        count = shard_count(self.decoded(key, "index-metadata"))
        if count is None:
            raise self.damaged(f"{key} has no index.number_of_shards")
        return count

    def shard(self, shard: Shard) -> list[ObjectInfo]:
        """The shard's data blobs, its snap-<uuid>.dat and its live index-<gen> (one listing, one read)."""
        prefix, index = shard.prefix, shard.index
        listed = {info.key[len(prefix) :]: info.size for info in self.storage.list(prefix)}
        snap = f"snap-{self.uuid}.dat"
        if snap not in listed:
            raise self.damaged(f"{prefix}{snap} (the file list of index {index}, shard {shard.number}) is missing")
        try:
            files = shard_files(self.decoded(prefix + snap, "snapshot"))
        except (KeyError, TypeError, ValueError) as exc:
            raise self.damaged(f"{prefix}{snap} has a malformed file entry ({exc!r})") from None
        blobs = [ObjectInfo(prefix + snap, listed[snap])]
        for info in files:
            for part, size in info.parts:
                if listed.get(part) != size:
                    has = "is missing" if part not in listed else f"is {listed[part]} bytes, not {size}"
                    raise self.damaged(f"{prefix}{part} (file {info.physical} of index {index}) {has}")
                blobs.append(ObjectInfo(prefix + part, size))
        if shard.has_no_data:
            raise self.damaged(f"the live index-N records shard generation {shard.generation} for {prefix}")
        name = shard.live_generation_blob(listed)
        if name is None or name not in listed:
            raise self.damaged(f"{prefix}{name or 'index-N'} (the shard's live generation) is missing")
        blobs.append(ObjectInfo(prefix + name, listed[name]))
        return blobs
