"""Clusters of several sandbox nodes, without starting any: folders, ports, the discovery settings each
version reads, and a folder keeping its cluster sizes (the real 1 + 3 sandbox: tests/e2e/test_multinode_e2e.py)."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest

from migrator.clients.es import EsClient
from migrator.errors import SandboxError
from migrator.sandbox import clusters, nodes
from migrator.sandbox.distributions import KNOWN_VERSIONS, resolve_version, unpack
from migrator.sandbox.processes import hand_over, pick_port, run_as, stop_group
from tests.conftest import TESTS_ROOT


def three_nodes(version: str, folder: Path) -> list[nodes.NodeLayout]:
    dist = resolve_version(KNOWN_VERSIONS[version])
    taken: set[int] = set()
    dists = {"source": dist, "destination": dist}
    homes = {"source": folder / "home", "destination": folder / "home"}
    found = clusters.layouts(folder, dists, homes, {"source": 1, "destination": 3}, False, taken)
    assert list(found) == ["source", "destination", "destination-1", "destination-2"]
    ports = [port for layout in found.values() for port in (layout.http_port, layout.transport_port)]
    assert len(set(ports)) == 8 and set(ports) <= taken
    return [layout for layout in found.values() if layout.role == "destination"]


def test_a_single_node_cluster_keeps_single_node_discovery_and_its_heap(tmp_path):
    dist = resolve_version(KNOWN_VERSIONS["8"])
    first = nodes.NodeLayout("source", dist, tmp_path, tmp_path / "source", 19200, 19300, [tmp_path / "buckets"])
    assert nodes.cluster(first, 1, set()) == [first]
    values = nodes.settings(first)
    assert values["discovery.type"] == "single-node" and values["node.name"] == "source-0"
    assert first.heap == nodes.HEAP


def test_nodes_of_7x_and_later_find_each_other_by_seed_hosts_and_bootstrap_together(tmp_path):
    layouts = three_nodes("8", tmp_path)
    seeds = ",".join(f"127.0.0.1:{layout.transport_port}" for layout in layouts)
    for number, layout in enumerate(layouts):
        values = nodes.settings(layout)
        assert "discovery.type" not in values
        assert values["discovery.seed_hosts"] == seeds
        assert values["cluster.initial_master_nodes"] == "destination-0,destination-1,destination-2"
        assert values["node.name"] == f"destination-{number}"
        assert values["cluster.name"] == nodes.settings(layouts[0])["cluster.name"]
        assert values["path.repo"] == str(tmp_path / "buckets")  # one fs repository folder for every node
        assert layout.heap == nodes.MULTI_NODE_HEAP
    assert [layout.folder.name for layout in layouts] == ["destination", "destination-1", "destination-2"]


@pytest.mark.parametrize("version", ["6.8", "5.6"])
def test_nodes_of_5x_and_6x_use_zen_unicast_hosts_and_a_majority(tmp_path, version):
    layouts = three_nodes(version, tmp_path)
    values = nodes.settings(layouts[1])
    assert values["discovery.zen.ping.unicast.hosts"].count("127.0.0.1:") == 3
    assert values["discovery.zen.minimum_master_nodes"] == "2"
    assert "discovery.seed_hosts" not in values and "discovery.type" not in values


def test_opensearch_nodes_use_seed_hosts(tmp_path):
    values = nodes.settings(three_nodes("opensearch-1.3", tmp_path)[2])
    assert values["discovery.seed_hosts"].count("127.0.0.1:") == 3 and "cluster.initial_master_nodes" in values


def test_a_folder_keeps_its_cluster_sizes(tmp_path):
    clusters.check_sizes(tmp_path, {"source": 1, "destination": 3})
    clusters.check_sizes(tmp_path, {"source": 1, "destination": 3})
    with pytest.raises(SandboxError, match="cluster of 3 node\\(s\\), not 1; start it with --destination-nodes 3"):
        clusters.check_sizes(tmp_path, {"source": 1, "destination": 1})
    # a folder of an older sandbox (data, no marker) held single-node clusters
    older = tmp_path / "older"
    (older / "destination" / "data").mkdir(parents=True)
    with pytest.raises(SandboxError, match="not 3"):
        clusters.check_sizes(older, {"source": 1, "destination": 3})
    with pytest.raises(SandboxError, match="--source-nodes must be 1 to 5, not 0"):
        clusters.check_sizes(tmp_path / "new", {"source": 0, "destination": 1})


def test_a_running_sandbox_of_other_sizes_is_refused_naming_down(tmp_path):
    processes = {"source": {"cluster": "source"}, "destination": {"cluster": "destination"}, "oss": {}}
    clusters.check_running_sizes(tmp_path, processes, {"source": 1, "destination": 1})
    with pytest.raises(SandboxError, match="runs a destination of 1 node\\(s\\), not 3; stop it first"):
        clusters.check_running_sizes(tmp_path, processes, {"source": 1, "destination": 3})


def test_a_port_clash_is_read_from_what_a_node_wrote_since_its_start(tmp_path):
    found = clusters.layouts(
        tmp_path,
        {"source": resolve_version(KNOWN_VERSIONS["8"])},
        {"source": tmp_path / "home"},
        {"source": 1},
        False,
        set(),
    )
    log = found["source"].stdout_log
    log.parent.mkdir(parents=True)
    log.write_text("BindTransportException: Failed to bind to 127.0.0.1:19310\n")  # an earlier start's clash
    sizes = clusters.log_sizes(found)
    assert not clusters.port_clash(found, sizes, "source failed: the process exited during start-up")
    with log.open("a") as out:
        out.write("Caused by: java.net.BindException: Address already in use\n")
    assert clusters.port_clash(found, sizes, "source failed: the process exited during start-up")
    assert clusters.port_clash(found, {"source": log.stat().st_size}, "port 19200 is answered by another cluster")


class FakeStarts:
    """nodes.start / wait_all_green / stop_group for start_all: the first `clashes` starts lose a port (the
    node writes a BindException) or fail with `failure`; later ones come up green."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, clashes: int, failure: BaseException | None = None) -> None:
        self.clashes, self.failure = clashes, failure
        self.started: list[tuple[str, int]] = []
        self.stopped: list[int] = []
        monkeypatch.setattr(nodes, "start", self.start)
        monkeypatch.setattr(nodes, "wait_all_green", self.wait_all_green)
        monkeypatch.setattr(clusters, "stop_group", self.stopped.append)
        monkeypatch.setattr(nodes, "ports_free", lambda layouts: True)

    def start(self, layout: nodes.NodeLayout, owner: object) -> int:
        self.started.append((layout.name, layout.http_port))
        if self.clashes and self.failure is None:
            layout.stdout_log.parent.mkdir(parents=True, exist_ok=True)
            with layout.stdout_log.open("a") as out:
                out.write(f"BindHttpException: Failed to bind to 127.0.0.1:{layout.http_port}\n")
        return 1000 + len(self.started)

    def wait_all_green(self, layouts: dict, groups: dict, timeout_s: float) -> dict[str, list[str]]:
        if self.clashes:
            self.clashes -= 1
            raise self.failure or SandboxError("source failed: the process exited during start-up")
        return {name: [] for name in layouts}


def pick_two(tmp_path: Path):
    dist = resolve_version(KNOWN_VERSIONS["8"])
    dists, homes = {"source": dist, "destination": dist}, {"source": tmp_path, "destination": tmp_path}
    return lambda taken: clusters.layouts(tmp_path, dists, homes, {"source": 1, "destination": 1}, False, taken)


def test_a_start_that_lost_a_port_is_stopped_and_made_again_on_other_ports(tmp_path, monkeypatch):
    fake = FakeStarts(monkeypatch, clashes=1)
    recorded: list[tuple[str, int]] = []
    layouts, groups, red = clusters.start_all(
        pick_two(tmp_path), None, started=lambda name, layout, pgid: recorded.append((name, pgid))
    )
    assert fake.stopped == [1001, 1002]  # the first attempt's nodes
    assert groups == {"source": 1003, "destination": 1004} and red == {"source": [], "destination": []}
    first, second = fake.started[:2], fake.started[2:]
    assert {port for _, port in first}.isdisjoint(port for _, port in second)
    assert [layout.http_port for layout in layouts.values()] == [port for _, port in second]
    assert recorded == [("source", 1001), ("destination", 1002), ("source", 1003), ("destination", 1004)]


def test_a_start_that_fails_otherwise_is_stopped_and_raised_at_once(tmp_path, monkeypatch):
    fake = FakeStarts(monkeypatch, clashes=1, failure=SandboxError("destination failed: out of memory"))
    with pytest.raises(SandboxError, match="out of memory"):
        clusters.start_all(pick_two(tmp_path), None)
    assert len(fake.started) == 2 and fake.stopped == [1001, 1002]


def test_an_interrupted_start_stops_the_nodes_it_started(tmp_path, monkeypatch):
    fake = FakeStarts(monkeypatch, clashes=1, failure=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        clusters.start_all(pick_two(tmp_path), None)
    assert fake.stopped == [1001, 1002]


def test_ports_lost_at_every_attempt_end_in_an_error_that_says_so(tmp_path, monkeypatch):
    fake = FakeStarts(monkeypatch, clashes=clusters.START_ATTEMPTS)
    with pytest.raises(SandboxError, match="taken by other processes 3 times; retry; the last time:\nsource failed"):
        clusters.start_all(pick_two(tmp_path), None)
    assert len(fake.started) == 2 * clusters.START_ATTEMPTS


@pytest.mark.cluster
def test_a_real_node_whose_port_another_process_took_is_started_again_on_another(monkeypatch):
    """The case behind start_all: between picking a free port and the node binding it, another process of the
    machine binds it. The node exits with a BindHttpException; the start is made again on other ports."""
    dist = resolve_version(KNOWN_VERSIONS["7.17"])
    home = unpack(dist, TESTS_ROOT / "dist")
    folder = TESTS_ROOT / f"clash-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    owner = run_as()
    hand_over(folder, owner)
    base = 24000 + (os.getpid() % 500) * 4

    def pick(taken: set[int]) -> dict[str, nodes.NodeLayout]:
        http, transport = pick_port(base, taken), pick_port(base + 2, taken)
        return {"source": nodes.NodeLayout("clash", dist, home, folder / "source", http, transport, [folder])}

    squatters: list[socket.socket] = []
    start = nodes.start

    def start_after_another_process_took_the_port(layout: nodes.NodeLayout, owner: tuple[int, int] | None) -> int:
        if not squatters:
            squatter = socket.socket()
            squatter.bind(("127.0.0.1", layout.http_port))
            squatter.listen()
            squatters.append(squatter)
        return start(layout, owner)

    monkeypatch.setattr(nodes, "start", start_after_another_process_took_the_port)
    groups: dict[str, int] = {}
    try:
        layouts, groups, _ = clusters.start_all(pick, owner, timeout_s=300)
        taken_port = squatters[0].getsockname()[1]
        assert layouts["source"].http_port != taken_port
        assert EsClient(layouts["source"].url, timeout_s=10).get("/")["version"]["number"] == dist.version
    finally:
        for pgid in groups.values():
            stop_group(pgid)
        for squatter in squatters:
            squatter.close()
        shutil.rmtree(folder, ignore_errors=True)
