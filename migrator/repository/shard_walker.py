"""The path from a repository's root `index-N` to every shard of a snapshot and the files each one holds.

Place in the flow: the repository readers (verify, needed_blobs for the client-side copy) -> shard_walker
(this module) -> repository_data / blob. It knows the layout Elasticsearch writes (its
BlobStoreRepository, 5.x to 9.x), and judges nothing; each reader decides what a missing or damaged
blob means for it:

- the root `snap-<uuid>.dat` names the shards that failed (they have no data);
- each index's metadata blob is `indices/<index id>/meta-<blob id>.dat`, where the blob id is the
  snapshot's uuid before 7.9 and a deduplicated identifier from `index_metadata_lookup` since;
  its settings give the shard count;
- shard N of an index lives under `indices/<index id>/N/`: its `snap-<uuid>.dat` lists the files
  (a FileInfo each, split into `.partK` blobs by `part_size`, or inline bytes for `v__` files) and
  its live `index-<gen>` is named by the root's `shard_generations` (7.6+) or is the largest
  numeric `index-N` in the folder (before);
- a listing of `indices/` in key order holds each index id's keys together (they share the prefix
  `indices/<id>/`), so one listing can serve many indices.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from migrator.clients.storage import ObjectInfo
from migrator.repository.repository_data import GENERATION, RepositoryData

PART = re.compile(r"^(.+)\.part(\d+)$")  # a chunk of a file bigger than the repository's chunk_size
SNAP_BLOB = re.compile(r"^snap-(.+)\.dat$")  # a snapshot's file list (root: its SnapshotInfo), by uuid
META_BLOB = re.compile(r"^meta-(.+)\.dat$")  # metadata (root: global, in an index folder: the index's)
INDICES = "indices/"  # the folder of every index's blobs, one `<index id>/` folder each
# shard generations the root index-N records for a shard that has no data in any snapshot
NO_DATA_GENERATIONS = ("_new", "_deleted")


@dataclass(frozen=True)
class FileInfo:
    """A file of a shard's snapshot and where its bytes are.

    `parts` is ((blob name inside the shard folder, size in bytes), ...): one `<name>` blob, or
    `<name>.part0..K` when the file is longer than the snapshot's `part_size`; empty for a `v__` file,
    whose bytes are `inline` (its `meta_hash`). `checksum` is the Lucene CRC32 in base 36.
    """

    name: str
    physical: str
    length: int
    checksum: str
    parts: tuple[tuple[str, int], ...]
    inline: bytes | None


@dataclass(frozen=True)
class Shard:
    """One shard of one index of a snapshot, with where its blobs are.

    `generation` is the shard's live generation as the root index-N records it since 7.6 (a uuid-like
    name, `index-<generation>` in the folder, or `_new`/`_deleted` for no data); None before 7.6,
    where the largest numeric `index-N` in the folder is the live one.
    """

    index: str
    index_id: str
    number: int
    generation: str | None

    @property
    def prefix(self) -> str:
        """The shard folder's key prefix, `indices/<index id>/<number>/`."""
        return f"indices/{self.index_id}/{self.number}/"

    def snap_key(self, uuid: str) -> str:
        """The key of the shard's file list for the snapshot of `uuid`."""
        return f"{self.prefix}snap-{uuid}.dat"

    @property
    def has_no_data(self) -> bool:
        """The root index-N records this shard as having no data (`_new` or `_deleted`)."""
        return self.generation in NO_DATA_GENERATIONS

    def live_generation_blob(self, names: Iterable[str]) -> str | None:
        """The name of the shard's live `index-<gen>` blob: the recorded one (7.6+), else the largest
        numeric `index-N` among `names` (the folder's listing); None when neither is known or the
        shard has no data."""
        if self.has_no_data:
            return None
        if self.generation is not None:
            return f"index-{self.generation}"
        numbers = [int(match.group(1)) for name in names if (match := GENERATION.match(name))]
        return f"index-{max(numbers)}" if numbers else None


def _inline_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):  # a JSON body carries binary as base64
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            return None
    return None


def parse_file_info(raw: dict[str, Any]) -> FileInfo:
    """A FileInfo from one entry of a shard snapshot's `files`.

    Raises KeyError, TypeError or ValueError when a field is missing or wrong (a negative length)."""
    name = str(raw["name"])
    length = int(raw["length"])
    if length < 0:
        raise ValueError(f"negative length {length}")
    inline = None
    if name.startswith("v__"):
        inline = _inline_bytes(raw.get("meta_hash"))
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
    return FileInfo(name, str(raw.get("physical_name", name)), length, str(raw.get("checksum", "")), parts, inline)


def shard_files(document: Any) -> list[FileInfo]:
    """Every file a decoded shard `snap-<uuid>.dat` lists ([] for a document that is not a dict).

    Raises KeyError, TypeError or ValueError on a malformed entry."""
    if not isinstance(document, dict):
        return []
    return [parse_file_info(raw) for raw in document.get("files") or []]


def failed_shards(snapshot_info: Any) -> set[tuple[str, int]]:
    """(index name, shard number) of every shard the decoded root `snap-<uuid>.dat` lists as failed."""
    if not isinstance(snapshot_info, dict):
        return set()
    info = snapshot_info.get("snapshot", snapshot_info)
    return {
        (str(failure["index"]), int(failure["shard_id"]))
        for failure in (info.get("failures") if isinstance(info, dict) else None) or []
        if isinstance(failure, dict) and "index" in failure and "shard_id" in failure
    }


def meta_blob_ids(data: RepositoryData, index: str) -> dict[str, str]:
    """Snapshot uuid -> the id of the metadata blob it uses for `index` (7.9+ deduplicated, else the uuid)."""
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


def index_metadata_key(data: RepositoryData, index: str, uuid: str) -> str:
    """The key of the metadata blob of `index` in the snapshot of `uuid`."""
    index_id = data.raw["indices"][index]["id"]
    return f"indices/{index_id}/meta-{meta_blob_ids(data, index).get(uuid, uuid)}.dat"


def shard_count(meta: Any) -> int | None:
    """index.number_of_shards from a decoded index metadata blob ({name: {settings: flat or nested}});
    None when it is missing or not a positive number."""
    if not isinstance(meta, dict) or len(meta) != 1:
        return None
    body = next(iter(meta.values()))
    settings = (body.get("settings") if isinstance(body, dict) else None) or {}
    value = settings.get("index.number_of_shards", (settings.get("index") or {}).get("number_of_shards"))
    if value is None:
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        return None
    return count if count > 0 else None


def index_shards(data: RepositoryData, index: str, count: int, failed: Collection[tuple[str, int]] = ()) -> list[Shard]:
    """Shards 0..count-1 of `index`, without those in `failed` (they have no data in the snapshot)."""
    raw_index = data.raw["indices"][index]
    recorded = raw_index.get("shard_generations") or []
    shards = []
    for number in range(count):
        if (index, number) in failed:
            continue
        value = recorded[number] if number < len(recorded) else None
        named = value if isinstance(value, str) and not value.isdigit() else None
        shards.append(Shard(index, str(raw_index["id"]), number, named))
    return shards


JOINED_FROM = 16  # indices of a snapshot: fewer are listed per index, in parallel (as few requests, and faster)


def joined_listing(chosen: int, in_repository: int) -> bool:
    """Whether to list `indices/` once for `chosen` indices of a repository whose index-N holds
    `in_repository`: when they are at least JOINED_FROM and at least half of them, so the other indices'
    keys listed at most double the pages (on average); a repository of many other snapshots' indices is
    listed per index, and so is a snapshot of a few (large) indices, whose listings then run in parallel
    (scripts/bench_verify.py's 4 indices of 25,000 blobs: 1.39x a raw listing one after the other, 1.19x
    in parallel)."""
    return chosen >= JOINED_FROM and 2 * chosen >= in_repository


def index_id_of(key: str) -> str | None:
    """The index id of a key under `indices/` (`indices/<id>/...`); None for a blob at that folder's root."""
    index_id, slash, _ = key[len(INDICES) :].partition("/")
    return index_id if slash else None


def index_groups(
    listing: Iterable[ObjectInfo], ids: Collection[str], most: int
) -> Iterator[tuple[str, list[ObjectInfo] | Iterator[ObjectInfo]]]:
    """(index id, its keys in order) for each id of `ids` found in `listing`, a listing of `indices/` in
    key order, as it streams. The keys are a list when there are at most `most` of them, else an
    iterator over the group as the listing streams it, to consume before asking for the next group.
    Other ids' keys (and stray blobs) are skipped without being kept, so memory holds at most `most`
    + 1 keys at a time."""
    # groupby passes over what a group leaves unread (other ids' keys) keeping none
    for index_id, infos in itertools.groupby(listing, key=lambda info: index_id_of(info.key)):
        if index_id is not None and index_id in ids:
            head = list(itertools.islice(infos, most + 1))
            yield index_id, head if len(head) <= most else itertools.chain(head, infos)  # noqa: B031 - its rest
