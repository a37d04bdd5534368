"""The sandbox as a whole: `up`, `status`, `down` and `seed` behind `migrator sandbox`.

A sandbox folder holds everything: the unpacked distributions, one folder per cluster, the bucket
directories served by the OSS server (and listed in both clusters' `path.repo`): the repository's
bucket and a replica bucket in another region (for cross-region replication rehearsals), and two files:
`sandbox.json` (the document `up` prints: URLs, versions, OSS coordinates, repository settings and
the ready plan) and `processes.json` (process groups and ports, for `status` and `down`).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.clients.es import EsClient, EsError
from migrator.sandbox import nodes
from migrator.sandbox.distributions import (
    DEFAULT_DESTINATION_VERSION,
    DEFAULT_SOURCE_VERSION,
    resolve_version,
    unpack,
)
from migrator.sandbox.oss_server import Faults
from migrator.sandbox.processes import (
    SandboxError,
    group_alive,
    hand_over,
    pick_port,
    run_as,
    spawn,
    stop_group,
    tail,
)
from migrator.sandbox.seed_data import seed_cluster

BUCKET = "migrator-sandbox"
LOCATION = "oss-cn-hangzhou"  # the bucket's Location (GetBucketInfo)
REGION = "cn-hangzhou"  # the region id oss2 signs V4 requests with
BASE_PATH = "snapshots/sandbox"
REPLICA_BUCKET = "migrator-sandbox-replica"  # the cross-region replication target
REPLICA_LOCATION = "oss-cn-shanghai"
REPLICA_REGION = "cn-shanghai"
PREFERRED_PORTS = {"source": 19200, "destination": 19210, "oss": 19000}
TRANSPORT_PORTS = {"source": 19300, "destination": 19310}
KEY_ID_VAR = "MIGRATOR_SANDBOX_OSS_ACCESS_KEY_ID"
SECRET_VAR = "MIGRATOR_SANDBOX_OSS_ACCESS_KEY_SECRET"


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
            raise SandboxError(f"no sandbox in {self.folder}; start one with `migrator sandbox up`")
        return json.loads(self.document_path.read_text())

    def processes(self) -> dict[str, dict[str, Any]]:
        if not self.processes_path.is_file():
            return {}
        return json.loads(self.processes_path.read_text())

    def running(self) -> dict[str, bool]:
        return {name: group_alive(entry["pgid"]) for name, entry in self.processes().items()}

    # up -------------------------------------------------------------------------------

    def up(
        self, source_version: str | None = None, destination_version: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Start everything; returns (document, started). A running sandbox is left as it is."""
        running = self.running()
        if running and all(running.values()):
            return self.document(), False
        if any(running.values()):
            self.down()
        source_dist = resolve_version(source_version or DEFAULT_SOURCE_VERSION)
        destination_dist = resolve_version(destination_version or DEFAULT_DESTINATION_VERSION)
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

        taken: set[int] = set()
        layouts = {}
        for role, dist in (("source", source_dist), ("destination", destination_dist)):
            home = unpack(dist, self.folder / "dist")
            layouts[role] = nodes.NodeLayout(
                role=role,
                dist=dist,
                home=home,
                folder=self.folder / role,
                http_port=pick_port(PREFERRED_PORTS[role], taken),
                transport_port=pick_port(TRANSPORT_PORTS[role], taken),
                repo_paths=[self.bucket_root],
            )
        key_id, secret = self._credentials()
        oss_port = pick_port(PREFERRED_PORTS["oss"], taken)

        processes: dict[str, dict[str, Any]] = {}
        for role, layout in layouts.items():
            pid = nodes.start(layout, owner)
            processes[role] = {"pgid": pid, "port": layout.http_port, "version": layout.dist.label}
        endpoint, oss_pid = self._start_oss(oss_port, key_id, secret)
        processes["oss"] = {"pgid": oss_pid, "port": oss_port}
        self.processes_path.write_text(json.dumps(processes, indent=2))

        try:
            red = nodes.wait_all_green(layouts, {role: processes[role]["pgid"] for role in layouts})
        except SandboxError:
            self.down()
            raise
        warnings = [
            f"the {role} has indices without primaries (red), left by an earlier run: {', '.join(names)}; "
            f"delete them (DELETE {layouts[role].url}/{','.join(names)}) or use another --dir"
            for role, names in sorted(red.items())
            if names
        ]

        document = self.describe(
            {role: (layout.url, layout.dist.label) for role, layout in layouts.items()}, endpoint, key_id, secret
        )
        if warnings:
            document["warnings"] = warnings
        self.write_files(document, key_id, secret)
        return document, True

    def describe(
        self, nodes_by_role: dict[str, tuple[str, str]], endpoint: str, key_id: str, secret: str
    ) -> dict[str, Any]:
        """The document `up` prints: `nodes_by_role` maps source/destination to (URL, version)."""
        return {
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
            "repository": {"type": "fs", "settings": {"location": str(self.bucket_root / BUCKET / BASE_PATH)}},
            "replica_repository": {
                "type": "fs",
                "settings": {"location": str(self.bucket_root / REPLICA_BUCKET / BASE_PATH)},
            },
            "plan": str(self.plan_path),
        }

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

    def _start_oss(self, port: int, key_id: str, secret: str) -> tuple[str, int]:
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
            if name in ("source", "destination"):
                item["url"] = f"http://127.0.0.1:{entry['port']}"
                item["version"] = entry["version"]
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

    def set_faults(self, faults: Faults) -> dict[str, object]:
        """Change the running OSS server's injected faults (its admin endpoint); returns them as set."""
        entry = self.processes().get("oss")
        if entry is None or not group_alive(entry["pgid"]):
            raise SandboxError("the sandbox's OSS server is not running; start it with `migrator sandbox up`")
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
            raise SandboxError("the sandbox's source cluster is not running; start it with `migrator sandbox up`")
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


def sandbox_plan(document: dict[str, Any], env_file: str) -> str:
    """A ready plan for this sandbox: the seeded indices, renamed on the destination."""
    oss = document["oss"]
    location = document["repository"]["settings"]["location"]
    return f"""# Written by `migrator sandbox up`: a real migration on the local sandbox.
# Run it with: migrator apply {document["plan"]} --yes
name: sandbox-demo
env_file: {env_file}            # the sandbox's OSS key pair (never written into this plan)
source:
  url: {document["source"]["url"]}
destination:
  url: {document["destination"]["url"]}
repository:
  name: migrator_sandbox
  type: fs                      # on Alibaba Cloud: oss, with endpoint/bucket/base_path/credentials
  settings:
    location: {location}
    compress: true
storage:                        # how migrator reads the repository itself: through the OSS server
  kind: oss
  endpoint: {oss["endpoint"]}
  bucket: {oss["bucket"]}
  base_path: {oss["base_path"]}
  region: {oss["region"]}
  access_key_id: ${{{KEY_ID_VAR}}}
  access_key_secret: ${{{SECRET_VAR}}}
snapshot:
  indices: ["*"]                # every index; `.`-prefixed ones are left out unless listed by name
  exclude: ["logs-debug"]
restore:
  rename_pattern: "(.+)"
  rename_replacement: "migrated-$1"
"""


def cutover_plan(document: dict[str, Any], env_file: str) -> str:
    """The same migration in two phases: `apply` copies while the source takes writes, `apply --phase
    cutover` blocks writes, catches up with an incremental snapshot and moves the `logs` alias."""
    plan = sandbox_plan(document, env_file).replace("name: sandbox-demo", "name: sandbox-cutover")
    plan = plan.replace('rename_replacement: "migrated-$1"', 'rename_replacement: "cutover-$1"')
    plan = plan.replace(f"# Run it with: migrator apply {document['plan']} --yes", "# Two phases, see below.")
    folder = Path(document["plan"]).parent
    return (
        plan
        + f"""cutover:
  enabled: true                 # migrator apply {folder / "cutover.yaml"} --yes   (phase one: the bulk copy)
                                # migrator apply {folder / "cutover.yaml"} --phase cutover --yes
                                # migrator rollback {folder / "cutover.yaml"}  (writes back on the source)
finish:
  aliases:
    logs: ["logs-2026.11.01", "logs-2026.11.02"]
"""
    )


def cross_region_plan(document: dict[str, Any], env_file: str) -> str:
    """The migration through two buckets: the source's (cn-hangzhou) replicated by OSS to the destination's
    (cn-shanghai), the replica verified before the destination reads it."""
    oss = document["oss"]
    base_path = "snapshots/cross-region"
    source_location = str(Path(document["repository"]["settings"]["location"]).parent.parent / base_path)
    replica_location = str(Path(document["replica_repository"]["settings"]["location"]).parent.parent / base_path)
    plan = sandbox_plan(document, env_file).replace("name: sandbox-demo", "name: sandbox-cross-region")
    plan = plan.replace(
        f"apply {document['plan']} --yes", f"apply {Path(document['plan']).parent / 'cross-region.yaml'} --yes"
    )
    plan = plan.replace("name: migrator_sandbox\n", "name: migrator_sandbox_xr\n")
    plan = plan.replace(document["repository"]["settings"]["location"], source_location)
    plan = plan.replace(f"base_path: {oss['base_path']}", f"base_path: {base_path}")
    plan = plan.replace('rename_replacement: "migrated-$1"', 'rename_replacement: "replica-$1"')
    plan = plan.replace(
        "    compress: true\n",
        f"    compress: true\n  destination_settings:         # the destination reads its own region's bucket\n"
        f"    location: {replica_location}\n",
        1,
    )
    return (
        plan
        + f"""replication:                    # OSS cross-region replication; method: copy for migrator's own copy
  method: oss
  storage:
    kind: oss
    endpoint: {oss["endpoint"]}
    bucket: {oss["replica_bucket"]}
    base_path: {base_path}
    region: {oss["replica_region"]}
    access_key_id: ${{{KEY_ID_VAR}}}
    access_key_secret: ${{{SECRET_VAR}}}
finish:
  unregister_repositories: true # also removes the replication rule (OSS allows one per target bucket)
"""
    )
