"""CLI -> migration (opened) -> clients: the migration object, opened from a plan with its secrets and clients.

Place in the flow: CLI -> migration (opened) -> planner / executor / steps -> clients. Opening a
migration loads and validates the plan, resolves its secrets once (migration.secrets) and builds
both Elasticsearch clients, whose requests are seen through the migration's `RequestTap` (nothing
is sent yet); the bucket readers are built from the same
secrets when a step or a command needs them (`Buckets`). `open_buckets` opens only what reaches the
repository, so `migrator verify --plan` needs no cluster's password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from migrator.clients.es import EsClient
from migrator.clients.replication import BucketReplication
from migrator.clients.storage import LocalStorage, OssStorage, Storage
from migrator.clients.tap import RequestTap
from migrator.discovery import Facts, discover
from migrator.errors import NeedsAttention, PlanError, Problem
from migrator.migration import secrets
from migrator.migration.files import JournaledState, default_state_path
from migrator.migration.saved import SavedPlan, load_saved_plan
from migrator.planner import MigrationPlan, build_plan, snapshot_names
from migrator.redact import Redactor
from migrator.spec import MAX_PARALLEL, ClusterSpec, MigrationSpec, StorageSpec, load_plan, render_snapshot_name

# Connections to each cluster (opened as needed), at the highest `restore.parallel`: the step threads
# (as many for the restore batches as for the other steps) may each send a request while each batch holds
# its restore open (`wait_for_completion=true`), plus a few for the snapshot's held request and the
# cutover. Fewer, and polling waits behind the held requests.
CONNECTIONS = 3 * MAX_PARALLEL + 4


@dataclass(frozen=True)
class Buckets:
    """How migrator itself reaches the repository's bucket (or folder), and the replica's, with the plan's
    secrets. Each call builds a new reader; the steps' context keeps one of each."""

    spec: MigrationSpec
    secrets: secrets.Secrets

    def storage(self) -> Storage:
        """The source's repository, as migrator reads it (the `storage` section, or derived from the oss
        repository's settings; PlanError when it cannot be derived)."""
        return self._open(self.spec.storage_spec())

    def replica(self) -> Storage:
        """Cross-region: the destination's copy of the repository."""
        assert self.spec.replication is not None
        return self._open(self.spec.replication.storage)

    def replication(self) -> BucketReplication:
        """Cross-region: the replication rules of the source's bucket."""
        storage = self.spec.storage_spec()
        return BucketReplication(
            endpoint=storage.endpoint or "",
            bucket=storage.bucket or "",
            access_key_id=self.secrets.of(storage.access_key_id),
            access_key_secret=self.secrets.of(storage.access_key_secret),
            region=storage.region,
            security_token=self.secrets.of(storage.security_token) or None,
            signature=storage.signature,
        )

    def _open(self, storage: StorageSpec) -> Storage:
        if storage.kind == "local":
            return LocalStorage(Path(storage.path or ""))
        return OssStorage(
            endpoint=storage.endpoint or "",
            bucket=storage.bucket or "",
            base_path=storage.base_path or "",
            access_key_id=self.secrets.of(storage.access_key_id),
            access_key_secret=self.secrets.of(storage.access_key_secret),
            region=storage.region,
            security_token=self.secrets.of(storage.security_token) or None,
            signature=storage.signature,
        )


@dataclass
class Migration:
    """One plan file with its resolved secrets, clients, buckets and state file."""

    spec: MigrationSpec
    plan_path: Path
    state_path: Path
    secrets: secrets.Secrets
    source: EsClient
    destination: EsClient
    buckets: Buckets
    # The clients' observer: listen to it for a scope to see every request sent (migrator.clients.tap).
    requests: RequestTap
    saved: SavedPlan | None = None

    @property
    def redactor(self) -> Redactor:
        """Masks every secret value of the plan (see migrator.redact)."""
        return self.secrets.redactor

    def close(self) -> None:
        self.source.close()
        self.destination.close()

    def plan(self, facts: Facts | None = None, when: datetime | None = None, **kwargs: Any) -> MigrationPlan:
        """Discover (unless `facts` are given; with the snapshot names the run takes) and plan; `kwargs` as
        for `build_plan`."""
        when = when or datetime.now(UTC)
        if facts is None:
            spec = self.spec
            snapshot = kwargs.get("snapshot_name") or render_snapshot_name(spec.snapshot.name, spec.name, when)
            names = snapshot_names(spec, snapshot, kwargs.get("cutover_attempt", 1))
            facts = discover(self.source, self.destination, spec.snapshot.indices, spec.repository.name, names)
        return build_plan(self.spec, facts, when, **kwargs)

    def open_state(self) -> JournaledState:
        return JournaledState(self.state_path)

    def saved_plan(self) -> MigrationPlan:
        """The saved plan rebuilt from its recorded facts; refused unless it gives the hash it was saved with."""
        saved = self.saved
        assert saved is not None
        plan = build_plan(self.spec, saved.facts, saved.started, snapshot_name=saved.snapshot)
        if plan.plan_hash != saved.plan_hash:
            raise NeedsAttention(
                f"the saved plan {self.plan_path} rebuilds to hash {plan.plan_hash}, not {saved.plan_hash} "
                "(edited, or saved by another migrator version); save it again with `migrator plan PLAN --out FILE`"
            )
        return plan


def _load(plan_path: Path, environ: Mapping[str, str] | None) -> tuple[MigrationSpec, SavedPlan | None, dict[str, str]]:
    """The spec of a plan file or a saved plan, the saved plan, and the variables its references read."""
    saved = load_saved_plan(plan_path)
    if saved is None:
        spec = load_plan(plan_path)
    else:
        try:
            spec = MigrationSpec.model_validate(saved.spec)
        except ValidationError as exc:
            fix = "save it again: migrator plan PLAN --out FILE"
            problem = Problem(str(plan_path), f"the saved spec is not valid ({exc.error_count()} errors)", fix)
            raise PlanError([problem]) from None
    base_dir = Path(saved.plan_file).parent if saved else plan_path.parent
    return spec, saved, spec.environment(base_dir, dict(os.environ if environ is None else environ))


def open_migration(
    plan_path: Path,
    state_path: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Migration:
    """Load and validate the plan (a plan file or a saved plan), resolve all its secrets, build both clients
    (no request sent). PlanError names each invalid field or unset secret."""
    spec, saved, environment = _load(plan_path, environ)
    resolved = secrets.resolve(spec, environment)
    tap = RequestTap()

    def client(side: str, cluster: ClusterSpec) -> EsClient:
        return EsClient(
            str(cluster.url),
            label=side,
            username=cluster.username,
            password=resolved.of(cluster.password) if cluster.password else None,
            api_key=resolved.of(cluster.api_key) if cluster.api_key else None,
            verify_tls=cluster.verify_tls,
            ca_file=str(cluster.ca_file) if cluster.ca_file else None,
            timeout_s=cluster.request_timeout_s,
            connections=CONNECTIONS,
            observer=tap,
        )

    return Migration(
        spec=spec,
        plan_path=plan_path,
        state_path=state_path or default_state_path(plan_path),
        secrets=resolved,
        source=client("source", spec.source),
        destination=client("destination", spec.destination),
        buckets=Buckets(spec, resolved),
        requests=tap,
        saved=saved,
    )


def open_buckets(plan_path: Path, environ: Mapping[str, str] | None = None) -> Buckets:
    """The buckets of a plan (or saved plan), resolving only the secrets that reach them
    (`secrets.repository_fields`): no cluster's password or API key is needed."""
    spec, _, environment = _load(plan_path, environ)
    return Buckets(spec, secrets.resolve(spec, environment, secrets.repository_fields))
