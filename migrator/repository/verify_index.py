"""Steps 4-7 of a verification: one index's listing, each shard's file list and live generation, each file.

Place in the flow: verify (the root, which chooses the indices) -> verify_index (this module) ->
shard_walker (the layout) / blob -> storage. The index's keys (one paginated listing of `indices/<id>/`,
or its group of the verifier's joined listing of `indices/`) are walked shard folder by shard folder;
each shard's `snap-<uuid>.dat` (and, at `deep` and `full`, its live `index-<gen>`) are fetched ahead in a
bounded window; `deep` and `full` read each file's footer (and bytes) on the verifier's pool.

The normal level reads what a restore reads: a shard's live `index-<gen>` (which only the next snapshot
or delete of the shard reads) must be listed with a non-zero size, and is read (CRC32 checked, decoded)
only when the shard folder holds names its snap file does not explain, to tell garbage from files of
other snapshots.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrator.clients.storage import NotFound, ObjectInfo
from migrator.repository.blob import FOOTER_LENGTH, BlobError, decode_body, lucene_footer, read_frame
from migrator.repository.repository_data import GENERATION
from migrator.repository.shard_walker import (
    META_BLOB,
    NO_DATA_GENERATIONS,
    PART,
    SNAP_BLOB,
    FileInfo,
    Shard,
    shard_files,
)
from migrator.repository.verify_result import Garbage

if TYPE_CHECKING:
    from migrator.repository.verify import Verifier

_CHUNK = 8 * 1024 * 1024
_NEXT_SNAPSHOT = "restore reads only snap-*.dat, but the next snapshot or delete of this shard will fail"


@dataclass
class ShardData:
    """What was fetched ahead for one shard: its snapshot file list and (deep, full) its live index-<gen> body."""

    files: list[FileInfo] | None = None
    generation_body: bytes | None = None


class IndexCheck:
    """One index: its listing streamed shard folder by shard folder, shard metadata fetched ahead."""

    def __init__(
        self,
        verifier: Verifier,
        name: str,
        prefix: str,
        shards: list[Shard],
        snapshot_uuids: set[str],
        meta_blob_ids: set[str],
        listed: Iterable[ObjectInfo] | None = None,
    ) -> None:
        self.v = verifier
        self.storage = verifier.storage
        self.name = name
        self.prefix = prefix
        self.snapshot_uuids = snapshot_uuids
        self.meta_blob_ids = meta_blob_ids
        self.listed = listed
        self.by_number = {shard.number: shard for shard in shards}
        self.shards = list(self.by_number)
        self.garbage = Garbage()

    def generation(self, shard: int) -> str | None:
        """The shard's live generation when index-N names one (7.6+), else None (find it by listing)."""
        return self.by_number[shard].generation

    def run(self) -> None:
        """Match the listing's folders to shards by exact name (`0.bak/` or `0-old/` is not shard 0's
        folder, whatever its place in the listing); a shard whose folder never appears is checked empty. Shards
        are fetched ahead on the verifier's pool, except the one shard of an index whose listing is already held
        (its group of the joined listing): this thread would only wait for that fetch, so it makes it itself (no
        task, no hand-over between threads)."""
        window = 0 if len(self.shards) == 1 and isinstance(self.listed, list) else self.v.workers * 2
        ahead: dict[str, tuple[int, Future[ShardData]]] = {}
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
        """(folder, (name inside it, size)) for every blob under the index; folder None for the index's own blobs.
        From the index's group of the joined listing when the verifier listed `indices/` once, else one
        paginated listing of the index's folder."""
        cut = len(self.prefix)
        listed = 0
        for info in self.storage.list(self.prefix) if self.listed is None else self.listed:
            listed += 1
            rest = info.key[cut:]
            folder, slash, name = rest.partition("/")
            yield (folder, (name, info.size)) if slash else (None, (rest, info.size))
        self.v.count(listed=listed)

    def index_blobs(self, entries: Iterable[tuple[str, int]]) -> None:
        """The index folder's own blobs: metadata blobs some snapshot uses, or garbage."""
        for name, size in entries:
            match = META_BLOB.match(name)
            if match is None or match.group(1) not in self.meta_blob_ids:
                self.garbage.add(f"{self.prefix}{name}", size)

    def fetch_shard(self, shard: int) -> ShardData:
        """GET the shard's snap file (and, deep or full, its index-<gen> when its name is known), in a pool thread."""
        where: dict[str, Any] = {"index": self.name, "shard": shard}
        key = f"{self.prefix}{shard}/snap-{self.v.uuid}.dat"
        fetched = ShardData()
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
                fetched.files = shard_files(document)
            except (KeyError, TypeError, ValueError) as exc:
                self.v.add("error", "metadata_damaged", f"{key} has a malformed file entry ({exc!r})", key=key, **where)
        generation = self.generation(shard)
        if generation in NO_DATA_GENERATIONS:
            self.v.add(
                "error",
                "shard_generation_missing",
                f"the live index-N records shard generation {generation} (no data) for a shard this snapshot has",
                **where,
            )
        elif generation is not None and self.v.level != "normal":
            fetched.generation_body = self.read_generation(shard, f"index-{generation}")
        return fetched

    def read_generation(self, shard: int, name: str) -> bytes | None:
        """The CRC-checked body of the shard's live index-<gen>; None (and a finding) when missing or damaged."""
        key = f"{self.prefix}{shard}/{name}"
        try:
            return read_frame(key, self.storage.read(key), "snapshots").body
        except NotFound:
            self.listed_generation(shard, name, None)
        except BlobError as exc:
            self.v.add("error", "shard_generation_damaged", str(exc), index=self.name, shard=shard, key=key)
        return None

    def listed_generation(self, shard: int, name: str, size: int | None) -> bool:
        """Whether the shard's live index-<gen> is listed (`size` None when not) with bytes; else a finding."""
        if not size:
            missing = size is None
            code = "shard_generation_missing" if missing else "shard_generation_damaged"
            what = "missing" if missing else "empty (0 bytes)"
            where: dict[str, Any] = {"index": self.name, "shard": shard, "key": f"{self.prefix}{shard}/{name}"}
            self.v.add("error", code, f"the shard's live {name} is {what}: {_NEXT_SNAPSHOT}", **where)
        return bool(size)

    def check_shard(self, shard: int, fetched: ShardData, entries: Iterator[tuple[str, int]]) -> None:
        """Walk the shard folder's listing once against what its snap file expects."""
        v = self.v
        where: dict[str, Any] = {"index": self.name, "shard": shard}
        files = fetched.files or []
        expected: dict[str, tuple[int, FileInfo]] = {}
        for info in files:
            for part, size in info.parts:
                expected[part] = (size, info)
        own_snap = f"snap-{v.uuid}.dat"
        generation = self.generation(shard)
        live_generation = f"index-{generation}" if generation else None
        live_size: int | None = None
        numeric_generations: list[tuple[int, int]] = []
        seen: dict[str, int] = {}
        unexplained: list[tuple[str, int]] = []
        for name, size in entries:
            if name in expected:
                seen[name] = size
            elif name == live_generation:
                live_size = size
            elif name == own_snap:
                continue
            elif name.startswith("index-"):
                match = GENERATION.match(name)
                if match and generation is None:
                    numeric_generations.append((int(match.group(1)), size))
                else:
                    self.garbage.add(f"{self.prefix}{shard}/{name}", size)
            elif (match := SNAP_BLOB.match(name)) and match.group(1) in self.snapshot_uuids:
                continue
            else:
                unexplained.append((name, size))
        v.count(shards=1, files=len(files), blobs=len(expected), bytes=sum(i.length for i in files))
        listed = False  # normal level: the live index-<gen> named by index-N is listed with bytes (GET when needed)
        if v.level == "normal" and live_generation and generation not in NO_DATA_GENERATIONS:
            listed = self.listed_generation(shard, live_generation, live_size)
        if fetched.files is None:
            return
        body = fetched.generation_body
        if generation is None:
            if numeric_generations:
                live, live_size = max(numeric_generations)
                if v.level != "normal" or (self.listed_generation(shard, f"index-{live}", live_size) and unexplained):
                    body = self.read_generation(shard, f"index-{live}")
                for number, size in numeric_generations:
                    if number != live:
                        self.garbage.add(f"{self.prefix}{shard}/index-{number}", size)
            else:
                v.add(
                    "error",
                    "shard_generation_missing",
                    f"the shard folder has no index-N: {_NEXT_SNAPSHOT}",
                    key=f"{self.prefix}{shard}/",
                    **where,
                )
        elif listed and unexplained:
            body = self.read_generation(shard, f"index-{generation}")
        referenced = self.referenced_files(shard, body) if unexplained else None
        if referenced is not None:  # without a readable index-<gen> nothing can be called garbage
            for name, size in unexplained:
                match = PART.match(name)
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

    def check_file(self, shard: int, info: FileInfo, seen: dict[str, int]) -> None:
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

    def read_file_check(self, shard: int, info: FileInfo) -> None:
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

    def read_tail(self, shard: int, info: FileInfo) -> bytes:
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

    def stream_crc(self, shard: int, info: FileInfo) -> tuple[int, bytes]:
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

    def check_footer(self, shard: int, info: FileInfo, tail: bytes) -> bool:
        where: dict[str, Any] = {"index": self.name, "shard": shard, "file": info}
        try:
            stored = lucene_footer(f"{info.physical} ({info.name})", tail)
        except BlobError as exc:
            self.v.add("error", "checksum_mismatch", f"damaged: {exc}", **where)
            return False
        return self.compare_crc(shard, info, stored, what="footer")

    def compare_crc(self, shard: int, info: FileInfo, actual: int, what: str = "content") -> bool:
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
                f"{what} CRC32 is {base36(actual)}, the snapshot recorded {info.checksum} (damaged bytes)",
                **where,
            )
            return False
        return True


def base36(number: int) -> str:
    """`number` (>= 0) in base 36, as Elasticsearch writes a Lucene checksum."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return text
