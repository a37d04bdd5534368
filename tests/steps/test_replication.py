"""The OSS cross-region replication step against the sandbox OSS server (no cluster): the rule it adds from
the plan, the progress it follows until the repository as it was at the step's start is in the target, and
a rule that stands in its way. The wait ends on the rule's progress (a state), which the server's replication
thread reaches within a pass or two."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from migrator.clients.replication import BucketReplication
from migrator.sandbox.oss_server import BucketConfig, OssServer
from migrator.steps.base import StepFailed
from migrator.steps.replication import Replicate, replication_rule
from tests.steps.fakes import Progress

AK, SK = "replication-step-key", "replication-step-secret"
SOURCE, TARGET = "source-bucket", "target-bucket"
BUCKETS = [BucketConfig(SOURCE, region="oss-cn-hangzhou"), BucketConfig(TARGET, region="oss-cn-shanghai")]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OssServer]:
    with OssServer(tmp_path / "root", BUCKETS, AK, SK) as srv:
        yield srv


def step(server: OssServer, *, rule_id: str | None = None) -> Any:
    spec = SimpleNamespace(
        name="orders",
        storage_spec=lambda: SimpleNamespace(bucket=SOURCE, base_path="/snapshots/"),
        replication=SimpleNamespace(rule_id=rule_id, storage=SimpleNamespace(bucket=TARGET, region="cn-shanghai")),
        waits=SimpleNamespace(stall_after=900.0),
    )
    ctx = SimpleNamespace(
        spec=spec,
        replication=lambda: BucketReplication(server.endpoint, SOURCE, AK, SK, region="oss-cn-hangzhou"),
        progress=Progress(),
        sleep=lambda seconds=None: time.sleep(0.05),
    )
    return Replicate("replication", {}, ctx)


def write(server: OssServer, bucket: str, key: str, data: bytes) -> Path:
    path = server.root / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_the_rule_is_the_repositorys_prefix_to_the_target_bucket_and_region(server: OssServer) -> None:
    spec = step(server).ctx.spec
    assert replication_rule(spec) == {
        "rule_id": "migrator-orders",
        "prefix": "snapshots/",
        "target_bucket": TARGET,
        "target_location": "oss-cn-shanghai",
        "source_bucket": SOURCE,
    }
    [add] = step(server).describe()
    assert (add.method, add.path) == ("POST", f"oss://{SOURCE}/?replication&comp=add")
    assert add.body["PrefixSet"] == ["snapshots/"] and add.body["HistoricalObjectReplication"] == "enabled"


def test_the_step_adds_its_rule_and_waits_until_the_repository_is_in_the_target(server: OssServer) -> None:
    write(server, SOURCE, "snapshots/index-0", b"root")
    write(server, SOURCE, "elsewhere/x", b"not the repository")
    replicate = step(server)
    assert not replicate.observe().done
    replicate.act()
    assert replicate.wait()["rule_id"] == "migrator-orders"
    assert (server.root / TARGET / "snapshots/index-0").read_bytes() == b"root"
    assert not (server.root / TARGET / "elsewhere").exists()
    assert replicate.observe().done
    again = step(server)
    again.act()  # a resumed run finds the rule it made
    assert [rule.rule_id for rule in again.ctx.replication().rules()] == ["migrator-orders"]


def test_a_rule_of_another_id_to_the_target_that_does_not_cover_the_repository_stops_the_step(
    server: OssServer,
) -> None:
    step(server, rule_id="other").ctx.replication().ensure_rule("other", "logs/", TARGET, "oss-cn-shanghai")
    with pytest.raises(StepFailed) as failed:
        step(server).act()
    assert "other" in str(failed.value)
    assert not failed.value.transient
