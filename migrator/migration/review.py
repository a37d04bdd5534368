"""CLI -> migration (review) -> discovery, planner, steps' describe: the dry run `migrator plan` shows.

Place in the flow: CLI -> migration (review) -> discovery and planner -> steps' `describe`. Discovery
is read-only and each request it sends is kept for the runbook; a saved plan sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from migrator.clients.es import Request
from migrator.estimate import estimate
from migrator.executor import build_steps
from migrator.migration.opened import Migration
from migrator.migration.undo import CancelAdvice, cancel_advice
from migrator.planner import MigrationPlan
from migrator.recorded_run import recorded_run
from migrator.steps.base import ConsoleRequest, ProgressSink, Step, StepContext
from migrator.steps.source_repository import repository_bodies


@dataclass
class Review:
    """Everything the dry run shows: the plan, its steps, the requests discovery sent, estimates, cancels."""

    plan: MigrationPlan
    when: datetime
    steps: dict[str, Step]
    discovery: list[ConsoleRequest]
    estimate: dict[str, Any]
    cancel: dict[str, CancelAdvice]
    saved: bool = False
    # The run recorded in the state file beside the plan, when there is one (see `recorded_run`).
    run: dict[str, Any] | None = None


def describe_steps(migration: Migration, plan: MigrationPlan) -> dict[str, Step]:
    """The plan's steps, for their descriptions only (no secret resolved, nothing sent)."""
    ctx = StepContext(
        spec=migration.spec,
        plan=plan,
        source=migration.source,
        destination=migration.destination,
        repository_bodies=repository_bodies(migration.spec, None),
        storage_factory=migration.buckets.storage,
        progress=_NoProgress(),
    )
    return build_steps(plan.graph, ctx)


class _NoProgress(ProgressSink):
    def update(self, step: str, completed: float, total: float, unit: str, text: str = "") -> None:
        return None

    def message(self, step: str | None, text: str) -> None:
        return None


def review(migration: Migration) -> Review:
    """The dry run: discover both clusters (read-only, each request kept for the runbook) and plan; for
    a saved plan, its recorded facts (nothing is sent)."""
    run: dict[str, Any] | None = None
    if migration.saved is not None:
        plan, when = migration.saved_plan(), migration.saved.started
        discovery = [ConsoleRequest(**r) for r in migration.saved.document.get("discovery", [])]
    else:
        sent: list[ConsoleRequest] = []

        def record(cluster: str, request: Request, status: int | None, step: str | None) -> None:
            console = ConsoleRequest(cluster, request.method, request.path.lstrip("/"), request.body)
            if status is None and console not in sent:
                sent.append(console)

        when = datetime.now(UTC).replace(microsecond=0)
        run, options = recorded_run(migration.state_path, migration.spec)
        if run is not None:
            when = datetime.fromisoformat(run["started"])
        with migration.requests.listening(record):
            plan = migration.plan(when=when, **options)
        discovery = [ConsoleRequest(r.cluster, r.method, migration.redactor.text(r.path), r.body) for r in sent]
    return Review(
        plan=plan,
        when=when,
        steps=describe_steps(migration, plan),
        discovery=discovery,
        estimate=estimate(plan),
        cancel={node: cancel_advice(plan, node) for node in plan.graph},
        saved=migration.saved is not None,
        run=run,
    )
