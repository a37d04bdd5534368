"""Prove from the repository's blobs alone that a snapshot can be restored (read-only).

Place in the flow: `migrator verify` and the executor's storage-verification step -> verify (this
module) -> repository_data / blob / smile -> storage. Checks, cheapest first, as Elasticsearch's
own MetadataVerifier does:

1. the live generation: the largest `index-N` by listing, compared with `index.latest`;
2. the snapshot in that `index-N` and its state (SUCCESS, or PARTIAL when allowed);
3. the root `snap-<uuid>.dat` and `meta-<uuid>.dat` (CRC32 checked, decoded);
4. per index: its metadata blob (-> shard count), then ONE paginated listing of `indices/<id>/`
   that every later check reads from (never a HEAD per blob);
5. per shard not in the snapshot's failures: its `snap-<uuid>.dat` (CRC32, decoded) and its live
   `index-<gen>` (CRC32);
6. per file of the shard: every part present with exactly the expected size; `v__` files by their
   inline bytes;
7. `deep`: the Lucene footer of every file (a ranged GET of its last 16 bytes) against the
   checksum in the shard's metadata; `full`: a streamed CRC32 of every byte as well;
8. the root listing again: a generation that moved means someone wrote meanwhile.

Shards are read while their index's listing streams, in listing order and a bounded window, so
memory stays bounded by one shard's metadata per index in flight. Garbage that Elasticsearch leaves
normally (older `index-N`, unreferenced blobs, `tests-*`, `pending-*`) is reported, not failed.
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from migrator.clients.storage import NotFound, Storage
from migrator.repository.blob import FOOTER_LENGTH, BlobError, decode_blob, decode_body, lucene_footer, read_frame
from migrator.repository.repository_data import (
    GENERATION,
    RepositoryData,
    RepositoryFormatError,
    list_generations,
    parse_repository_data,
    read_repository_data,
)

Severity = Literal["error", "warning", "garbage"]
Level = Literal["normal", "deep", "full"]

_PART = re.compile(r"^(.+)\.part(\d+)$")
_SNAP_BLOB = re.compile(r"^snap-(.+)\.dat$")
_META_BLOB = re.compile(r"^meta-(.+)\.dat$")
_NO_DATA_GENERATIONS = ("_new", "_deleted")
_CHUNK = 8 * 1024 * 1024
_SAMPLES = 5
_WINDOW_PER_WORKER = 4


@dataclass(frozen=True)
class Finding:
    """One thing found: what is wrong (or left over), and exactly where."""

    severity: Severity
    code: str
    message: str
    snapshot: str | None = None
    index: str | None = None
    shard: int | None = None
    file: str | None = None
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass
class VerifyResult:
    """The verdict on one snapshot: restorable when no finding is an error."""

    storage: str
    snapshot: str
    level: Level
    uuid: str | None = None
    state: str | None = None
    generation: int | None = None
    indices: int = 0
    shards: int = 0
    files: int = 0
    blobs: int = 0
    bytes: int = 0
    listed: int = 0
    requests: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def restorable(self) -> bool:
        return not self.errors

    def summary(self, limit: int = 5) -> str:
        """One paragraph for a log line or a failed step: the verdict and the first errors."""
        if self.restorable:
            return (
                f"snapshot {self.snapshot} is restorable: {self.indices} indices, {self.shards} shards, "
                f"{self.files} files ({self.blobs} blobs, {self.bytes} bytes) checked ({self.level})"
            )
        errors = self.errors
        lines = [f"snapshot {self.snapshot} is NOT restorable from {self.storage}: {len(errors)} problem(s)"]
        lines += [f"- {f.message}" for f in errors[:limit]]
        if len(errors) > limit:
            lines.append(f"- ... and {len(errors) - limit} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        document = {name: value for name, value in asdict(self).items() if name != "findings"}
        document["restorable"] = self.restorable
        document["findings"] = [f.to_dict() for f in self.findings]
        return document


@dataclass(frozen=True)
class SnapshotListing:
    """A snapshot as the live `index-N` lists it."""

    name: str
    uuid: str
    state: str
    indices: list[str]
    version: str | None  # 8.x+ write a frozen "8.11.0" here: index_version tells the writer
    index_version: int | None
    end_time_millis: int | None


def list_snapshots(storage: Storage) -> tuple[int | None, list[SnapshotListing]]:
    """The live generation and every snapshot in it (oldest first); (None, []) for an empty repository."""
    data = read_repository_data(storage)
    if data is None:
        return None, []
    raw_by_uuid = {item["uuid"]: item for item in data.raw.get("snapshots") or []}
    listing = []
    for entry in data.snapshots.values():
        raw = raw_by_uuid.get(entry.uuid, {})
        version = raw.get("version")
        listing.append(
            SnapshotListing(
                entry.name,
                entry.uuid,
                entry.state,
                entry.indices,
                None if version is None else str(version),
                raw.get("index_version"),
                raw.get("end_time_millis"),
            )
        )
    return data.generation, listing


@dataclass(frozen=True)
class _FileInfo:
    """A file of a shard's snapshot and where its bytes are (blob parts, or inline for `v__`)."""

    name: str
    physical: str
    length: int
    checksum: str
    parts: tuple[tuple[str, int], ...]
    inline: bytes | None


def _meta_hash(value: Any) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):  # a JSON body carries binary as base64
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            return None
    return None


def _file_info(raw: dict[str, Any]) -> _FileInfo:
    """A FileInfo from a shard snapshot; KeyError/TypeError/ValueError when a field is missing or wrong."""
    name = str(raw["name"])
    length = int(raw["length"])
    if length < 0:
        raise ValueError(f"negative length {length}")
    inline = None
    if name.startswith("v__"):
        inline = _meta_hash(raw.get("meta_hash"))
        parts: tuple[tuple[str, int], ...] = ()
    else:
        part_size = int(raw.get("part_size") or 0)
        count = 1 if part_size <= 0 or length == 0 else -(-length // part_size)
        if count == 1:
            parts = ((name, length),)
        else:
            parts = tuple(
                (f"{name}.part{n}", part_size if n < count - 1 else length - part_size * (count - 1))
                for n in range(count)
            )
    return _FileInfo(name, str(raw.get("physical_name", name)), length, str(raw.get("checksum", "")), parts, inline)


class _Tasks:
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


@dataclass
class _ShardData:
    """What was fetched ahead for one shard: its snapshot file list and its live index-<gen> frame."""

    files: list[_FileInfo] | None = None
    generation_body: bytes | None = None


@dataclass
class _Garbage:
    count: int = 0
    size: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, key: str, size: int) -> None:
        self.count += 1
        self.size += size
        if len(self.samples) < _SAMPLES:
            self.samples.append(key)


class _Verifier:
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

    def where(self, index: str | None = None, shard: int | None = None, file: _FileInfo | None = None) -> str:
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
        file: _FileInfo | None = None,
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
            self.tasks = _Tasks(pool, self.workers * _WINDOW_PER_WORKER)
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
                f"({', '.join(f'index-{n}' for n in generations[:-1][:_SAMPLES])}): normal leftovers",
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
            garbage = _Garbage()
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
        index_pool = ThreadPoolExecutor(max_workers=min(4, max(1, len(chosen))), thread_name_prefix="verify-index")
        with index_pool:
            futures = [index_pool.submit(self.check_index, data, name) for name in chosen]
            for future in futures:
                future.result()

    def unreferenced_root_blobs(self, data: RepositoryData) -> None:
        known = {entry.uuid for entry in data.snapshots.values()}
        garbage = _Garbage()
        for prefix, pattern in (("snap-", _SNAP_BLOB), ("meta-", _META_BLOB)):
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
        for failure in info.get("failures") or []:
            if isinstance(failure, dict) and "index" in failure and "shard_id" in failure:
                self.failed_shards.add((str(failure["index"]), int(failure["shard_id"])))

    # 4-7: an index -----------------------------------------------------------------------------

    def check_index(self, data: RepositoryData, name: str) -> None:
        index = data.raw["indices"][name]
        index_id = index["id"]
        prefix = f"indices/{index_id}/"
        meta_ids = _meta_blob_ids(data, name)
        meta_key = f"{prefix}meta-{meta_ids.get(self.uuid, self.uuid)}.dat"
        meta = self.read_blob(meta_key, "index-metadata", index=name)
        self.count(indices=1)
        if meta is None:
            return
        shard_count = _shard_count(meta)
        if shard_count is None:
            self.add("error", "metadata_damaged", f"{meta_key} has no index.number_of_shards", index=name, key=meta_key)
            return
        generations = index.get("shard_generations") or []
        uuids_with_index = {s if isinstance(s, str) else s.get("uuid") for s in index.get("snapshots", [])}
        check = _IndexCheck(self, name, prefix, shard_count, generations, uuids_with_index, set(meta_ids.values()))
        check.run()


class _IndexCheck:
    """One index: its listing streamed shard folder by shard folder, shard metadata fetched ahead."""

    def __init__(
        self,
        verifier: _Verifier,
        name: str,
        prefix: str,
        shard_count: int,
        generations: list[Any],
        snapshot_uuids: set[str],
        meta_blob_ids: set[str],
    ) -> None:
        self.v = verifier
        self.storage = verifier.storage
        self.name = name
        self.prefix = prefix
        self.generations = generations
        self.snapshot_uuids = snapshot_uuids
        self.meta_blob_ids = meta_blob_ids
        self.shards = [s for s in range(shard_count) if (name, s) not in verifier.failed_shards]
        self.garbage = _Garbage()

    def generation(self, shard: int) -> str | None:
        """The shard's live generation when index-N names one (7.6+), else None (find it by listing)."""
        value = self.generations[shard] if shard < len(self.generations) else None
        return value if isinstance(value, str) and not value.isdigit() else None

    def run(self) -> None:
        """Match the listing's folders to shards by exact name (`0.bak/` or `0-old/` is not shard 0's
        folder, whatever its place in the listing); a shard whose folder never appears is checked empty."""
        window = self.v.workers * 2
        ahead: dict[str, tuple[int, Future[_ShardData]]] = {}
        upcoming = iter(sorted(self.shards, key=lambda shard: f"{shard}/"))  # the listing's order
        wanted = {str(shard): shard for shard in self.shards}

        def refill() -> None:
            while len(ahead) < window:
                shard = next(upcoming, None)
                if shard is None:
                    return
                if str(shard) in wanted:
                    ahead[str(shard)] = (shard, self.v.pool.submit(self.fetch_shard, shard))

        refill()
        for folder, infos in itertools.groupby(self.listing(), key=lambda info: info[0]):
            entries = (info[1] for info in infos)
            if folder is None:
                self.index_blobs(entries)
            elif folder in wanted:
                shard = wanted.pop(folder)
                fetched = ahead.pop(folder)[1].result() if folder in ahead else self.fetch_shard(shard)
                self.check_shard(shard, fetched, entries)
                refill()
            elif folder.isdigit():
                for _ in entries:  # a shard this snapshot has no data for (failed) or does not have
                    pass
            else:
                for name, size in entries:
                    self.garbage.add(f"{self.prefix}{folder}/{name}", size)
        for folder, shard in sorted(wanted.items(), key=lambda item: item[1]):  # shards without a folder
            fetched = ahead.pop(folder)[1].result() if folder in ahead else self.fetch_shard(shard)
            self.check_shard(shard, fetched, iter(()))
        if self.garbage.count:
            self.v.add(
                "garbage",
                "unreferenced_blobs",
                f"{self.garbage.count} blob(s) in {self.prefix} that no snapshot references ({self.garbage.size} "
                f"bytes; e.g. {', '.join(self.garbage.samples)}): left by failed or deleted snapshots, harmless",
                index=self.name,
            )

    def listing(self) -> Iterator[tuple[str | None, tuple[str, int]]]:
        """(folder, (name inside it, size)) for every blob under the index; folder None for the index's own blobs."""
        cut = len(self.prefix)
        listed = 0
        for info in self.storage.list(self.prefix):
            listed += 1
            rest = info.key[cut:]
            folder, slash, name = rest.partition("/")
            yield (folder, (name, info.size)) if slash else (None, (rest, info.size))
        self.v.count(listed=listed)

    def index_blobs(self, entries: Iterable[tuple[str, int]]) -> None:
        """The index folder's own blobs: metadata blobs some snapshot uses, or garbage."""
        for name, size in entries:
            match = _META_BLOB.match(name)
            if match is None or match.group(1) not in self.meta_blob_ids:
                self.garbage.add(f"{self.prefix}{name}", size)

    def fetch_shard(self, shard: int) -> _ShardData:
        """GET the shard's snap file (and its index-<gen> when its name is known), in a pool thread."""
        where: dict[str, Any] = {"index": self.name, "shard": shard}
        key = f"{self.prefix}{shard}/snap-{self.v.uuid}.dat"
        fetched = _ShardData()
        document = self.v.read_blob(key, "snapshot", **where)
        if isinstance(document, dict):
            if document.get("name") not in (None, self.v.snapshot):
                self.v.add(
                    "error",
                    "metadata_mismatch",
                    f"{key} is the shard's file list of snapshot {document.get('name')}, not of this one",
                    key=key,
                    **where,
                )
            try:
                fetched.files = [_file_info(raw) for raw in document.get("files") or []]
            except (KeyError, TypeError, ValueError) as exc:
                self.v.add("error", "metadata_damaged", f"{key} has a malformed file entry ({exc!r})", key=key, **where)
        generation = self.generation(shard)
        if generation in _NO_DATA_GENERATIONS:
            self.v.add(
                "error",
                "shard_generation_missing",
                f"the live index-N records shard generation {generation} (no data) for a shard this snapshot has",
                **where,
            )
        elif generation is not None:
            fetched.generation_body = self.read_generation(shard, f"index-{generation}")
        return fetched

    def read_generation(self, shard: int, name: str) -> bytes | None:
        """The CRC-checked body of the shard's live index-<gen>; None (and a finding) when missing or damaged."""
        key = f"{self.prefix}{shard}/{name}"
        try:
            return read_frame(key, self.storage.read(key), "snapshots").body
        except NotFound:
            self.v.add(
                "error",
                "shard_generation_missing",
                f"the shard's live {name} is missing: restore reads only snap-*.dat, but the next snapshot or "
                "delete of this shard will fail",
                index=self.name,
                shard=shard,
                key=key,
            )
        except BlobError as exc:
            self.v.add("error", "shard_generation_damaged", str(exc), index=self.name, shard=shard, key=key)
        return None

    def check_shard(self, shard: int, fetched: _ShardData, entries: Iterator[tuple[str, int]]) -> None:
        """Walk the shard folder's listing once against what its snap file expects."""
        v = self.v
        where: dict[str, Any] = {"index": self.name, "shard": shard}
        files = fetched.files or []
        expected: dict[str, tuple[int, _FileInfo]] = {}
        for info in files:
            for part, size in info.parts:
                expected[part] = (size, info)
        own_snap = f"snap-{v.uuid}.dat"
        generation = self.generation(shard)
        live_generation = f"index-{generation}" if generation else None
        numeric_generations: list[tuple[int, int]] = []
        seen: dict[str, int] = {}
        unexplained: list[tuple[str, int]] = []
        for name, size in entries:
            if name in expected:
                seen[name] = size
            elif name in (own_snap, live_generation):
                continue
            elif name.startswith("index-"):
                match = GENERATION.match(name)
                if match and generation is None:
                    numeric_generations.append((int(match.group(1)), size))
                else:
                    self.garbage.add(f"{self.prefix}{shard}/{name}", size)
            elif (match := _SNAP_BLOB.match(name)) and match.group(1) in self.snapshot_uuids:
                continue
            else:
                unexplained.append((name, size))
        v.count(shards=1, files=len(files), blobs=len(expected), bytes=sum(i.length for i in files))
        if fetched.files is None:
            return
        body = fetched.generation_body
        if generation is None:
            if numeric_generations:
                live = max(numeric_generations)
                body = self.read_generation(shard, f"index-{live[0]}")
                for number, size in numeric_generations:
                    if number != live[0]:
                        self.garbage.add(f"{self.prefix}{shard}/index-{number}", size)
            else:
                v.add(
                    "error",
                    "shard_generation_missing",
                    "the shard folder has no index-N: restore reads only snap-*.dat, but the next snapshot or "
                    "delete of this shard will fail",
                    key=f"{self.prefix}{shard}/",
                    **where,
                )
        referenced = self.referenced_files(shard, body) if unexplained else None
        if referenced is not None:  # without a readable index-<gen> nothing can be called garbage
            for name, size in unexplained:
                match = _PART.match(name)
                if (match.group(1) if match else name) not in referenced:
                    self.garbage.add(f"{self.prefix}{shard}/{name}", size)
        for info in files:
            self.check_file(shard, info, seen)

    def referenced_files(self, shard: int, body: bytes | None) -> set[str] | None:
        """Every file name the shard's index-<gen> references (for any snapshot); None when unreadable."""
        if body is None:
            return None
        key = f"{self.prefix}{shard}/index-*"
        try:
            document = decode_body(key, body)
        except BlobError as exc:
            self.v.add("error", "shard_generation_damaged", str(exc), index=self.name, shard=shard, key=key)
            return None
        names = {str(raw.get("name")) for raw in document.get("files") or [] if isinstance(raw, dict)}
        for snapshot in (document.get("snapshots") or {}).values():
            if isinstance(snapshot, dict):
                names.update(str(name) for name in snapshot.get("files") or [])
        return names

    def check_file(self, shard: int, info: _FileInfo, seen: dict[str, int]) -> None:
        v = self.v
        where: dict[str, Any] = {"index": self.name, "shard": shard, "file": info}
        if info.inline is not None or info.name.startswith("v__"):
            if info.inline is None:
                v.add("error", "metadata_damaged", "virtual file without its inline bytes (meta_hash)", **where)
            elif len(info.inline) != info.length:
                v.add(
                    "error",
                    "blob_size",
                    f"inline bytes are {len(info.inline)} long, the file is {info.length}",
                    **where,
                )
            elif v.level != "normal":
                self.check_footer(shard, info, info.inline[-FOOTER_LENGTH:])
                if v.level == "full":
                    self.compare_crc(shard, info, zlib.crc32(info.inline[:-8]))
            return
        whole = True
        for part, size in info.parts:
            key = f"{self.prefix}{shard}/{part}"
            if part not in seen:
                what = f"blob {part} (part of {len(info.parts)})" if len(info.parts) > 1 else f"blob {part}"
                v.add("error", "blob_missing", f"{what} is missing from the repository", key=key, **where)
                whole = False
            elif seen[part] != size:
                how = "truncated" if seen[part] < size else "too long"
                v.add(
                    "error",
                    "blob_size",
                    f"blob {part} is {seen[part]} bytes, expected {size} ({how})",
                    key=key,
                    **where,
                )
                whole = False
        if whole and v.level != "normal":
            v.tasks.submit(self.read_file_check, shard, info)

    def read_file_check(self, shard: int, info: _FileInfo) -> None:
        """Deep: the footer from the last 16 bytes; full: the CRC32 of every byte as well (pool thread)."""
        try:
            if self.v.level == "full":
                crc, tail = self.stream_crc(shard, info)
                if self.check_footer(shard, info, tail):
                    self.compare_crc(shard, info, crc)
            else:
                self.check_footer(shard, info, self.read_tail(shard, info))
        except NotFound as exc:
            self.v.add("error", "blob_missing", f"vanished while read: {exc}", index=self.name, shard=shard, file=info)

    def read_tail(self, shard: int, info: _FileInfo) -> bytes:
        """The file's last 16 bytes (from the last part, or the last two when the last part is shorter)."""
        if info.length < FOOTER_LENGTH:
            return b""
        tail = b""
        for part, size in reversed(info.parts):
            need = FOOTER_LENGTH - len(tail)
            take = min(need, size)
            if take:
                tail = self.storage.read_range(f"{self.prefix}{shard}/{part}", size - take, take) + tail
            if len(tail) == FOOTER_LENGTH:
                break
        return tail

    def stream_crc(self, shard: int, info: _FileInfo) -> tuple[int, bytes]:
        """CRC32 of the file's bytes before its last 8, and its last 16 bytes, reading in chunks."""
        crc = 0
        position = 0
        covered = max(0, info.length - 8)
        tail = b""
        for part, size in info.parts:
            key = f"{self.prefix}{shard}/{part}"
            for start in range(0, size, _CHUNK):
                chunk = self.storage.read_range(key, start, min(_CHUNK, size - start))
                keep = max(0, min(len(chunk), covered - position))
                crc = zlib.crc32(chunk[:keep], crc)
                position += len(chunk)
                tail = (tail + chunk)[-FOOTER_LENGTH:]
        return crc, tail

    def check_footer(self, shard: int, info: _FileInfo, tail: bytes) -> bool:
        where: dict[str, Any] = {"index": self.name, "shard": shard, "file": info}
        try:
            stored = lucene_footer(f"{info.physical} ({info.name})", tail)
        except BlobError as exc:
            self.v.add("error", "checksum_mismatch", f"damaged: {exc}", **where)
            return False
        return self.compare_crc(shard, info, stored, what="footer")

    def compare_crc(self, shard: int, info: _FileInfo, actual: int, what: str = "content") -> bool:
        where: dict[str, Any] = {"index": self.name, "shard": shard, "file": info}
        try:
            expected = int(info.checksum, 36)
        except ValueError:
            self.v.add("error", "metadata_damaged", f"checksum {info.checksum!r} is not base 36", **where)
            return False
        if expected != actual:
            self.v.add(
                "error",
                "checksum_mismatch",
                f"{what} CRC32 is {_base36(actual)}, the snapshot recorded {info.checksum} (damaged bytes)",
                **where,
            )
            return False
        return True


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return text


def _meta_blob_ids(data: RepositoryData, index: str) -> dict[str, str]:
    """Snapshot uuid -> the index metadata blob id it uses for `index` (7.9+ dedup, else the uuid)."""
    index_id = data.raw["indices"][index]["id"]
    identifiers = data.raw.get("index_metadata_identifiers") or {}
    ids = {}
    for item in data.raw.get("snapshots") or []:
        lookup = item.get("index_metadata_lookup")
        if lookup is None:
            ids[item["uuid"]] = item["uuid"]
        elif index_id in lookup:
            ids[item["uuid"]] = identifiers.get(lookup[index_id], lookup[index_id])
    return ids


def _shard_count(meta: Any) -> int | None:
    """index.number_of_shards from an index metadata blob ({name: {settings: flat or nested}})."""
    if not isinstance(meta, dict) or len(meta) != 1:
        return None
    settings = next(iter(meta.values())).get("settings") or {}
    value = settings.get("index.number_of_shards", (settings.get("index") or {}).get("number_of_shards"))
    if value is None:
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        return None
    return count if count > 0 else None


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
    return _Verifier(storage, snapshot, level, allow_partial, max(1, workers)).run(indices)
