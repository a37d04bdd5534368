"""Shared test bed: one set of real Elasticsearch nodes (7.10.2, 7.17, 8.x, 9.x) and one OSS server.

Started once per test session and shared by every test marked `cluster` (the slow ones). Every node
has the test bed's `oss` repository plugin (migrator/sandbox/repository_plugin.py), so plans register
`type: oss` repositories that the nodes write through the OSS server, as on Alibaba Cloud. All nodes
also list the bucket root in `path.repo`, so a plan may still use an `fs` repository on the same
folders (`write_plan(..., repository_type="fs")`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

from migrator.clients.es import EsClient, build_path
from migrator.sandbox import nodes
from migrator.sandbox.clusters import start_all
from migrator.sandbox.distributions import KNOWN_VERSIONS, resolve_version, unpack
from migrator.sandbox.oss_server import BucketConfig, OssServer
from migrator.sandbox.processes import hand_over, pick_port, run_as, stop_group
from migrator.sandbox.repository_plugin import plugin_dir
from migrator.sandbox.seed_data import seed_cluster
from tests.helpers import BIG_INDEX

# Generated tests draw the same examples on every run, so that CI's verdict is reproducible;
# MIGRATOR_EXPLORE=1 draws new ones (how the rename divergences pinned in test_rename.py were found).
settings.register_profile("reproducible", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("MIGRATOR_EXPLORE") else "reproducible")

BUCKET = "migrator-tests"
REGION = "oss-cn-hangzhou"
REPLICA_BUCKET = "migrator-tests-replica"  # a cross-region replication target served by the same OSS server
REPLICA_REGION = "oss-cn-shanghai"
TESTBED_VERSIONS = {
    "7.10": KNOWN_VERSIONS["7.10"],
    "7.17": KNOWN_VERSIONS["7.17"],
    "8": KNOWN_VERSIONS["8"],
    "9": KNOWN_VERSIONS["9"],
}
# MIGRATOR_TESTBED_VERSIONS=7.17,8 starts only those nodes (a developer's targeted run on a shared
# machine); CI starts them all. A test that needs a node left out fails on its missing alias.
if os.environ.get("MIGRATOR_TESTBED_VERSIONS"):
    _wanted = os.environ["MIGRATOR_TESTBED_VERSIONS"].split(",")
    TESTBED_VERSIONS = {alias: version for alias, version in TESTBED_VERSIONS.items() if alias in _wanted}


@dataclass
class TestBed:
    folder: Path
    urls: dict[str, str]
    versions: dict[str, str]
    oss: OssServer
    key_id: str
    secret: str
    groups: dict[str, int] = field(default_factory=dict)
    layouts: dict[str, nodes.NodeLayout] = field(default_factory=dict)
    owner: tuple[int, int] | None = None

    @property
    def bucket_dir(self) -> Path:
        return self.folder / "buckets" / BUCKET

    @property
    def replica_dir(self) -> Path:
        return self.folder / "buckets" / REPLICA_BUCKET

    def restart(self, alias: str) -> None:
        """Stop one node (SIGTERM, then SIGKILL) and start it again on the same data; wait for green."""
        stop_group(self.groups[alias], grace_s=20)
        self.groups[alias] = nodes.start(self.layouts[alias], self.owner)
        nodes.wait_all_green({alias: self.layouts[alias]}, {alias: self.groups[alias]}, timeout_s=300)

    def client(self, alias: str) -> EsClient:
        if alias not in self.urls:
            pytest.fail(
                f"this test needs the {alias} node, which MIGRATOR_TESTBED_VERSIONS="
                f"{os.environ.get('MIGRATOR_TESTBED_VERSIONS', '')} leaves out: add {alias} to it"
            )
        return EsClient(self.urls[alias], label=alias, timeout_s=60)

    def environment(self) -> dict[str, str]:
        return {"TESTBED_OSS_KEY_ID": self.key_id, "TESTBED_OSS_SECRET": self.secret}

    def repository_settings(self, base_path: str, bucket: str = BUCKET, region: str = REGION) -> dict:
        """An `oss` repository's settings on this test bed, keys as ${ENV} references (see environment)."""
        return {
            "endpoint": self.oss.endpoint,
            "access_key_id": "${TESTBED_OSS_KEY_ID}",
            "secret_access_key": "${TESTBED_OSS_SECRET}",
            "bucket": bucket,
            "base_path": base_path,
            "compress": True,
            "extra": {"region": region.removeprefix("oss-")},  # V4 signatures, as oss2 and migrator use
        }

    def write_plan(
        self, folder: Path, source: str, destination: str, *, repository_type: str = "oss", **sections: dict
    ) -> Path:
        """A plan from `source` to `destination` (aliases like "7.17") with a repository of its own: `oss`
        through the test bed's plugin, or with repository_type="fs" a folder the OSS server also serves."""
        unique = uuid.uuid4().hex[:10]
        base_path = f"repos/{unique}"
        if repository_type == "fs":
            settings = {"location": str(self.bucket_dir / base_path), "compress": True}
        else:
            settings = self.repository_settings(base_path)
        plan = {
            "name": sections.pop("name", "test"),
            "source": {"url": self.urls[source]},
            "destination": {"url": self.urls[destination]},
            "repository": {"name": f"repo_{unique}", "type": repository_type, "settings": settings},
            "storage": {
                "kind": "oss",
                "endpoint": self.oss.endpoint,
                "bucket": BUCKET,
                "base_path": base_path,
                "region": REGION,
                "access_key_id": "${TESTBED_OSS_KEY_ID}",
                "access_key_secret": "${TESTBED_OSS_SECRET}",
            },
        }
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(plan.get(key), dict):
                plan[key] = {**plan[key], **value}
            else:
                plan[key] = value
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "plan.yaml"
        path.write_text(yaml.safe_dump(plan, sort_keys=False))
        return path


TESTS_ROOT = Path(os.environ.get("MIGRATOR_TEST_DIR", "/var/tmp/migrator-tests"))


@pytest.fixture(scope="session")
def testbed() -> Iterator[TestBed]:
    folder = TESTS_ROOT / uuid.uuid4().hex[:8]
    (folder / "buckets" / BUCKET).mkdir(parents=True)
    (folder / "buckets" / REPLICA_BUCKET).mkdir(parents=True)
    os.chmod(folder, 0o755)
    owner = run_as()
    hand_over(folder / "buckets", owner)
    # Ports from a per-session base: a node binds its port seconds after start, so two sessions
    # picking "the first free port" at once would collide (and when one does, start_all picks others).
    port_base = 20000 + (os.getpid() % 500) * 40

    def pick(taken: set[int]) -> dict[str, nodes.NodeLayout]:
        layouts = {}
        for number, (alias, version) in enumerate(TESTBED_VERSIONS.items()):
            dist = resolve_version(version)
            home = unpack(dist, TESTS_ROOT / "dist")  # unpacked once, kept across sessions
            layouts[alias] = nodes.NodeLayout(
                role=f"n{alias.replace('.', '')}",
                dist=dist,
                home=home,
                folder=folder / f"node-{alias}",
                http_port=pick_port(port_base + number * 2, taken),
                transport_port=pick_port(port_base + 10 + number * 2, taken),
                repo_paths=[folder / "buckets"],
                plugins=[plugin_dir(dist, home)],  # built on first use, cached by source hash
            )
        return layouts

    key_id, secret = f"testbed{secrets.token_hex(6)}", secrets.token_urlsafe(18)
    buckets = [BucketConfig(BUCKET, region=REGION), BucketConfig(REPLICA_BUCKET, region=REPLICA_REGION)]
    server = OssServer(folder / "buckets", buckets, key_id, secret)
    bed: TestBed | None = None
    groups: dict[str, int] = {}
    try:
        layouts, groups, _ = start_all(pick, owner, timeout_s=300)
        server.start()
        bed = TestBed(
            folder=folder,
            urls={alias: layout.url for alias, layout in layouts.items()},
            versions={alias: layout.dist.version for alias, layout in layouts.items()},
            oss=server,
            key_id=key_id,
            secret=secret,
            groups=groups,
            layouts=layouts,
            owner=owner,
        )
        yield bed
    finally:
        server.stop()
        for pgid in (bed.groups if bed else groups).values():
            stop_group(pgid)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def seeded(testbed):
    """Example indices on every cluster that serves as a source, plus one bigger index on 7.17."""
    for alias in [a for a in ("7.10", "7.17", "8") if a in testbed.urls]:
        client = testbed.client(alias)
        seed_cluster(client, 400)
        client.close()
    client = testbed.client("7.17")
    client.request("PUT", build_path(BIG_INDEX), {"settings": {"number_of_shards": 2, "number_of_replicas": 0}})
    for start in range(0, 40_000, 5000):
        lines = []
        for number in range(start, start + 5000):
            lines.append(json.dumps({"index": {"_index": BIG_INDEX, "_id": str(number)}}))
            lines.append(json.dumps({"n": number, "text": f"event {number} " + "payload " * 20 + str(number * 7919)}))
        client.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), timeout_s=120)
    client.request("POST", build_path(BIG_INDEX, "_refresh"))
    client.close()
    return testbed


@pytest.fixture
def leave_the_clusters_as_found(seeded):
    """Delete the indices a test made on the shared nodes, so that tests selecting `*` later do not meet
    them (the seeded indices and the system indices Elasticsearch makes by itself stay)."""

    def names(client: EsClient) -> set[str]:
        return {row["index"] for row in client.indices("*", expand_wildcards="open,closed")}

    clients = {alias: seeded.client(alias) for alias in seeded.urls}
    before = {alias: names(client) for alias, client in clients.items()}
    yield
    for alias, client in clients.items():
        for name in sorted(names(client) - before[alias]):
            if name.startswith("."):
                continue
            if client.request("DELETE", build_path(name), ok=(200, 403, 404))[0] == 403:  # a block refuses it
                unblock = {
                    f"index.blocks.{block}": None for block in ("read_only", "read_only_allow_delete", "metadata")
                }
                client.request("PUT", build_path(name, "_settings"), unblock)
                client.request("DELETE", build_path(name), ok=(200, 404))
        client.close()
