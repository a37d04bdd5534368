"""Clusters of several sandbox nodes, without starting any: folders, ports, the discovery settings each
version reads, and a folder keeping its cluster sizes (the real 1 + 3 sandbox: tests/e2e/test_multinode_e2e.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.errors import SandboxError
from migrator.sandbox import clusters, nodes
from migrator.sandbox.distributions import KNOWN_VERSIONS, resolve_version


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
