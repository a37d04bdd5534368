"""Register the snapshot repository on the source (PUT; POST to update changed settings), verify it.

Place in the flow: migration (opened: secrets resolved once) -> `repository_bodies` (both clusters' registrations,
built once, masked and as sent) -> StepContext -> this step and repository.destination -> the clusters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrator.clients.es import EsClient, build_path
from migrator.dag import StepKind
from migrator.spec import MigrationSpec, SecretRef
from migrator.steps.base import MASK, ConsoleRequest, Observation, RepositoryBodies, Step


def repository_settings(
    spec: MigrationSpec, secrets: Mapping[str, str], *, destination: bool, reveal: bool
) -> dict[str, Any]:
    """The settings sent to Elasticsearch: secrets taken from `secrets` (variable -> value, resolved at
    open by migration.secrets) or masked, destination overrides applied."""
    repository = spec.repository
    merged = dict(repository.settings_dict())
    if destination:
        merged.update(repository.destination_settings_dict())
        merged["readonly"] = True
    settings: dict[str, Any] = {}
    for key, value in merged.items():
        if value is None:
            continue
        if isinstance(value, SecretRef):
            value = value.resolve(secrets) if reveal else MASK
        settings[key] = value
    return settings


def repository_bodies(spec: MigrationSpec, secrets: Mapping[str, str] | None) -> RepositoryBodies:
    """The registrations of both clusters, built once: masked, and (with `secrets`, the values resolved at
    open; None for the dry run) as sent."""

    def bodies(reveal: bool) -> dict[str, dict[str, Any]]:
        values = secrets if reveal and secrets is not None else {}
        return {
            cluster: {
                "type": spec.repository.type,
                "settings": repository_settings(spec, values, destination=cluster == "destination", reveal=reveal),
            }
            for cluster in ("source", "destination")
        }

    return RepositoryBodies(bodies(reveal=False), None if secrets is None else bodies(reveal=True))


def same_settings(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Elasticsearch returns settings as strings; secure settings are not returned at all."""
    for key, value in wanted.items():
        if key in current and str(current[key]).lower() != str(value).lower():
            return False
        if key not in current and key not in ("secret_access_key", "access_key_id", "security_token"):
            return False
    return True


def registration(client: EsClient, name: str) -> dict[str, Any] | None:
    status, body = client.request("GET", build_path("_snapshot", name), ok=(200, 404))
    return body.get(name) if status == 200 else None


class RegisterSourceRepository(Step):
    kind = StepKind.SOURCE_REPOSITORY
    recheck = True
    title = "Register the snapshot repository on the source"
    # Registering verifies the repository (`verify` defaults to true): every node writes and reads a test
    # blob before the answer, so a separate `POST _snapshot/<name>/_verify` would only repeat it.
    waits_for = "the repository verification that registering does (every node can write to it)"

    existing: dict[str, Any] | None = None

    def _body(self, reveal: bool) -> dict[str, Any]:
        return self.ctx.repository_bodies.body("source", reveal=reveal)

    def describe(self) -> list[ConsoleRequest]:
        return [
            ConsoleRequest("source", "PUT", f"_snapshot/{self.ctx.repository}", self._body(reveal=False)),
        ]

    def checks(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("source", "GET", f"_snapshot/{self.ctx.repository}")]

    def observe(self) -> Observation:
        current = registration(self.ctx.source, self.ctx.repository)
        self.existing = current
        if current is None:
            return Observation(False, summary="not registered")
        wanted = self._body(reveal=True)
        if current.get("type") == wanted["type"] and same_settings(current.get("settings", {}), wanted["settings"]):
            return Observation(True, summary="registered with the planned settings")
        return Observation(False, summary="registered with other settings: will update with POST")

    def act(self) -> None:
        method = "POST" if self.existing else "PUT"
        self.ctx.source.request(method, build_path("_snapshot", self.ctx.repository), self._body(reveal=True))
        if self.existing is None:  # a registration that was there before is the user's, even if updated
            self.ctx.ledger.record_repository("source", self.ctx.repository)
