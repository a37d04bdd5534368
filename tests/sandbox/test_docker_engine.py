"""`migrator sandbox up --engine docker`: real nodes in containers of the local Docker engine.

These need a Docker engine; `bash scripts/test.sh` starts one (scripts/docker-engine.sh). Where none
answers they FAIL with the reason, they are never skipped.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.clients.es import EsClient
from migrator.sandbox.distributions import KNOWN_VERSIONS
from migrator.sandbox.docker_engine import LABEL_DIR, LABEL_ROLE
from migrator.sandbox.images import BASE_IMAGE
from tests.helpers import snapshot_waiting, throttle, wait_for_checkpoint

pytestmark = [pytest.mark.cluster, pytest.mark.docker]


def migrator(*args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "migrator", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"migrator {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def sandbox(engine) -> Iterator[tuple[Path, dict]]:
    """One docker sandbox (7.17 -> 8) for the module; its images are built on first use and cached."""
    folder = Path("/var/tmp/migrator-tests") / f"docker-{uuid.uuid4().hex[:8]}"
    try:
        document = json.loads(migrator("sandbox", "up", "--engine", "docker", "--dir", str(folder)).stdout)
        yield folder, document
    finally:
        migrator("sandbox", "down", "--dir", str(folder), check=False)
        shutil.rmtree(folder, ignore_errors=True)


def ours(engine, folder: Path) -> list:
    return engine.containers.list(all=True, filters={"label": f"{LABEL_DIR}={folder}"})


def test_up_runs_the_sandbox_as_labelled_unprivileged_containers(engine, sandbox):
    folder, document = sandbox
    assert document["engine"] == "docker"
    assert document["repository"]["type"] == "oss"  # both images carry the test bed's plugin
    assert document["source"]["version"] == KNOWN_VERSIONS["7.17"]
    assert document["destination"]["version"] == KNOWN_VERSIONS["8"]
    containers = {c.labels[LABEL_ROLE]: c for c in ours(engine, folder)}
    assert sorted(containers) == ["destination", "oss", "source"]
    for role, container in containers.items():
        assert container.status == "running", role
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        binds = {mount["Destination"]: mount["Source"] for mount in container.attrs["Mounts"]}
        assert binds[str(folder / "buckets")] == str(folder / "buckets")
        # Elasticsearch refuses root: every process in the containers runs as another uid.
        top = container.top(ps_args="-o pid,uid,comm")
        uids = [row[top["Titles"].index("UID")] for row in top["Processes"]]
        assert uids and "0" not in uids, (role, top)
    for role in ("source", "destination"):
        client = EsClient(document[role]["url"], label=role)
        try:
            assert client.health()["status"] in ("green", "yellow")
            assert str(client.version()) == document[role]["version"]
        finally:
            client.close()

    status = json.loads(migrator("sandbox", "status", "--dir", str(folder), "--json").stdout)
    assert status["running"] and status["engine"] == "docker"
    assert status["source"]["container"] == containers["source"].name
    for role in ("source", "destination"):  # no registry here: the local build, with the plugin installed
        assert status[role]["image"].startswith(
            f"migrator-sandbox/elasticsearch-oss:local-{document[role]['version']}-"
        )
    assert status["source"]["logs"] == f"docker logs {containers['source'].name}"
    assert "started" in containers["source"].logs().decode()

    faults = json.loads(migrator("sandbox", "faults", "--latency-ms", "5", "--dir", str(folder)).stdout)
    assert faults["latency_ms"] == 5
    assert json.loads(migrator("sandbox", "faults", "--dir", str(folder)).stdout)["latency_ms"] == 0

    again = migrator("sandbox", "up", "--dir", str(folder))
    assert "already running" in again.stderr
    assert {c.id for c in ours(engine, folder)} == {c.id for c in containers.values()}


def test_migration_through_the_containers_survives_kill_9_and_resume(sandbox):
    """7.17 -> 8 through an `oss` repository: the snapshot's blobs go through the plugin in the source's
    container to the OSS server's container, and the destination's restore reads them back the same way."""
    folder, document = sandbox
    assert "type: oss" in (folder / "plan.yaml").read_text()
    seeded = json.loads(migrator("sandbox", "seed", "--dir", str(folder)).stdout)
    plan = folder / "plan.yaml"
    throttle(plan, snapshot="100kb", restore="100kb")  # a snapshot long enough to be killed in
    apply = subprocess.Popen(
        [sys.executable, "-m", "migrator", "apply", str(plan), "--yes", "--poll", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_checkpoint(folder / "plan.state.db", snapshot_waiting, timeout=300)
        apply.send_signal(signal.SIGKILL)
        apply.wait(timeout=30)
    finally:
        if apply.poll() is None:
            apply.kill()
    assert apply.returncode == -signal.SIGKILL

    resumed = migrator("resume", str(plan), "--poll", "0.3")
    assert "complete" in resumed.stdout + resumed.stderr

    source = EsClient(document["source"]["url"], label="source")
    destination = EsClient(document["destination"]["url"], label="destination")
    try:
        for cluster in (source, destination):
            assert cluster.get("/_snapshot/migrator_sandbox")["migrator_sandbox"]["type"] == "oss"
        snapshots = source.get("/_snapshot/migrator_sandbox/_all")["snapshots"]
        assert [s["state"] for s in snapshots] == ["SUCCESS"]
        migrated = {
            name: count
            for name, count in seeded.items()
            if not name.startswith(".") and name != "logs-debug"  # the plan's exclusions
        }
        assert migrated
        for name, count in migrated.items():
            assert destination.doc_count(f"migrated-{name}") == count, name
    finally:
        source.close()
        destination.close()


def test_down_removes_exactly_its_own_containers(engine, sandbox):
    folder, _ = sandbox
    stranger = engine.containers.run(
        BASE_IMAGE,
        ["sleep", "600"],
        detach=True,
        network_mode="host",
        labels={LABEL_DIR: f"{folder}-another", LABEL_ROLE: "source"},
    )
    try:
        stopped = migrator("sandbox", "down", "--dir", str(folder)).stdout
        assert "source" in stopped and "destination" in stopped and "oss" in stopped
        assert ours(engine, folder) == []
        stranger.reload()
        assert stranger.status == "running"
        status = migrator("sandbox", "status", "--dir", str(folder), check=False)
        assert status.returncode == 3 and "no sandbox running" in status.stdout
    finally:
        stranger.remove(force=True)
