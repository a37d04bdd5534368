"""Restore one index from the snapshot on the destination, with the plan's rename rule.

In a batch (see restore_batch) its batch's request restores it and this step observes and records
it; alone (the cutover's restore over an index), it sends its own. Before acting it looks at the
destination: an index with the target name that a restore of this very snapshot created is ours
(the run was interrupted after sending the restore) and is followed, not restored again; any other
index with that name stops the step: it is never overwritten.

The restore request is held open (`wait_for_completion=true`, as the minimal hand-run script does)
so that the recovery step learns of its end at once, without polling; a resumed run polls.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from migrator.clients.es import EsError, build_path
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepFailed, send_held

RETRYABLE = ("concurrent_snapshot_execution_exception", "snapshot_restore_exception: [")


NAMES_PER_READ = 3000  # characters of index names in one read: Elasticsearch refuses request lines over 4 KB


def restored_from(ctx: Any, target: str) -> dict[str, Any] | None:
    """The snapshot the target was restored from (`ctx`: anything with a `destination` client): see
    `restored_from_many`. None when the index does not exist; an empty dict when it exists but was not
    restored from a snapshot."""
    return restored_from_many(ctx, [target])[target]


def restored_from_many(ctx: Any, targets: list[str]) -> dict[str, dict[str, Any] | None]:
    """Target -> the snapshot it was restored from (`{"repository", "snapshot", ...}`), None when it does not
    exist, `{}` when it exists but was not restored from a snapshot; many indices in a few requests.

    Read in this order, per group of names: the routing table first (one cluster state, in which an index
    still restoring names the snapshot as the recovery source of its shards), then `_recovery` only for
    the indices whose shards all left that state (a started shard keeps the recovery it went through). A
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
        path = build_path(",".join(settled), "_recovery", params={"ignore_unavailable": True})
        status, body = ctx.destination.request("GET", path, ok=(200, 404))
        for target in settled:
            shards = (body.get(target) or {}).get("shards", []) if status == 200 else []
            restoring = [shard.get("source", {}) for shard in shards if shard.get("type") == "SNAPSHOT"]
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


def name_groups(names: list[str]) -> list[list[str]]:
    """The names in groups whose comma-joined length stays within NAMES_PER_READ."""
    groups: list[list[str]] = [[]]
    length = 0
    for name in names:
        if groups[-1] and length + len(name) + 1 > NAMES_PER_READ:
            groups.append([])
            length = 0
        groups[-1].append(name)
        length += len(name) + 1
    return [group for group in groups if group]


class Restore(Step):
    kind = "restore"
    title = "Restore the index on the destination"
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
        if self.params.get("cutover"):  # the source's write block of the cutover is not migrated
            ignored.append("index.blocks.write")
        if ignored:
            body["ignore_index_settings"] = ignored
        return body

    def describe(self) -> list[ConsoleRequest]:
        if self.params.get("batch"):  # its batch's request restores it (restore_batch)
            return []
        path = f"_snapshot/{self.ctx.repository}/{self.snapshot}/_restore"
        return [ConsoleRequest("destination", "POST", path, self.body())]

    def checks(self) -> list[ConsoleRequest]:
        target = self.params["target"]
        return [
            ConsoleRequest("destination", "GET", f"_cluster/state/routing_table/{target}"),
            ConsoleRequest("destination", "GET", f"{target}/_recovery?ignore_unavailable=true"),
        ]

    def observe(self) -> Observation:
        target = self.params["target"]
        if target in answered_indices(self.ctx.held_restores.get(target)):
            return Observation(True, summary=f"{target} restored from {self.snapshot} (its restore request answered)")
        source = restored_from(self.ctx, target)
        if source is None:
            return Observation(False, summary=f"{target} does not exist yet")
        if source.get("snapshot") == self.snapshot and source.get("repository") == self.ctx.repository:
            return Observation(True, summary=f"{target} restored from {self.snapshot}")
        raise StepFailed(
            f"{target} exists on the destination and was not restored from snapshot {self.snapshot}; "
            "migrator never overwrites it. Delete it, or change restore.rename_replacement"
        )

    def act(self) -> None:
        """Send the restore with `wait_for_completion=true` from a background thread (kept in
        `ctx.held_restores` for the recovery step) and return once it is under way (or already done)."""
        target = self.params["target"]
        if self.params.get("batch"):
            raise StepFailed(
                f"{target} is not on the destination although {self.params['batch']} restored it (deleted since?). "
                f"Restore it as the runbook shows for {self.params['batch']}, naming only {self.params['source']} "
                "in indices, then run `migrator resume`"
            )
        path = build_path(
            "_snapshot", self.ctx.repository, self.snapshot, "_restore", params={"wait_for_completion": True}
        )
        for attempt in range(30):
            answer = send_held(self.ctx.destination, self.id, "POST", path, self.body())
            try:
                self._until_under_way(answer)
            except EsError as exc:
                if exc.status in (400, 503) and any(mark in str(exc) for mark in RETRYABLE) and attempt < 29:
                    self.ctx.sleep(1.0)
                    continue
                raise
            self.ctx.held_restores[target] = answer
            return

    def _until_under_way(self, answer: Future[Any]) -> None:
        """Return once the restore answered or shows in the destination's recovery; raise its error."""
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
            delay = min(2 * delay, 1.0)
