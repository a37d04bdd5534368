"""Preflight: both clusters answer, versions fit, the repository type exists, nothing is red, and
migrator can read the bucket(s) it will verify the snapshot in.

The planner already refused what the discovered facts rule out (versions, collisions, missing
indices, disk); this step re-reads the live clusters right before anything changes (their versions
only when discovery did not read them within the last minute: a resumed run), and lists the
repository's bucket (and, across regions, the replica bucket) with the plan's own keys: a wrong
key, bucket, region or endpoint is found before the snapshot, not when the snapshot is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from migrator.clients.es import NODE_VERSIONS, build_path
from migrator.clients.storage import Storage, StorageError
from migrator.compatibility import refusal
from migrator.dag import StepKind
from migrator.spec import StorageSpec
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed

BUILT_IN_TYPES = {"fs", "url", "source"}
SIDES = ("source", "destination")
PROBE_PREFIX = "index.latest"  # one small listing: the bucket exists and the keys may list it


def plugin_for(repository_type: str) -> str | None:
    """The plugin or module a repository type needs (None for built-in types)."""
    if repository_type in BUILT_IN_TYPES:
        return None
    if repository_type == "oss":
        return "elasticsearch-repository-oss"
    return f"repository-{repository_type}"


def missing_plugin(side: str, nodes: dict, repository_type: str) -> list[str]:
    """One problem per node of a `GET _nodes/plugins` answer without the plugin the repository type needs,
    saying where to get it."""
    wanted = plugin_for(repository_type)
    if wanted == "elasticsearch-repository-oss":
        how = (
            "Alibaba Cloud Elasticsearch clusters ship it; on other clusters install an OSS repository plugin of "
            "that name on every node (bin/elasticsearch-plugin install <its zip>) and restart them; on the local "
            "sandbox, `migrator sandbox up` builds and installs the test bed's own"
        )
    else:
        how = f"install it on every node (bin/elasticsearch-plugin install {wanted}) and restart them"
    problems = []
    for node_id, node in sorted(nodes.get("nodes", {}).items()):
        names = {p["name"] for p in node.get("plugins", []) + node.get("modules", [])}
        if wanted and not any(wanted in name for name in names):
            problems.append(
                f"{side} node {node_id} lacks the {wanted!r} plugin that repository type {repository_type!r} "
                f"needs: {how}"
            )
    return problems


HEALTH = build_path("_cluster", "health", params={"level": "indices"})
PLUGINS = build_path("_nodes", "plugins", params={"filter_path": "nodes.*.plugins.name,nodes.*.modules.name"})


class Preflight(Step):
    """Read-only checks of the live clusters."""

    kind = StepKind.PREFLIGHT
    title = "Check both clusters before anything changes"
    waits_for = "nothing: read-only checks"

    def describe(self) -> list[ConsoleRequest]:
        """The reads it always sends: the source's health, each cluster's plugins when the repository type needs
        one, a listing of each bucket. The versions are in `checks`."""
        reads: dict[str, list[str]] = {"source": [HEALTH], "destination": []}
        if plugin_for(self.ctx.spec.repository.type):
            reads = {side: [*paths, PLUGINS] for side, paths in reads.items()}
        return [
            *(ConsoleRequest(side, "GET", path.lstrip("/") or "/") for side, paths in reads.items() for path in paths),
            *(
                ConsoleRequest("storage", "LIST", f"{spec.location} (prefix {PROBE_PREFIX}, one object)")
                for _, spec, _ in self._readers()
            ),
        ]

    def checks(self) -> list[ConsoleRequest]:
        """Each cluster's version (`EsClient.version`): read by a resumed run; a first run's discovery has read
        it moments before (es.VERSION_FRESH_S), and preflight takes that answer."""
        return [
            ConsoleRequest(side, "GET", path.lstrip("/") or "/").only_when(
                "the run did not discover the clusters moments before (a resumed run)"
            )
            for side in SIDES
            for path in ("/", NODE_VERSIONS)
        ]

    def _readers(self) -> list[tuple[str, StorageSpec, Callable[[], Storage]]]:
        """(plan field, its storage, how migrator opens it) for each bucket migrator will read."""
        readers = [("storage", self.ctx.spec.storage_spec(), self.ctx.storage)]
        replication = self.ctx.spec.replication
        if replication is not None and self.ctx.replica_factory is not None:
            readers.append(("replication.storage", replication.storage, self.ctx.replica))
        return readers

    def _storage_problems(self) -> list[str]:
        problems = []
        for field, _, open_storage in self._readers():
            try:
                next(iter(open_storage().list(PROBE_PREFIX)), None)
            except StorageError as exc:
                problems.append(f"migrator cannot read the bucket of {field} in the plan: {exc}")  # exc names it
        return problems

    def _cluster(self, side: str, client: Any) -> tuple[str, list[str]]:
        """One cluster's version and problems (red selected indices on the source, a missing plugin)."""
        version = str(client.version())
        problems = self._red_sources() if side == "source" else []
        if plugin_for(self.ctx.spec.repository.type):
            nodes = client.get(PLUGINS)
            problems.extend(missing_plugin(side, nodes, self.ctx.spec.repository.type))
        return version, problems

    def observe(self) -> Observation:
        """Both clusters and the buckets are read at once (independent reads: one chain's time, not three)."""
        source, destination, storage = self.ctx.requests.at_once(
            lambda: self._cluster("source", self.ctx.source),
            lambda: self._cluster("destination", self.ctx.destination),
            lambda: ("", self._storage_problems()),
        )
        versions = {"source": source[0], "destination": destination[0]}
        problems = [*source[1], *destination[1]]
        rule = refusal(versions["source"], versions["destination"])
        if rule:
            problems.append(rule)
        problems.extend(storage[1])
        if problems:
            raise StepFailed("preflight: " + "; ".join(problems))
        return Observation(True, summary=f"source {versions['source']}, destination {versions['destination']}")

    def _red_sources(self) -> list[str]:
        """Selected source indices with unassigned primaries: their snapshot would fail."""
        health = self.ctx.source.get(HEALTH)
        selected = {move.source for move in self.ctx.plan.moves}
        red = sorted(name for name, index in health.get("indices", {}).items() if index.get("status") == "red")
        blocking = [name for name in red if name in selected]
        if not blocking or self.ctx.spec.snapshot.partial:
            return []
        return [
            f"source index {', '.join(blocking)} has unassigned primary shards (red): its snapshot would fail; "
            "fix its allocation (GET _cluster/allocation/explain) or set snapshot.partial: true"
        ]
