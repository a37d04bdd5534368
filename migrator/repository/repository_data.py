"""The repository's root: the live generation `index-N` and the snapshots it lists.

`index-N` is plain JSON in every version. The live generation is the largest numeric N among the
root's `index-*` blobs (Elasticsearch lists too; `index.latest` is only a hint). A snapshot exists
for a restore only once an `index-N` names it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from migrator.clients.storage import Storage
from migrator.errors import MigratorError

STATES = {0: "IN_PROGRESS", 1: "SUCCESS", 2: "FAILED", 3: "PARTIAL", 4: "INCOMPATIBLE"}
GENERATION = re.compile(r"^index-(\d+)$")


class RepositoryFormatError(MigratorError):
    """The repository's blobs are not what Elasticsearch writes; the message names the blob."""


@dataclass(frozen=True)
class SnapshotEntry:
    name: str
    uuid: str
    state: str
    indices: list[str]


@dataclass(frozen=True)
class RepositoryData:
    generation: int
    snapshots: dict[str, SnapshotEntry]
    raw: dict[str, Any]


def list_generations(storage: Storage) -> list[int]:
    """Every numeric N of the root's `index-N` blobs, ascending (one listing)."""
    return sorted(int(m.group(1)) for info in storage.list("index-") if (m := GENERATION.match(info.key)))


def latest_generation(storage: Storage) -> int | None:
    generations = list_generations(storage)
    return generations[-1] if generations else None


def read_repository_data(storage: Storage) -> RepositoryData | None:
    """The live `index-N` decoded, or None for an empty repository."""
    generation = latest_generation(storage)
    if generation is None:
        return None
    return parse_repository_data(storage, generation, storage.read(f"index-{generation}"))


def parse_repository_data(storage: Storage, generation: int, data: bytes) -> RepositoryData:
    """The bytes of `index-<generation>` decoded; RepositoryFormatError names the blob when they are not JSON."""
    key = f"index-{generation}"
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RepositoryFormatError(f"{storage.description}/{key} is not valid JSON: {exc}") from exc
    try:
        return _repository_data(generation, raw)
    except (KeyError, TypeError, AttributeError) as exc:
        raise RepositoryFormatError(
            f"{storage.description}/{key} is JSON but not a repository's index-N (bad or missing {exc})"
        ) from exc


def _repository_data(generation: int, raw: dict[str, Any]) -> RepositoryData:
    indices_by_uuid: dict[str, list[str]] = {}
    for index_name, index in (raw.get("indices") or {}).items():
        for entry in index.get("snapshots", []):
            uuid = entry if isinstance(entry, str) else entry.get("uuid", "")
            indices_by_uuid.setdefault(uuid, []).append(index_name)
    snapshots = {}
    for item in raw.get("snapshots") or []:
        state = item.get("state", 1)
        snapshots[item["name"]] = SnapshotEntry(
            name=item["name"],
            uuid=item["uuid"],
            state=STATES.get(state, str(state)) if isinstance(state, int) else str(state),
            indices=sorted(indices_by_uuid.get(item["uuid"], [])),
        )
    return RepositoryData(generation, snapshots, raw)


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
