"""Prove from the repository's blobs alone that a snapshot can be restored (read-only).

Place in the flow: `migrator verify` and the executor's storage-verification step -> verify (this
module: the root, steps 1-3 and 8) -> verify_index (steps 4-7) -> shard_walker (the layout) /
repository_data / blob / smile -> storage; the verdict is a verify_result.VerifyResult. Checks,
cheapest first, as Elasticsearch's own MetadataVerifier does:

1. the live generation: the largest `index-N` by listing, compared with `index.latest`;
2. the snapshot in that `index-N` and its state (SUCCESS, or PARTIAL when allowed);
3. the root `snap-<uuid>.dat` and `meta-<uuid>.dat` (CRC32 checked, decoded);
4. per index: its metadata blob (-> shard count), then its listing that every later check reads
   from (never a HEAD per blob): ONE paginated listing of `indices/` for all indices when the
   snapshot holds at least half of the repository's indices (each index gets its contiguous group of
   keys; other indices' keys are skipped), else one of `indices/<id>/` per index;
5. per shard not in the snapshot's failures: its `snap-<uuid>.dat` (CRC32, decoded) and its live
   `index-<gen>`: listed with bytes (restore never reads it), GET and CRC32-checked at `deep` and
   `full`, or when the shard folder has names the snap file does not explain;
6. per file of the shard: every part present with exactly the expected size; `v__` files by their
   inline bytes;
7. `deep`: the Lucene footer of every file (a ranged GET of its last 16 bytes) against the
   checksum in the shard's metadata; `full`: a streamed CRC32 of every byte as well;
8. the root listing again: a generation that moved means someone wrote meanwhile.

Shards are read while their index's listing streams, in listing order and a bounded window, so
memory stays bounded by one shard's metadata per index in flight; the joined listing holds at most
one index's key group (of at most `_GROUP_KEYS` keys: a bigger index is checked as the listing streams)
per thread of the index pool, each of which takes the next group itself. Garbage that Elasticsearch
leaves normally (older `index-N`, unreferenced blobs, `tests-*`, `pending-*`) is reported, not failed.

Slightly over 400 lines: the root's checks (1-3, 8) and the two ways of listing the indices (one listing
of `indices/`, or one per index: shard_walker.joined_listing) share the Verifier's state and counters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from migrator.clients.storage import NotFound, ObjectInfo, Storage
from migrator.repository.blob import BlobError, decode_blob
from migrator.repository.repository_data import (
    RepositoryData,
    RepositoryFormatError,
    list_generations,
    parse_repository_data,
)
from migrator.repository.shard_walker import (
    INDICES,
    META_BLOB,
    SNAP_BLOB,
    FileInfo,
    failed_shards,
    index_groups,
    index_metadata_key,
    index_shards,
    joined_listing,
    meta_blob_ids,
    shard_count,
)
from migrator.repository.verify_index import IndexCheck
from migrator.repository.verify_result import SAMPLES, Finding, Garbage, Level, Severity, VerifyResult

__all__ = ["Finding", "VerifyResult", "verify_snapshot"]

_WINDOW_PER_WORKER = 4
_INDEX_WORKERS = 4
_GROUP_KEYS = 10_000  # an index with more keys is checked as the joined listing streams, not held


class Tasks:
    """Blob reads on a shared pool with a bound on how many wait; failures other than findings re-raise."""

    def __init__(self, pool: ThreadPoolExecutor, limit: int) -> None:
        self.pool = pool
        self.slots = threading.BoundedSemaphore(limit)
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.pending = 0
        self.failure: BaseException | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.slots.acquire()
        with self.lock:
            self.pending += 1
        future = self.pool.submit(fn, *args)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        self.slots.release()
        with self.lock:
            self.pending -= 1
            if future.exception() is not None and self.failure is None:
                self.failure = future.exception()
            self.idle.notify_all()

    def wait(self) -> None:
        with self.lock:
            while self.pending:
                self.idle.wait()
            if self.failure is not None:
                raise self.failure


class Verifier:
    """One verification of one snapshot: its findings and counters, shared with the IndexCheck of each index."""

    def __init__(self, storage: Storage, snapshot: str, level: Level, allow_partial: bool, workers: int) -> None:
        self.storage = storage
        self.snapshot = snapshot
        self.level = level
        self.allow_partial = allow_partial
        self.workers = workers
        self.result = VerifyResult(storage.description, snapshot, level)
        self.lock = threading.Lock()
        self.failed_shards: set[tuple[str, int]] = set()
        self.uuid = ""

    # findings and counters -------------------------------------------------------------------

    def where(self, index: str | None = None, shard: int | None = None, file: FileInfo | None = None) -> str:
        text = f"snapshot {self.snapshot}"
        if index is not None:
            text += f", index {index}"
        if shard is not None:
            text += f", shard {shard}"
        if file is not None:
            text += f", file {file.physical} ({file.name})"
        return text

    def add(
        self,
        severity: Severity,
        code: str,
        problem: str,
        *,
        index: str | None = None,
        shard: int | None = None,
        file: FileInfo | None = None,
        key: str | None = None,
    ) -> None:
        message = f"{self.where(index, shard, file)}: {problem}"
        finding = Finding(severity, code, message, self.snapshot, index, shard, file.physical if file else None, key)
        with self.lock:
            self.result.findings.append(finding)

    def count(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self.result, name, getattr(self.result, name) + amount)

    def read_blob(self, key: str, codec: str, **where: Any) -> Any:
        """GET, CRC-check and decode a framed blob; None (and a finding) when missing or damaged."""
        try:
            data = self.storage.read(key)
        except NotFound:
            self.add("error", "blob_missing", f"{key} is missing from the repository", key=key, **where)
            return None
        try:
            return decode_blob(key, data, codec)
        except BlobError as exc:
            self.add("error", "blob_damaged", str(exc), key=key, **where)
            return None

    # 1-3: the root -----------------------------------------------------------------------------

    def run(self, indices: Collection[str] | None) -> VerifyResult:
        started = time.monotonic()
        requests_before = self.storage.request_count
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="verify") as pool:
            self.pool = pool
            self.tasks = Tasks(pool, self.workers * _WINDOW_PER_WORKER)
            data = self.root()
            if data is not None:
                self.snapshot_blobs(data, indices)
                self.tasks.wait()
                self.recheck(data)
        order = {"error": 0, "warning": 1, "garbage": 2}
        self.result.findings.sort(key=lambda f: (order[f.severity], f.index or "", f.shard or 0, f.message))
        self.result.requests = self.storage.request_count - requests_before
        self.result.seconds = round(time.monotonic() - started, 3)
        return self.result

    def root(self) -> RepositoryData | None:
        generations = list_generations(self.storage)
        latest = self.index_latest()
        if not generations:
            problem = "no index-N blob at the repository's root, so Elasticsearch sees no snapshot at all"
            if latest is not None:
                problem = f"the live index-{latest} (named by index.latest) is missing and no other index-N exists"
            self.add("error", "repository_data_missing", problem + ": wrong base path, or the root is damaged")
            return None
        generation = generations[-1]
        self.result.generation = generation
        if latest is not None and latest > generation:
            self.add(
                "error",
                "repository_data_missing",
                f"index.latest says the live generation is {latest}, but index-{latest} is missing "
                f"(the newest is index-{generation}): the repository lost its latest index-N",
                key=f"index-{latest}",
            )
        elif latest is not None and latest < generation:
            self.add(
                "warning",
                "index_latest_behind",
                f"index.latest says {latest} but index-{generation} exists: a write was in progress or "
                "index.latest was not updated; Elasticsearch uses the listing",
                key="index.latest",
            )
        if len(generations) > 1:
            self.add(
                "garbage",
                "old_generations",
                f"{len(generations) - 1} older index-N blob(s) at the root "
                f"({', '.join(f'index-{n}' for n in generations[:-1][:SAMPLES])}): normal leftovers",
            )
        self.root_garbage_prefixes()
        try:
            data = parse_repository_data(self.storage, generation, self.storage.read(f"index-{generation}"))
        except NotFound:
            self.add("error", "repository_data_missing", f"index-{generation} vanished while it was read: run again")
            return None
        except RepositoryFormatError as exc:
            self.add("error", "repository_data_damaged", str(exc), key=f"index-{generation}")
            return None
        entry = data.snapshots.get(self.snapshot)
        if entry is None:
            names = ", ".join(sorted(data.snapshots)[:20]) or "none"
            self.add(
                "error",
                "snapshot_not_found",
                f"not in the live index-{generation} (it lists: {names})",
                key=f"index-{generation}",
            )
            return None
        self.uuid = entry.uuid
        self.result.uuid, self.result.state = entry.uuid, entry.state
        if entry.state == "PARTIAL":
            if self.allow_partial:
                self.add("warning", "snapshot_partial", "PARTIAL: shards that failed have no data and are not restored")
            else:
                self.add(
                    "error",
                    "snapshot_partial",
                    "PARTIAL: some shards failed and have no data; restore it only with partial restore allowed",
                )
        elif entry.state != "SUCCESS":
            self.add("error", "snapshot_state", f"state is {entry.state} in index-{generation}, not SUCCESS")
        return data

    def recheck(self, data: RepositoryData) -> None:
        """Step 8: list the root again; a generation that moved means a snapshot or delete ran meanwhile."""
        generations = list_generations(self.storage)
        if generations and generations[-1] == data.generation:
            return
        if not generations:
            self.add("error", "repository_data_missing", f"index-{data.generation} disappeared during verification")
            return
        newer = generations[-1]
        try:
            now = parse_repository_data(self.storage, newer, self.storage.read(f"index-{newer}"))
        except (NotFound, RepositoryFormatError):
            self.add("warning", "repository_changed", f"the repository moved to index-{newer} meanwhile: run again")
            return
        entry = now.snapshots.get(self.snapshot)
        if entry is None or entry.uuid != self.uuid:
            self.add("error", "snapshot_deleted", f"deleted during verification: index-{newer} no longer lists it")
        else:
            self.add(
                "warning",
                "repository_changed",
                f"the repository moved from index-{data.generation} to index-{newer} during verification (a "
                "snapshot or delete ran); the snapshot is still listed, run again to be certain",
            )

    def index_latest(self) -> int | None:
        try:
            data = self.storage.read("index.latest")
        except NotFound:
            self.add("warning", "index_latest_missing", "index.latest is missing (Elasticsearch lists instead)")
            return None
        if len(data) != 8:
            self.add("warning", "index_latest_damaged", f"index.latest has {len(data)} bytes, not 8")
            return None
        return int.from_bytes(data, "big", signed=True)

    def root_garbage_prefixes(self) -> None:
        for prefix, what in (("tests-", "repository verification leftovers"), ("pending-", "unfinished writes")):
            garbage = Garbage()
            for info in self.storage.list(prefix):
                garbage.add(info.key, info.size)
            if garbage.count:
                self.add(
                    "garbage",
                    "root_leftovers",
                    f"{garbage.count} {prefix}* blob(s) at the root ({what}, {garbage.size} bytes; "
                    f"e.g. {', '.join(garbage.samples)}): normal leftovers",
                )

    def snapshot_blobs(self, data: RepositoryData, indices: Collection[str] | None) -> None:
        uuid = self.uuid
        info = self.read_blob(f"snap-{uuid}.dat", "snapshot")
        self.read_blob(f"meta-{uuid}.dat", "metadata")
        self.unreferenced_root_blobs(data)
        entry = data.snapshots[self.snapshot]
        if isinstance(info, dict):
            self.check_snapshot_info(info.get("snapshot", info), entry.indices)
        chosen = list(entry.indices)
        if indices is not None:
            unknown = sorted(set(indices) - set(entry.indices))
            for name in unknown:
                self.add("error", "index_not_in_snapshot", f"index {name} is not in this snapshot", index=name)
            chosen = [name for name in entry.indices if name in set(indices)]
        workers = min(_INDEX_WORKERS, max(1, len(chosen)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify-index") as index_pool:
            if joined_listing(len(chosen), len(data.raw["indices"])):
                self.check_indices_joined(data, chosen, index_pool, workers)
            else:
                futures = [index_pool.submit(self.check_index, data, name) for name in chosen]
                for future in futures:
                    future.result()

    def check_indices_joined(
        self, data: RepositoryData, chosen: list[str], index_pool: ThreadPoolExecutor, workers: int
    ) -> None:
        """Step 4's listing for all `chosen` indices at once: `indices/` listed once in key order (an id's keys
        are contiguous). Each of the index pool's `workers` threads takes the next chosen index's group from
        the listing (one thread at a time) and checks it, so at most `workers` groups are held and no task
        is handed over per index; an index of more than `_GROUP_KEYS` keys is checked by the thread that
        took it as the listing streams (the others wait for the listing meanwhile), an index whose id never
        appears with no keys (as its own listing would). Raises what a check raises (StorageError) once
        every thread has stopped; a failed listing stops them all."""
        names = {str(data.raw["indices"][name]["id"]): name for name in chosen}

        def groups() -> Iterator[tuple[str, list[ObjectInfo] | Iterator[ObjectInfo]]]:
            yield from index_groups(self.storage.list(INDICES), names, _GROUP_KEYS)
            yield from [(index_id, []) for index_id in names]  # indices whose id the listing never showed

        listing = groups()
        turn = threading.Lock()  # whose turn it is to read the listing

        def check_next() -> None:
            while True:
                with turn:
                    found = next(listing, None)
                    if found is None:
                        return
                    index_id, infos = found
                    name = names.pop(index_id)
                    if not isinstance(infos, list):  # too big to hold: checked as the listing streams
                        self.check_index(data, name, infos)
                        continue
                self.check_index(data, name, infos)

        for future in [index_pool.submit(check_next) for _ in range(workers)]:
            future.result()

    def unreferenced_root_blobs(self, data: RepositoryData) -> None:
        known = {entry.uuid for entry in data.snapshots.values()}
        garbage = Garbage()
        for prefix, pattern in (("snap-", SNAP_BLOB), ("meta-", META_BLOB)):
            for info in self.storage.list(prefix):
                match = pattern.match(info.key)
                if match is None or match.group(1) not in known:
                    garbage.add(info.key, info.size)
        if garbage.count:
            self.add(
                "garbage",
                "unreferenced_blobs",
                f"{garbage.count} root blob(s) of snapshots the live index-N does not list ({garbage.size} bytes; "
                f"e.g. {', '.join(garbage.samples)}): left by failed or deleted snapshots, harmless",
            )

    def check_snapshot_info(self, info: dict[str, Any], indices: list[str]) -> None:
        key = f"snap-{self.uuid}.dat"
        if info.get("name") not in (None, self.snapshot) or info.get("uuid") not in (None, self.uuid):
            self.add(
                "error",
                "metadata_mismatch",
                f"{key} describes snapshot {info.get('name')} ({info.get('uuid')}), not this one",
                key=key,
            )
        listed = info.get("indices")
        if isinstance(listed, list) and set(listed) != set(indices):
            self.add(
                "error",
                "metadata_mismatch",
                f"{key} lists indices {sorted(listed)} but the live index-N has {sorted(indices)}",
                key=key,
            )
        self.failed_shards |= failed_shards(info)

    # 4-7: an index -----------------------------------------------------------------------------

    def check_index(self, data: RepositoryData, name: str, listed: Iterable[ObjectInfo] | None = None) -> None:
        """Steps 4-7 for one index; `listed` is its keys from the joined listing, None to list its folder."""
        index = data.raw["indices"][name]
        meta_key = index_metadata_key(data, name, self.uuid)
        meta = self.read_blob(meta_key, "index-metadata", index=name)
        self.count(indices=1)
        if meta is None:
            return
        count = shard_count(meta)
        if count is None:
            self.add("error", "metadata_damaged", f"{meta_key} has no index.number_of_shards", index=name, key=meta_key)
            return
        uuids_with_index = {s if isinstance(s, str) else s.get("uuid") for s in index.get("snapshots", [])}
        shards = index_shards(data, name, count, self.failed_shards)
        meta_ids = set(meta_blob_ids(data, name).values())
        IndexCheck(self, name, f"indices/{index['id']}/", shards, uuids_with_index, meta_ids, listed).run()


def verify_snapshot(
    storage: Storage,
    snapshot: str,
    *,
    deep: bool = False,
    full: bool = False,
    allow_partial: bool = False,
    indices: Collection[str] | None = None,
    workers: int = 8,
) -> VerifyResult:
    """Verify one snapshot in `storage` (read-only); `full` implies `deep`. Raises StorageError only when the
    storage itself cannot be read (unreachable, access denied, retries exhausted)."""
    level: Level = "full" if full else "deep" if deep else "normal"
    return Verifier(storage, snapshot, level, allow_partial, max(1, workers)).run(indices)
