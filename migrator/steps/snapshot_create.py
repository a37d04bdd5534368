"""Create the snapshot of the selected indices; the next step follows it until it ends.

The snapshot name is fixed when the run begins and kept in the state file, so a resumed run finds
the snapshot it started instead of starting another. The create request is sent with
`wait_for_completion=true` from a background thread and held open until the snapshot ends (as
the minimal hand-run script does): the act returns as soon as the snapshot is accepted (visible
in `GET _snapshot/<repo>/<snapshot>`), and `snapshot.wait` learns of the end from the held
answer at once instead of one poll period late. A run that did not send it (a resume in a new
process) has no held request and polls.

A snapshot of that name is never adopted: the intent is recorded in the state before the request is
sent and the snapshot's uuid from the first answer that shows it (migrator.ownership); a snapshot of
the name that the ledger does not hold stops the step, naming `snapshot.name` and the fix.
"""

from __future__ import annotations

from typing import Any

from migrator import failpoints
from migrator.clients.es import EsError, build_path
from migrator.dag import StepKind
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepContext, StepFailed
from migrator.steps.stall import StallWatch

ACCEPT_POLL_MAX_S = 1.0


def snapshot_info(ctx: StepContext, snapshot: str) -> dict[str, Any] | None:
    """The snapshot as the source sees it, or None when it does not exist."""
    status, body = ctx.source.request("GET", build_path("_snapshot", ctx.repository, snapshot), ok=(200, 404))
    if status == 404:
        return None
    snapshots = body.get("snapshots") or []
    return snapshots[0] if snapshots else None


def not_ours(ctx: StepContext, snapshot: str, info: dict[str, Any]) -> StepFailed:
    """The refusal of a snapshot of our name that this migration did not take."""
    started = info.get("start_time") or info.get("start_time_in_millis") or "an unknown time"
    return StepFailed(
        f"snapshot {snapshot} already exists in repository {ctx.repository} (state {info.get('state')}, started "
        f"{started}, uuid {info.get('uuid')}) and this migration did not take it: migrator never adopts a snapshot "
        f"it did not take (its data may be older than the source's). Fix: set snapshot.name to a name not in the "
        f"repository (e.g. with {{date}}), then `migrator cancel PLAN` (it deletes nothing it did not make) and "
        f"`migrator apply PLAN`; or, if that snapshot is not needed, delete it "
        f"(DELETE _snapshot/{ctx.repository}/{snapshot}) and `migrator resume PLAN`"
    )


def claim_or_refuse(ctx: StepContext, snapshot: str, info: dict[str, Any]) -> None:
    """Record the uuid of the snapshot this run just took, or raise when the snapshot of that name is not ours."""
    if not ctx.ledger.claim_snapshot(ctx.repository, snapshot, info):
        raise not_ours(ctx, snapshot, info)


def snapshot_body(ctx: StepContext) -> dict[str, Any]:
    """The body of the create request: the plan's indices and snapshot options."""
    snapshot = ctx.spec.snapshot
    return {
        "indices": ",".join(move.source for move in ctx.plan.moves),
        "include_global_state": snapshot.include_global_state,
        "partial": snapshot.partial,
        "ignore_unavailable": snapshot.ignore_unavailable,
    }


def create_request(ctx: StepContext, snapshot: str) -> ConsoleRequest:
    """`PUT _snapshot/<repo>/<snapshot>?wait_for_completion=true` with `snapshot_body`: what the step sends
    and what the dry run shows (the request is held open until the snapshot ends)."""
    path = build_path("_snapshot", ctx.repository, snapshot, params={"wait_for_completion": True})
    return ConsoleRequest("source", "PUT", path.lstrip("/"), snapshot_body(ctx))


def take_snapshot(ctx: StepContext, step_id: str, snapshot: str) -> None:
    """Send `create_request` from a background thread (kept in `ctx.held_snapshots`); return once the
    snapshot is accepted, or raise the request's error."""
    if not ctx.plan.moves:
        raise StepFailed("no index to snapshot: the plan selects nothing")
    ctx.ledger.intend_snapshot(ctx.repository, snapshot)
    request = create_request(ctx, snapshot)
    answer = ctx.held_snapshots.send(ctx.source, step_id, request.method, request.sent_path, request.body)
    ctx.held_snapshots.keep(snapshot, answer)
    watch = StallWatch(ctx, f"snapshot {snapshot} in repository {ctx.repository} (not accepted yet)")

    def claim(info: dict[str, Any]) -> None:
        failpoints.hit(step_id, "accepted")  # the window between the create and its recorded uuid
        claim_or_refuse(ctx, snapshot, info)

    delay = 0.05
    while True:
        try:
            ended = answer.result(timeout=delay)
            info = ended.get("snapshot") if isinstance(ended, dict) else None
            claim(info if isinstance(info, dict) else snapshot_info(ctx, snapshot) or {})
            return  # already ended: snapshot.wait reads the outcome
        except TimeoutError:
            pass
        except EsError as exc:
            # A retry after a dropped connection is refused as a duplicate while the first one runs.
            info = snapshot_info(ctx, snapshot)
            if info is not None:
                claim(info)
                return
            raise StepFailed(
                f"snapshot {snapshot} in repository {ctx.repository} failed: {exc}. "
                "Fix the cause, then `migrator resume` takes it again",
                transient=exc.transient,
                cure=exc.cure,
            ) from exc
        info = snapshot_info(ctx, snapshot)
        if info is not None:
            claim(info)
            return
        if ctx.cancel_requested():
            raise Cancelled("cancel requested")
        watch.see(None)
        delay = min(2 * delay, ACCEPT_POLL_MAX_S)


class CreateSnapshot(Step):
    kind = StepKind.SNAPSHOT_CREATE
    title = "Create the snapshot"
    waits_for = "the snapshot to be accepted (the request is held open until it ends; the next step follows it)"

    def describe(self) -> list[ConsoleRequest]:
        return [create_request(self.ctx, self.snapshot)]

    def checks(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("source", "GET", f"_snapshot/{self.ctx.repository}/{self.snapshot}")]

    def observe(self) -> Observation:
        info = snapshot_info(self.ctx, self.snapshot)
        if info is None:
            return Observation(False, summary=f"snapshot {self.snapshot} does not exist yet")
        claim_or_refuse(self.ctx, self.snapshot, info)
        return Observation(True, summary=f"snapshot {self.snapshot} exists ({info.get('state')}), taken by this run")

    def act(self) -> None:
        take_snapshot(self.ctx, self.id, self.snapshot)
