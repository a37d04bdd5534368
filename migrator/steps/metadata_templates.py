"""Put the migrated index templates on the destination, before any restore (step `metadata.templates`).

Place in the flow: planner (`migrator.templates` builds each `PUT` once, as data) -> this step ->
the destination. It runs before the restores so that no index the cutover's writers create afterwards
lacks its template. `observe` reads each template back: equal (after normalising) is done; missing is
put; another body is overwritten only under `metadata.if_exists: overwrite` (else left or refused).

What the step changes is recorded before it acts: the executor stores the observation's detail in the
`acting` checkpoint, one key per template (`template:<path>`: `{"created": true}` or `{"previous":
body}`), and later observations only add keys, so a resumed run never loses the body it overwrote.
`undo_templates` (called by `cancel` and `rollback`) deletes what the step created and puts back
what it overwrote, nothing else. A rollback then forgets the step's checkpoint, so the next
`apply` puts the templates back before `apply --phase cutover` can run again.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from migrator.clients.es import EsClient, Request, build_path
from migrator.dag import StepKind
from migrator.planner import METADATA_TEMPLATES
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed
from migrator.templates import ADDED_BY_DESTINATION, PATHS, TemplateMove, normalised

RECORD = "template:"
LISTING = {
    "composable": ("index_templates", "index_template"),
    "component": ("component_templates", "component_template"),
}


def template_read(kind: str, name: str) -> ConsoleRequest:
    """`GET <_template|_index_template|_component_template>/<name>` on the destination."""
    return ConsoleRequest("destination", "GET", build_path(PATHS[kind], name).lstrip("/"))


def put_request(move: TemplateMove) -> ConsoleRequest:
    """`PUT <path>` with the move's body: what `act` sends and `describe` shows."""
    return ConsoleRequest("destination", "PUT", build_path(*move.path.split("/")).lstrip("/"), move.body)


def current_template(client: EsClient, kind: str, name: str) -> dict[str, Any] | None:
    """The destination's template `name` of `kind` (legacy | composable | component) as GET answers it, or None."""
    status, answer = client.request("GET", template_read(kind, name).sent_path, ok=(200, 404))
    if status == 404:
        return None
    if kind == "legacy":
        return answer.get(name)
    key, body_key = LISTING[kind]
    return next((item[body_key] for item in answer.get(key, []) if item.get("name") == name), None)


def moved_templates(graph: nx.DiGraph) -> list[dict[str, Any]]:
    """The template moves of a plan's DAG (`TemplateMove.to_params()` each); empty without the step."""
    return graph.nodes[METADATA_TEMPLATES]["params"]["templates"] if METADATA_TEMPLATES in graph else []


def record_key(move: TemplateMove) -> str:
    return RECORD + move.path


class MoveTemplates(Step):
    kind = StepKind.METADATA_TEMPLATES
    title = "Put the migrated index templates on the destination (component, composable, legacy)"
    waits_for = "nothing: a template is in force once put, for the indices created after it"

    @property
    def moves(self) -> list[TemplateMove]:
        return [TemplateMove(**{**item, "changes": tuple(item["changes"])}) for item in self.params["templates"]]

    def describe(self) -> list[ConsoleRequest]:
        return [put_request(move) for move in self.moves]

    def checks(self) -> list[ConsoleRequest]:
        return [template_read(move.kind, move.name) for move in self.moves]

    def _to_put(self) -> tuple[list[TemplateMove], dict[str, Any], list[str]]:
        """The moves still to send, the record of what sending them changes, and the ones left as they are."""
        to_put, record, kept = [], {}, []
        for move in self.moves:
            current = current_template(self.ctx.destination, move.kind, move.name)
            if current is None:
                to_put.append(move)
                record[record_key(move)] = {"created": True, "kind": move.kind, "put": move.body}
            elif normalised(move.kind, current) == normalised(move.kind, move.body):
                continue
            elif self.params["if_exists"] == "overwrite":
                to_put.append(move)
                record[record_key(move)] = {"previous": current, "kind": move.kind, "put": move.body}
            elif self.params["if_exists"] == "skip":
                kept.append(move.path)
            else:
                raise StepFailed(
                    f"{move.path} exists on the destination with another body than planned (created or changed since "
                    "the dry run); migrator does not overwrite it. Review it, then set metadata.if_exists: skip or "
                    "overwrite and run again with --replan, or delete it on the destination"
                )
        return to_put, record, kept

    def observe(self) -> Observation:
        to_put, record, kept = self._to_put()
        left = f"; the destination's own kept: {', '.join(kept)}" if kept else ""
        if not to_put:
            return Observation(True, summary=f"{len(self.moves)} template(s) in place{left}")
        return Observation(False, summary=f"to put: {', '.join(m.path for m in to_put)}{left}", detail=record)

    def act(self) -> None:
        for move in self._to_put()[0]:
            request = put_request(move)
            self.ctx.destination.request(request.method, request.sent_path, request.body)


def undo_order(detail: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(path, record) of the step's checkpoint `detail` in the order an undo takes them: index templates
    (legacy, composable) first by path, then the component templates they compose by path."""
    records = sorted((key[len(RECORD) :], value) for key, value in detail.items() if key.startswith(RECORD))
    return sorted(records, key=lambda item: item[0].startswith(PATHS["component"] + "/"))


def undo_request(path: str, record: dict[str, Any]) -> Request | None:
    """The request that undoes one record: `DELETE <path>` of a template the step created, `PUT <path>`
    with the body it overwrote (less what the destination adds; no body when `previous` is None: unknown
    before the run, as in the dry run); None for a record of neither."""
    if record.get("created"):
        return Request("DELETE", build_path(*path.split("/")))
    if "previous" not in record:
        return None
    previous = record["previous"]
    body = None if previous is None else {k: v for k, v in previous.items() if k not in ADDED_BY_DESTINATION}
    return Request("PUT", build_path(*path.split("/")), body)


def undo_plan(client: EsClient, detail: dict[str, Any]) -> tuple[list[tuple[str, Request]], list[str]]:
    """What undoing the step's checkpoint `detail` sends, read from the destination and sending nothing:
    (path, request) in `undo_order` (see `undo_request`), and the templates kept, each with why. A template
    changed on the destination since the step put it (its body is no longer the one recorded as put) is
    someone else's now: kept, and so are the component templates it composes."""
    planned: list[tuple[str, Request]] = []
    kept: list[str] = []
    composed: set[str] = set()  # component templates a kept index template still uses
    for path, record in undo_order(detail):
        kind, put, name = record.get("kind"), record.get("put"), path.rsplit("/", 1)[1]
        if path.startswith(PATHS["component"] + "/") and name in composed:
            kept.append(f"{path} (composed by a template kept on the destination)")
            continue
        if kind and put is not None:  # records of runs before migrator noted what it put have neither
            now = current_template(client, kind, name)
            if now is not None and normalised(kind, now) != normalised(kind, put):
                kept.append(f"{path} (changed on the destination since migrator put it)")
                composed.update(now.get("composed_of", []))
                continue
        request = undo_request(path, record)
        if request is not None:
            planned.append((path, request))
    return planned, kept


def undo_templates(client: EsClient, detail: dict[str, Any]) -> dict[str, list[str]]:
    """Delete the templates the step created and put back the bodies it overwrote, from its checkpoint
    `detail`: the requests of `undo_plan` (which `migrator rollback --dry-run` shows). Returns the paths
    deleted, restored and kept."""
    planned, kept = undo_plan(client, detail)
    report: dict[str, list[str]] = {"templates_deleted": [], "templates_restored": [], "templates_kept": kept}
    for path, request in planned:
        client.request(
            request.method, request.path, request.body, ok=(200, 404) if request.method == "DELETE" else (200,)
        )
        report["templates_deleted" if request.method == "DELETE" else "templates_restored"].append(path)
    return report


def undo_requests(params: dict[str, Any]) -> list[ConsoleRequest]:
    """What `undo_templates` sends for the node's planned moves, for the dry run's cancel advice: the same
    `undo_order` and `undo_request` on the records the step would write (created; or overwritten, whose
    body the state file records before overwriting, unknown before the run)."""
    moves = [TemplateMove(**{**item, "changes": tuple(item["changes"])}) for item in params["templates"]]
    planned = {record_key(move): {"previous": None} if move.replaces else {"created": True} for move in moves}
    requests = [undo_request(path, record) for path, record in undo_order(planned)]
    return [ConsoleRequest("destination", r.method, r.path.lstrip("/"), r.body) for r in requests if r is not None]
