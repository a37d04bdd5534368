"""Follow the recovery of one restored index until its primaries are active and every shard is DONE.

A restore can be lost: when the destination restarts mid-restore (a single node, or all of them),
the restore entry is gone and the half-restored primaries stay unassigned ("no valid shard copy").
One node of several leaving is not that (`NODE_LEFT`, see LIVE_REASONS): its primaries are restored on
another node or come back with it, and are followed, not restored again.
When the restore gives the index replicas, the step also follows their copy from the primaries (see copies).
The index is ours (the restore step checked it came from our snapshot), so the recovery step does
what Elasticsearch's allocation explanation advises: it deletes the partial index and restores it
again from the snapshot. The same happens when the index vanished while we followed it.

When this run sent the restore, its request is held open (see restore) and answers when every
shard is restored: the step waits on it, reading `_recovery` only every PROGRESS_EVERY_S for the
progress bar, so a cluster gets a handful of status requests per index whatever the recovery's
length. The figures it records at the end (bytes restored, bytes reused) come from one more
`_recovery` read, except for a new index restored from a snapshot this run followed to its end:
that restore copied every file of the index, whose total snapshot.wait already read. Without the
held request (a resume in a new process, or a held request cut by a restart) it polls, and heals a
lost restore. An index of a restore batch whose primaries the batch's poll saw started while the batch's
request still runs (`HeldRequests.marked_done`, steps/batch_watch) is recovered at once, without a read.

A restore that answers with failed shards (a primary no destination node may hold: an allocation
filter copied from the source, a full disk) stops the step at once, with the destination's
allocation decision and the fix (see allocation). A resumed run that finds such a failed primary
deletes the index (ours) and restores it again, once: the fix may have been made meanwhile. An index
of a restore batch is restored again by its batch, with every member given up, in one request (batch_heal). Both
waits end on a stall too: no byte recovered for `waits.stall_after` (see stall).
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_for_futures
from typing import Any, NoReturn

from migrator.clients.es import build_path
from migrator.dag import StepKind
from migrator.errors import Cure
from migrator.planner import restore_id
from migrator.steps import copies
from migrator.steps.allocation import (
    Explanation,
    explain_request,
    failed_restore_message,
    shards_request,
    why_unassigned,
)
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepFailed
from migrator.steps.batch_heal import GivenUp, restore_again
from migrator.steps.restore import IndexRestore
from migrator.steps.stall import StallWatch

PROGRESS_EVERY_S = 10.0  # `_recovery` while the held restore runs: 6 a minute per index at most
# Why a primary may be unassigned while its restore is still alive. NODE_LEFT: one node of several left; the
# cluster lived on, so the primary is either still to be restored (on another node, the restore alive) or
# restored on that node and back with it. A restart of every node says CLUSTER_RECOVERED: the restore is lost.
LIVE_REASONS = {"NEW_INDEX_RESTORED", "EXISTING_INDEX_RESTORED", "INDEX_CREATED", "NODE_LEFT"}
# When the reads of a recovery are sent (the dry run shows these conditions; see ConsoleRequest.when).
UNTIL_THE_HELD_ANSWER = (
    "the held restore request has not answered that every shard is restored: every 10 s while it runs, and each "
    "poll of a run that holds no restore request (a resumed run, a request cut by a restart)"
)
POLLING = "the run holds no restore request for the index (a resumed run, a request cut by a restart): each poll"


class FollowRecovery(Step):
    kind = StepKind.RECOVERY
    title = "Follow the recovery of the restored index"
    waits_for = (
        "every primary shard STARTED (recovery: files and bytes recovered / total), then, when the restore gives "
        "the index replicas, every copy the data nodes can hold (peer recoveries). A restore the destination gave "
        "up (a failed primary, a lost restore) is healed once per run: in a restore batch, by the batch's request "
        "naming its members given up, after one DELETE of those this migration restored (see the batch); alone "
        "(the cutover's), DELETE <target> and the index's restore request again"
    )
    reused: int = 0
    figures: dict[str, Any] | None = None
    restored_again: bool = False  # a failed restore is healed once per run, then reported

    def _recovery(self) -> ConsoleRequest:
        """`GET <target>/_recovery`: the restore's files and bytes per shard."""
        return copies.recovery_request([self.params["target"]])

    def describe(self) -> list[ConsoleRequest]:
        """`_recovery`, which a run skips when the held restore answers within PROGRESS_EVERY_S that every shard
        is restored (a new index without replicas: its bytes are the snapshot's); the dry run says so."""
        if self.params.get("replicas") or self.params.get("cutover"):  # the replicas' bytes, the bytes reused
            return [self._recovery()]
        return [self._recovery().only_when(UNTIL_THE_HELD_ANSWER)]

    def checks(self) -> list[ConsoleRequest]:
        """The reads observe and wait send, as built once, each with when a run sends it: the shard states and
        the long poll of the index's health (polling: no held restore), the replicas' reads (when the restore
        gives it replicas), and on a stall or a failed restore the allocation decision of an unassigned primary
        (shard 0 shown; the shard is decided at run time)."""
        target = self.params["target"]
        replicas = copies.checks([target]) if self.params.get("replicas") else []
        return [
            *replicas,
            copies.health_request([target]).only_when(POLLING),
            shards_request(target).only_when(POLLING),
            explain_request(target, 0).only_when(
                "a primary waits with no shard initializing, the recovery stalls (`waits.stall_after`) or its "
                "restore failed"
            ),
        ]

    def _progress(self, heal: bool = False) -> tuple[bool, int, int, str]:
        """(done, bytes recovered or reused, bytes total, stages); with `heal`, a lost restore is started again.

        Done means every primary shard STARTED. Health alone cannot tell: Elasticsearch reports the
        primaries of a freshly restored index as yellow while they are still initializing."""
        target = self.params["target"]
        status, body = self.ctx.destination.request("GET", self._recovery().sent_path, ok=(200, 404))
        rows = [] if status == 404 else self.ctx.destination.get(shards_request(target).sent_path)
        primaries = [row for row in rows if row.get("prirep") == "p"]
        lost = any(
            row.get("state") == "UNASSIGNED" and row.get("unassigned.reason") not in LIVE_REASONS for row in primaries
        )
        waiting = sorted(int(row.get("shard", 0)) for row in primaries if row.get("state") == "UNASSIGNED")
        if heal and waiting and not lost and not any(row.get("state") == "INITIALIZING" for row in rows):
            self._heal_failed_restore(waiting)
        if status == 404 or lost:
            if heal:
                self._restore_again(missing=status == 404)
            return False, 0, 0, "restore lost"
        shards = (body.get(target) or {}).get("shards", [])
        recovered, total = self._count(shards)
        started = bool(primaries) and all(row.get("state") == "STARTED" for row in primaries)
        stages = ",".join(sorted({str(s.get("stage")) for s in shards})) or "-"
        return started, recovered, total, stages

    def _follow_replicas(self) -> dict[str, int]:
        """Once the primaries are restored: the replicas the restore gave the index (param `replicas`), copied
        from them node to node, until every copy the destination can hold has started (see copies)."""
        if not self.params.get("replicas"):
            return {}
        return copies.follow(self.ctx, self.id, [self.params["target"]])

    def _long_poll(self) -> None:
        """Returns as soon as no shard of the index is initializing any more (or after `copies.LONG_POLL`)."""
        health = copies.health_request([self.params["target"]])
        self.ctx.destination.request("GET", health.sent_path, ok=(200, 408), timeout_s=self.ctx.poll_s * 10 + 30)

    def _heal_failed_restore(self, unassigned: list[int]) -> None:
        """Asked when a primary waits with nothing initializing. When the destination gave up restoring it
        (Elasticsearch never retries a failed restore), delete the index (ours) and restore it again, once per
        run (the cause may have been fixed since); a second failure stops the step, naming the reason."""
        target = self.params["target"]
        explanations = why_unassigned(self.ctx.destination, target, unassigned)
        if not any(e.failed_restore for e in explanations):
            return
        batch = self._batch()
        if batch is not None:  # its batch restores it again, with the other members given up (batch_heal)
            if not restore_again(
                self.ctx, batch, target, restore_given_up(self.ctx, self.snapshot), self._given_up_now
            ):
                raise StepFailed(failed_restore_message(target, {}, explanations), cure=_cure(explanations))
        else:
            if self.restored_again:
                raise StepFailed(failed_restore_message(target, {}, explanations), cure=_cure(explanations))
            self.restored_again = True
            self.ctx.progress.message(self.id, f"{target}: its restore had failed; deleting it and restoring it again")
            self.ctx.destination.request("DELETE", build_path(target), ok=(200, 404))
            IndexRestore(self.ctx, restore_id(target), self.params, self.snapshot).send()
        held = self.ctx.held_restores.release(target)
        if held is not None:  # its answer comes at once when it fails again, and stops the step
            self._await_held(held, StallWatch(self.ctx, f"the restore of {target}"))

    def _stall_reason(self) -> str:
        """Why a stalled recovery does not move, when a primary waits for a node (asked only on a stall)."""
        return " ".join(e.text for e in why_unassigned(self.ctx.destination, self.params["target"]))

    def _stop_failed(self, answer: Any) -> NoReturn:
        """The held restore answered with failed shards: stop, naming the shards and the destination's reason."""
        explanations = why_unassigned(self.ctx.destination, self.params["target"])
        raise StepFailed(failed_restore_message(self.params["target"], answer, explanations), cure=_cure(explanations))

    def _own_failure(self, answer: Any) -> bool:
        """The held restore answered with failed shards. Its own restore: stop (`_stop_failed`). A batch's (its
        answer lists other indices too): the failed shards may be another member's, so this index's primaries
        are asked; True when none of them failed (this member is restored), else stop, naming this index."""
        target = self.params["target"]
        if not [name for name in answered_indices_of(answer) if name != target]:
            self._stop_failed(answer)
        explanations = why_unassigned(self.ctx.destination, target)
        if not any(e.failed_restore for e in explanations):
            return True
        raise StepFailed(failed_restore_message(target, {}, explanations), cure=_cure(explanations))

    def _restore_again(self, *, missing: bool) -> None:
        target = self.params["target"]
        why = "vanished during its recovery" if missing else "lost its restore (the destination restarted?)"
        batch = self._batch()
        if batch is not None:  # its batch restores it again, with the other members given up (batch_heal)
            if not restore_again(
                self.ctx, batch, target, restore_given_up(self.ctx, self.snapshot), self._given_up_now
            ):
                raise StepFailed(f"{target} {why} again after it was restored again in this run; see `migrator status`")
            self.ctx.held_restores.release(target)  # followed by polling from here on
            return
        self.ctx.progress.message(self.id, f"{target} {why}: restoring it again from {self.snapshot}")
        if not missing:
            self.ctx.destination.request("DELETE", build_path(target), ok=(200, 404))
        IndexRestore(self.ctx, restore_id(target), self.params, self.snapshot).send()
        self.ctx.held_restores.release(target)  # followed by polling from here on

    def _batch(self) -> str | None:
        """The restore batch whose request restores this index (its restore step's `batch`); None for an index
        restored alone (the cutover's restore over it)."""
        if self.params.get("cutover"):
            return None
        node = self.ctx.plan.graph.nodes.get(restore_id(self.params["target"]))
        return None if node is None else node.get("params", {}).get("batch")

    def _given_up_now(self) -> bool:
        """Whether the index's restore is given up now (asked after its batch restored it again in this run):
        absent, or with nothing initializing a primary that waits for a reason a live restore does not have
        or whose restore failed (`_cat/shards`, then the allocation decision)."""
        target = self.params["target"]
        status, rows = self.ctx.destination.request("GET", shards_request(target).sent_path, ok=(200, 404))
        if status == 404:
            return True
        if any(row.get("state") == "INITIALIZING" for row in rows):
            return False
        waiting = [row for row in rows if row.get("prirep") == "p" and row.get("state") == "UNASSIGNED"]
        if any(row.get("unassigned.reason") not in LIVE_REASONS for row in waiting):
            return True
        shards = sorted(int(row.get("shard", 0)) for row in waiting)
        return bool(shards) and any(e.failed_restore for e in why_unassigned(self.ctx.destination, target, shards))

    def _held(self) -> Future[Any] | None:
        return self.ctx.held_restores.get(self.params["target"])

    def _held_succeeded(self, held: Future[Any]) -> bool:
        """The held restore answered that every shard was restored."""
        if not held.done() or held.exception() is not None:
            return False
        shards = (held.result() or {}).get("snapshot", {}).get("shards", {})
        return (
            bool(shards.get("total")) and shards.get("failed", 0) == 0 and shards.get("successful") == shards["total"]
        )

    def observe(self) -> Observation:
        held = self._held()
        if held is not None and self.ctx.held_restores.marked_done(self.params["target"]):  # by its batch's poll
            detail, summary = self._figures(), "every primary restored (its batch's request still runs)"
        elif held is not None and not held.done():
            return Observation(False, in_progress=True, summary="restore under way (its request is held open)")
        elif held is not None and self._held_succeeded(held):
            detail, summary = self._figures(), "every shard restored (the held restore answered)"
        else:
            done, recovered, total, stages = self._progress()
            summary = f"{recovered}/{total} bytes, stages {stages}"
            if not done:
                return Observation(False, in_progress=True, summary=summary)
            detail = {}
        if self.params.get("replicas"):
            replicas = copies.count(self.ctx.destination, [self.params["target"]])
            if not replicas.done:
                return Observation(False, in_progress=True, summary=f"primaries restored; {replicas.shown()}")
            summary += f"; {replicas.started} shard copies started"
        self.ctx.validation_reads.recovered(self.params["target"])  # its batch's validation may read it now
        return Observation(True, summary=summary, detail=detail)

    def _sizes(self) -> tuple[int, int]:
        """(bytes recovered or reused, bytes total), from one `_recovery` read."""
        _, body = self.ctx.destination.request("GET", self._recovery().sent_path, ok=(200, 404))
        return self._count((body.get(self.params["target"]) or {}).get("shards", []))

    def _count(self, shards: list[dict[str, Any]]) -> tuple[int, int]:
        """(bytes recovered or reused, bytes total) of an index's `_recovery` shards; keeps the reused bytes."""
        sizes = [shard.get("index", {}).get("size", {}) for shard in shards]
        self.reused = sum(size.get("reused_in_bytes", 0) for size in sizes)
        recovered = self.reused + sum(size.get("recovered_in_bytes", 0) for size in sizes)
        return recovered, sum(size.get("total_in_bytes", 0) for size in sizes)

    def _figures(self) -> dict[str, Any]:
        """Bytes restored and reused, once the held restore answered that every shard is restored (read
        once: the executor observes again after the wait)."""
        if self.figures is not None:
            return self.figures
        copied = self.ctx.snapshot_index_bytes.of(self.snapshot, self.params["source"])
        if copied is not None and not self.params.get("cutover"):  # a new index: every file was copied
            self.reused = 0
            recovered, total = copied, copied
        else:  # restored over a closed index (a cutover) reuses the files it held: only _recovery knows
            recovered, total = self._sizes()
        self.ctx.progress.update(self.id, recovered, total, "bytes", "done")
        self.figures = {"bytes": total, "reused_bytes": self.reused}
        return self.figures

    def _await_held(self, held: Future[Any], watch: StallWatch) -> bool:
        """Wait for the held restore, showing progress every PROGRESS_EVERY_S; True when it restored every shard,
        False when its request failed or was cut (poll from then on). Raises StepFailed when it answered with
        failed shards, Stalled when no byte was recovered for `waits.stall_after`."""
        while True:
            deadline = time.monotonic() + PROGRESS_EVERY_S
            while not held.done() and time.monotonic() < deadline:
                if self.ctx.cancel_requested():
                    raise Cancelled("cancel requested")
                wait_for_futures([held], timeout=0.5)
            if held.done():
                if self._held_succeeded(held):
                    return True
                if held.exception() is None:
                    return self._own_failure(held.result())
                return False
            recovered, total = self._sizes()
            self.ctx.progress.update(self.id, recovered, total, "bytes", "restoring")
            watch.see((recovered, total), f"{recovered}/{total} bytes")

    def wait(self) -> dict[str, Any]:
        """One progress read, then a long poll of the index's health for a few poll periods: few requests,
        and the end of the recovery is seen the moment it happens."""
        target = self.params["target"]
        watch = StallWatch(self.ctx, f"the recovery of {target}", explain=self._stall_reason)
        held = self._held()
        seen = held is not None and self.ctx.held_restores.marked_done(target)  # by its batch's poll: no wait
        if held is not None and (seen or self._await_held(held, watch)):
            return {**self._figures(), **self._follow_replicas()}
        if held is not None:  # it failed or was cut (a restart?): from here on, poll and heal
            self.ctx.held_restores.release(self.params["target"])
        while True:
            done, recovered, total, stages = self._progress(heal=True)
            self.ctx.progress.update(self.id, recovered, total, "bytes", f"stage {stages}")
            watch.see((recovered, total, stages), f"{recovered}/{total} bytes, stage {stages}")
            if done:
                # Restoring over an existing (closed) index reuses the files it already holds.
                return {"bytes": total, "reused_bytes": self.reused, **self._follow_replicas()}
            if self.ctx.cancel_requested():
                raise Cancelled("cancel requested")
            started = time.monotonic()
            self._long_poll()
            if time.monotonic() - started < self.ctx.poll_s:  # nothing initializing yet: queued shards
                self.ctx.sleep()


def answered_indices_of(answer: Any) -> list[str]:
    """The indices a restore's answer (`{"snapshot": {"indices": [...]}}`) names."""
    return list(((answer or {}).get("snapshot") or {}).get("indices") or []) if isinstance(answer, dict) else []


def _cure(explanations: list[Explanation]) -> Cure:
    """`resume --replan` when one of the fixes is a plan change, else `resume`."""
    return Cure.REPLAN if any(e.cure is Cure.REPLAN for e in explanations) else Cure.RESUME


def restore_given_up(ctx: Any, snapshot: str) -> GivenUp:
    """Whether a batch member's restore from `snapshot` was given up, from its routing table entry: with no shard
    initializing, a primary still to be restored from the snapshot (unassigned, its recovery source the
    snapshot: it never started) that waits for a reason a live restore does not have (LIVE_REASONS: lost), or
    whose allocation decision says its restore failed (one `_cluster/allocation/explain` per such primary,
    at most allocation.EXPLAINED)."""

    def given_up(target: str, routing: dict[str, Any]) -> bool:
        copies = [copy for shard in (routing.get("shards") or {}).values() for copy in shard]
        if any(copy.get("state") == "INITIALIZING" for copy in copies):
            return False
        waiting = [
            copy
            for copy in copies
            if copy.get("primary")
            and copy.get("state") == "UNASSIGNED"
            and (copy.get("recovery_source") or {}).get("snapshot") == snapshot
        ]
        if any((copy.get("unassigned_info") or {}).get("reason") not in LIVE_REASONS for copy in waiting):
            return True
        shards = sorted(int(copy.get("shard", 0)) for copy in waiting)
        return bool(shards) and any(e.failed_restore for e in why_unassigned(ctx.destination, target, shards))

    return given_up
