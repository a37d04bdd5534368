"""The two clusters of a process sandbox: their nodes' layouts and ports, and the sizes a folder keeps.

Place in the flow: `migrator sandbox up` -> manager.Sandbox.up -> clusters (this module: which nodes, on
which loopback ports, in which folders) -> nodes (configure, start, wait). A cluster of N nodes lives in
DIR/<role> (its first node, whose URL the plans use) and DIR/<role>-1 ... DIR/<role>-<N-1>.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrator.errors import SandboxError, SandboxRefused
from migrator.sandbox import nodes
from migrator.sandbox.distributions import Distribution
from migrator.sandbox.processes import pick_port, stop_group
from migrator.sandbox.repository_plugin import plugin_dir

PREFERRED_PORTS = {"source": 19200, "destination": 19210, "oss": 19000}
TRANSPORT_PORTS = {"source": 19300, "destination": 19310}
MAX_NODES = 5  # per cluster: its nodes take the ports above its first node's, 10 apart from the other cluster
START_ATTEMPTS = 3  # a port picked free can be bound by another process before our node binds it
TAKEN_EVERY_TIME = f"the ports picked were taken by other processes {START_ATTEMPTS} times; retry"
Started = Callable[[str, nodes.NodeLayout, int], None]
PORT_CLASH = re.compile(r"BindException|Address already in use|BindTransportException|BindHttpException")


def layouts(
    folder: Path,
    dists: dict[str, Distribution],
    homes: dict[str, Path],
    sizes: dict[str, int],
    plugin: bool,
    taken: set[int],
) -> dict[str, nodes.NodeLayout]:
    """Every node of both clusters by name (`source`, `destination`, `destination-1`, ...), ports picked free
    (never one in `taken`, which gets them); `plugin`: the test bed's oss plugin on every node."""
    found: dict[str, nodes.NodeLayout] = {}
    for role, dist in dists.items():
        first = nodes.NodeLayout(
            role=role,
            dist=dist,
            home=homes[role],
            folder=folder / role,
            http_port=pick_port(PREFERRED_PORTS[role], taken),
            transport_port=pick_port(TRANSPORT_PORTS[role], taken),
            repo_paths=[folder / "buckets"],
            plugins=[plugin_dir(dist, homes[role])] if plugin else [],
        )
        found.update({layout.folder.name: layout for layout in nodes.cluster(first, sizes[role], taken)})
    return found


def process_entry(layout: nodes.NodeLayout, pgid: int) -> dict[str, Any]:
    """A node's entry in processes.json (what `status`, `down` and `stop_node` read)."""
    return {
        "pgid": pgid,
        "port": layout.http_port,
        "version": layout.dist.label,
        "cluster": layout.role,
        "transport_port": layout.transport_port,
    }


def check_sizes(folder: Path, sizes: dict[str, int]) -> None:
    """Each cluster's data folders hold the cluster they were started with (its voting configuration names
    its nodes): a sandbox folder keeps its number of nodes per cluster (DIR/<role>/nodes). Refuse another,
    naming the fix; record the sizes of a new folder."""
    for role, size in sizes.items():
        if not 1 <= size <= MAX_NODES:
            raise SandboxRefused(f"--{role}-nodes must be 1 to {MAX_NODES}, not {size}")
        marker = folder / role / "nodes"
        if marker.is_file():
            written = int(marker.read_text().strip())
        else:
            written = 1 if (folder / role / "data").is_dir() else size
        if written != size:
            raise SandboxRefused(
                f"{folder / role} holds the data of a {role} cluster of {written} node(s), not {size}; "
                f"start it with --{role}-nodes {written}, use another --dir, or delete {folder / role}* "
                "to start that cluster afresh"
            )
    for role, size in sizes.items():
        (folder / role).mkdir(parents=True, exist_ok=True)
        (folder / role / "nodes").write_text(str(size))


def check_running_sizes(folder: Path, processes: dict[str, dict[str, Any]], sizes: dict[str, int]) -> None:
    """A running sandbox of other cluster sizes is not what was asked: refuse, naming the fix."""
    running = {role: 0 for role in sizes}
    for entry in processes.values():
        if entry.get("cluster", "") in running:
            running[entry["cluster"]] += 1
    for role, size in sizes.items():
        if running[role] and running[role] != size:
            raise SandboxRefused(
                f"the sandbox in {folder} runs a {role} of {running[role]} node(s), not {size}; "
                f"stop it first with `migrator sandbox down --dir {folder}`"
            )


def log_sizes(layouts: dict[str, nodes.NodeLayout]) -> dict[str, int]:
    """How long each node's output log is before a start (`port_clash` reads what comes after)."""
    return {
        name: layout.stdout_log.stat().st_size if layout.stdout_log.is_file() else 0 for name, layout in layouts.items()
    }


def port_clash(layouts: dict[str, nodes.NodeLayout], sizes: dict[str, int], failure: str) -> bool:
    """Whether a failed start lost a port to another process: a node could not bind one (its output since
    `sizes`, see log_sizes), or another cluster answers on a node's port (`failure`, the start's message)."""
    if "is answered by another cluster" in failure:
        return True
    for name, layout in layouts.items():
        if layout.stdout_log.is_file():
            with open(layout.stdout_log, "rb") as log:
                log.seek(sizes.get(name, 0))
                if PORT_CLASH.search(log.read().decode("utf-8", "replace")):
                    return True
    return False


def start_all(
    pick: Callable[[set[int]], dict[str, nodes.NodeLayout]],
    owner: tuple[int, int] | None,
    *,
    timeout_s: float = 240.0,
    started: Started | None = None,
) -> tuple[dict[str, nodes.NodeLayout], dict[str, int], dict[str, list[str]]]:
    """Start every node `pick` lays out (given the ports already taken, which it adds to) and wait for all of
    them; returns (layouts, process group per node, red indices per node, see `nodes.wait_all_green`).

    A port picked free can be bound by another process of the machine before our node binds it: such a
    start (see `port_clash`) is stopped and made again on other ports, up to START_ATTEMPTS times. Any
    other failure, or an interrupt, stops the nodes started and is raised. `started(name, layout, pgid)` is
    called as each node's process starts (to record it before the wait). Raises SandboxError."""
    taken: set[int] = set()
    for attempt in range(1, START_ATTEMPTS + 1):
        layouts = pick(taken)
        if not nodes.ports_free(list(layouts.values())):  # taken since they were picked: pick others
            continue
        logged = log_sizes(layouts)
        groups: dict[str, int] = {}
        try:
            for name, layout in layouts.items():
                groups[name] = nodes.start(layout, owner)
                if started is not None:
                    started(name, layout, groups[name])
            return layouts, groups, nodes.wait_all_green(layouts, groups, timeout_s)
        except BaseException as exc:
            for pgid in groups.values():
                stop_group(pgid)
            if not (isinstance(exc, SandboxError) and port_clash(layouts, logged, str(exc))):
                raise
            if attempt == START_ATTEMPTS:
                raise SandboxError(f"{TAKEN_EVERY_TIME}; the last time:\n{exc}") from exc
    raise SandboxError(TAKEN_EVERY_TIME)
