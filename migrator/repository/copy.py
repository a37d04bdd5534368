"""Copy exactly the blobs one snapshot needs from one repository storage to another (client side).

Place in the flow: a cross-region migration's storage step (the opt-in for small snapshots; the
default is OSS server-side replication) -> copy (this module) -> needed_blobs (what to copy, in
which order) -> storage (reads from the source, writes to the target).

- Parallel: `workers` blobs at a time; a blob bigger than `multipart_threshold` is streamed part by
  part (ranged reads from the source, a multipart upload to OSS), so memory stays bounded by about
  `workers` x max(`multipart_threshold`, `part_size`).
- Phased: the blobs go phase by phase in `needed_blobs` order (data, shard metadata, index
  metadata, root snap-/meta-, root index-N, index.latest); a phase starts only when the previous
  one finished without a failure, so the target never has an index-N or index.latest naming a blob
  that is not there yet.
- Resumable: a blob the target already has with the source's size and CRC64 is skipped, so a run
  after a crash copies only what is missing. The root index-N and index.latest are always written
  again, last.
- Checked end to end: after each write the CRC64 the target stored (OSS: its header; a folder:
  computed) is compared with the CRC64 the source stored; a mismatch is copied again, up to
  `attempts` times, then reported as that blob's failure.

The root index-N is copied as it is: it lists every snapshot of the source repository, and only
the copied one (only its copied indices) can be restored from the target.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from migrator.clients.storage import PART_SIZE, NotFound, ObjectInfo, Storage, StorageError, crc64_of
from migrator.repository.needed_blobs import INDEX_LATEST, PHASES, ROOT_INDEX, copy_phase, snapshot_blobs
from migrator.repository.repository_data import GENERATION, list_generations

MULTIPART_THRESHOLD = 32 * 1024 * 1024
Outcome = Literal["copied", "skipped", "failed"]


class CopyError(Exception):
    """The copy cannot start (the message says why and what to do); per-blob problems are in CopyResult."""


@dataclass(frozen=True)
class BlobFailure:
    """A blob that could not be copied, and why (the storage's message: operation, object, advice)."""

    key: str
    size: int
    message: str


@dataclass(frozen=True)
class CopyProgress:
    """Reported after each blob: what happened to it and how far the copy is."""

    key: str
    size: int
    outcome: Outcome
    done: int
    total: int
    done_bytes: int
    total_bytes: int


@dataclass
class CopyResult:
    """What one copy_snapshot call did; `complete` when every blob the snapshot needs is in the target."""

    snapshot: str
    source: str
    target: str
    blobs: int = 0
    bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    replaced: int = 0  # present with the right size but another CRC64 (damaged or stale): copied again
    crc_retries: int = 0  # written, then the target's CRC64 differed from the source's: copied again
    not_started: int = 0  # blobs of phases after a failed one
    failures: list[BlobFailure] = field(default_factory=list)
    source_requests: int = 0
    target_requests: int = 0
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.failures and not self.not_started

    def to_dict(self) -> dict[str, Any]:
        document = {name: value for name, value in asdict(self).items() if name != "failures"}
        document["complete"] = self.complete
        document["failures"] = [asdict(failure) for failure in self.failures]
        return document

    def summary(self, limit: int = 5) -> str:
        """One paragraph for a log line or a failed step."""
        head = (
            f"snapshot {self.snapshot}: {self.copied} blob(s) copied ({self.copied_bytes} bytes), {self.skipped} "
            f"already in the target ({self.skipped_bytes} bytes), of {self.blobs} needed, in {self.seconds:.1f}s"
        )
        if self.complete:
            return head
        lines = [f"{head}; NOT complete: {len(self.failures)} failed, {self.not_started} not started"]
        lines += [f"- {failure.message}" for failure in self.failures[:limit]]
        if len(self.failures) > limit:
            lines.append(f"- ... and {len(self.failures) - limit} more")
        lines.append("fix the cause and run the copy again: it copies only what is missing")
        return "\n".join(lines)


def copy_snapshot(
    source: Storage,
    target: Storage,
    snapshot: str,
    indices: Collection[str] | None = None,
    workers: int = 8,
    progress: Callable[[CopyProgress], None] | None = None,
    *,
    part_size: int = PART_SIZE,
    multipart_threshold: int = MULTIPART_THRESHOLD,
    attempts: int = 3,
) -> CopyResult:
    """Copy the blobs a restore of `snapshot` (or of only `indices` of it) reads from `source` to `target`.

    Raises SnapshotNotFound / SnapshotBlobsError (from needed_blobs) when the source cannot provide the snapshot,
    CopyError when the target already holds a newer repository generation, StorageError when listing fails.
    Per-blob failures do not raise: they are in the result, and the phases after the failed one do not start.
    `progress` is called in the caller's thread after each blob; whatever it raises stops the copy (blobs not
    started are cancelled, those in flight finish) and goes up unchanged."""
    if workers < 1 or attempts < 1:
        raise ValueError("workers and attempts must be at least 1")
    started = time.monotonic()
    source_before, target_before = source.request_count, target.request_count
    blobs = snapshot_blobs(source, snapshot, indices, workers=workers)
    copier = _Copier(source, target, part_size, multipart_threshold, attempts)
    generation = next(int(m.group(1)) for blob in blobs if (m := GENERATION.match(blob.key)))
    newer = [n for n in list_generations(target) if n > generation]
    if newer:
        raise CopyError(
            f"{target.description} already has index-{max(newer)}, newer than the source's index-{generation}: "
            "Elasticsearch would read that one and not see this copy; copy into an empty base path, or remove the "
            "target's newer generations if they are leftovers"
        )
    copier.index_latest = generation.to_bytes(8, "big", signed=True)
    result = CopyResult(snapshot, source.description, target.description, len(blobs), sum(b.size for b in blobs))
    present = _present(target, blobs, workers)
    done = done_bytes = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="copy") as pool:
        try:
            for phase in range(len(PHASES)):
                todo = [blob for blob in blobs if copy_phase(blob.key) == phase]
                pending: set[Future[tuple[ObjectInfo, Outcome, str]]] = {
                    pool.submit(copier.copy, blob, present.get(blob.key)) for blob in todo
                }
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        blob, outcome, message = future.result()
                        done, done_bytes = done + 1, done_bytes + blob.size
                        if outcome == "failed":
                            result.failures.append(BlobFailure(blob.key, blob.size, message))
                        if progress is not None:
                            progress(
                                CopyProgress(blob.key, blob.size, outcome, done, len(blobs), done_bytes, result.bytes)
                            )
                if result.failures:
                    result.not_started = len(blobs) - done
                    break
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    for name in ("copied", "copied_bytes", "skipped", "skipped_bytes", "replaced", "crc_retries"):
        setattr(result, name, getattr(copier, name))
    result.failures.sort(key=lambda failure: failure.key)
    result.source_requests = source.request_count - source_before
    result.target_requests = target.request_count - target_before
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _present(target: Storage, blobs: list[ObjectInfo], workers: int) -> dict[str, int]:
    """The sizes of the needed blobs the target already has: one listing per shard folder, one per other blob."""
    needed = {blob.key for blob in blobs}
    prefixes = {blob.key.rpartition("/")[0] + "/" if blob.key.count("/") == 3 else blob.key for blob in blobs}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="copy-list") as pool:
        listings = list(pool.map(lambda prefix: list(target.list(prefix)), sorted(prefixes)))
    return {info.key: info.size for listing in listings for info in listing if info.key in needed}


class _Copier:
    """Copies one blob at a time (in pool threads) and counts what it did."""

    def __init__(self, source: Storage, target: Storage, part_size: int, threshold: int, attempts: int) -> None:
        self.source = source
        self.target = target
        self.part_size = part_size
        self.threshold = threshold
        self.attempts = attempts
        self.index_latest = b""
        self.copied = self.copied_bytes = self.skipped = self.skipped_bytes = self.replaced = self.crc_retries = 0
        self._lock = threading.Lock()

    def count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def copy(self, blob: ObjectInfo, present_size: int | None) -> tuple[ObjectInfo, Outcome, str]:
        """(blob, outcome, failure message) — StorageError becomes the blob's failure, anything else goes up."""
        phase = copy_phase(blob.key)
        always = phase in (ROOT_INDEX, INDEX_LATEST)
        try:
            if phase == INDEX_LATEST:
                blob = ObjectInfo(blob.key, len(self.index_latest))
            wanted = self.source_crc(blob.key)
            if not always and present_size == blob.size and wanted is not None:
                if self.target.crc64(blob.key) == wanted:
                    self.count(skipped=1, skipped_bytes=blob.size)
                    return blob, "skipped", ""
                self.count(replaced=1)
            for attempt in range(self.attempts):
                if attempt:
                    self.count(crc_retries=1)
                    wanted = self.source_crc(blob.key)
                stored = self.write(blob)
                if wanted is None or stored == wanted:
                    self.count(copied=1, copied_bytes=blob.size)
                    return blob, "copied", ""
            message = (
                f"{blob.key}: after {self.attempts} copies the target's CRC64 ({stored}) still differs from the "
                f"source's ({wanted}): the source changed while copied, or a storage corrupts data; run again"
            )
            return blob, "failed", message
        except NotFound as error:
            if phase == ROOT_INDEX:  # Elasticsearch deletes an old index-N once a newer one is written
                why = "the source moved to a newer generation meanwhile (a snapshot or delete ran): run the copy again"
            else:
                why = "it vanished from the source during the copy (was the snapshot deleted?)"
            return blob, "failed", f"{error}: {why}"
        except StorageError as error:
            return blob, "failed", str(error)

    def source_crc(self, key: str) -> int | None:
        """The CRC64 the target must end up with: the source's (None when it keeps none), or index.latest's."""
        return crc64_of(self.index_latest) if key == "index.latest" else self.source.crc64(key)

    def write(self, blob: ObjectInfo) -> int:
        if blob.key == "index.latest":
            return self.target.write(blob.key, self.index_latest)
        if blob.size <= self.threshold:
            return self.target.write(blob.key, self.source.read(blob.key))
        return self.target.write_stream(
            blob.key,
            blob.size,
            lambda start, length: self.source.read_range(blob.key, start, length),
            self.part_size,
        )
