"""CLI -> migration (saved) -> planner: `plan --out` saves a reviewed plan, `apply SAVED` executes exactly it.

Place in the flow: CLI -> migration (saved) -> planner. A saved plan holds the spec, the facts
discovered, the snapshot name and the plan hash (no secret: `${VAR}` references only). Applying it
rebuilds the plan from those facts and refuses, naming what changed, when a fresh discovery of the
clusters gives a different plan (`migrator.migration.run.plan_changes`). Light to import: `status` and
`report` read a plan file's state path through `load_saved_plan`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrator.errors import PlanError, Problem

if TYPE_CHECKING:  # both import this module: a saved plan is read when a migration is opened
    from migrator.discovery import Facts
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
    from migrator.discovery import Facts  # the clusters' facts: read for a saved plan only, not by `status PLAN`

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
