"""Planner side, pure: the plan's refusals about the repository, as `Problem`s the planner adds to its own.

Two clusters must never both write one repository location (`writable_location_problems`), a
registration of `repository.name` that migrator did not make is never changed (`foreign_registration_problems`;
the repository steps refuse the same at run time with `foreign_registration`), and the snapshot a run takes
must not already be in the repository unless this migration took it (`snapshot_name_problems`). All read
only the spec, the discovered facts (discovery.py) and what the run's ledger says it made (ownership.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from migrator.discovery import Facts
from migrator.errors import Problem
from migrator.spec import MigrationSpec, SecretRef

# settings whose values are credentials: compared only when both sides carry them (Elasticsearch leaves them
# out of `GET _snapshot`, the dry run has them masked), and never shown
SECRET_SETTINGS = ("secret_access_key", "access_key_id", "security_token")
# a registered setting the plan leaves out is no difference when it holds Elasticsearch's default
DEFAULTS = {"readonly": "false"}


def repository_location(repository_type: str, settings: dict[str, Any]) -> tuple[str, ...] | None:
    """What identifies where a repository's blobs live: the folder, or the bucket and base path."""
    if repository_type == "fs" and settings.get("location"):
        return ("fs", str(settings["location"]).rstrip("/"))
    if settings.get("bucket"):
        return (repository_type, str(settings["bucket"]), str(settings.get("base_path") or "").strip("/"))
    return None


def planned_settings(spec: MigrationSpec, cluster: str) -> dict[str, Any]:
    """The registration settings the plan sends to `cluster` (source | destination) that are not secrets:
    the source's, with the destination's overrides and `readonly: true` on the destination."""
    merged = dict(spec.repository.settings_dict())
    if cluster == "destination":
        merged.update(spec.repository.destination_settings_dict())
        merged["readonly"] = True
    return {key: value for key, value in merged.items() if value is not None and not isinstance(value, SecretRef)}


def _shown(settings: Mapping[str, Any], key: str) -> str:
    if key not in settings:
        return "not set"
    if key in SECRET_SETTINGS:
        return "(a secret, not shown)"
    value = settings[key]
    return str(value).lower() if isinstance(value, bool) else str(value)


def registration_differences(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """How the registration `current` (an entry of `GET _snapshot/<name>`: {"type", "settings"}) differs
    from the `wanted` one ({"type", "settings"}, the plan's), as `key: registered -> planned` lines; empty when
    they match. Values compare as the strings Elasticsearch returns, case-insensitively; a setting only the
    registration has differs unless it holds the default (`DEFAULTS`); a secret setting is compared only when
    both carry it, and its value is never shown."""
    differences = []
    if current.get("type") != wanted["type"]:
        differences.append(f"type: {current.get('type')} -> {wanted['type']}")
    have, want = current.get("settings") or {}, wanted["settings"]
    for key in sorted(have.keys() | want.keys()):
        if key in SECRET_SETTINGS and (key not in have or key not in want):
            continue
        if key in have and key in want and str(have[key]).lower() == str(want[key]).lower():
            continue
        if key not in want and str(have[key]).lower() == DEFAULTS.get(key):
            continue
        differences.append(f"{key}: {_shown(have, key)} -> {_shown(want, key)}")
    return differences


def foreign_registration(cluster: str, name: str, current: Mapping[str, Any], differences: list[str]) -> Problem:
    """The refusal of a registration `name` on `cluster` that migrator did not make and whose settings
    differ from the plan's (`differences`, from `registration_differences`): changing it would re-point or
    re-configure the user's own repository (a backup or SLM target, a read-only one)."""
    settings = current.get("settings") or {}
    location = repository_location(str(current.get("type", "")), settings)
    where = "/".join(part for part in location if part) if location else "no bucket or location"
    if settings.get("endpoint"):
        where += f" via {settings['endpoint']}"
    return Problem(
        "repository.name",
        f"the {cluster} already has repository {name!r} ({current.get('type')}, at {where}), not registered by "
        f"this migration, with other settings than the plan's ({'; '.join(differences)}); migrator never "
        "changes a registration it did not make",
        f"choose another repository.name, or make the plan's repository settings match that registration, or "
        f"unregister it (DELETE _snapshot/{name}) if it is no longer used",
    )


def foreign_registration_problems(spec: MigrationSpec, facts: Facts, owned: Collection[str] = ()) -> list[Problem]:
    """`repository.name` registered on the source or the destination with settings other than the plan's,
    unless this migration made that registration (`owned`: the clusters whose registration the run's ledger
    records, see `Ledger.record_repository`): a refusal naming the cluster, its location and the differences."""
    name, problems = spec.repository.name, []
    for cluster, found in (("source", facts.source), ("destination", facts.destination)):
        current = found.repositories.get(name)
        if current is None or cluster in owned:
            continue
        wanted = {"type": spec.repository.type, "settings": planned_settings(spec, cluster)}
        differences = registration_differences(current, wanted)
        if differences:
            problems.append(foreign_registration(cluster, name, current, differences))
    return problems


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
