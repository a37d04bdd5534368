"""Which ingest pipelines and ILM policies travel with the data, and how (pure, no I/O).

Place in the flow: discovery (`template_facts`: their bodies, the settings naming them, the destination's
ingest processors) -> this module (called by the planner after `migrator.templates`) -> the step
`metadata.pipelines` (`migrator.steps.metadata_pipelines`), which sends exactly the `PipelineMove`s built
here, before `metadata.templates` and every restore. Why: an index whose `index.default_pipeline` or
`index.final_pipeline` names a pipeline the cluster lacks refuses every write ("pipeline with id [x] does
not exist", seen on 7.17, 8.19 and 9.5), so a restored index, or one a moved template makes after the
cutover, would take no document until the pipeline is there.

- named: the pipelines the migrated indices (their settings on the source) and the moved templates name
  (`index.default_pipeline`, `index.final_pipeline`), with those their `pipeline` processors call (a
  literal name; a `{{template}}` cannot be followed), and the ILM policies they name (`index.lifecycle.name`);
  `metadata.pipelines: none` / `metadata.policies: none` leaves them out;
- left behind, each named in the dry run with why: a cluster without the API (the integ-test distributions
  have no ILM; OpenSearch has ISM, not ILM), one Elasticsearch manages (`_meta.managed`: each cluster has
  its own), one the source lacks too; a pipeline with processors some destination node lacks could not be
  put: the plan is refused (`metadata.pipelines`);
- conflicts as for templates: an equal body on the destination (a pipeline less the dates 9.x adds; a
  policy holding at least what the source's holds, as ILM fills in defaults) is not sent; another body is
  refused, kept or overwritten as `metadata.if_exists` says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from migrator.clients.es import Version
from migrator.spec import MetadataSpec, Problem
from migrator.templates import flat_settings

PATHS = {"pipeline": "_ingest/pipeline", "policy": "_ilm/policy"}
FEATURES = {"pipeline": "pipelines", "policy": "policies"}
WHAT = {"pipeline": "ingest pipeline", "policy": "ILM policy"}
# The index settings that name one, and what they name.
NAMING = {"index.default_pipeline": "pipeline", "index.final_pipeline": "pipeline", "index.lifecycle.name": "policy"}
NO_NAME = ("", "_none")
# What a cluster adds to a stored pipeline (9.x: the dates of its creation and last change).
ADDED_BY_CLUSTER = frozenset({"created_date", "created_date_millis", "modified_date", "modified_date_millis"})


@dataclass(frozen=True)
class PipelineMove:
    """One pipeline or policy the step puts on the destination: `PUT {path}` with `body` (built once, here)."""

    kind: str  # pipeline | policy
    name: str
    body: dict[str, Any]  # as PUT takes it: a pipeline's body; {"policy": ...} for a policy
    named_by: tuple[str, ...] = ()  # "index logs-1 (index.default_pipeline)", "_template/logs", "pipeline main"
    replaces: bool = False  # one of that name with another body is there (metadata.if_exists: overwrite)

    @property
    def path(self) -> str:
        return f"{PATHS[self.kind]}/{self.name}"

    def to_params(self) -> dict[str, Any]:
        return {**asdict(self), "named_by": list(self.named_by)}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PipelineMove:
        return cls(**{**params, "named_by": tuple(params["named_by"])})


@dataclass
class PipelinePlan:
    """What the planner adds: the moves (called pipelines first), refusals, and the notes of the dry run."""

    moves: list[PipelineMove] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def put_body(kind: str, stored: dict[str, Any]) -> dict[str, Any]:
    """The body `PUT` takes, from what GET answers: a pipeline less the dates a cluster adds; a policy's
    `policy` (GET _ilm/policy answers `{"version", "modified_date", "policy", "in_use_by"}`)."""
    if kind == "policy":
        return {"policy": stored.get("policy") or {}}
    return {key: value for key, value in stored.items() if key not in ADDED_BY_CLUSTER}


def _covers(theirs: Any, ours: Any) -> bool:
    """Whether `theirs` holds everything `ours` does (a dict may hold more: the defaults ILM fills in)."""
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and all(key in theirs and _covers(theirs[key], v) for key, v in ours.items())
    if isinstance(ours, list):
        return isinstance(theirs, list) and len(theirs) == len(ours) and all(map(_covers, theirs, ours))
    return str(theirs).lower() == str(ours).lower()


def same(kind: str, stored: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether a cluster's stored pipeline or policy (as GET answers it) is the one `body` puts."""
    if kind == "policy":
        return _covers(put_body(kind, stored)["policy"], body["policy"])
    return put_body(kind, stored) == body


def _processors(processors: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, configuration) of every processor of a list, with those nested in `on_failure` and `foreach`."""
    for processor in processors if isinstance(processors, list) else []:
        for kind, config in processor.items() if isinstance(processor, dict) else ():
            config = config if isinstance(config, dict) else {}
            yield kind, config
            yield from _processors(config.get("on_failure"))
            if kind == "foreach" and isinstance(config.get("processor"), dict):
                yield from _processors([config["processor"]])


def processor_types(body: dict[str, Any]) -> set[str]:
    """The processor types a pipeline body uses (its `on_failure` processors included)."""
    return {kind for part in ("processors", "on_failure") for kind, _ in _processors(body.get(part))}


def called_pipelines(body: dict[str, Any]) -> list[str]:
    """The pipelines a pipeline body's `pipeline` processors call by a literal name."""
    names = [
        str(config.get("name"))
        for part in ("processors", "on_failure")
        for kind, config in _processors(body.get(part))
        if kind == "pipeline" and config.get("name") and "{{" not in str(config.get("name"))
    ]
    return list(dict.fromkeys(names))


def _stored(facts: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """{name: stored body} of a cluster's pipelines or policies; None without the API. A state file written
    before the bodies were read holds names only: their bodies are None."""
    found = facts.get(FEATURES[kind])
    if found is None:
        return None
    return dict.fromkeys(found) if isinstance(found, list) else found


def _template_settings(move: dict[str, Any]) -> dict[str, Any]:
    body = move["body"]
    return flat_settings((body if move["kind"] == "legacy" else body.get("template") or {}).get("settings") or {})


def named(
    source: dict[str, Any], indices: list[str], templates: list[dict[str, Any]]
) -> dict[tuple[str, str], list[str]]:
    """(kind, name) -> what names it: the migrated `indices`' settings on the source, then the moved
    `templates` (`TemplateMove.to_params()` each), then, transitively, the source pipelines calling it."""
    found: dict[tuple[str, str], list[str]] = {}
    settings = source.get("index_settings", {})
    for index in indices:
        for setting, value in sorted(settings.get(index, {}).items()):
            if setting in NAMING and value not in NO_NAME:
                found.setdefault((NAMING[setting], value), []).append(f"index {index} ({setting})")
    for move in templates:
        for setting, value in sorted(_template_settings(move).items()):
            if setting in NAMING and value not in NO_NAME:
                path = {"legacy": "_template", "composable": "_index_template"}.get(move["kind"], "_component_template")
                found.setdefault((NAMING[setting], str(value)), []).append(f"{path}/{move['name']} ({setting})")
    pipelines = _stored(source, "pipeline") or {}
    queue = [name for kind, name in found if kind == "pipeline"]
    while queue:
        caller = queue.pop(0)
        for callee in called_pipelines(pipelines.get(caller) or {}):
            if ("pipeline", callee) not in found:
                queue.append(callee)
            found.setdefault(("pipeline", callee), []).append(f"pipeline {caller}")
    return found


def _in_order(found: dict[tuple[str, str], list[str]], source: dict[str, Any]) -> list[tuple[str, str]]:
    """Policies, then pipelines with each called pipeline before its callers (a cycle is left as found)."""
    pipelines = _stored(source, "pipeline") or {}
    ordered: list[tuple[str, str]] = sorted(key for key in found if key[0] == "policy")

    def visit(name: str, path: tuple[str, ...]) -> None:
        if ("pipeline", name) in ordered or name in path:
            return
        for callee in called_pipelines(pipelines.get(name) or {}):
            visit(callee, (*path, name))
        ordered.append(("pipeline", name))

    for kind, name in sorted(found):
        if kind == "pipeline":
            visit(name, ())
    return ordered


def _short(body: dict[str, Any], limit: int = 400) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _why_behind(
    kind: str, name: str, source: dict[str, Any], destination: dict[str, Any], versions: tuple[Version, Version]
) -> str | None:
    """Why the pipeline or policy cannot move (None when it can): no API on a side, not on the source,
    managed by Elasticsearch."""
    what = WHAT[kind]
    missing = [
        f"the {side} ({version})"
        for side, facts, version in (("source", source, versions[0]), ("destination", destination, versions[1]))
        if _stored(facts, kind) is None
    ]
    if missing:
        ism = " (OpenSearch manages lifecycles with ISM, which migrator does not move)"
        opensearch = kind == "policy" and any(v.opensearch for v in versions)
        return f"{' and '.join(missing)} {'have' if len(missing) > 1 else 'has'} no {what} API" + (
            ism if opensearch else ""
        )
    stored = (_stored(source, kind) or {}).get(name, False)
    if stored is False:
        return "the source lacks it too" + (
            " (an index naming a missing pipeline refuses writes on both clusters)" if kind == "pipeline" else ""
        )
    if stored is None:
        return "the discovery this run began with read no bodies: run `resume --replan`"
    meta = stored.get("_meta") if kind == "pipeline" else (stored.get("policy") or {}).get("_meta")
    if (meta or {}).get("managed"):
        return "Elasticsearch manages it (each cluster has its own)"
    return None


def plan_pipelines(
    spec: MetadataSpec,
    source: dict[str, Any],
    destination: dict[str, Any],
    versions: tuple[str, str],
    indices: list[str],
    templates: list[dict[str, Any]],
) -> PipelinePlan:
    """The pipeline and policy moves of a plan. `source`/`destination`: the `metadata` facts of each cluster;
    `versions`: (source, destination) versions; `indices`: the migrated source indices; `templates`: the
    template moves (`TemplateMove.to_params()` each)."""
    plan = PipelinePlan()
    found = named(source, indices, templates)
    parsed = (Version.parse(versions[0]), Version.parse(versions[1]))
    for kind, name in _in_order(found, source):
        what, by = WHAT[kind], ", ".join(found[(kind, name)])
        there = (_stored(destination, kind) or {}).get(name)
        chosen = (spec.pipelines if kind == "pipeline" else spec.policies) == "named"
        why = _why_behind(kind, name, source, destination, parsed) if chosen else f"metadata.{FEATURES[kind]}: none"
        if why is not None:
            if there is None:
                plan.warnings.append(f"{what} {name!r} (named by {by}) stays behind: {why}")
            continue
        move = PipelineMove(kind, name, put_body(kind, source[FEATURES[kind]][name]), tuple(found[(kind, name)]))
        lacking = sorted(processor_types(move.body) - set(destination.get("processors") or ()))
        if kind == "pipeline" and lacking and destination.get("processors") is not None:
            plan.problems.append(
                Problem(
                    "metadata.pipelines",
                    f"ingest pipeline {name!r} (named by {by}) uses processor(s) {', '.join(lacking)} that not every "
                    f"destination node has (all have: {', '.join(destination['processors']) or 'none'})",
                    "install the module or plugin providing them on every destination node, or set metadata.pipelines: "
                    "none and make the pipeline on the destination yourself before the cutover",
                )
            )
            continue
        if there is not None:
            if same(kind, there, move.body):
                plan.warnings.append(f"{move.path}: already on the destination with an equal body; not sent")
                continue
            if spec.if_exists == "skip":
                plan.warnings.append(f"{move.path}: the destination's differs and is kept (metadata.if_exists: skip)")
                continue
            if spec.if_exists == "fail":
                plan.problems.append(
                    Problem(
                        "metadata.if_exists",
                        f"{move.path} (named by {by}) exists on the destination with another body: source "
                        f"{_short(move.body)}; destination {_short(put_body(kind, there))}",
                        "set metadata.if_exists: skip (keep the destination's) or overwrite (replace it; cancel and "
                        f"rollback put it back), or metadata.{FEATURES[kind]}: none",
                    )
                )
                continue
            move = PipelineMove(kind, name, move.body, move.named_by, replaces=True)
            plan.warnings.append(
                f"{move.path}: the destination's differs and is overwritten (metadata.if_exists: overwrite); its "
                "body is recorded in the state file and put back by cancel or rollback"
            )
        plan.moves.append(move)
    return plan


def pipeline_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """What changed in the pipeline and policy moves (`PipelineMove.to_params()` each) between a saved plan
    and a fresh discovery: moves added, gone, or with another body or conflict decision."""
    old = {PATHS[item["kind"]] + "/" + item["name"]: item for item in before}
    new = {PATHS[item["kind"]] + "/" + item["name"]: item for item in after}
    changes = [f"{path} would no longer be put on the destination" for path in sorted(old.keys() - new.keys())]
    changes += [f"{path} would now be put on the destination too" for path in sorted(new.keys() - old.keys())]
    for path in sorted(old.keys() & new.keys()):
        if old[path]["body"] != new[path]["body"]:
            changes.append(f"{path} would be put with another body (the source's changed)")
        elif old[path]["replaces"] != new[path]["replaces"]:
            changes.append(f"{path}: the destination's of that name changed")
    return changes
