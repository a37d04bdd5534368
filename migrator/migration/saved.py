"""CLI -> migration (saved) -> planner: `plan --out` saves a reviewed plan, `apply SAVED` executes exactly it.

Place in the flow: CLI -> migration (saved) -> planner. A saved plan holds the spec, the facts
discovered, the snapshot name and the plan hash (no secret: `${VAR}` references only). Applying it
rebuilds the plan from those facts and refuses, naming what changed, when a fresh discovery of the
clusters gives a different plan (`plan_changes`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrator.discovery import Facts
from migrator.errors import NeedsAttention, PlanError, Problem
from migrator.pipelines import pipeline_changes
from migrator.planner import MigrationPlan
from migrator.steps import metadata_pipelines
from migrator.steps.metadata_templates import moved_templates
from migrator.templates import template_changes

if TYPE_CHECKING:  # both import this module: a saved plan is read when a migration is opened
    from migrator.migration.opened import Migration
    from migrator.migration.review import Review

SAVED_PLAN_VERSION = 1


@dataclass(frozen=True)
class SavedPlan:
    """A reviewed plan saved with `plan --out`: what `apply SAVED` executes exactly."""

    plan_file: str
    plan_hash: str
    snapshot: str
    started: datetime
    spec: dict[str, Any]
    facts: Facts
    document: dict[str, Any]


def load_saved_plan(path: Path) -> SavedPlan | None:
    """The saved plan in `path`, or None when it is a plan file (YAML) or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "migrator_saved_plan" not in data:
        return None
    if data["migrator_saved_plan"] != SAVED_PLAN_VERSION:
        raise PlanError(
            [
                Problem(
                    str(path),
                    f"saved plan version {data['migrator_saved_plan']} is not {SAVED_PLAN_VERSION}",
                    "save it again with this migrator: migrator plan PLAN --out FILE",
                )
            ]
        )
    try:
        return SavedPlan(
            plan_file=data["plan_file"],
            plan_hash=data["plan_hash"],
            snapshot=data["snapshot"],
            started=datetime.fromisoformat(data["started"]),
            spec=data["spec"],
            facts=Facts.from_json(data["facts"]),
            document=data.get("plan", {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanError(
            [Problem(str(path), f"not a complete saved plan ({exc})", "save it again: migrator plan PLAN --out FILE")]
        ) from None


def save_plan(migration: Migration, reviewed: Review, document: dict[str, Any], path: Path) -> None:
    """Write the reviewed plan for `apply SAVED` (mode 600; secrets only as ${VAR} references)."""
    plan = reviewed.plan
    data = {
        "migrator_saved_plan": SAVED_PLAN_VERSION,
        "plan_file": str(migration.plan_path if migration.saved is None else migration.saved.plan_file),
        "saved_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "plan_hash": plan.plan_hash,
        "snapshot": plan.snapshot,
        "started": reviewed.when.isoformat(),
        "spec": json.loads(plan.spec.canonical_json()),
        "facts": plan.facts.to_json(),
        "plan": document,
    }
    text = migration.redactor.text(json.dumps(data, indent=2, sort_keys=True)) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)


def plan_changes(saved: MigrationPlan, fresh: MigrationPlan) -> list[str]:
    """What a fresh discovery changes in a saved plan: versions, the indices moved, their targets and
    shards, and what would be refused now. Document counts and sizes only change the estimates."""
    changes = []
    for side in ("source", "destination"):
        before, after = getattr(saved.facts, side).version, getattr(fresh.facts, side).version
        if before != after:
            changes.append(f"the {side} now runs Elasticsearch {after}, not {before}")
    before_moves = {move.source: move for move in saved.moves}
    after_moves = {move.source: move for move in fresh.moves}
    for name in sorted(before_moves.keys() - after_moves.keys()):
        why = fresh.skipped.get(name) or ("gone from the source" if name not in fresh.facts.source.indices else "")
        changes.append(f"{name} would no longer be migrated" + (f" ({why})" if why else ""))
    for name in sorted(after_moves.keys() - before_moves.keys()):
        changes.append(f"{name} would now be migrated too (as {after_moves[name].target})")
    for name in sorted(before_moves.keys() & after_moves.keys()):
        old, new = before_moves[name], after_moves[name]
        if old.target != new.target:
            changes.append(f"{name} would be restored as {new.target}, not {old.target}")
        if old.primary_shards != new.primary_shards:
            changes.append(f"{name} has {new.primary_shards} primary shards now, not {old.primary_shards}")
    changes.extend(f"refused now: {p.field}: {p.message}" for p in fresh.problems)
    changes.extend(template_changes(*(moved_templates(plan.graph) for plan in (saved, fresh))))
    changes.extend(pipeline_changes(*(metadata_pipelines.planned(plan.graph) for plan in (saved, fresh))))
    if not changes and set(saved.graph.edges) != set(fresh.graph.edges):
        changes.append("the steps of the plan changed")
    return changes


def saved_plan_to_run(migration: Migration) -> tuple[MigrationPlan, datetime]:
    """The saved plan, once a fresh discovery shows the clusters still give the same plan (else refused)."""
    saved = migration.saved
    assert saved is not None
    plan = migration.saved_plan()
    fresh = migration.plan(when=saved.started, snapshot_name=saved.snapshot)
    changes = plan_changes(plan, fresh)
    if changes:
        listed = "\n".join(f"  - {change}" for change in changes)
        raise NeedsAttention(
            f"the clusters changed since the plan was saved; nothing was changed:\n{listed}\n"
            "Review the new plan and save it again: migrator plan PLAN --out FILE"
        )
    return plan, saved.started
