"""The sandbox as a whole: `up`, `status`, `down` and `seed` behind `migrator sandbox`.

A sandbox folder holds everything: the unpacked distributions, one folder per node (DIR/<role> the first
of each cluster, DIR/<role>-<n> the others), the bucket
directories served by the OSS server (and listed in both clusters' `path.repo`): the repository's
bucket and a replica bucket in another region (for cross-region replication rehearsals), and two files:
`sandbox.json` (the document `up` prints: URLs, versions, OSS coordinates, repository settings and
the ready plan) and `processes.json` (process groups and ports, for `status` and `down`).

Over 400 lines (just): the sandbox's four commands over both clusters and the OSS server; the cluster
layouts live in sandbox/clusters.py.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator.clients.es import EsClient, EsError
from migrator.errors import SandboxError, SandboxNotRunning, SandboxRefused
from migrator.sandbox import clusters, nodes
from migrator.sandbox.distributions import (
    DEFAULT_DESTINATION_VERSION,
    DEFAULT_SOURCE_VERSION,
    resolve_version,
    unpack,
)
from migrator.sandbox.oss_server import Faults
from migrator.sandbox.processes import (
    group_alive,
    hand_over,
    pick_port,
    run_as,
    spawn,
    stop_group,
    tail,
)
from migrator.sandbox.repository_plugin import COVERED, has_plugin
from migrator.sandbox.sandbox_plans import (
    KEY_ID_VAR,
    SECRET_VAR,
    cross_region_plan,
    cutover_plan,
    repository_document,
    sandbox_plan,
)
from migrator.sandbox.seed_data import seed_cluster

BUCKET = "migrator-sandbox"
LOCATION = "oss-cn-hangzhou"  # the bucket's Location (GetBucketInfo)
REGION = "cn-hangzhou"  # the region id oss2 signs V4 requests with
BASE_PATH = "snapshots/sandbox"
REPLICA_BUCKET = "migrator-sandbox-replica"  # the cross-region replication target
REPLICA_LOCATION = "oss-cn-shanghai"
REPLICA_REGION = "cn-shanghai"


def default_dir() -> Path:
    """MIGRATOR_SANDBOX_DIR, else a folder the unprivileged Elasticsearch user can reach."""
    configured = os.environ.get("MIGRATOR_SANDBOX_DIR")
    if configured:
        return Path(configured).resolve()
    if os.geteuid() == 0:
        return Path("/var/tmp/migrator-sandbox")
    return Path.home() / ".cache" / "migrator" / "sandbox"


@dataclass
class Sandbox:
    folder: Path
    layouts: dict[str, nodes.NodeLayout] = field(default_factory=dict)  # the nodes this object started

    @property
    def document_path(self) -> Path:
        return self.folder / "sandbox.json"

    @property
    def processes_path(self) -> Path:
        return self.folder / "processes.json"

    @property
    def bucket_root(self) -> Path:
        return self.folder / "buckets"

    @property
    def plan_path(self) -> Path:
        return self.folder / "plan.yaml"

    @property
    def env_path(self) -> Path:
        return self.folder / "sandbox.env"

    def document(self) -> dict[str, Any]:
        if not self.document_path.is_file():
            raise SandboxNotRunning(f"no sandbox in {self.folder}; start one with `migrator sandbox up`")
        return json.loads(self.document_path.read_text())

    def processes(self) -> dict[str, dict[str, Any]]:
        if not self.processes_path.is_file():
            return {}
        return json.loads(self.processes_path.read_text())

    def running(self) -> dict[str, bool]:
        return {name: group_alive(entry["pgid"]) for name, entry in self.processes().items()}

    # up -------------------------------------------------------------------------------

    def up(
        self,
        source_version: str | None = None,
        destination_version: str | None = None,
        repository: str | None = None,
        source_nodes: int = 1,
        destination_nodes: int = 1,
    ) -> tuple[dict[str, Any], bool]:
        """Start everything; returns (document, started). A running sandbox is left as it is. The plans it
        writes use an `oss` repository (every node gets the test bed's plugin) or, with repository="fs",
        the bucket's folder. `source_nodes` and `destination_nodes` (1 to clusters.MAX_NODES) size each cluster: its
        nodes find each other on loopback and share the bucket folders in `path.repo` (see nodes.cluster)."""
        if repository not in (None, "oss", "fs"):
            raise SandboxRefused(f"--repository must be oss or fs, not {repository!r}")
        sizes = {"source": source_nodes, "destination": destination_nodes}
        clusters.check_sizes(self.folder, sizes)
        running = self.running()
        if running and all(running.values()):
            clusters.check_running_sizes(self.folder, self.processes(), sizes)
            return self.document(), False
        if any(running.values()):
            self.down()
        source_dist = resolve_version(source_version or DEFAULT_SOURCE_VERSION)
        destination_dist = resolve_version(destination_version or DEFAULT_DESTINATION_VERSION)
        plugged = all(has_plugin(dist) for dist in (source_dist, destination_dist))
        if repository == "oss" and not plugged:
            raise SandboxRefused(
                f"the test bed's oss repository plugin exists for {COVERED} only; "
                "use --repository fs (the default for these versions)"
            )
        repository = repository or ("oss" if plugged else "fs")
        for role, dist in (("source", source_dist), ("destination", destination_dist)):
            self._check_data_version(role, dist.label)
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        owner = run_as()
        bucket_dir = self.bucket_root / BUCKET
        replica_dir = self.bucket_root / REPLICA_BUCKET
        for directory in (bucket_dir, replica_dir):
            (directory / BASE_PATH).mkdir(parents=True, exist_ok=True)
        hand_over(self.bucket_root, owner)
        dists = {"source": source_dist, "destination": destination_dist}
        homes = {role: unpack(dist, self.folder / "dist") for role, dist in dists.items()}
        key_id, secret = self._credentials()
        processes: dict[str, dict[str, Any]] = {}

        def started(name: str, layout: nodes.NodeLayout, pgid: int) -> None:
            processes[name] = clusters.process_entry(layout, pgid)  # recorded one by one: `down` finds them all
            self.processes_path.write_text(json.dumps(processes, indent=2))

        def pick(taken: set[int]) -> dict[str, nodes.NodeLayout]:
            processes.clear()
            return clusters.layouts(self.folder, dists, homes, sizes, repository == "oss", taken)

        try:
            layouts, _, red = clusters.start_all(pick, owner, started=started)
            oss_port = pick_port(clusters.PREFERRED_PORTS["oss"], set())  # the nodes hold theirs by now
            endpoint, oss_pid = self._start_oss(oss_port, key_id, secret)
        except BaseException:
            self.down()
            raise
        processes["oss"] = {"pgid": oss_pid, "port": oss_port}
        self.processes_path.write_text(json.dumps(processes, indent=2))
        self.layouts = layouts
        document = self.record(layouts, endpoint, key_id, secret, red, repository)
        return document, True

    def record(
        self,
        layouts: dict[str, nodes.NodeLayout],
        endpoint: str,
        key_id: str,
        secret: str,
        red: dict[str, list[str]],
        repository: str,
        engine: str | None = None,
    ) -> dict[str, Any]:
        """The started sandbox's document (with its `engine` when not the process one; `layouts` by node, the
        first of each cluster under its role; each cluster's node URLs in `nodes`), with a warning
        naming the red indices an earlier run left (and the command that deletes them), written with the
        env file and the plans (`write_files`)."""
        warnings = [
            f"the {role} has indices without primaries (red), left by an earlier run: {', '.join(names)}; "
            f"delete them (DELETE {layouts[role].url}/{','.join(names)}) or use another --dir"
            for role, names in sorted(red.items())
            if names
        ]
        document = self.describe(
            {role: (layouts[role].url, layouts[role].dist.label) for role in ("source", "destination")},
            endpoint,
            key_id,
            secret,
            repository,
        )
        for role in ("source", "destination"):
            document[role]["nodes"] = [layout.url for layout in layouts.values() if layout.role == role]
        if engine is not None:
            document["engine"] = engine
        if warnings:
            document["warnings"] = warnings
        self.write_files(document, key_id, secret)
        return document

    def describe(
        self,
        nodes_by_role: dict[str, tuple[str, str]],
        endpoint: str,
        key_id: str,
        secret: str,
        repository: str = "oss",
    ) -> dict[str, Any]:
        """The document `up` prints: `nodes_by_role` maps source/destination to (URL, version); `repository`
        (oss or fs) is the type of the plans' repository."""
        document: dict[str, Any] = {
            "source": {"url": nodes_by_role["source"][0], "version": nodes_by_role["source"][1]},
            "destination": {"url": nodes_by_role["destination"][0], "version": nodes_by_role["destination"][1]},
            "oss": {
                "endpoint": endpoint,
                "bucket": BUCKET,
                "region": REGION,
                "access_key_id": key_id,
                "access_key_secret": secret,
                "base_path": BASE_PATH,
                "replica_bucket": REPLICA_BUCKET,
                "replica_region": REPLICA_REGION,
            },
            "plan": str(self.plan_path),
        }
        bucket_dir, replica_dir = self.bucket_root / BUCKET, self.bucket_root / REPLICA_BUCKET
        document.update(repository_document(repository, document["oss"], bucket_dir, replica_dir))
        return document

    def write_files(self, document: dict[str, Any], key_id: str, secret: str) -> None:
        """sandbox.json and the env file (mode 600: they hold the key pair), and the three ready plans."""
        self._write_private(self.document_path, json.dumps(document, indent=2) + "\n")
        self._write_private(self.env_path, f"{KEY_ID_VAR}={key_id}\n{SECRET_VAR}={secret}\n")
        self.plan_path.write_text(sandbox_plan(document, self.env_path.name))
        (self.folder / "cutover.yaml").write_text(cutover_plan(document, self.env_path.name))
        (self.folder / "cross-region.yaml").write_text(cross_region_plan(document, self.env_path.name))

    def _check_data_version(self, role: str, version: str) -> None:
        """A cluster's data folder cannot go back to an older version (nor skip one): refuse, naming the fix."""
        marker = self.folder / role / "es-version"
        if marker.is_file() and marker.read_text().strip() != version:
            written = marker.read_text().strip()
            raise SandboxError(
                f"{self.folder / role} holds the data of Elasticsearch {written}, not {version}; "
                f"use another --dir for {version}, or delete {self.folder / role} to start that cluster afresh"
            )
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(version)

    def _credentials(self) -> tuple[str, str]:
        """The sandbox's OSS key pair: kept across restarts of the same folder."""
        if self.env_path.is_file():
            values = dict(line.split("=", 1) for line in self.env_path.read_text().splitlines() if "=" in line)
            if KEY_ID_VAR in values and SECRET_VAR in values:
                return values[KEY_ID_VAR], values[SECRET_VAR]
        return f"sandbox{secrets.token_hex(8)}", secrets.token_urlsafe(24)

    def write_oss_config(self, port: int, key_id: str, secret: str) -> Path:
        """The OSS server's configuration (mode 600: it holds the key pair), for either engine; its path."""
        config = {
            "root": str(self.bucket_root),
            "host": "127.0.0.1",
            "port": port,
            "buckets": [
                {"name": BUCKET, "region": LOCATION, "storage_class": "Standard"},
                {"name": REPLICA_BUCKET, "region": REPLICA_LOCATION, "storage_class": "Standard"},
            ],
            "access_key_id": key_id,
            "access_key_secret": secret,
        }
        config_path = self.folder / "oss-server.json"
        self._write_private(config_path, json.dumps(config))
        return config_path

    def _start_oss(self, port: int, key_id: str, secret: str) -> tuple[str, int]:
        config_path = self.write_oss_config(port, key_id, secret)
        log = self.folder / "oss-server.log"
        process = spawn(
            [sys.executable, "-m", "migrator.sandbox.oss_server", "--config", str(config_path)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=self.folder,
            log=log,
            owner=None,
        )
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SandboxError(f"the OSS server exited at start-up; last lines of {log}:\n{tail(log, 15)}")
            if '"endpoint"' in log.read_text(errors="replace"):
                return endpoint, process.pid
            time.sleep(0.1)
        stop_group(process.pid, grace_s=2)
        raise SandboxError(f"the OSS server did not start within 30 s; last lines of {log}:\n{tail(log, 15)}")

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o600)

    # status / down / seed -------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        processes = self.processes()
        report: dict[str, Any] = {
            "dir": str(self.folder),
            "running": bool(processes) and any(self.running().values()),
        }
        for name, entry in processes.items():
            alive = group_alive(entry["pgid"])
            item: dict[str, Any] = {"running": alive, "port": entry["port"]}
            if "version" in entry:  # a node; the first of each cluster is named after its role
                item["url"] = f"http://127.0.0.1:{entry['port']}"
                item["version"] = entry["version"]
                item["cluster"] = entry.get("cluster", name)
                if alive:
                    item["health"] = cluster_health(item["url"], name)
            else:
                item["endpoint"] = f"http://127.0.0.1:{entry['port']}"
            report[name] = item
        return report

    def down(self) -> list[str]:
        """Stop every process of this sandbox; returns the names that were running."""
        stopped = []
        for name, entry in self.processes().items():
            if group_alive(entry["pgid"]):
                stopped.append(name)
            stop_group(entry["pgid"])
        if self.processes_path.exists():
            self.processes_path.unlink()
        return stopped

    def stop_node(self, name: str) -> None:
        """Stop one node (`destination-2`; SIGTERM, then SIGKILL), as a machine of the cluster that goes away."""
        processes = self.processes()
        if "version" not in processes.get(name, {}):
            raise SandboxError(f"no node {name!r} in {self.folder}; its nodes: {', '.join(self._nodes(processes))}")
        stop_group(processes[name]["pgid"], grace_s=20)

    def start_node(self, name: str) -> None:
        """Start a node this object started before (see stop_node) on its data again, recorded for `down`; it
        joins its cluster (not waited for)."""
        if name not in self.layouts:
            raise SandboxError(f"{name!r} was not started by this sandbox object; use `migrator sandbox up`")
        processes = self.processes()
        processes[name]["pgid"] = nodes.start(self.layouts[name], run_as())
        self.processes_path.write_text(json.dumps(processes, indent=2))

    @staticmethod
    def _nodes(processes: dict[str, dict[str, Any]]) -> list[str]:
        return [name for name, entry in processes.items() if "version" in entry]

    def set_faults(self, faults: Faults) -> dict[str, object]:
        """Change the running OSS server's injected faults (its admin endpoint); returns them as set."""
        entry = self.processes().get("oss")
        if entry is None or not group_alive(entry["pgid"]):
            raise SandboxNotRunning("the sandbox's OSS server is not running; start it with `migrator sandbox up`")
        request = urllib.request.Request(
            f"http://127.0.0.1:{entry['port']}/-/faults",
            data=json.dumps(faults.to_json()).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def seed(self, docs: int) -> dict[str, int]:
        document = self.document()
        running = self.running()
        if not running.get("source"):
            raise SandboxNotRunning("the sandbox's source cluster is not running; start it with `migrator sandbox up`")
        client = EsClient(document["source"]["url"], label="source", timeout_s=60)
        try:
            return seed_cluster(client, docs)
        finally:
            client.close()


def cluster_health(url: str, label: str) -> str:
    client = EsClient(url, label=label, timeout_s=5, max_retries=0)
    try:
        return str(client.health().get("status", "unknown"))
    except EsError as exc:
        return f"unreachable ({exc})"
    finally:
        client.close()
