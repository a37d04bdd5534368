"""The nodes of the test bed's Elasticsearch (or OpenSearch) clusters: configure, start, wait for green, stop.

A cluster is one node (`discovery.type: single-node`, a 512 MB heap) or several nodes on loopback that find
each other through their transport ports (`cluster`: 7.x+ and OpenSearch `discovery.seed_hosts` and
`cluster.initial_master_nodes`, 5.6 and 6.8 `discovery.zen.ping.unicast.hosts` and
`discovery.zen.minimum_master_nodes`), each master-eligible and a data node, with a smaller heap
(MULTI_NODE_HEAP) so that a 1 + 3 sandbox fits beside the test suite.

Each node gets its own config folder (ES_PATH_CONF / OPENSEARCH_PATH_CONF; `-Epath.conf` on 5.x),
data, logs and temp folders inside the sandbox folder, `path.repo` pointing at the bucket directories
(so an `fs` repository there is the very set of objects the OSS server serves; the same folders for
every node of a cluster, as a shared `fs` repository needs), and loopback ports. Versions older than the
JDK here (5.6, 6.8) get a jvm.options without the CMS collector flags and AlwaysPreTouch, and G1 instead.
A node with plugins runs from a home of its own (`<folder>/../homes/<name>`: the distribution's
files hard-linked, plus its own `plugins/`), so the unpacked distribution other nodes share is never changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from migrator.clients.es import EsClient, EsError
from migrator.errors import SandboxError
from migrator.sandbox.distributions import Distribution, find_java_home
from migrator.sandbox.processes import hand_over, pick_port, port_is_free, spawn, tail
from migrator.sandbox.repository_plugin import install
from migrator.state import pid_alive

HEAP = "512m"  # a single-node cluster's heap
MULTI_NODE_HEAP = "320m"  # each node of a multi-node cluster (an 8.19 node then holds about 650 MB resident)


@dataclass
class NodeLayout:
    """Where one node lives and what it listens on."""

    role: str  # "source" or "destination"
    dist: Distribution
    home: Path  # the unpacked distribution
    folder: Path  # DIR/<role>
    http_port: int
    transport_port: int
    repo_paths: list[Path]
    plugins: list[Path] = field(default_factory=list)  # built plugin folders to install
    number: int = 0  # the node's place in its cluster (node.name `<role>-<number>`)
    peers: list[tuple[str, int]] = field(default_factory=list)  # (node.name, transport port) of every node of a
    # multi-node cluster, this one included; empty for a single-node cluster
    cluster_folder: Path | None = None  # DIR/<role>, the cluster's name comes from it (default: folder)
    heap: str = HEAP

    @property
    def name(self) -> str:
        """The node's `node.name`."""
        return f"{self.role}-{self.number}"

    @property
    def cluster_size(self) -> int:
        """How many nodes the cluster has."""
        return len(self.peers) or 1

    @property
    def runtime_home(self) -> Path:
        """The home the node runs from: the shared distribution, or with plugins a home of its own."""
        return self.folder.parent / "homes" / self.folder.name if self.plugins else self.home

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def stdout_log(self) -> Path:
        return self.folder / "logs" / "stdout.log"

    @property
    def cluster_log(self) -> Path:
        return self.folder / "logs" / f"{self.cluster_name}.log"

    @property
    def cluster_name(self) -> str:
        """Unique per sandbox folder, so a node of another sandbox on the same port is never taken for ours."""
        folder = self.cluster_folder or self.folder
        return f"migrator-{self.role}-{hashlib.sha1(str(folder).encode()).hexdigest()[:6]}"


def cluster(first: NodeLayout, count: int, taken: set[int]) -> list[NodeLayout]:
    """The `count` nodes of the cluster whose first node is `first` (its folder DIR/<role>, its ports): node n
    lives in DIR/<role>-<n> with its own loopback ports (picked free above the first node's, never one in
    `taken`), and every node lists every node's transport port. One node: [first], a single-node cluster."""
    if count < 1:
        raise SandboxError(f"a cluster needs at least one node, not {count}")
    if count == 1:
        return [first]
    layouts = [first]
    for number in range(1, count):
        layouts.append(
            replace(
                first,
                folder=first.folder.with_name(f"{first.folder.name}-{number}"),
                http_port=pick_port(first.http_port + number, taken),
                transport_port=pick_port(first.transport_port + number, taken),
                number=number,
            )
        )
    peers = [(layout.name, layout.transport_port) for layout in layouts]
    for layout in layouts:
        layout.peers, layout.cluster_folder, layout.heap = peers, first.folder, MULTI_NODE_HEAP
    return layouts


def discovery_settings(layout: NodeLayout) -> dict[str, str]:
    """How the node finds the rest of its cluster: alone (`single-node`), or through every node's transport
    port on loopback, bootstrapping from all of them (7.x+, OpenSearch) or with a majority quorum (zen, 5.x-6.x)."""
    if not layout.peers:
        return {"discovery.type": "single-node"}
    hosts = ",".join(f"127.0.0.1:{port}" for _, port in layout.peers)
    if layout.dist.major >= 7 or layout.dist.opensearch:
        return {"discovery.seed_hosts": hosts, "cluster.initial_master_nodes": ",".join(n for n, _ in layout.peers)}
    return {
        "discovery.zen.ping.unicast.hosts": hosts,
        "discovery.zen.minimum_master_nodes": str(len(layout.peers) // 2 + 1),
    }


def ports_free(layouts: list[NodeLayout]) -> bool:
    """Whether every port the nodes are to bind is still free (a port picked free may be taken meanwhile)."""
    return all(port_is_free(port) for layout in layouts for port in (layout.http_port, layout.transport_port))


def settings(layout: NodeLayout) -> dict[str, str]:
    values = {
        "cluster.name": layout.cluster_name,
        "node.name": layout.name,
        **discovery_settings(layout),
        "network.host": "127.0.0.1",
        "http.port": str(layout.http_port),
        "transport.port" if layout.dist.major >= 8 or layout.dist.opensearch else "transport.tcp.port": str(
            layout.transport_port
        ),
        "path.data": str(layout.folder / "data"),
        "path.logs": str(layout.folder / "logs"),
        "path.repo": ",".join(str(path) for path in layout.repo_paths),
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "action.destructive_requires_name": "false",
    }
    if (layout.home / "modules" / "x-pack-security").is_dir():
        values["xpack.security.enabled"] = "false"
    if (layout.home / "plugins" / "opensearch-security").is_dir():
        values["plugins.security.disabled"] = "true"
    return values


# jvm.options lines the JDK 17 here refuses or that cost memory: the CMS collector (removed in JDK 14;
# unconditional in 5.6, guarded `8-13:` in 6.8), heap sizes (set through the environment) and pre-touch.
DROPPED_JVM_OPTIONS = re.compile(
    r"^\s*(\d+(-\d*)?:)?-(XX:[+-]?(UseConcMarkSweepGC|CMS\w+|UseCMS\w+|AlwaysPreTouch)|Xm[sx])"
)


def jvm_options(text: str, folder: Path) -> str:
    """The distribution's jvm.options for one node: logs and heap dumps in its folder, no CMS flags, no
    pre-touch, no heap lines, G1 when the file chose no collector of its own."""
    text = text.replace("=logs/", f"={folder}/logs/").replace("HeapDumpPath=data", f"HeapDumpPath={folder}/data")
    lines = [line for line in text.splitlines() if not DROPPED_JVM_OPTIONS.match(line)]
    if not any("-XX:+UseG1GC" in line and not line.lstrip().startswith("#") for line in lines):
        lines.append("-XX:+UseG1GC")
    return "\n".join(lines) + "\n"


def launcher(layout: NodeLayout, home: Path) -> tuple[list[str], dict[str, str]]:
    """The start command (from `home`, the node's own when it has plugins) and the flavour's environment
    variables (config folder, heap, JDK, temp)."""
    java_home = str(find_java_home(layout.dist.java_feature))
    config = str(layout.folder / "config")
    heap = f"-Xms{layout.heap} -Xmx{layout.heap} -XX:-HeapDumpOnOutOfMemoryError"
    if layout.dist.opensearch:
        command = [str(home / "bin" / "opensearch")]
        return command, {
            "OPENSEARCH_PATH_CONF": config,
            "OPENSEARCH_TMPDIR": str(layout.folder / "tmp"),
            "OPENSEARCH_JAVA_OPTS": heap,
            "OPENSEARCH_JAVA_HOME": java_home,
            "JAVA_HOME": java_home,
        }
    command = [str(home / "bin" / "elasticsearch")]
    env = {"ES_JAVA_OPTS": heap, "ES_JAVA_HOME": java_home, "JAVA_HOME": java_home}
    if layout.dist.major < 6:  # 5.x reads its config folder from -Epath.conf and jvm.options from ES_JVM_OPTIONS
        command.append(f"-Epath.conf={config}")
        env["ES_JVM_OPTIONS"] = str(layout.folder / "config" / "jvm.options")
        env["ES_JAVA_OPTS"] += f" -Djava.io.tmpdir={layout.folder / 'tmp'}"
    else:
        env["ES_PATH_CONF"] = config
        env["ES_TMPDIR"] = str(layout.folder / "tmp")
    return command, env


def configure(layout: NodeLayout, owner: tuple[int, int] | None) -> None:
    config = layout.folder / "config"
    if not config.is_dir():
        shutil.copytree(layout.home / "config", config)
    for sub in ("data", "logs", "tmp"):
        (layout.folder / sub).mkdir(parents=True, exist_ok=True)
    lines = [f"{key}: {value}" for key, value in settings(layout).items()]
    (config / f"{layout.dist.flavour}.yml").write_text("\n".join(lines) + "\n")
    text = (layout.home / "config" / "jvm.options").read_text()
    (config / "jvm.options").write_text(jvm_options(text, layout.folder))
    hand_over(layout.folder, owner)


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link a distribution's files (a copy across file systems) except its plugins folder."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    marker = target / ".linked"
    if marker.is_file():
        return
    shutil.rmtree(target, ignore_errors=True)  # an interrupted earlier linking
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name == "plugins":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target / entry.name, copy_function=link, symlinks=True)
        else:
            link(str(entry), str(target / entry.name))
    marker.write_text(str(source))


def prepare_home(layout: NodeLayout) -> Path:
    """The node's runtime home, with exactly its plugins installed."""
    home = layout.runtime_home
    if home == layout.home:
        return home
    _link_tree(layout.home, home)
    shutil.rmtree(home / "plugins", ignore_errors=True)
    (home / "plugins").mkdir()
    for plugin in layout.plugins:
        install(plugin, home)
    for path in (home.parent, home, home / "plugins"):
        path.chmod(0o755)
    return home


def start(layout: NodeLayout, owner: tuple[int, int] | None) -> int:
    """Start the node; returns its process group id."""
    configure(layout, owner)
    home = prepare_home(layout)
    command, flavour_env = launcher(layout, home)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(layout.folder), "LANG": "C.UTF-8", **flavour_env}
    process = spawn(
        command,
        env=env,
        cwd=layout.folder,
        log=layout.stdout_log,
        owner=owner,
    )
    return process.pid


RED_GRACE_S = 20.0  # red with nothing initializing for this long: indices without primaries, not a start-up


def wait_green(
    layout: NodeLayout, pid: int, timeout_s: float = 240.0, given_up: threading.Event | None = None
) -> list[str]:
    """Poll cluster health until the node serves in a cluster of all its nodes (`number_of_nodes`, the
    cluster's size): green, or yellow (one node cannot hold replicas), or red that stays red with nothing
    initializing for RED_GRACE_S (an index left without primaries, e.g. by an interrupted restore, must not
    keep the sandbox down). Returns those red indices (usually none); a dead process or a timeout raises
    SandboxError with the log's tail, and so does `given_up` once set (another node of the start failed:
    a cluster missing a node never forms, so waiting on would only run out the timeout)."""
    client = EsClient(layout.url, label=layout.role, timeout_s=5, max_retries=0)
    deadline = time.monotonic() + timeout_s
    red_since: float | None = None
    try:
        while time.monotonic() < deadline:
            if given_up is not None and given_up.is_set():
                raise SandboxError(failure(layout, "another node failed to start"))
            if not pid_alive(pid):
                raise SandboxError(failure(layout, "the process exited during start-up"))
            try:
                health = client.health(wait_for_status="yellow", timeout="2s")
                if health.get("cluster_name") != layout.cluster_name:
                    raise SandboxError(
                        failure(
                            layout,
                            f"port {layout.http_port} is answered by another cluster "
                            f"({health.get('cluster_name')}); stop it or start again to get another port",
                        )
                    )
                if health.get("number_of_nodes", 1) < layout.cluster_size:  # the others are still joining
                    time.sleep(1.0)
                    continue
                if health.get("status") in ("green", "yellow"):
                    return []
                if health.get("initializing_shards", 0) or red_since is None:
                    red_since = time.monotonic()
                elif time.monotonic() - red_since >= RED_GRACE_S:
                    return sorted(row["index"] for row in client.indices() if row.get("health") == "red")
            except EsError:
                time.sleep(1.0)
        raise SandboxError(failure(layout, f"not serving after {timeout_s:.0f} s"))
    finally:
        client.close()


def wait_all_green(
    layouts: dict[str, NodeLayout], groups: dict[str, int], timeout_s: float = 240.0
) -> dict[str, list[str]]:
    """Wait for every node at once; one SandboxError lists every node that failed (the first failure ends
    the other waits). Returns, per node, the indices that stay red (see `wait_green`)."""
    errors: list[str] = []
    red: dict[str, list[str]] = {}

    given_up = threading.Event()

    def wait(name: str) -> None:
        try:
            red[name] = wait_green(layouts[name], groups[name], timeout_s, given_up)
        except SandboxError as exc:
            errors.append(str(exc))
            given_up.set()

    waiters = [threading.Thread(target=wait, args=(name,)) for name in layouts]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join()
    if errors:
        raise SandboxError("\n".join(errors))
    return red


def failure(layout: NodeLayout, reason: str) -> str:
    has_cluster_log = layout.cluster_log.is_file() and layout.cluster_log.stat().st_size > 0
    log = layout.cluster_log if has_cluster_log else layout.stdout_log
    return (
        f"{layout.name if layout.peers else layout.role} {layout.dist.name} on port {layout.http_port} failed: "
        f"{reason}.\n"
        f"Last lines of {log}:\n{tail(log, 15)}"
    )
