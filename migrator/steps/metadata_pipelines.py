"""Put the ingest pipelines and ILM policies the migration names on the destination (step `metadata.pipelines`).

Place in the flow: planner (`migrator.pipelines` builds each `PUT` once, as data) -> this step -> the
destination, after preflight and before `metadata.templates` and every restore (a restored index naming a
missing pipeline refuses every write). `observe` reads each back: the same (see `pipelines.same`) is done;
missing is put; another body is overwritten only under `metadata.if_exists: overwrite` (else left or refused).

As for templates, what the step changes is recorded before it acts, in its `acting` checkpoint, one key per
pipeline or policy (`pipeline:<path>`: `{"created": true, "kind", "put"}` or `{"previous": body, ...}`);
later observations only add keys, so a resumed run keeps the body it overwrote. `undo_pipelines` (cancel,
rollback) deletes what the step created and puts back what it overwrote, nothing else; one changed since
migrator put it, or one the destination refuses to delete (400: 7.17, 8.19 and 9.5 refuse to delete a
pipeline an index names, 7.10 does not; any 400 to the DELETE of a policy is taken the same way), is kept
and named, and after a rollback its record stays for a later undo.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from migrator.clients.es import EsClient, EsError, Request, build_path
from migrator.dag import StepKind
from migrator.pipelines import PATHS, PipelineMove, put_body, same
from migrator.planner import METADATA_PIPELINES
from migrator.state import StateStore
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed

RECORD = "pipeline:"
# What GET answers for a pipeline or policy that is not there: 404 (an empty `{}` on 7.17+).
ABSENT = 404


def read_request(kind: str, name: str) -> ConsoleRequest:
    """`GET _ingest/pipeline/<name>` or `GET _ilm/policy/<name>` on the destination."""
    return ConsoleRequest("destination", "GET", build_path(*PATHS[kind].split("/"), name).lstrip("/"))


def put_request(move: PipelineMove) -> ConsoleRequest:
    """`PUT <path>` with the move's body: what `act` sends and `describe` shows."""
    return ConsoleRequest("destination", "PUT", build_path(*move.path.split("/")).lstrip("/"), move.body)


def current(client: EsClient, kind: str, name: str) -> dict[str, Any] | None:
    """The destination's pipeline or policy `name` as GET answers it (see `pipelines.put_body`), or None."""
    status, answer = client.request("GET", read_request(kind, name).sent_path, ok=(200, ABSENT))
    return answer.get(name) if status == 200 and isinstance(answer, dict) else None


def record_key(move: PipelineMove) -> str:
    return RECORD + move.path


class MovePipelines(Step):
    kind = StepKind.METADATA_PIPELINES
    title = "Put the ingest pipelines and ILM policies the migrated indices and templates name on the destination"
    waits_for = "nothing: a pipeline or policy is in force once put"

    @property
    def moves(self) -> list[PipelineMove]:
        return [PipelineMove.from_params(item) for item in self.params["moves"]]

    def describe(self) -> list[ConsoleRequest]:
        return [put_request(move) for move in self.moves]

    def checks(self) -> list[ConsoleRequest]:
        return [read_request(move.kind, move.name) for move in self.moves]

    def _to_put(self) -> tuple[list[PipelineMove], dict[str, Any], list[str]]:
        """The moves still to send, the record of what sending them changes, and the ones left as they are."""
        to_put, record, kept = [], {}, []
        for move in self.moves:
            now = current(self.ctx.destination, move.kind, move.name)
            if now is None:
                to_put.append(move)
                record[record_key(move)] = {"created": True, "kind": move.kind, "put": move.body}
            elif same(move.kind, now, move.body):
                continue
            elif self.params["if_exists"] == "overwrite":
                to_put.append(move)
                record[record_key(move)] = {"previous": put_body(move.kind, now), "kind": move.kind, "put": move.body}
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
            return Observation(True, summary=f"{len(self.moves)} pipeline(s) and policy(ies) in place{left}")
        return Observation(False, summary=f"to put: {', '.join(m.path for m in to_put)}{left}", detail=record)

    def act(self) -> None:
        for move in self._to_put()[0]:
            request = put_request(move)
            self.ctx.destination.request(request.method, request.sent_path, request.body)


def undo_order(detail: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(path, record) of the step's checkpoint `detail` in the order an undo takes them: by path."""
    return sorted((key[len(RECORD) :], value) for key, value in detail.items() if key.startswith(RECORD))


def undo_request(path: str, record: dict[str, Any]) -> Request | None:
    """The request that undoes one record: `DELETE <path>` of a pipeline or policy the step created, `PUT
    <path>` with the body it overwrote (no body when `previous` is None: unknown before the run, as in the
    dry run); None for a record of neither."""
    if record.get("created"):
        return Request("DELETE", build_path(*path.split("/")))
    if "previous" not in record:
        return None
    return Request("PUT", build_path(*path.split("/")), record["previous"])


def undo_plan(client: EsClient, detail: dict[str, Any]) -> tuple[list[tuple[str, Request]], list[str]]:
    """What undoing the step's checkpoint `detail` sends, read from the destination and sending nothing:
    (path, request) in `undo_order` (see `undo_request`), and those kept, each with why (changed on the
    destination since the step put it: someone else's now)."""
    planned: list[tuple[str, Request]] = []
    kept: list[str] = []
    for path, record in undo_order(detail):
        kind, name = record["kind"], path.rsplit("/", 1)[1]
        now = current(client, kind, name)
        if now is not None and not same(kind, now, record["put"]):
            kept.append(f"{path} (changed on the destination since migrator put it)")
            continue
        request = undo_request(path, record)
        if request is not None:
            planned.append((path, request))
    return planned, kept


def undo_pipelines(client: EsClient, detail: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Delete the pipelines and policies the step created and put back the bodies it overwrote, from its
    checkpoint `detail`: the requests of `undo_plan` (which `migrator rollback --dry-run` shows). Kept and
    named besides: one the destination refuses to delete (an index uses it). Returns (the paths of each,
    the records still to undo later: those refused)."""
    planned, kept = undo_plan(client, detail)
    report: dict[str, list[str]] = {"pipelines_deleted": [], "pipelines_restored": [], "pipelines_kept": kept}
    remaining: dict[str, Any] = {}
    for path, request in planned:
        if request.method == "PUT":
            client.request(request.method, request.path, request.body)
            report["pipelines_restored"].append(path)
            continue
        try:
            client.request(request.method, request.path, ok=(200, ABSENT))
        except EsError as exc:
            if exc.status != 400:
                raise
            report["pipelines_kept"].append(f"{path} (the destination refuses to delete it: {exc})")
            remaining[RECORD + path] = detail[RECORD + path]
            continue
        report["pipelines_deleted"].append(path)
    return report, remaining


def undo_recorded(client: EsClient, state: StateStore) -> dict[str, list[str]]:
    """`undo_pipelines` on the step's checkpoint; then the step is to run again (the next `apply` puts
    back what was undone), and the records of what was kept stay in its checkpoint (`pending`)."""
    checkpoint = state.get_checkpoint(METADATA_PIPELINES)
    report, remaining = undo_pipelines(client, checkpoint.detail if checkpoint else {})
    state.reset([METADATA_PIPELINES])
    if remaining:
        state.checkpoint(METADATA_PIPELINES, "pending", remaining)
    return report


def planned(graph: nx.DiGraph) -> list[dict[str, Any]]:
    """The pipeline and policy moves of a plan's DAG (`PipelineMove.to_params()` each); empty without the step."""
    return graph.nodes[METADATA_PIPELINES]["params"]["moves"] if METADATA_PIPELINES in graph else []


def planned_undo(graph: nx.DiGraph) -> list[ConsoleRequest]:
    """What `undo_pipelines` sends for a plan's moves, for the dry run's cancel advice: the same `undo_order`
    and `undo_request` on the records the step would write (created; or overwritten, whose body the state
    file records before overwriting, unknown before the run)."""
    moves = map(PipelineMove.from_params, planned(graph))
    records = {record_key(move): {"previous": None} if move.replaces else {"created": True} for move in moves}
    requests = [undo_request(path, record) for path, record in undo_order(records)]
    return [ConsoleRequest("destination", r.method, r.path.lstrip("/"), r.body) for r in requests if r is not None]
