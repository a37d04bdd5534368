"""Register the snapshot repository on the source (PUT, which also updates one this migration made), verify it.

Place in the flow: migration (opened: secrets resolved once) -> `repository_bodies` (both clusters' registrations,
built once, masked and as sent) -> StepContext -> this step and repository.destination -> the clusters.
A registration of that name with the planned settings is adopted as it is; with other settings it is updated
only when the run's ledger says this migration made it, and refused otherwise (the planner refuses the same
earlier: checks.repository.foreign_registration_problems).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrator.checks.repository import foreign_registration, registration_differences
from migrator.clients.es import EsClient, build_path
from migrator.dag import StepKind
from migrator.errors import Cure
from migrator.spec import MigrationSpec, SecretRef
from migrator.steps.base import MASK, ConsoleRequest, Observation, RepositoryBodies, Step, StepContext, StepFailed


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


def observe_registration(
    ctx: StepContext, cluster: str, current: dict[str, Any], wanted: dict[str, Any]
) -> Observation:
    """The registration `current` of `ctx.repository` on `cluster` against the `wanted` one (as sent): done
    when they match; to update (PUT) when they differ and the ledger records that this migration made it;
    StepFailed (cure: replan) when they differ and it is someone else's, which migrator never changes."""
    differences = registration_differences(current, wanted)
    if not differences:
        return Observation(True, summary="registered with the planned settings")
    if not ctx.ledger.owns_repository(cluster, ctx.repository):
        problem = foreign_registration(cluster, ctx.repository, current, differences)
        raise StepFailed(f"{problem.message}. To go on: {problem.fix}", cure=Cure.REPLAN)
    return Observation(
        False,
        summary=f"registered by this migration with other settings: will update with PUT ({'; '.join(differences)})",
    )


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
        return observe_registration(self.ctx, "source", current, self._body(reveal=True))

    def act(self) -> None:
        # PUT both registers and updates (Elasticsearch treats POST alike): the runbook's request, whichever it is
        self.ctx.source.request("PUT", build_path("_snapshot", self.ctx.repository), self._body(reveal=True))
        if self.existing is None:  # one found is updated only when the ledger already records it (observe)
            self.ctx.ledger.record_repository("source", self.ctx.repository)
