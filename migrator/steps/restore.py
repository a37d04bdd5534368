"""Restore one index from the snapshot on the destination, with the plan's rename rule.

In a batch (see restore_batch) its batch's request restores it and this step observes and records
it (without a read when its batch's answer, or its batch's poll while the request runs, names it);
alone (the cutover's restore over an index), or when its index is missing after its batch (a `--redo`,
a foreign index of its name removed since), it sends its own: the batch's request naming only its
index. Before acting it looks at the destination: an index with the target name that a restore of
this very snapshot created is ours (the run was interrupted after sending the restore) and is
followed, not restored again; any other index with that name stops the step: it is never
overwritten. "This very snapshot" is the one whose uuid the state holds, not any snapshot of that
name (migrator.ownership).

The restore request is held open (`wait_for_completion=true`, as the minimal hand-run script does)
so that the recovery step learns of its end at once, without polling; a resumed run polls.
"""

from __future__ import annotations

from concurrent.futures import Future
from functools import cached_property
from typing import Any

from migrator.blocks import WRITE, before_cutover
from migrator.clients.es import EsError, build_path, name_groups
from migrator.dag import StepKind
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepContext, StepFailed
from migrator.steps.stall import StallWatch


def restored_from(ctx: Any, target: str) -> dict[str, Any] | None:
    """The snapshot the target was restored from (`ctx`: anything with a `destination` client): see
    `restored_from_many`. None when the index does not exist; an empty dict when it exists but was not
    restored from a snapshot."""
    return restored_from_many(ctx, [target])[target]


def restored_from_many(ctx: Any, targets: list[str]) -> dict[str, dict[str, Any] | None]:
    """Target -> the snapshot it was restored from (`{"repository", "snapshot", ...}`), None when it does not
    exist, `{}` when it exists but was not restored from a snapshot; many indices in a few requests.

    Read in this order, per group of names: the routing table first (one cluster state, in which an index
    still restoring names the snapshot as the recovery source of its shards), then, when some index of the
    group left that state, `_recovery` of the group (the path the runbook lists), used only for the indices
    whose shards all left that state (a started shard keeps the recovery it went through). A
    shard only ever goes from "recovering from the snapshot" to "started", so no restore slips between
    the two reads unseen; the other order could (an index whose shards were not yet assigned when
    `_recovery` was read, started by the time its routing was: it looked foreign)."""
    found: dict[str, dict[str, Any] | None] = {}
    for group in name_groups(targets):
        state = ctx.destination.get(build_path("_cluster", "state", "routing_table", ",".join(group)))
        routed = state.get("routing_table", {}).get("indices", {})
        settled = []
        for target in group:
            source = snapshot_source(routed[target]) if target in routed else None
            if target not in routed or source is not None:
                found[target] = source
            else:
                settled.append(target)
        if not settled:
            continue
        # Read for the whole group, as the runbook lists it; only the settled indices' answers are used.
        path = build_path(",".join(group), "_recovery", params={"ignore_unavailable": True})
        status, body = ctx.destination.request("GET", path, ok=(200, 404))
        for target in settled:
            shards = (body.get(target) or {}).get("shards", []) if status == 200 else []
            restoring = [
                {**shard.get("source", {}), "start_time_in_millis": shard.get("start_time_in_millis")}
                for shard in shards
                if shard.get("type") == "SNAPSHOT"
            ]
            # Routed but not in `_recovery`: closed (or deleted in between): it exists, not known to be ours.
            found[target] = restoring[0] if restoring else {}
    return found


def answered_indices(held: Future[Any] | None) -> list[str]:
    """The indices a held restore request answered as restored (its `snapshot.indices`, target names);
    none while it runs, when it failed, or without one (a resumed run)."""
    if held is None or not held.done() or held.exception() is not None:
        return []
    return list((held.result() or {}).get("snapshot", {}).get("indices", []))


def snapshot_source(routing: dict[str, Any]) -> dict[str, Any] | None:
    """The snapshot recovery source of any shard copy in an index's routing table entry, or None."""
    for copies in routing.get("shards", {}).values():
        for copy in copies:
            source = copy.get("recovery_source") or {}
            if source.get("type") == "SNAPSHOT":
                return source
    return None


UUID_FILTER = "metadata.indices.*.settings.index.uuid"


def uuid_path(targets: str) -> str:
    """`_cluster/state/metadata/<targets>` filtered to each index's `index.uuid` (`targets`: comma-joined)."""
    return build_path("_cluster", "state", "metadata", targets, params={"filter_path": UUID_FILTER}).lstrip("/")


def index_uuids(client: Any, targets: list[str]) -> dict[str, str | None]:
    """Target -> its `index.uuid` on the destination (cluster state metadata: open or closed alike), None when
    absent; one read per group of names (`name_groups`)."""
    found: dict[str, str | None] = dict.fromkeys(targets)
    for group in name_groups(targets):
        status, body = client.request("GET", "/" + uuid_path(",".join(group)), ok=(200, 404))
        indices = (body or {}).get("metadata", {}).get("indices", {}) if status == 200 else {}
        for target in group:
            found[target] = indices.get(target, {}).get("settings", {}).get("index", {}).get("uuid")
    return found


def index_uuid(client: Any, target: str) -> str | None:
    """The destination index's `index.uuid`, None when absent (see `index_uuids`)."""
    return index_uuids(client, [target])[target]


def owned_targets_now(
    ctx: Any, ledger: Any, repository: str | None, targets: list[str]
) -> dict[str, tuple[bool, bool]]:
    """Target -> (exists, ours) on the destination (`ctx`: anything with a `destination` client), in a few
    reads for all (`restored_from_many`, then, when any exists, `index_uuids` of all: the same paths whichever
    exist, as the runbook lists them): ours when the ledger holds
    its uuid, or when its restore names a snapshot this run took (then its uuid is recorded, so that a close
    and open or a restart, which rewrite the recovery record, keep it ours)."""
    restored = restored_from_many(ctx, targets)
    existing = [target for target in targets if restored[target] is not None]
    uuids = index_uuids(ctx.destination, targets) if existing else {}
    found: dict[str, tuple[bool, bool]] = {}
    for target in targets:
        source, uuid = restored[target], uuids.get(target)
        if source is None:
            found[target] = (False, False)
        elif ledger.owns_index_uuid(target, uuid):
            found[target] = (True, True)
        elif repository is not None and ledger.owns_index(repository, source):
            if uuid is not None:
                ledger.record_index(target, uuid)
            found[target] = (True, True)
        else:
            found[target] = (True, False)
    return found


def owned_target(ctx: Any, ledger: Any, repository: str | None, target: str) -> tuple[bool, bool]:
    """(exists, ours) for destination index `target`: see `owned_targets_now`."""
    return owned_targets_now(ctx, ledger, repository, [target])[target]


class IndexRestore:
    """The restore of one index from the snapshot (`POST _snapshot/<repo>/<snapshot>/_restore` with the plan's
    rename rule): its body, and sending it held open until it is under way. The restore step sends it; the
    recovery step sends it again (once per run) for an index whose restore failed or vanished. Requests are
    logged under `step_id`, the restore step's id."""

    def __init__(self, ctx: StepContext, step_id: str, params: dict[str, Any], snapshot: str) -> None:
        self.ctx = ctx
        self.step_id = step_id
        self.params = params
        self.snapshot = snapshot

    def body(self) -> dict[str, Any]:
        """The request's body: the source index, no global state, the plan's aliases choice, rename rule and
        index settings (set, and ignored: with the cutover's write block unless the source had its own)."""
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
        """`POST _snapshot/<repo>/<snapshot>/_restore?wait_for_completion=true` with `body()`: what `send`
        sends and the dry run shows (held open until the restore ends)."""
        path = build_path(
            "_snapshot", self.ctx.repository, self.snapshot, "_restore", params={"wait_for_completion": True}
        )
        return ConsoleRequest("destination", "POST", path.lstrip("/"), self.body())

    def send(self) -> None:
        """Send the restore with `wait_for_completion=true` from a background thread (kept in
        `ctx.held_restores` for the recovery step) and return once it is under way (or already done)."""
        target = self.params["target"]
        request = self.restore_request()
        for attempt in range(30):
            answer = self.ctx.held_restores.send(
                self.ctx.destination, self.step_id, request.method, request.sent_path, request.body
            )
            try:
                self._until_under_way(answer)
            except EsError as exc:
                # Elasticsearch refused it for now (a concurrent snapshot operation, overload): nothing started, so
                # send it again. Without an answer it may have started: the executor observes before retrying.
                if exc.transient and exc.error_type is not None and attempt < 29:
                    self.ctx.sleep(1.0)
                    continue
                raise
            self.ctx.held_restores.keep(target, answer)  # for the recovery step, once under way
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


class Restore(Step):
    kind = StepKind.RESTORE
    title = "Restore the index on the destination"
    lasting = True
    waits_for = "the restore to be under way (the request is held open until it ends; the next step follows it)"

    @cached_property
    def index_restore(self) -> IndexRestore:
        return IndexRestore(self.ctx, self.id, self.params, self.snapshot)

    def body(self) -> dict[str, Any]:
        return self.index_restore.body()

    def describe(self) -> list[ConsoleRequest]:
        if self.params.get("batch"):  # its batch's request restores it (restore_batch)
            return []
        return [self.index_restore.restore_request()]

    def checks(self) -> list[ConsoleRequest]:
        target = self.params["target"]
        return [
            ConsoleRequest("destination", "GET", f"_cluster/state/routing_table/{target}"),
            ConsoleRequest("destination", "GET", f"{target}/_recovery?ignore_unavailable=true"),
            ConsoleRequest("destination", "GET", uuid_path(target)),
        ]

    def observe(self) -> Observation:
        target = self.params["target"]
        if target in answered_indices(self.ctx.held_restores.get(target)):  # its batch recorded its uuid
            return Observation(True, summary=f"{target} restored by this migration (its restore request answered)")
        if self.ctx.held_restores.marked_done(target):  # its batch's poll saw it (its uuid recorded): batch_watch
            return Observation(True, summary=f"{target} restored by this migration (every primary started)")
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
        self.index_restore.send()
