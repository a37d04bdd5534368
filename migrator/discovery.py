"""Discovery: the facts the planner needs, read from both clusters (read-only requests only).

The planner is pure; this module is the I/O in front of it. Facts are plain data that can be
stored in the state file, so `resume` re-plans from exactly the facts the run began with. The reads
are independent of each other: both clusters are read at once, each with READS_AT_ONCE requests in
flight, so discovery costs the slowest chain of reads, not their sum.

About 440 lines: the facts' shapes and their one set of reads stay together (the templates' and
pipelines' facts are already apart, in migrator.template_facts), with the counting search's bounds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from migrator.blocks import FILTER as BLOCKS_FILTER
from migrator.blocks import parse_blocks
from migrator.clients.es import EsClient, EsError, Request, Version, build_path
from migrator.template_facts import metadata_from, metadata_reads


@dataclass(frozen=True)
class IndexFacts:
    """One index. `docs` counts top-level documents (what `_count` answers; for a closed index, which
    `_count` cannot read, the Lucene documents of its last commit from `_stats`); bytes are bytes.
    `version_created` is `index.version.created` (e.g. "7172999" for 7.17.29), `settings` the index's
    `index.routing.*` and `index.number_of_replicas` settings (flat keys), `aliases` its alias names and
    `system` Elasticsearch's own system-index flag (cluster state metadata, 7.10+). `priority` (`index.priority`,
    1 when unset) and `creation_date` (`index.creation_date`, ms since the epoch; a restore keeps it) decide
    which indices a cluster recovers first (see planner.recovery_order)."""

    name: str
    status: str  # open | close
    health: str
    docs: int
    store_bytes: int
    primary_bytes: int
    primary_shards: int
    version_created: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    system: bool = False
    blocks: dict[str, str] = field(default_factory=dict)  # its `index.blocks.*` settings (see migrator.blocks)
    priority: int = 1
    creation_date: int = 0


@dataclass(frozen=True)
class NodeFacts:
    """One data node of a cluster: its roles, attributes (`node.attr.*`, for allocation filters) and
    disk in bytes (`_nodes/stats/fs`)."""

    name: str
    host: str
    ip: str
    roles: list[str]
    attributes: dict[str, str]
    disk_total_bytes: int
    disk_available_bytes: int


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
    # The snapshots of the plan's names already in the plan's repository (source only; facts recorded by
    # older runs lack it): name -> {"uuid", "state", "start_time", "start_time_in_millis"}.
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_nodes: list[NodeFacts] = field(default_factory=list)
    data_streams: list[str] = field(default_factory=list)
    shards: int = 0  # shard copies in the cluster now (assigned or not), as the shard limit counts them
    max_shards_per_node: int | None = None
    # `cluster.routing.allocation.enable` and the cluster-level allocation filters (`exclude._name` -> value),
    # destination only: restored shards obey both as well as the index's own filters.
    allocation_enable: str = "all"
    allocation_filters: dict[str, str] = field(default_factory=dict)
    disk_threshold_enabled: bool = True
    high_watermark: str = "90%"
    metadata: dict[str, Any] = field(default_factory=dict)  # templates and what indices name: see template_facts

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterFacts:
        indices = {name: IndexFacts(**item) for name, item in data.get("indices", {}).items()}
        nodes = [NodeFacts(**item) for item in data.get("data_nodes", [])]
        return cls(**{**data, "indices": indices, "data_nodes": nodes})

    @property
    def aliases(self) -> dict[str, list[str]]:
        """alias -> the indices it points at."""
        found: dict[str, list[str]] = {}
        for index in self.indices.values():
            for alias in index.aliases:
                found.setdefault(alias, []).append(index.name)
        return {alias: sorted(names) for alias, names in sorted(found.items())}


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


SNAPSHOT_FACTS = ("uuid", "state", "start_time", "start_time_in_millis")


def existing_snapshots(client: EsClient, repository: str, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The snapshots among `names` already in `repository` (one `GET _snapshot/<repo>/<names>`)."""
    path = build_path("_snapshot", repository, ",".join(names), params={"ignore_unavailable": True})
    status, body = client.request("GET", path, ok=(200, 404))
    found = (body.get("snapshots") or []) if status == 200 else []
    return {
        info["snapshot"]: {key: info.get(key) for key in SNAPSHOT_FACTS} for info in found if info["snapshot"] in names
    }


def discover_cluster(
    client: EsClient,
    counted: list[str] | None = None,
    *,
    capacity: bool = False,
    repository: str | None = None,
    snapshots: tuple[str, ...] = (),
) -> ClusterFacts:
    """One cluster's facts, read-only. `counted`: the index expressions whose open indices get their
    top-level document counts (`_count` semantics) in one search; `capacity`: also read the shard limit
    and disk watermark (the destination's); `repository` and `snapshots` (the plan's snapshot names): also
    which of those snapshots already exist there when the repository is registered. A fixed number of
    requests whatever the number of indices, READS_AT_ONCE of them in flight."""
    with ThreadPoolExecutor(READS_AT_ONCE, thread_name_prefix=f"discover-{client.label}") as pool:
        asked_version = pool.submit(client.version)
        asked_health = pool.submit(client.health)
        # After the version (read once): whether the cluster knows `expand_wildcards=hidden` depends on it.
        asked_rows = pool.submit(_after, asked_version, lambda: client.indices("*", expand_wildcards="all"))
        asked_metadata = pool.submit(client.get, METADATA)
        asked_repositories = pool.submit(client.get, build_path("_snapshot", "_all"))
        asked_nodes = pool.submit(client.get, NODES)
        asked_fs = pool.submit(_fs_stats, client)
        asked_limits = pool.submit(_capacity_settings, client) if capacity else None
        # The counts follow the metadata's open indices (read at once with the version), not `_cat/indices`
        # (read after the version): one round trip less on discovery's longest chain.
        asked_docs = pool.submit(
            _after, asked_version, lambda: _top_level_docs(client, counted, _open_indices(asked_metadata.result()))
        )
        # The template and pipeline reads, each a read of its own in the pool (once the version says which APIs
        # the cluster has): before, they went one after the other, discovery's longest chain.
        template_reads = metadata_reads(client, Version.parse(str(asked_version.result())))
        asked_templates = {name: pool.submit(read) for name, read in template_reads.items()}
        rows = asked_rows.result()
        closed = [row["index"] for row in rows if row.get("status") == "close"]
        # Before 7.2 a closed index has no shard, hence no statistics (the read would answer 400).
        readable = Version.parse(str(asked_version.result())).keeps_closed_shards
        asked_closed = pool.submit(_closed_stats, client) if closed and readable else None
        repositories = asked_repositories.result()
        registered = repositories if isinstance(repositories, dict) else {}
        asked_snapshots = (
            pool.submit(existing_snapshots, client, repository, snapshots)
            if repository is not None and repository in registered and snapshots
            else None
        )
        version, health = str(asked_version.result()), asked_health.result()
        metadata = asked_metadata.result().get("metadata", {})
        closed_stats = asked_closed.result() if asked_closed is not None else {}
        docs = asked_docs.result()
        nodes = asked_nodes.result().get("nodes", {})
        data_nodes, free = _data_nodes(nodes, asked_fs.result())
        limits = asked_limits.result() if asked_limits is not None else {}
        found = asked_snapshots.result() if asked_snapshots is not None else {}
        templates = metadata_from({name: answer.result() for name, answer in asked_templates.items()})
    described = metadata.get("indices", {})
    indices = {}
    blocks = parse_blocks({"metadata": metadata}, [row["index"] for row in rows])
    for row in rows:
        name = row["index"]
        about = described.get(name, {})
        stats = closed_stats.get(name, {})
        indices[name] = IndexFacts(
            name=name,
            status=row.get("status") or "open",
            health=row.get("health") or "unknown",
            docs=docs.get(name, _int(row.get("docs.count") or stats.get("docs", {}).get("count"))),
            store_bytes=_int(row.get("store.size")),
            primary_bytes=_int(row.get("pri.store.size") or stats.get("store", {}).get("size_in_bytes")),
            primary_shards=_int(row.get("pri")),
            version_created=str(about.get("settings", {}).get("index", {}).get("version", {}).get("created", "")),
            settings=_flat(about.get("settings", {})),
            aliases=sorted(about.get("aliases", [])),
            system=bool(about.get("system", False)),
            blocks=blocks[name],
            priority=_int(about.get("settings", {}).get("index", {}).get("priority", 1)),
            creation_date=_int(about.get("settings", {}).get("index", {}).get("creation_date")),
        )
    plugins: set[str] = set()
    path_repo: set[str] = set()
    for node in nodes.values():
        plugins.update(item["name"] for item in node.get("plugins", []) + node.get("modules", []))
        repo = node.get("settings", {}).get("path", {}).get("repo")
        if isinstance(repo, list):
            path_repo.update(repo)
        elif isinstance(repo, str):
            path_repo.update(part for part in repo.split(",") if part)
    return ClusterFacts(
        url=client.url,
        version=version,
        health=str(health.get("status", "unknown")),
        indices=indices,
        repositories=registered,
        plugins=sorted(plugins),
        free_disk_bytes=free,
        path_repo=sorted(path_repo),
        snapshots=found,
        data_nodes=data_nodes,
        data_streams=sorted(metadata.get("data_stream", {}).get("data_stream", {})),
        shards=sum(_int(health.get(key)) for key in ("active_shards", "initializing_shards", "unassigned_shards")),
        **limits,
        metadata=templates,
    )


METADATA = "/_cluster/state/metadata?filter_path=" + ",".join(
    [
        "metadata.indices.*.state",
        BLOCKS_FILTER,
        "metadata.indices.*.settings.index.version.created",
        "metadata.indices.*.settings.index.creation_date",
        "metadata.indices.*.settings.index.priority",
        "metadata.indices.*.settings.index.routing",
        "metadata.indices.*.settings.index.number_of_replicas",
        "metadata.indices.*.aliases",
        "metadata.indices.*.system",
        "metadata.data_stream.data_stream.*.name",
    ]
)
NODES = (
    "/_nodes?filter_path=nodes.*.name,nodes.*.host,nodes.*.ip,nodes.*.roles,nodes.*.attributes,"
    "nodes.*.plugins.name,nodes.*.modules.name,nodes.*.settings.path.repo"
)
FS = "/_nodes/stats/fs?filter_path=nodes.*.fs.total.total_in_bytes,nodes.*.fs.total.available_in_bytes"
CAPACITY = (
    "/_cluster/settings?include_defaults=true&filter_path=**.max_shards_per_node,"
    "**.routing.allocation.disk.threshold_enabled,**.routing.allocation.disk.watermark.high,"
    "**.routing.allocation.enable,**.routing.allocation.require,**.routing.allocation.include,"
    "**.routing.allocation.exclude"
)
CLOSED_STATS = (
    "/_stats/docs,store?expand_wildcards=closed&forbid_closed_indices=false"
    "&filter_path=indices.*.primaries.docs.count,indices.*.primaries.store.size_in_bytes"
)
T = TypeVar("T")
READS_AT_ONCE = 4  # discovery's requests in flight per cluster
BUCKETS = 10_000  # index buckets per counting search (Elasticsearch 7.10 refuses more than 10,000)
# Shards the counting search asks at once per node (`max_concurrent_shard_requests`, 5 by default). A search-idle
# shard (no search for `index.search.idle.after`, 30 s by default) skips its scheduled refreshes, and the first
# search then waits for its next one (up to `index.refresh_interval`, 1 s); 5 at a time, 2,000 freshly written
# one-shard indices took 156 s (issue 17), 100 took 11.3 s on 7.17 against 1.4 s with 10,000 at once. 256 keeps
# well under a node's search queue (1,000 by default), whose rejections would fail shards of the count.
COUNT_SHARDS_AT_ONCE = 256
COUNT_TIMEOUT_S = 300.0  # the counting search's request timeout, not retried (a second try waits for the same)


NOT_SETTINGS = {"index.version.created", "index.creation_date", "index.priority"}  # facts of their own


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as flat `index.routing.allocation.require.zone` keys, values as text."""
    flat: dict[str, str] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, name + "."))
        elif name not in NOT_SETTINGS:
            flat[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return flat


def _closed_stats(client: EsClient) -> dict[str, Any]:
    """Docs and primary bytes of the closed indices (`_cat/indices` shows none for them)."""
    return {name: item.get("primaries", {}) for name, item in client.get(CLOSED_STATS).get("indices", {}).items()}


def _open_indices(metadata: dict[str, Any]) -> list[str]:
    """The indices a METADATA answer does not mark closed (`state: close`)."""
    described = metadata.get("metadata", {}).get("indices", {})
    return [name for name, about in described.items() if about.get("state") != "close"]


def _top_level_docs(client: EsClient, counted: list[str] | None, open_indices: list[str]) -> dict[str, int]:
    """Top-level documents of each open index the expressions match, as `_count` counts them (nested
    documents excluded, unlike `_cat/indices`): one search aggregating on `_index` per 10,000 indices."""
    if not counted or not open_indices:
        return {}
    parts = -(-len(open_indices) // BUCKETS)
    docs: dict[str, int] = {}
    for part in range(parts):
        terms: dict[str, Any] = {"field": "_index", "size": BUCKETS}
        if parts > 1:
            terms["include"] = {"partition": part, "num_partitions": parts}
        path = build_path(
            ",".join(counted),
            "_search",
            params={
                "ignore_unavailable": True,
                "allow_no_indices": True,
                "expand_wildcards": client.expand_wildcards("open,hidden"),
                "max_concurrent_shard_requests": COUNT_SHARDS_AT_ONCE,
                "filter_path": "aggregations.docs.buckets,_shards.failed",
            },
        )
        query = {"size": 0, "aggs": {"docs": {"terms": terms}}}
        try:  # read-only: GET
            _, body = client.request("GET", path, query, timeout_s=COUNT_TIMEOUT_S, retry_timeout=False)
        except EsError as exc:
            if exc.status is None:
                raise SlowCount(client, exc.request, len(open_indices)) from exc
            if exc.status != 503:
                raise
            # No shard of some index can answer (primaries unassigned): its `_cat/indices` count stands,
            # and preflight names the index with the fix.
            return {}
        if body.get("_shards", {}).get("failed"):
            return {}  # some shard could not answer (rejected, relocating): the `_cat/indices` counts stand
        for bucket in body.get("aggregations", {}).get("docs", {}).get("buckets", []):
            docs[str(bucket["key"])] = int(bucket["doc_count"])
    return {name: docs.get(name, 0) for name in open_indices if name in docs or _matches(counted, name)}


class SlowCount(EsError):
    """The counting search got no answer within COUNT_TIMEOUT_S: the cause (search-idle shards waiting for a
    refresh, or a busy source) and the fix, in the message."""

    def __init__(self, client: EsClient, request: Request, indices: int) -> None:
        super().__init__(
            client.label,
            request,
            None,
            f"counting the top-level documents of {indices} open indices took more than {COUNT_TIMEOUT_S:.0f} s. "
            "Shards that were not searched for `index.search.idle.after` (30 s by default) wait for a refresh on "
            "their first search, and a busy source answers slowly. Fix: refresh the plan's indices on the source "
            "(`POST <snapshot.indices>/_refresh`, which makes no change to their documents) and plan again",
        )
        self.transient = False  # asking again waits for the same refreshes: the fix comes first


def _matches(expressions: list[str], name: str) -> bool:
    """Whether an Elasticsearch index expression (`*` the only wildcard) names the index."""
    return any(re.fullmatch(".*".join(map(re.escape, e.split("*"))), name) for e in expressions)


def _fs_stats(client: EsClient) -> dict[str, Any]:
    """Node id -> its `_nodes/stats/fs` entry; empty when the cluster refuses the read."""
    try:
        return dict(client.get(FS).get("nodes", {}))
    except EsError:
        return {}


def _data_nodes(nodes: dict[str, Any], stats: dict[str, Any]) -> tuple[list[NodeFacts], int | None]:
    """The data nodes (`nodes`: `_nodes` by id) with their disks (`stats`: `_fs_stats`), and the free bytes over
    all nodes (None when unknown)."""
    found = []
    for node_id, node in sorted(nodes.items()):
        roles = list(node.get("roles", []))
        if not any(role.startswith("data") for role in roles):
            continue
        disk = stats.get(node_id, {}).get("fs", {}).get("total", {})
        found.append(
            NodeFacts(
                name=str(node.get("name", node_id)),
                host=str(node.get("host", "")),
                ip=str(node.get("ip", "")),
                roles=roles,
                attributes={k: str(v) for k, v in node.get("attributes", {}).items()},
                disk_total_bytes=_int(disk.get("total_in_bytes")),
                disk_available_bytes=_int(disk.get("available_in_bytes")),
            )
        )
    free = sum(_int(n["fs"]["total"]["available_in_bytes"]) for n in stats.values()) if stats else None
    return found, free


def _capacity_settings(client: EsClient) -> dict[str, Any]:
    """The shard limit, the disk high watermark, `cluster.routing.allocation.enable` and the cluster's allocation
    filters (`exclude._name` -> value; an empty value is none), as set (transient over persistent) or defaulted."""
    body = client.get(CAPACITY)
    found: dict[str, Any] = {}
    filters: dict[str, str] = {}
    for scope in ("defaults", "persistent", "transient"):
        cluster = body.get(scope, {}).get("cluster", {})
        allocation = cluster.get("routing", {}).get("allocation", {})
        disk = allocation.get("disk", {})
        if "enable" in allocation:
            found["allocation_enable"] = str(allocation["enable"]).lower()
        for kind in ("require", "include", "exclude"):
            filters.update(_flat(allocation.get(kind, {}), f"{kind}."))
        if "max_shards_per_node" in cluster:
            found["max_shards_per_node"] = _int(cluster["max_shards_per_node"])
        if "threshold_enabled" in disk:
            found["disk_threshold_enabled"] = str(disk["threshold_enabled"]).lower() == "true"
        if "high" in disk.get("watermark", {}):
            found["high_watermark"] = str(disk["watermark"]["high"])
    found["allocation_filters"] = {key: value for key, value in filters.items() if value}
    return found


def discover(
    source: EsClient,
    destination: EsClient,
    counted: list[str] | None = None,
    repository: str | None = None,
    snapshots: tuple[str, ...] = (),
) -> Facts:
    """Both clusters' facts; `counted` (the plan's index expressions), `repository` and `snapshots` as for
    `discover_cluster`, on the source."""
    with ThreadPoolExecutor(1, thread_name_prefix="discover") as pool:  # the destination beside the source
        destination_facts = pool.submit(_shaped, destination, lambda: discover_cluster(destination, capacity=True))
        source_facts = _shaped(
            source, lambda: discover_cluster(source, counted, repository=repository, snapshots=snapshots)
        )
        return Facts(source_facts, destination_facts.result())


def _after(first: Future[Any], read: Callable[[], T]) -> T:
    """`read()` once `first` has its answer (a read that depends on what `first` reads)."""
    first.result()
    return read()


def _shaped(client: EsClient, read: Callable[[], ClusterFacts]) -> ClusterFacts:
    """`read()`, an answer of an unexpected shape reported as the cluster's error."""
    try:
        return read()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise EsError(
            client.label, Request("GET", client.url), 200, f"an answer did not have the expected shape ({exc!r})"
        ) from exc
