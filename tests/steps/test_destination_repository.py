"""Registering the `oss` repository on the destination as Alibaba Cloud's plugin answers: the secrets are
left out of `GET _snapshot`, and a changed setting (the document's chunk_size) is applied, with the runbook's PUT, to a
registration this migration made, refused on one it did not. Canned answers, no cluster
(tests/sandbox/test_repository_plugin.py has the real plugin)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from migrator.errors import Cure
from migrator.ownership import Ledger
from migrator.spec import parse_plan
from migrator.steps.base import MASK, StepFailed
from migrator.steps.destination_repository import RegisterDestinationRepository
from migrator.steps.source_repository import RegisterSourceRepository, repository_bodies
from tests.steps.listed import sends_only_listed

PLAN = """
name: t
source: {url: "http://127.0.0.1:1"}
destination: {url: "http://127.0.0.1:2"}
repository:
  name: my_backup
  type: oss
  settings:
    endpoint: http://oss-cn-hangzhou-internal.aliyuncs.com
    bucket: b
    base_path: snapshot
    access_key_id: ${AK}
    secret_access_key: ${SK}
    compress: true
    chunk_size: 500mb
snapshot: {indices: [orders]}
"""
ENVIRONMENT = {"AK": "LTAI-id", "SK": "the-secret"}


class Cluster:
    """Answers GET _snapshot/my_backup as the oss plugin does: the settings without the three secrets."""

    def __init__(self, registered: dict[str, Any] | None) -> None:
        self.registered = registered
        self.sent: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        if method == "GET":
            return (200, {"my_backup": self.registered}) if self.registered else (404, {})
        self.sent.append((method, path, body))
        return 200, {"acknowledged": True}


SECRETS = ("access_key_id", "secret_access_key")


def masked(body: dict) -> dict:
    return {**body, "settings": {k: MASK if k in SECRETS else v for k, v in body["settings"].items()}}


def registered_as_the_plugin_answers(cluster: str = "destination", **changes: str) -> dict[str, Any]:
    """The planned registration of `cluster` as GET answers it (`readonly` on the destination), with `changes`."""
    settings = {
        "endpoint": "http://oss-cn-hangzhou-internal.aliyuncs.com",
        "bucket": "b",
        "base_path": "snapshot",
        "compress": "true",
        "chunk_size": "500mb",
    }
    if cluster == "destination":
        settings["readonly"] = "true"
    return {"type": "oss", "settings": {**settings, **changes}}


def step(cls: type, cluster: Cluster) -> Any:
    ctx = SimpleNamespace(
        spec=parse_plan(PLAN),
        repository_bodies=repository_bodies(parse_plan(PLAN), ENVIRONMENT),
        source=cluster,
        destination=cluster,
        repository="my_backup",
        ledger=Ledger(),
    )
    return cls("repository", {}, ctx)


STEPS = ((RegisterSourceRepository, "source"), (RegisterDestinationRepository, "destination"))


def test_a_registration_without_its_secrets_has_the_planned_settings() -> None:
    for cls, cluster_name in STEPS:
        cluster = Cluster(registered_as_the_plugin_answers(cluster_name))
        assert step(cls, cluster).observe().done


def test_a_changed_chunk_size_of_a_registration_this_migration_made_is_applied_as_the_runbook_shows() -> None:
    """Before: the update was sent as POST while the runbook (describe) showed PUT; Elasticsearch treats both
    alike, so the request sent is the one shown."""
    for cls, cluster_name in STEPS:
        cluster = Cluster(registered_as_the_plugin_answers(cluster_name, chunk_size="1gb"))
        registering = step(cls, cluster)
        registering.ctx.ledger.record_repository(cluster_name, "my_backup")  # an earlier run of this plan made it
        assert not registering.observe().done
        registering.act()
        [(method, path, body)] = cluster.sent
        [shown] = registering.describe()
        assert (method, path, body["settings"]["chunk_size"]) == ("PUT", "/_snapshot/my_backup", "500mb")
        assert (shown.method, "/" + shown.path) == (method, path)
        assert body["settings"]["secret_access_key"] == "the-secret"


def test_a_registration_it_did_not_make_with_other_settings_is_refused_and_left_as_it_is() -> None:
    """The user's own repository under the plan's name (another chunk_size, another base_path) is never
    re-pointed or re-configured: observe fails naming the cluster, the location and the differences."""
    for cls, cluster_name in STEPS:
        cluster = Cluster(registered_as_the_plugin_answers(cluster_name, chunk_size="1gb", base_path="nightly"))
        registering = step(cls, cluster)
        with pytest.raises(StepFailed) as failed:
            registering.observe()
        message = str(failed.value)
        assert f"the {cluster_name} already has repository 'my_backup'" in message
        assert "oss/b/nightly via http://oss-cn-hangzhou-internal.aliyuncs.com" in message
        assert "base_path: nightly -> snapshot" in message and "chunk_size: 1gb -> 500mb" in message
        assert "choose another repository.name" in message and "DELETE _snapshot/my_backup" in message
        assert "the-secret" not in message and "LTAI-id" not in message
        assert failed.value.cure == Cure.REPLAN
        assert cluster.sent == [] and not registering.ctx.ledger.owns_repository(cluster_name, "my_backup")


def test_a_first_registration_is_a_put() -> None:
    cluster = Cluster(None)
    registering = step(RegisterDestinationRepository, cluster)
    with sends_only_listed(registering, masked=masked):
        assert not registering.observe().done
        registering.act()
    assert [(method, body["settings"]["readonly"]) for method, _, body in cluster.sent] == [("PUT", True)]
