"""The sandbox on a Docker engine: `migrator sandbox up --engine docker`, then `status`, `seed`, `faults`, `down`.

The same two clusters, versions, OSS server, folder layout, sandbox.json and plans as the process engine
(manager.py), but each node and the OSS server is a container, run through the `docker` package
(`pip install 'migrator[docker]'`). Containers use the host's network and listen on loopback ports
(an engine started with `--bridge=none` has no other network). Each node's folder DIR/<role> and the
bucket folder are bind-mounted at the same paths as on the host, so `path.repo`, the `fs` repository
location and the log files read the same inside and out. Nodes run as an unprivileged uid (Elasticsearch
refuses root). Every container is labelled with the sandbox folder and its role: `down` removes exactly
this sandbox's containers, and `status` finds them (and their logs) with nothing else written down.
A node starts with the process engine's command line and environment (nodes.launcher), so every version
it runs runs here; where the plans use `type: oss`, the node's image carries the test bed's plugin
(images.with_plugin).
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import migrator
from migrator.errors import SandboxError, SandboxRefused
from migrator.sandbox import images, nodes
from migrator.sandbox.distributions import (
    DEFAULT_DESTINATION_VERSION,
    DEFAULT_SOURCE_VERSION,
    resolve_version,
    unpack,
)
from migrator.sandbox.manager import (
    BASE_PATH,
    BUCKET,
    REPLICA_BUCKET,
    Sandbox,
)
from migrator.sandbox.processes import hand_over, pick_port, run_as
from migrator.sandbox.repository_plugin import COVERED, has_plugin, plugin_dir

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

LABEL_DIR = "org.migrator.sandbox.dir"
LABEL_ROLE = "org.migrator.sandbox.role"
LABEL_PORT = "org.migrator.sandbox.port"
LABEL_VERSION = "org.migrator.sandbox.version"
NODE_ROLES = ("source", "destination")
ROLES = (*NODE_ROLES, "oss")
# Ports of their own, away from the process engine's (19200, 19210, 19000): two sandboxes started at once
# would otherwise both find the same port free and race for it (a node binds it seconds after start).
PREFERRED_PORTS = {"source": 19400, "destination": 19410, "oss": 19100}
TRANSPORT_PORTS = {"source": 19500, "destination": 19510}
SOURCE_MOUNT = "/opt/migrator-src"  # the OSS server's code, mounted read-only from this installation
OSS_START_S = 60.0
STOP_GRACE_S = 30
JAVA_HOME_VARIABLES = ("ES_JAVA_HOME", "OPENSEARCH_JAVA_HOME", "JAVA_HOME")


def connect() -> docker.DockerClient:
    """A client of the local Docker engine (DOCKER_HOST, else /var/run/docker.sock); SandboxError when
    the package is missing or no engine answers."""
    try:
        import docker
    except ImportError:
        raise SandboxError(
            "the docker engine needs the `docker` Python package: pip install 'migrator[docker]'"
        ) from None
    try:
        client = docker.from_env(timeout=STOP_GRACE_S + 90)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxError(
            f"no Docker engine answers ({exc}); start one (as root: `bash scripts/docker-engine.sh`, "
            "see docs/testbed.md, 'The sandbox on Docker'), or use --engine process"
        ) from None
    return client


class DockerSandbox(Sandbox):
    """A sandbox folder whose nodes and OSS server are containers of the local Docker engine."""

    def __init__(self, folder: Path, image_mode: str = "auto") -> None:
        super().__init__(folder)
        self.image_mode = image_mode
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    def container_name(self, role: str) -> str:
        return f"migrator-sandbox-{hashlib.sha1(str(self.folder).encode()).hexdigest()[:8]}-{role}"

    def containers(self) -> dict[str, Container]:
        """This sandbox's containers by role, running or not (found by the folder's label)."""
        found = self.client.containers.list(all=True, filters={"label": f"{LABEL_DIR}={self.folder}"})
        return {container.labels[LABEL_ROLE]: container for container in found}

    def processes(self) -> dict[str, dict[str, Any]]:
        """Running containers as the manager's process entries: `pgid` is the container's first process
        (the engine's init, which forwards signals and exits with its child) as the host sees it: it leads
        its own session. `port` and `version` come from the labels."""
        entries: dict[str, dict[str, Any]] = {}
        for role, container in self.containers().items():
            pid = int(container.attrs["State"].get("Pid") or 0)
            if container.status != "running" or pid <= 0:
                continue
            entries[role] = {"pgid": pid, "port": int(container.labels[LABEL_PORT])}
            if LABEL_VERSION in container.labels:
                entries[role]["version"] = container.labels[LABEL_VERSION]
        return entries

    # up -------------------------------------------------------------------------------

    def up(
        self,
        source_version: str | None = None,
        destination_version: str | None = None,
        repository: str | None = None,
        source_nodes: int = 1,
        destination_nodes: int = 1,
    ) -> tuple[dict[str, Any], bool]:
        """Start both nodes and the OSS server as containers; returns (document, started). Images are
        pulled or built first (see images.py). A running sandbox is left as it is. As on the process
        engine, the plans use an `oss` repository where both versions have the test bed's plugin (then
        installed in their images), else `fs`; SandboxError for `oss` asked of a version without it. One
        node per cluster only: more raise SandboxError naming the process engine."""
        if source_nodes != 1 or destination_nodes != 1:
            raise SandboxRefused(
                "the docker engine runs single-node clusters only; for --source-nodes/--destination-nodes above 1 "
                "use the process engine (--engine process)"
            )
        if repository not in (None, "oss", "fs"):
            raise SandboxRefused(f"--repository must be oss or fs, not {repository!r}")
        dists = {
            "source": resolve_version(source_version or DEFAULT_SOURCE_VERSION),
            "destination": resolve_version(destination_version or DEFAULT_DESTINATION_VERSION),
        }
        plugged = all(has_plugin(dist) for dist in dists.values())
        if repository == "oss" and not plugged:
            raise SandboxRefused(
                f"the test bed's oss repository plugin exists for {COVERED} only; "
                "use --repository fs (the default for these versions)"
            )
        repository = repository or ("oss" if plugged else "fs")
        containers = self.containers()
        if set(containers) == set(ROLES) and all(c.status == "running" for c in containers.values()):
            return self.document(), False
        if containers:
            self.down()
        for role, dist in dists.items():
            self._check_data_version(role, dist.label)
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        owner = run_as()
        for bucket in (BUCKET, REPLICA_BUCKET):
            (self.bucket_root / bucket / BASE_PATH).mkdir(parents=True, exist_ok=True)
        hand_over(self.bucket_root, owner)
        user = owner or (os.getuid(), os.getgid())

        taken: set[int] = set()
        layouts: dict[str, nodes.NodeLayout] = {}
        chosen: dict[str, images.Image] = {}
        for role, dist in dists.items():
            home = unpack(dist, self.folder / "dist")
            plugin = plugin_dir(dist, home) if repository == "oss" else None
            chosen[role] = images.node_image(self.client, dist, home, self.image_mode, plugin)
            layouts[role] = nodes.NodeLayout(
                role=role,
                dist=dist,
                home=home,
                folder=self.folder / role,
                http_port=pick_port(PREFERRED_PORTS[role], taken),
                transport_port=pick_port(TRANSPORT_PORTS[role], taken),
                repo_paths=[self.bucket_root],
            )
        base = images.base_image(self.client)
        key_id, secret = self._credentials()
        oss_port = pick_port(PREFERRED_PORTS["oss"], taken)

        import docker.errors

        try:
            pids = {role: self._start_node(layout, chosen[role], owner, user) for role, layout in layouts.items()}
            endpoint = self._start_oss_container(base, oss_port, key_id, secret, owner, user)
            red = nodes.wait_all_green(layouts, pids)
        except (SandboxError, docker.errors.APIError) as exc:
            reason = getattr(exc, "explanation", None) or str(exc)
            logs = self._log_tails()
            self.down()  # nothing half-started is left behind
            raise SandboxError(f"{reason}\n{logs}".rstrip()) from None
        return self.record(layouts, endpoint, key_id, secret, red, repository, engine="docker"), True

    def _labels(self, role: str, port: int, version: str | None = None) -> dict[str, str]:
        labels = {LABEL_DIR: str(self.folder), LABEL_ROLE: role, LABEL_PORT: str(port)}
        if version:
            labels[LABEL_VERSION] = version
        return labels

    def _start_node(
        self, layout: nodes.NodeLayout, image: images.Image, owner: tuple[int, int] | None, user: tuple[int, int]
    ) -> int:
        """Configure the node's folder as the process engine does and run it; returns its host pid."""
        nodes.configure(layout, owner)
        if image.official:
            # The official images carry security (on by default from Elasticsearch 8.0, and OpenSearch's
            # security plugin); the sandbox speaks plain HTTP.
            config = layout.folder / "config" / f"{layout.dist.flavour}.yml"
            key = "plugins.security.disabled: true" if layout.dist.opensearch else "xpack.security.enabled: false"
            text = config.read_text()
            if key.split(":")[0] not in text:
                config.write_text(text + key + "\n")
        command, environment = nodes.launcher(layout, Path(image.home))
        for name in JAVA_HOME_VARIABLES:
            # The local image's JDK is at images.JDK_HOME; the official image's own JDK is left to it.
            environment.pop(name, None)
        environment.update(
            {
                "HOME": str(layout.folder),
                "LANG": "C.UTF-8",
                "TINI_KILL_PROCESS_GROUP": "1",  # the engine's init passes SIGTERM to every process of the node
            }
        )
        if image.official and layout.dist.opensearch:
            environment["DISABLE_INSTALL_DEMO_CONFIG"] = "true"  # no demo certificates, no admin password
        container = self.client.containers.run(
            image.tag,
            None if image.official else command[1:],
            entrypoint=None if image.official else command[:1],  # the official image's entrypoint stays
            name=self.container_name(layout.role),
            detach=True,
            network_mode="host",
            init=True,
            user=f"{user[0]}:{user[1]}",
            group_add=["0"] if image.official else None,  # the official image's files belong to group 0
            environment=environment,
            working_dir=str(layout.folder),
            volumes={
                str(layout.folder): {"bind": str(layout.folder), "mode": "rw"},
                str(self.bucket_root): {"bind": str(self.bucket_root), "mode": "rw"},
            },
            labels=self._labels(layout.role, layout.http_port, layout.dist.version),
        )
        container.reload()
        return int(container.attrs["State"]["Pid"])

    def _start_oss_container(
        self, base: str, port: int, key_id: str, secret: str, owner: tuple[int, int] | None, user: tuple[int, int]
    ) -> str:
        """Run the OSS server (this installation's code, mounted read-only) on the base image; its endpoint."""
        config_path = self.write_oss_config(port, key_id, secret)
        if owner is not None:
            os.chown(config_path, *owner)
        package = Path(migrator.__file__).parent
        container = self.client.containers.run(
            base,
            ["python3", "-m", "migrator.sandbox.oss_server", "--config", str(config_path)],
            name=self.container_name("oss"),
            detach=True,
            network_mode="host",
            init=True,
            user=f"{user[0]}:{user[1]}",
            environment={
                "PYTHONPATH": SOURCE_MOUNT,
                "PYTHONUNBUFFERED": "1",
                "HOME": "/tmp",
                "TINI_KILL_PROCESS_GROUP": "1",
            },
            volumes={
                str(package): {"bind": f"{SOURCE_MOUNT}/migrator", "mode": "ro"},
                str(config_path): {"bind": str(config_path), "mode": "ro"},
                str(self.bucket_root): {"bind": str(self.bucket_root), "mode": "rw"},
            },
            labels=self._labels("oss", port),
        )
        deadline = time.monotonic() + OSS_START_S
        while time.monotonic() < deadline:
            container.reload()
            if container.status not in ("created", "running"):
                raise SandboxError(f"the OSS server container {container.name} exited at start-up")
            if b'"endpoint"' in container.logs():
                return f"http://127.0.0.1:{port}"
            time.sleep(0.2)
        raise SandboxError(f"the OSS server container {container.name} did not start within {OSS_START_S:.0f} s")

    # status / down --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The manager's report, plus per role the container, its image and where its logs are; a
        stopped container's last log lines are in `log_tail`."""
        report = super().status()
        report["engine"] = "docker"
        for role, container in self.containers().items():
            item = report.setdefault(role, {"running": False, "port": int(container.labels[LABEL_PORT])})
            item["container"] = container.name
            item["image"] = container.attrs["Config"]["Image"]
            item["logs"] = f"docker logs {container.name}"
            if role in NODE_ROLES:
                item["log_file"] = str(self.folder / role / "logs")
            if container.status != "running":
                item["log_tail"] = container.logs(tail=15).decode("utf-8", "replace")
        return report

    def down(self) -> list[str]:
        """Stop and remove every container labelled with this folder; returns the roles that were running."""
        containers = self.containers()
        running = [container for container in containers.values() if container.status == "running"]

        def stop_and_remove(container: Container) -> None:
            if container in running:
                container.stop(timeout=STOP_GRACE_S)
            container.remove(force=True)  # on the vfs storage driver this deletes a full copy of the image

        # All at once: down takes as long as the slowest container, not their sum.
        with ThreadPoolExecutor(max_workers=len(ROLES)) as pool:
            list(pool.map(stop_and_remove, containers.values()))
        return [role for role, container in containers.items() if container in running]

    def _log_tails(self) -> str:
        """The last lines of each container's own output (what a node prints before its log file exists)."""
        parts = []
        for role, container in self.containers().items():
            text = container.logs(tail=10).decode("utf-8", "replace").strip()
            if text:
                parts.append(f"last lines of `docker logs {container.name}` ({role}):\n{text}")
        return "\n".join(parts)
