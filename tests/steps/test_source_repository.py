"""repository.source, with canned source answers (the `Cluster` of test_destination_repository answers as
Alibaba Cloud's oss plugin does): the registration the dry run shows is the one sent, secrets masked in
the one and resolved in the other; a registration it made is recorded, one it found is the user's and is
never changed."""

from __future__ import annotations

import pytest

from migrator.spec import parse_plan
from migrator.steps.base import MASK, StepContext, StepFailed
from migrator.steps.source_repository import RegisterSourceRepository, repository_bodies
from tests.steps.listed import sends_only_listed
from tests.steps.test_destination_repository import (
    ENVIRONMENT,
    PLAN,
    Cluster,
    masked,
    registered_as_the_plugin_answers,
    step,
)


def test_a_first_registration_sends_what_the_dry_run_shows_with_the_secrets_resolved():
    cluster = Cluster(None)
    registering = step(RegisterSourceRepository, cluster)
    with sends_only_listed(registering, masked=masked):
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


def test_a_registration_found_with_other_settings_is_refused_not_re_pointed():
    """Before: observed "will update with POST" and re-pointed the user's repository to base_path snapshot."""
    cluster = Cluster(registered_as_the_plugin_answers("source", readonly="false", base_path="elsewhere"))
    registering = step(RegisterSourceRepository, cluster)
    with pytest.raises(StepFailed, match=r"base_path: elsewhere -> snapshot\)"):
        registering.observe()
    assert cluster.sent == [] and not registering.ctx.ledger.owns_repository("source", "my_backup")


def test_a_read_only_registration_found_on_the_source_is_refused_not_made_writable():
    cluster = Cluster(registered_as_the_plugin_answers("source", readonly="true"))
    registering = step(RegisterSourceRepository, cluster)
    with pytest.raises(StepFailed, match="readonly: true -> not set"):
        registering.observe()
    assert cluster.sent == []


def test_a_registration_found_with_the_planned_settings_is_adopted_and_stays_the_users():
    cluster = Cluster(registered_as_the_plugin_answers("source", readonly="false"))
    registering = step(RegisterSourceRepository, cluster)
    assert registering.observe().done
    assert cluster.sent == [] and not registering.ctx.ledger.owns_repository("source", "my_backup")


def test_the_registrations_are_built_once_from_the_secrets_resolved_at_open():
    """The steps read no environment (StepContext has none): both clusters' registrations come built from
    the values migration.secrets resolved at open; the dry run's have the secrets masked and send nothing."""
    assert "environment" not in StepContext.__dataclass_fields__
    spec = parse_plan(PLAN)
    resolved = repository_bodies(spec, ENVIRONMENT)
    assert resolved.body("source", reveal=True)["settings"]["secret_access_key"] == "the-secret"
    assert resolved.body("destination", reveal=True)["settings"]["readonly"] is True
    dry = repository_bodies(spec, None)
    for cluster in ("source", "destination"):
        assert dry.body(cluster, reveal=False) == masked(resolved.body(cluster, reveal=True))
        assert "the-secret" not in str(dry.shown) and "LTAI-id" not in str(dry.shown)
    with pytest.raises(StepFailed, match="a dry run sends no registration"):
        dry.body("source", reveal=True)
