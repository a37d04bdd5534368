"""repository.source, with canned source answers (the `Cluster` of test_destination_repository answers as
Alibaba Cloud's oss plugin does): the registration the dry run shows is the one sent, secrets masked in
the one and resolved in the other; a registration it made is recorded, one it found is the user's."""

from __future__ import annotations

from migrator.steps.base import MASK
from migrator.steps.source_repository import RegisterSourceRepository
from tests.steps.test_destination_repository import Cluster, registered_as_the_plugin_answers, step

SECRETS = ("access_key_id", "secret_access_key")


def masked(body: dict) -> dict:
    return {**body, "settings": {k: MASK if k in SECRETS else v for k, v in body["settings"].items()}}


def test_a_first_registration_sends_what_the_dry_run_shows_with_the_secrets_resolved():
    cluster = Cluster(None)
    registering = step(RegisterSourceRepository, cluster)
    assert not registering.observe().done
    registering.act()
    [(method, path, body)] = cluster.sent
    [shown] = registering.describe()
    assert (shown.method, shown.sent_path, shown.body) == (method, path, masked(body))
    assert (method, path) == ("PUT", "/_snapshot/my_backup")
    assert body["settings"]["access_key_id"] == "LTAI-id" and shown.body["settings"]["secret_access_key"] == MASK
    assert "readonly" not in body["settings"]  # the source writes the repository
    assert registering.ctx.ledger.owns_repository("source", "my_backup")
    assert [(r.method, r.sent_path) for r in registering.checks()] == [("GET", "/_snapshot/my_backup")]


def test_a_registration_found_with_other_settings_is_updated_and_stays_the_users():
    cluster = Cluster(registered_as_the_plugin_answers(readonly="false", base_path="elsewhere"))
    registering = step(RegisterSourceRepository, cluster)
    assert not registering.observe().done
    registering.act()
    assert [(method, path) for method, path, _ in cluster.sent] == [("POST", "/_snapshot/my_backup")]
    assert not registering.ctx.ledger.owns_repository("source", "my_backup")
