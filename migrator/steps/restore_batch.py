"""Restore a batch of indices with one restore request, before each member's own steps.

The planner cuts the indices into batches (at most `restore.batch_indices` indices and
`restore.batch_size` primary bytes each): one cluster-state update on the destination per batch
instead of one per index. What stays per index is everything else: each member's restore step
(its observation and checkpoint), its recovery, its validation.

Observed per member, in a few requests for the whole batch (`restore.restored_from_many`): a member
restored from this snapshot is ours and left alone, an absent one is to restore, any other index with
a member's name stops the step (migrator never overwrites it). The request names only the members
not yet restored, so a resumed batch never restores a member twice. It is held open
(`wait_for_completion=true`) and the step waits on its answer, which the members' recovery steps
then read from `ctx.held_restores` without asking the cluster; meanwhile the executor may start the
next batch, and an earlier batch's indices are followed and validated while a later one restores.
A done batch is not observed again (its members may be closed and restored over by a cutover since);
each member's restore step observes its own index.
"""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures import wait as wait_for_futures
from typing import Any

from migrator.clients.es import EsError, build_path
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepFailed, send_held
from migrator.steps.restore import RETRYABLE, Restore, name_groups, restored_from, restored_from_many

NAMED_IN_ERRORS = 3  # foreign indices named in the error; the others are counted


class RestoreBatch(Step):
    kind = "restore.batch"
    title = "Restore a batch of indices on the destination (one request)"
    waits_for = "the batch's restore request to answer (every shard of its indices restored)"

    def __init__(self, node_id: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(node_id, params, ctx)
        self.members: list[dict[str, str]] = params["members"]
        self.to_restore: list[dict[str, str]] = list(self.members)  # until observed
        self.held: Future[Any] | None = None

    def path(self) -> str:
        return build_path(
            "_snapshot", self.ctx.repository, self.snapshot, "_restore", params={"wait_for_completion": True}
        )

    def body(self, members: list[dict[str, str]]) -> dict[str, Any]:
        """The restore step's body (the plan's rename, settings, aliases) for these members' source indices."""
        sources = ",".join(member["source"] for member in members)
        return Restore(self.id, {"source": sources}, self.ctx).body()

    def describe(self) -> list[ConsoleRequest]:
        return [ConsoleRequest("destination", "POST", self.path().lstrip("/"), self.body(self.members))]

    def checks(self) -> list[ConsoleRequest]:
        """The first member's reads (is its restore under way yet?), then per group of member names that fits
        a request line: the routing table, then `_recovery` (for the members whose shards all started)."""
        first = self.members[0]["target"]
        checks = [
            ConsoleRequest("destination", "GET", f"_cluster/state/routing_table/{first}"),
            ConsoleRequest("destination", "GET", f"{first}/_recovery?ignore_unavailable=true"),
        ]
        for group in name_groups([member["target"] for member in self.members]):
            targets = ",".join(group)
            for path in (f"_cluster/state/routing_table/{targets}", f"{targets}/_recovery?ignore_unavailable=true"):
                if ConsoleRequest("destination", "GET", path) not in checks:  # a batch of one: listed once
                    checks.append(ConsoleRequest("destination", "GET", path))
        return checks

    def _ours(self, source: dict[str, Any]) -> bool:
        return source.get("snapshot") == self.snapshot and source.get("repository") == self.ctx.repository

    def observe(self) -> Observation:
        found = restored_from_many(self.ctx, [member["target"] for member in self.members])
        foreign = [target for target, source in found.items() if source is not None and not self._ours(source)]
        if foreign:
            named = ", ".join(foreign[:NAMED_IN_ERRORS]) + (
                f" and {len(foreign) - NAMED_IN_ERRORS} more" if len(foreign) > NAMED_IN_ERRORS else ""
            )
            raise StepFailed(
                f"{named} exist on the destination and were not restored from snapshot {self.snapshot}; "
                "migrator never overwrites them. Delete them, or change restore.rename_replacement"
            )
        self.to_restore = [member for member in self.members if found[member["target"]] is None]
        count = len(self.members)
        # Recorded with the `acting` checkpoint: every member is ours from then on (cancel deletes them).
        detail = {"members": [member["target"] for member in self.members]}
        if not self.to_restore:
            return Observation(True, summary=f"{count} indices restored from {self.snapshot}", detail=detail)
        return Observation(False, summary=f"{len(self.to_restore)} of {count} indices to restore", detail=detail)

    def act(self) -> None:
        """Send one restore for the members not yet restored, held open from a background thread, and return
        once it is under way (or answered); its answer is kept in `ctx.held_restores` for each member."""
        members = self.to_restore
        for attempt in range(30):
            answer = send_held(self.ctx.destination, self.id, "POST", self.path(), self.body(members))
            try:
                self._until_under_way(answer, members[0]["target"])
            except EsError as exc:
                if exc.status in (400, 503) and any(mark in str(exc) for mark in RETRYABLE) and attempt < 29:
                    self.ctx.sleep(1.0)
                    continue
                raise
            break
        self.held = answer
        for member in members:
            self.ctx.held_restores[member["target"]] = answer
        self.ctx.progress.update(self.id, 0, len(members), "indices", "restoring")

    def _until_under_way(self, answer: Future[Any], first: str) -> None:
        """Return once the restore answered or its first index shows as restoring; raise its error."""
        delay = 0.05
        while True:
            try:
                answer.result(timeout=delay)
                return
            except TimeoutError:
                pass
            if (restored_from(self.ctx, first) or {}).get("snapshot") == self.snapshot:
                return
            if self.ctx.cancel_requested():
                raise Cancelled("cancel requested")
            delay = min(2 * delay, 1.0)

    def wait(self) -> dict[str, Any]:
        """Until the held restore answers (no request meanwhile). A refused restore raises; a request cut
        (a restart, a proxy) ends the wait, and the members' recovery steps poll and heal."""
        held = self.held
        if held is None:
            return {}
        while not held.done():
            if self.ctx.cancel_requested():
                raise Cancelled("cancel requested")
            wait_for_futures([held], timeout=0.5)
        error = held.exception()
        if isinstance(error, EsError) and error.status is not None:
            raise error
        shards = {} if error is not None else (held.result() or {}).get("snapshot", {}).get("shards", {})
        restored = len(self.to_restore)
        self.ctx.progress.update(self.id, restored, restored, "indices", "answered")
        return {"restored": restored, "shards": shards}
