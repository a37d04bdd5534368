"""Planner side, pure: the plan's refusals about the repository, as `Problem`s the planner adds to its own.

Two clusters must never both write one repository location (`writable_location_problems`), and the
snapshot a run takes must not already be in the repository unless this migration took it
(`snapshot_name_problems`). Both read only the spec and the discovered facts (discovery.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrator.discovery import Facts
from migrator.errors import Problem
from migrator.spec import MigrationSpec


def repository_location(repository_type: str, settings: dict[str, Any]) -> tuple[str, ...] | None:
    """What identifies where a repository's blobs live: the folder, or the bucket and base path."""
    if repository_type == "fs" and settings.get("location"):
        return ("fs", str(settings["location"]).rstrip("/"))
    if settings.get("bucket"):
        return (repository_type, str(settings["bucket"]), str(settings.get("base_path") or "").strip("/"))
    return None


def writable_location_problems(spec: MigrationSpec, facts: Facts) -> list[Problem]:
    """Two clusters must never both write one repository: a destination registration of the same
    location that is not read-only (under any name) is refused."""
    wanted = {**spec.repository.settings_dict(), **spec.repository.destination_settings_dict()}
    location = repository_location(spec.repository.type, {k: v for k, v in wanted.items() if isinstance(v, str)})
    problems = []
    for name, registered in sorted(facts.destination.repositories.items()):
        settings = registered.get("settings", {})
        if repository_location(registered.get("type", ""), settings) != location or location is None:
            continue
        if str(settings.get("readonly", "false")).lower() != "true":
            problems.append(
                Problem(
                    "repository",
                    f"the destination already has repository {name!r} at the same location, writable; two clusters "
                    "must never write one repository",
                    f"unregister it (DELETE _snapshot/{name}) or register it with readonly: true",
                )
            )
    return problems


def snapshot_name_problems(
    spec: MigrationSpec, facts: Facts, names: tuple[str, ...], owned: Mapping[str, str | None]
) -> list[Problem]:
    """A snapshot name the run would take that is already in the repository (Elasticsearch refuses to create
    it; adopting it would restore older data): refused unless it is this migration's own (`owned`: name ->
    the uuid its state recorded, or None for a run begun before uuids were recorded: its own by name)."""
    repository = spec.repository.name
    problems = []
    for name in names:
        found = facts.source.snapshots.get(name)
        if found is None or (name in owned and owned[name] in (None, found.get("uuid"))):
            continue
        problems.append(
            Problem(
                "snapshot.name",
                f"snapshot {name!r} already exists in repository {repository!r} (state {found.get('state')}, "
                f"started {found.get('start_time') or found.get('start_time_in_millis')}); migrator takes its own "
                "snapshot and never adopts one it did not take (its data may be older than the source's)",
                "choose a snapshot.name not in the repository (a {date} placeholder makes each run's name new, e.g. "
                f"'{{name}}-{{date:%Y.%m.%d-%H%M%S}}'), or delete that snapshot (DELETE _snapshot/{repository}/{name})",
            )
        )
    return problems
