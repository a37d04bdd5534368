"""Which index templates travel with the data, and how they look on the destination (pure, no I/O).

Place in the flow: discovery (`template_facts`) -> this module (called by the planner) -> the step
`metadata.templates` (`migrator.steps.metadata_templates`), which sends exactly the `TemplateMove`s
built here. A snapshot carries templates only inside the global state, which migrator leaves off
(it would also overwrite the destination's persistent settings), so templates go the reviewable way:

- selection (`metadata.templates`): by default the legacy (`_template`) and composable
  (`_index_template`) templates whose patterns match a migrated index, with the component templates
  (`_component_template`) they compose; or the listed names; or none;
- transformation for the destination's version, each change named: 5.x `template` -> `index_patterns`;
  mapping types removed on 7.x+ (one type -> typeless, several refused); settings the destination no
  longer accepts dropped (a warning each); legacy kept legacy unless `metadata.legacy_as: composable`;
- conflicts with the destination: the same name and an equal body (after normalising what Elasticsearch
  adds) is skipped; another body is refused or handled as `metadata.if_exists` says; a destination
  template that would win over a moved one (higher priority, or composable over legacy) is a warning.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from migrator.clients.es import Version
from migrator.spec import MetadataSpec, Problem
from migrator.template_facts import COMPOSABLE_SINCE

PATHS = {"legacy": "_template", "composable": "_index_template", "component": "_component_template"}
# The keys of a mapping's root (anything else at the root of a 5.x/6.x mapping is a mapping type).
ROOT_PARAMETERS = frozenset(
    {
        "properties", "dynamic", "dynamic_templates", "_source", "_routing", "_meta", "date_detection",
        "numeric_detection", "dynamic_date_formats", "_field_names", "_all", "enabled", "runtime", "_size",
        "_data_stream_timestamp", "subobjects", "_parent", "_timestamp", "_ttl",
    }
)  # fmt: skip
# Index settings a destination major refuses in a template, from Elasticsearch's breaking-change notes,
# checked on the testbed: 7.10 refuses index.mapper.dynamic ("removed after version 6.0.0"; 7.17 takes
# it again, deprecated), 8.19 and 9.5 refuse it and index.force_memory_term_dictionary ("unknown setting").
REMOVED_SETTINGS: dict[int, frozenset[str]] = {
    7: frozenset(
        {"index.mapper.dynamic", "index.optimize_auto_generated_id", "index.percolator.map_unmapped_fields_as_string"}
    ),
    8: frozenset({"index.mapper.dynamic", "index.force_memory_term_dictionary"}),
}
# ILM's settings exist only where ILM does (the integ-test distributions refuse them as unknown).
ILM_SETTINGS = "index.lifecycle."
# What a destination adds to a stored template that the source's body does not say.
ADDED_BY_DESTINATION = frozenset({"created_date", "created_date_millis", "modified_date", "modified_date_millis"})


@dataclass(frozen=True)
class TemplateMove:
    """One template the step puts on the destination: `PUT {path}` with `body` (built once, here)."""

    kind: str  # legacy | composable | component: as it is put on the destination
    name: str
    body: dict[str, Any]
    source_kind: str
    changes: tuple[str, ...] = ()
    replaces: bool = False  # a template of that name with another body is there (metadata.if_exists: overwrite)

    @property
    def path(self) -> str:
        return f"{PATHS[self.kind]}/{self.name}"

    def to_params(self) -> dict[str, Any]:
        return {**asdict(self), "changes": list(self.changes)}


@dataclass
class TemplatePlan:
    """What the planner adds: the moves (components first), refusals, and the notes of the dry run."""

    moves: list[TemplateMove] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def patterns_of(kind: str, body: dict[str, Any]) -> list[str]:
    """The index patterns of a template body (5.x legacy templates have one `template` string)."""
    if kind == "component":
        return []
    patterns = body.get("index_patterns", body.get("template") if kind == "legacy" else None) or []
    return [patterns] if isinstance(patterns, str) else list(patterns)


def overlaps(first: list[str], second: list[str], names: list[str]) -> bool:
    """Whether two pattern lists can match one index: one pattern matches the other, or both match a name."""
    for a in first:
        for b in second:
            if _wildcard(a).match(b) or _wildcard(b).match(a):
                return True
            if any(_wildcard(a).match(n) and _wildcard(b).match(n) for n in names):
                return True
    return False


def _text(value: Any) -> str:
    """A setting's value as Elasticsearch answers it: `true`, not `True`."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def flat_settings(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Settings as flat `index.*` keys with string values (how Elasticsearch stores and answers them)."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(flat_settings(value, name))
        else:
            flat[name] = [_text(v) for v in value] if isinstance(value, list) else _text(value)
    return {key if key.startswith("index.") else f"index.{key}": value for key, value in flat.items()}


def untyped(mappings: dict[str, Any], name: str, destination: Version) -> tuple[dict[str, Any], list[str], str]:
    """Mappings without their mapping type for a 7.x+ destination: (mappings, changes, refusal or "").
    Several types are refused from 6.x on (6.0 allows one type per index, 7.0 none)."""
    types = [key for key, value in (mappings or {}).items() if key not in ROOT_PARAMETERS and isinstance(value, dict)]
    if destination.es_major < 6 or not types:
        return mappings, [], ""
    if len(types) > 1:
        return (
            mappings,
            [],
            (
                f"template {name!r} has {len(types)} mapping types ({', '.join(sorted(types))}); Elasticsearch "
                f"{destination.es_major}.x has one mapping per index"
            ),
        )
    if destination.es_major < 7:
        return mappings, [], ""
    body = dict(mappings[types[0]])
    changes = [f"mapping type {types[0]!r} removed (typeless on {destination})"]
    if "_all" in body:
        del body["_all"]
        changes.append("`_all` removed (gone since 7.0)")
    return body, changes, ""


def accepted_settings(
    settings: dict[str, Any], source: Version, destination: Version, ilm: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """The settings the destination accepts (`ilm`: whether it has ILM), and the names of those dropped."""
    removed = set().union(
        *(REMOVED_SETTINGS.get(m, frozenset()) for m in range(source.es_major + 1, destination.es_major + 1))
    )
    flat = flat_settings(settings)
    dropped = sorted(key for key in flat if key in removed or (not ilm and key.startswith(ILM_SETTINGS)))
    return {key: value for key, value in flat.items() if key not in dropped}, dropped


def transformed(
    kind: str, name: str, body: dict[str, Any], source: Version, destination: Version, legacy_as: str, ilm: bool = True
) -> tuple[TemplateMove | None, list[str], str]:
    """The move for one source template: (move or None when refused, warnings, refusal or ""). `ilm`: whether
    the destination has ILM (without it, `index.lifecycle.*` settings are unknown there)."""
    changes: list[str] = []
    warnings: list[str] = []
    inner = body if kind == "legacy" else body.get("template", {})
    mappings, mapping_changes, refusal = untyped(inner.get("mappings") or {}, name, destination)
    if refusal:
        return None, [], refusal
    changes += mapping_changes
    settings, dropped = accepted_settings(inner.get("settings") or {}, source, destination, ilm)
    warnings += [
        f"template {name!r}: setting {key} dropped (unknown to the destination, Elasticsearch {destination})"
        for key in dropped
    ]
    # A composable or component template's `template` may hold more than these (8.11+: `lifecycle`): kept.
    kept = {} if kind == "legacy" else {k: v for k, v in inner.items() if k not in ("settings", "mappings", "aliases")}
    content = kept | {
        k: v for k, v in (("settings", settings), ("mappings", mappings), ("aliases", inner.get("aliases"))) if v
    }
    target_kind = kind
    if kind == "legacy":
        patterns = patterns_of(kind, body)
        if "template" in body and "index_patterns" not in body:
            changes.append("5.x `template` -> `index_patterns`")
        if legacy_as == "composable" and destination >= COMPOSABLE_SINCE:
            target_kind = "composable"
            priority = int(body.get("order") or 0)
            new = {"index_patterns": patterns, "template": content, "priority": priority}
            changes.append(f"legacy template converted to composable (order {priority} -> priority {priority})")
        else:
            new = {"index_patterns": patterns, "order": int(body.get("order") or 0), **content}
        if body.get("version") is not None:
            new["version"] = body["version"]
    else:
        new = {key: value for key, value in body.items() if key not in ADDED_BY_DESTINATION and key != "template"}
        new["template"] = content
    return TemplateMove(target_kind, name, new, kind, tuple(changes)), warnings, ""


def normalised(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """A template body as comparable: flat string settings, no mapping type wrapper, defaults and what the
    destination adds removed."""
    copy = {
        key: value for key, value in body.items() if key not in ADDED_BY_DESTINATION and value not in (None, [], {})
    }
    inner = copy if kind == "legacy" else dict(copy.get("template") or {})
    if inner.get("settings"):
        inner["settings"] = flat_settings(inner["settings"])
    mappings = inner.get("mappings") or {}
    if len(mappings) == 1 and "_doc" in mappings:
        inner["mappings"] = mappings["_doc"]
    inner = {key: value for key, value in inner.items() if value not in (None, [], {})}
    if kind == "legacy":
        inner["index_patterns"] = sorted(patterns_of(kind, body))
        inner.pop("template", None)
        inner["order"] = int(body.get("order") or 0)
        return inner
    if inner:
        copy["template"] = inner
    else:
        copy.pop("template", None)
    if kind == "composable":
        copy["index_patterns"] = sorted(patterns_of(kind, body))
        if not copy.get("priority"):
            copy.pop("priority", None)
    return copy


def _short(body: dict[str, Any], limit: int = 400) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _selected(
    spec: MetadataSpec, templates: dict[str, dict[str, Any]], indices: list[str]
) -> tuple[list[tuple[str, str]], list[Problem], list[str]]:
    """(kind, name) of the legacy and composable templates to move, problems, notes."""
    candidates = [(kind, name) for kind in ("composable", "legacy") for name in sorted(templates.get(kind, {}))]
    problems: list[Problem] = []
    notes: list[str] = []
    if isinstance(spec.templates, list):
        chosen = []
        for position, pattern in enumerate(spec.templates):
            matched = [c for c in candidates if _wildcard(pattern).match(c[1])]
            if not matched:
                problems.append(
                    Problem(
                        f"metadata.templates[{position}]",
                        f"{pattern!r} names no legacy or composable template on the source",
                        "correct the name (GET _template, GET _index_template on the source) or remove it",
                    )
                )
            chosen += [c for c in matched if c not in chosen]
        return chosen, problems, notes
    chosen = []
    for kind, name in candidates:
        body = templates[kind][name]
        if not any(_wildcard(p).match(index) for p in patterns_of(kind, body) for index in indices):
            continue
        if name.startswith(".") or (body.get("_meta") or {}).get("managed"):
            notes.append(f"template {name!r} left out: Elasticsearch manages it (each cluster has its own)")
        elif body.get("data_stream") is not None:
            notes.append(f"template {name!r} left out: it makes data streams, which this migration does not move")
        else:
            chosen.append((kind, name))
    return chosen, problems, notes


def _conflict(move: TemplateMove, existing: dict[str, Any], spec: MetadataSpec) -> tuple[str, Problem | None]:
    """What to do with a move whose name the destination already has: skip (equal), keep (the destination's,
    `if_exists: skip`), replace (`if_exists: overwrite`) or refuse (`if_exists: fail`, with the problem)."""
    ours, theirs = normalised(move.kind, move.body), normalised(move.kind, existing)
    if ours == theirs:
        return "skip", None
    if spec.if_exists == "overwrite":
        return "replace", None
    if spec.if_exists == "skip":
        return "keep", None
    differing = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    return "refuse", Problem(
        "metadata.if_exists",
        f"{PATHS[move.kind]}/{move.name} exists on the destination with another body (differs in "
        f"{', '.join(differing)}): source (as it would be put) {_short(ours)}; destination {_short(theirs)}",
        "set metadata.if_exists: skip (keep the destination's) or overwrite (replace it; cancel and rollback put "
        "it back), or leave the template out with an explicit metadata.templates list",
    )


def _rivals(move: TemplateMove, destination: dict[str, dict[str, Any]], names: list[str]) -> list[str]:
    """Destination templates (of other names) that would win over `move` for an index both match."""
    ours = patterns_of(move.kind, move.body)
    rank = int(move.body.get("priority" if move.kind == "composable" else "order") or 0)
    found = []
    for kind in ("composable", "legacy"):
        for name, body in sorted(destination.get(kind, {}).items()):
            if name == move.name or not overlaps(ours, patterns_of(kind, body), names):
                continue
            theirs = int(body.get("priority" if kind == "composable" else "order") or 0)
            if kind == "composable" and move.kind == "legacy":
                found.append(f"composable {name!r} (a composable template always wins over a legacy one)")
            elif kind == move.kind and theirs > rank:
                found.append(
                    f"{kind} {name!r} with {'priority' if kind == 'composable' else 'order'} {theirs} > {rank}"
                )
    return found


def plan_templates(
    spec: MetadataSpec,
    source: dict[str, Any],
    destination: dict[str, Any],
    versions: tuple[str, str],
    indices: list[str],
) -> TemplatePlan:
    """The template moves of a plan. `source`/`destination`: the `metadata` facts of each cluster;
    `versions`: (source, destination) versions; `indices`: the migrated indices' source and target names."""
    plan = TemplatePlan()
    if spec.templates == "none":
        return plan
    src_version, dst_version = Version.parse(versions[0]), Version.parse(versions[1])
    templates = source.get("templates", {})
    on_destination = destination.get("templates", {})
    chosen, plan.problems, plan.warnings = _selected(spec, templates, indices)
    components: dict[str, str] = {}  # component template -> the first composable template composing it
    for kind, name in chosen:
        for component in templates[kind][name].get("composed_of", []) if kind == "composable" else []:
            components.setdefault(component, name)
    for kind, name in [("component", c) for c in components] + chosen:
        body = templates.get(kind, {}).get(name)
        if body is None:
            plan.warnings.append(
                f"template {components[name]!r} composes component template {name!r}, which the source lacks"
            )
            continue
        ilm = destination.get("policies") is not None
        move, warnings, refusal = transformed(kind, name, body, src_version, dst_version, spec.legacy_as, ilm)
        plan.warnings += warnings
        if move is None:
            fix = "merge the types into one on the source, or leave the template out with a metadata.templates list"
            plan.problems.append(Problem("metadata.templates", refusal, fix))
            continue
        existing = on_destination.get(move.kind, {}).get(name)
        action, problem = ("create", None) if existing is None else _conflict(move, existing, spec)
        if problem is not None:
            plan.problems.append(problem)
            continue
        if action == "skip":
            plan.warnings.append(f"{move.path}: already on the destination with an equal body; not sent")
            continue
        if action == "keep":
            plan.warnings.append(f"{move.path}: the destination's differs and is kept (metadata.if_exists: skip)")
            continue
        if action == "replace":
            move = TemplateMove(move.kind, move.name, move.body, move.source_kind, move.changes, replaces=True)
            plan.warnings.append(
                f"{move.path}: the destination's differs and is overwritten (metadata.if_exists: overwrite); its "
                "body is recorded in the state file and put back by cancel or rollback"
            )
        plan.warnings += [f"{move.path}: {change}" for change in move.changes]
        plan.warnings += [
            f"{move.path}: the destination's {rival} would win" for rival in _rivals(move, on_destination, indices)
        ]
        plan.moves.append(move)
    return plan


def template_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """What changed in the template moves (`TemplateMove.to_params()` each) between a saved plan and a fresh
    discovery: templates added, gone, or with another body or conflict decision."""
    old = {PATHS[item["kind"]] + "/" + item["name"]: item for item in before}
    new = {PATHS[item["kind"]] + "/" + item["name"]: item for item in after}
    changes = [f"{path} would no longer be put on the destination" for path in sorted(old.keys() - new.keys())]
    changes += [f"{path} would now be put on the destination too" for path in sorted(new.keys() - old.keys())]
    for path in sorted(old.keys() & new.keys()):
        if old[path]["body"] != new[path]["body"]:
            changes.append(f"{path} would be put with another body (the source's template changed)")
        elif old[path]["replaces"] != new[path]["replaces"]:
            changes.append(f"{path}: the destination's template of that name changed")
    return changes
