"""A migration on unreachable clusters whose discovery is replaced by synthetic facts: the dry run's
renderers, saved plans and reports are exercised without any cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import migrator.migration.opened as migration_module
from migrator.discovery import ClusterFacts, Facts, IndexFacts
from migrator.migration.opened import Migration, open_migration

PLAN = """
name: unit
source: {url: "http://127.0.0.1:1", username: elastic, password: "${SRC_PW}"}
destination: {url: "http://127.0.0.1:2"}
repository:
  name: repo
  type: oss
  settings:
    endpoint: oss-cn-hangzhou-internal.aliyuncs.com
    bucket: bucket
    base_path: snaps
    access_key_id: "${AK}"
    secret_access_key: "${SK}"
snapshot: {indices: ["logs-*", "orders"], name: "fixed-snap"}
restore: {rename_pattern: "(.+)", rename_replacement: "new-$1"}
validate: {sample_docs: 10}
estimate: {throughput_mb_s: 10}
finish: {replicas: 1, aliases: {orders-live: [orders]}, delete_snapshot: true}
"""
SECRETS = {"SRC_PW": "pw-canary-1a2b", "AK": "ak-canary-3c4d", "SK": "sk-canary-5e6f"}
MB = 1024 * 1024


def facts(indices: dict[str, tuple[int, int, int]], versions: tuple[str, str] = ("7.17.29", "8.19.21")) -> Facts:
    """Facts with source indices name -> (docs, primary bytes, primary shards)."""
    source = ClusterFacts(
        url="http://127.0.0.1:1",
        version=versions[0],
        health="green",
        free_disk_bytes=10**12,
        indices={n: IndexFacts(n, "open", "green", d, b, b, s) for n, (d, b, s) in indices.items()},
    )
    destination = ClusterFacts(url="http://127.0.0.1:2", version=versions[1], health="green", free_disk_bytes=10**12)
    return Facts(source, destination)


BASE_INDICES = {"logs-a": (1000, 30 * MB, 1), "logs-b": (2000, 70 * MB, 2), "orders": (10, 0, 1)}


@pytest.fixture
def discovered(monkeypatch) -> Callable[[Facts], None]:
    """Make discovery return the given facts (no request is sent)."""

    def use(found: Facts) -> None:
        monkeypatch.setattr(migration_module, "discover", lambda source, destination, *args: found)

    use(facts(BASE_INDICES))
    return use


@pytest.fixture
def opened(tmp_path: Path, discovered) -> Iterator[Callable[[Path | None], Migration]]:
    """Open the unit plan (or a saved plan) with its secrets set; closed at the end."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    migrations: list[Migration] = []

    def open_(path: Path | None = None) -> Migration:
        migrations.append(open_migration(path or plan, environ=SECRETS))
        return migrations[-1]

    yield open_
    for migration in migrations:
        migration.close()
