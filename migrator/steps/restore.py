"""Restore one index from the snapshot on the destination, with the plan's rename rule.

Before acting it looks at the destination: an index with the target name that a restore of this
very snapshot created is ours (the run was interrupted after sending the restore) and is followed,
not restored again; any other index with that name stops the step: it is never overwritten. "This very
snapshot" is the one whose uuid the state holds, not any snapshot of that name (migrator.ownership).

The restore request is held open (`wait_for_completion=true`, as the minimal hand-run script does)
so that the recovery step learns of its end at once, without polling; a resumed run polls.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from migrator.blocks import WRITE, before_cutover
from migrator.clients.es import EsError, build_path
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepFailed, send_held
from migrator.steps.stall import StallWatch


def restored_from(ctx: Any, target: str) -> dict[str, Any] | None:
    """The snapshot the target was restored from (`ctx`: anything with a `destination` client), from its
    recovery (`repository`, `snapshot`, and when its restore began, `start_time_in_millis`) or, before any
    shard started recovering, from the routing table's recovery source. None when the index does not exist;
    an empty dict when it exists but was not restored from a snapshot."""
    status, body = ctx.destination.request("GET", build_path(target, "_recovery"), ok=(200, 404))
    if status == 404:
        return None
    for shard in (body.get(target) or {}).get("shards", []):
        if shard.get("type") == "SNAPSHOT":
            return {**shard.get("source", {}), "start_time_in_millis": shard.get("start_time_in_millis")}
    state = ctx.destination.get(build_path("_cluster", "state", "routing_table", target))
    shards = state.get("routing_table", {}).get("indices", {}).get(target, {}).get("shards", {})
    for copies in shards.values():
        for copy in copies:
            source = copy.get("recovery_source") or {}
            if source.get("type") == "SNAPSHOT":
                return source
    return {}


def index_uuid(client: Any, target: str) -> str | None:
    """The destination index's `index.uuid` (cluster state metadata: open or closed alike), None when absent."""
    path = build_path(
        "_cluster", "state", "metadata", target, params={"filter_path": "metadata.indices.*.settings.index.uuid"}
    )
    status, body = client.request("GET", path, ok=(200, 404))
    indices = (body or {}).get("metadata", {}).get("indices", {}) if status == 200 else {}
    return indices.get(target, {}).get("settings", {}).get("index", {}).get("uuid")


def owned_target(ctx: Any, ledger: Any, repository: str | None, target: str) -> tuple[bool, bool]:
    """(exists, ours) for destination index `target` (`ctx`: anything with a `destination` client): ours
    when the ledger holds its uuid, or when its restore names a snapshot this run took (then its uuid is
    recorded, so that a close and open or a restart, which rewrite the recovery record, keep it ours)."""
    restored = restored_from(ctx, target)
    if restored is None:
        return False, False
    uuid = index_uuid(ctx.destination, target)
    if ledger.owns_index_uuid(target, uuid):
        return True, True
    if repository is not None and ledger.owns_index(repository, restored):
        if uuid is not None:
            ledger.record_index(target, uuid)
        return True, True
    return True, False


class Restore(Step):
    kind = "restore"
    title = "Restore the index on the destination"
    lasting = True
    waits_for = "the restore to be under way (the request is held open until it ends; the next step follows it)"

    def body(self) -> dict[str, Any]:
        restore = self.ctx.spec.restore
        body: dict[str, Any] = {
            "indices": self.params["source"],
            "include_global_state": False,
            "include_aliases": restore.include_aliases,
        }
        if restore.rename_pattern:
            body["rename_pattern"] = restore.rename_pattern
            body["rename_replacement"] = restore.rename_replacement or ""
        if restore.index_settings:
            body["index_settings"] = restore.index_settings
        ignored = list(restore.ignore_index_settings)
        # The incremental snapshot carries the cutover's own write block: not migrated, unless the source
        # had a write block of its own before the cutover (an archive), which the destination keeps.
        if self.params.get("cutover") and before_cutover(self.ctx, self.params["source"]).get(WRITE) != "true":
            ignored.append(WRITE)
        if ignored:
            body["ignore_index_settings"] = ignored
        return body

    def restore_request(self) -> ConsoleRequest:
        """`POST _snapshot/<repo>/<snapshot>/_restore?wait_for_completion=true` with `body()`: what `act`
        sends and the dry run shows (held open until the restore ends)."""
        path = build_path(
            "_snapshot", self.ctx.repository, self.snapshot, "_restore", params={"wait_for_completion": True}
        )
        return ConsoleRequest("destination", "POST", path.lstrip("/"), self.body())

    def describe(self) -> list[ConsoleRequest]:
        return [self.restore_request()]

    def checks(self) -> list[ConsoleRequest]:
        target = self.params["target"]
        return [
            ConsoleRequest("destination", "GET", f"{target}/_recovery"),
            ConsoleRequest("destination", "GET", f"_cluster/state/routing_table/{target}"),
            ConsoleRequest(
                "destination",
                "GET",
                f"_cluster/state/metadata/{target}?filter_path=metadata.indices.*.settings.index.uuid",
            ),
        ]

    def observe(self) -> Observation:
        target = self.params["target"]
        exists, ours = owned_target(self.ctx, self.ctx.ledger, self.ctx.repository, target)
        if not exists:
            return Observation(False, summary=f"{target} does not exist on the destination")
        if ours:  # restored from this snapshot (or the cutover's after it), or of the uuid recorded then
            return Observation(True, summary=f"{target} restored by this migration")
        raise StepFailed(
            f"{target} exists on the destination and was not restored by this migration (from snapshot "
            f"{self.snapshot} it took); migrator never overwrites it. Delete it, or change restore.rename_replacement"
        )

    def act(self) -> None:
        """Send the restore with `wait_for_completion=true` from a background thread (kept in
        `ctx.held_restores` for the recovery step) and return once it is under way (or already done)."""
        target = self.params["target"]
        request = self.restore_request()
        for attempt in range(30):
            answer = send_held(self.ctx.destination, self.id, request)
            try:
                self._until_under_way(answer)
            except EsError as exc:
                # Elasticsearch refused it for now (a concurrent snapshot operation, overload): nothing started, so
                # send it again. Without an answer it may have started: the executor observes before retrying.
                if exc.transient and exc.error_type is not None and attempt < 29:
                    self.ctx.sleep(1.0)
                    continue
                raise
            self.ctx.held_restores[target] = answer
            return

    def _until_under_way(self, answer: Future[Any]) -> None:
        """Return once the restore answered or shows in the destination's recovery; raise its error, or
        Stalled when neither happened for `waits.stall_after`."""
        watch = StallWatch(self.ctx, f"the restore of {self.params['target']} (not under way yet)")
        delay = 0.05
        while True:
            try:
                answer.result(timeout=delay)
                return
            except TimeoutError:
                pass
            source = restored_from(self.ctx, self.params["target"]) or {}
            if source.get("snapshot") == self.snapshot:
                return
            if self.ctx.cancel_requested():
                raise Cancelled("cancel requested")
            watch.see(None)
            delay = min(2 * delay, 1.0)
