"""Discovery: the facts the planner needs, read from both clusters (read-only requests only).

The planner is pure; this module is the I/O in front of it. Facts are plain data that can be
stored in the state file, so `resume` re-plans from exactly the facts the run began with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from migrator.blocks import blocks_path, parse_blocks
from migrator.clients.es import EsClient, EsError, Request, build_path


@dataclass(frozen=True)
class IndexFacts:
    name: str
    status: str  # open | close
    health: str
    docs: int
    store_bytes: int
    primary_bytes: int
    primary_shards: int
    blocks: dict[str, str] = field(default_factory=dict)  # its `index.blocks.*` settings (see migrator.blocks)


@dataclass(frozen=True)
class ClusterFacts:
    url: str
    version: str
    health: str
    indices: dict[str, IndexFacts] = field(default_factory=dict)
    repositories: dict[str, dict[str, Any]] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    free_disk_bytes: int | None = None
    path_repo: list[str] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)  # alias -> the indices it points at

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterFacts:
        indices = {name: IndexFacts(**item) for name, item in data.get("indices", {}).items()}
        return cls(**{**data, "indices": indices})


@dataclass(frozen=True)
class Facts:
    source: ClusterFacts
    destination: ClusterFacts

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source.to_json(), "destination": self.destination.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Facts:
        return cls(ClusterFacts.from_json(data["source"]), ClusterFacts.from_json(data["destination"]))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def discover_cluster(client: EsClient) -> ClusterFacts:
    version = str(client.version())
    health = str(client.health().get("status", "unknown"))
    indices = {}
    rows = client.indices("*", expand_wildcards="all")
    blocks = parse_blocks(client.get(blocks_path()), [row["index"] for row in rows])
    for row in rows:
        name = row["index"]
        indices[name] = IndexFacts(
            name=name,
            status=row.get("status") or "open",
            health=row.get("health") or "unknown",
            docs=_int(row.get("docs.count")),
            store_bytes=_int(row.get("store.size")),
            primary_bytes=_int(row.get("pri.store.size")),
            primary_shards=_int(row.get("pri")),
            blocks=blocks[name],
        )
    aliases: dict[str, list[str]] = {}
    for row in client.get(build_path("_cat", "aliases", params={"format": "json", "h": "alias,index"})):
        aliases.setdefault(row["alias"], []).append(row["index"])
    repositories = client.get(build_path("_snapshot", "_all"))
    nodes = client.get("/_nodes?filter_path=nodes.*.plugins.name,nodes.*.modules.name,nodes.*.settings.path.repo")
    plugins: set[str] = set()
    path_repo: set[str] = set()
    for node in nodes.get("nodes", {}).values():
        plugins.update(item["name"] for item in node.get("plugins", []) + node.get("modules", []))
        repo = node.get("settings", {}).get("path", {}).get("repo")
        if isinstance(repo, list):
            path_repo.update(repo)
        elif isinstance(repo, str):
            path_repo.update(part for part in repo.split(",") if part)
    free = None
    try:
        stats = client.get("/_nodes/stats/fs?filter_path=nodes.*.fs.total.available_in_bytes")
        free = sum(_int(n["fs"]["total"]["available_in_bytes"]) for n in stats.get("nodes", {}).values())
    except (EsError, KeyError):
        free = None
    return ClusterFacts(
        url=client.url,
        version=version,
        health=health,
        indices=indices,
        repositories=repositories if isinstance(repositories, dict) else {},
        plugins=sorted(plugins),
        free_disk_bytes=free,
        path_repo=sorted(path_repo),
        aliases={alias: sorted(names) for alias, names in sorted(aliases.items())},
    )


def discover(source: EsClient, destination: EsClient) -> Facts:
    facts = []
    for client in (source, destination):
        try:
            facts.append(discover_cluster(client))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EsError(
                client.label, Request("GET", client.url), 200, f"an answer did not have the expected shape ({exc!r})"
            ) from exc
    return Facts(*facts)
