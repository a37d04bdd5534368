"""Restore a batch of indices with one restore request, before each member's own steps.

The planner cuts the indices into batches (at most `restore.batch_indices` indices and
`restore.batch_size` primary bytes each): one cluster-state update on the destination per batch
instead of one per index. What stays per index is everything else: each member's restore step
(its observation and checkpoint), its recovery, its validation.

Observed per member, in a few requests for the whole batch (`restore.owned_targets_now`): a member
this migration restored (migrator.ownership: the snapshot whose uuid the state holds, or the index
uuid it recorded) is left alone, an absent one is to restore, and any other index with a member's name
is foreign: it is left out of the request (migrator never overwrites it) and only that member's own
restore step stops, naming it; the other members are restored. The request names only the members
to restore, so a resumed batch never restores a member twice. It is held open
(`wait_for_completion=true`) and the step waits on its answer, which the members' recovery steps
then read from `ctx.held_restores` without asking the cluster; meanwhile the executor may start the
next batch, and an earlier batch's indices are followed and validated while a later one restores.
While it waits, the members whose primaries have all started are released at once to their own steps
(steps/batch_watch: one routing table read per group of names per poll), so the first members are
validated while the later ones still restore; the step itself is done only when its request answered.
The wait ends on the answer, on a refusal (attributed to the members its reason names), or on a
stall (no byte recovered by any member for `waits.stall_after`, read every PROGRESS_EVERY_S). A
done batch is not observed again (its members may be closed and restored over by a cutover since);
each member's restore step observes its own index.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_for_futures
from typing import Any

from migrator.clients.es import EsError, build_path
from migrator.dag import StepKind
from migrator.steps.allocation import EXPLAIN_PATH, why_unassigned
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepFailed
from migrator.steps.batch_watch import MemberWatch, poll_path
from migrator.steps.restore import (
    Restore,
    answered_indices,
    index_uuids,
    name_groups,
    owned_targets_now,
    restored_from,
    restored_from_many,
    uuid_path,
)
from migrator.steps.stall import StallWatch
from migrator.steps.validate import batch_reads

# When a run deletes members of a batch and restores them again (steps/batch_heal.py): the dry run's words.
RESTORE_GIVEN_UP = (
    "a run finds members' restores given up (a failed primary, a restore lost to a restart): those this migration "
    "restored are deleted (only they are named), then the restore above is sent again naming them alone"
)

NAMED_IN_ERRORS = 3  # foreign indices named in a message; the others are counted
PROGRESS_EVERY_S = 10.0  # the members' recovery while the held restore runs (the stall watch's figures)
SIZES = "*.shards.index.size"  # filter_path of the progress read
SENDS = 30  # a refusal Elasticsearch marks transient is sent again, at most this many times
BRACKETED = re.compile(r"\[([^\[\]]+)\]")


def some_names(names: list[str]) -> str:
    """`a, b, c and 4 more`: at most NAMED_IN_ERRORS names of a list, the others counted."""
    more = len(names) - NAMED_IN_ERRORS
    return ", ".join(names[:NAMED_IN_ERRORS]) + (f" and {more} more" if more > 0 else "")


class RestoreBatch(Step):
    kind = StepKind.RESTORE_BATCH
    title = "Restore a batch of indices on the destination (one request)"
    waits_for = (
        "the batch's restore request to answer (every shard of its indices restored); the request names only "
        "the members not restored yet. A member whose restore the destination gave up (a failed primary, a lost "
        "restore) is restored again by this request naming the members given up, after `DELETE <those of them "
        "this migration restored>` (sent by the member's recovery step, once per run)"
    )

    def __init__(self, node_id: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(node_id, params, ctx)
        self.members: list[dict[str, str]] = params["members"]
        self.to_restore: list[dict[str, str]] = list(self.members)  # until observed
        self.foreign: list[str] = []
        self.held: Future[Any] | None = None
        self.recorded: set[str] = set()  # members whose index.uuid the ledger holds now

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
        a request line: the routing table (also polled while the restore runs, to release the members whose
        primaries started: batch_watch), `_recovery` (for the members whose shards all started), their
        `index.uuid` (the members that exist), and while the restore runs, their recovered bytes; then the
        validation's joined reads per wave of the batch's open indices, sent for the batch by whichever member's
        validate step asks first once the wave has recovered (validate.batch_reads). Conditional: the DELETE of
        members whose restores were given up, before this batch's request is sent again naming them alone."""
        first = self.members[0]["target"]
        checks = [
            ConsoleRequest("destination", "GET", f"_cluster/state/routing_table/{first}"),
            ConsoleRequest("destination", "GET", f"{first}/_recovery?ignore_unavailable=true"),
            # only when the restore stalls, for up to NAMED_IN_ERRORS members: why their primaries wait
            ConsoleRequest("destination", "GET", f"_cat/shards/{first}"),
            ConsoleRequest(
                "destination", "GET", EXPLAIN_PATH.lstrip("/"), {"index": first, "shard": 0, "primary": True}
            ),
        ]
        for group in name_groups([member["target"] for member in self.members]):
            targets = ",".join(group)
            for path in (
                f"_cluster/state/routing_table/{targets}",
                poll_path(group).lstrip("/"),
                f"{targets}/_recovery?ignore_unavailable=true",
                uuid_path(targets),
                self._sizes_path(group).lstrip("/"),
            ):
                if ConsoleRequest("destination", "GET", path) not in checks:  # a batch of one: listed once
                    checks.append(ConsoleRequest("destination", "GET", path))
        # a member's recovery step finding its restore given up (batch_heal): the given-up members ours deleted
        deletes = [
            ConsoleRequest("destination", "DELETE", ",".join(group)).only_when(RESTORE_GIVEN_UP)
            for group in name_groups([member["target"] for member in self.members])
        ]
        return checks + deletes + batch_reads(self.ctx.spec, self.ctx.plan.graph, self.id)

    def _sizes_path(self, group: list[str]) -> str:
        return build_path(",".join(group), "_recovery", params={"ignore_unavailable": True, "filter_path": SIZES})

    def _detail(self) -> dict[str, Any]:
        """Recorded with the checkpoint: the members this run restores (ours from the `acting` checkpoint on:
        cancel deletes them when the ledger agrees), and the foreign ones it left out."""
        detail: dict[str, Any] = {"members": [m["target"] for m in self.members if m["target"] not in self.foreign]}
        if self.foreign:
            detail["foreign"] = list(self.foreign)
        return detail

    def observe(self) -> Observation:
        count = len(self.members)
        if self.held is not None and self._answered_all():
            restored = count - len(self.foreign)
            held = self.held
            answer = (held.result() or {}) if held.done() and held.exception() is None else {}
            failed = answer.get("snapshot", {}).get("shards", {}).get("failed", 0)
            summary = f"{restored} of {count} indices restored (the batch's request answered)"
            if failed:  # the members' recovery steps name the indices and heal them
                summary = (
                    f"the batch's request for {restored} of {count} indices answered with {failed} failed shard(s): "
                    "each index's recovery step names its own and restores it again"
                )
            return Observation(True, summary=summary, detail=self._detail())
        targets = [member["target"] for member in self.members]
        found = owned_targets_now(self.ctx, self.ctx.ledger, self.ctx.repository, targets)
        foreign = [target for target in targets if found[target] == (True, False)]
        if foreign and foreign != self.foreign:
            self.ctx.progress.message(
                self.id,
                f"{some_names(foreign)} exist on the destination and were not restored by this migration: left out "
                "of this batch's restore (migrator never overwrites them; their own restore steps stop, naming them)",
            )
        self.foreign = foreign
        self.to_restore = [member for member in self.members if not found[member["target"]][0]]
        if not self.to_restore:
            restored = count - len(foreign)
            return Observation(
                True, summary=f"{restored} of {count} indices restored by this migration", detail=self._detail()
            )
        return Observation(
            False, summary=f"{len(self.to_restore)} of {count} indices to restore", detail=self._detail()
        )

    def _answered_all(self) -> bool:
        answered = set(answered_indices(self.held))
        return all(member["target"] in answered for member in self.to_restore)

    def act(self) -> None:
        """Send one restore for the members to restore, held open from a background thread, and return once it
        is under way (or answered); its answer is kept in `ctx.held_restores` for each member. A refusal
        Elasticsearch marks transient is sent again; one that names members is theirs (see `_refused`)."""
        attempt = 0
        while True:
            members = self.to_restore
            answer = self.ctx.held_restores.send(self.ctx.destination, self.id, "POST", self.path(), self.body(members))
            try:
                self._until_under_way(answer, members[0]["target"])
            except EsError as exc:
                attempt += 1
                if exc.transient and exc.error_type is not None and attempt < SENDS:
                    self.ctx.sleep(1.0)
                    continue
                if self._refused(exc):
                    continue
                raise
            break
        self.held = answer
        for member in members:
            self.ctx.held_restores.keep(member["target"], answer)
        self.ctx.progress.update(self.id, 0, len(members), "indices", "restoring")

    def _refused(self, exc: EsError) -> bool:
        """A refusal whose reason names members (`[name]`, as Elasticsearch quotes an index): when they are
        foreign now (made by someone else since the observation), they are left out and True is returned (send
        again without them); else a StepFailed naming them, with the refusal's cure. A refusal that names none
        (a cluster limit) is a StepFailed naming every member the request was for; False for a request cut
        without an answer (no status)."""
        by_name = {m["target"]: m["target"] for m in self.to_restore} | {
            m["source"]: m["target"] for m in self.to_restore
        }
        named = sorted({by_name[word] for word in BRACKETED.findall(str(exc)) if word in by_name})
        if not named and exc.status is None:
            return False
        if named:
            before = set(self.foreign)
            self.observe()
            if set(self.foreign) - before and self.to_restore:
                return True
        else:  # a refusal of the whole request (a cluster limit, a setting): every member it was for
            named = [member["target"] for member in self.to_restore]
        raise StepFailed(
            f"the restore of {some_names(named)} (in {self.id}) was refused: {exc}",
            transient=exc.transient,
            cure=exc.cure,
        ) from exc

    def _until_under_way(self, answer: Future[Any], first: str) -> None:
        """Return once the restore answered or its first index shows as restoring; raise its error, or Stalled
        when neither happened for `waits.stall_after`."""
        watch = StallWatch(self.ctx, f"the restore of {self.id} ({first} not under way yet)")
        delay = 0.05
        while True:
            try:
                answer.result(timeout=delay)
                return
            except TimeoutError:
                pass
            if (self._restored_from(first) or {}).get("snapshot") == self.snapshot:
                return
            if self.ctx.cancel_requested():
                raise Cancelled("cancel requested")
            watch.see(None)
            delay = min(2 * delay, 1.0)

    def _targets(self) -> list[str]:
        return [member["target"] for member in self.members]

    def _restored_from(self, target: str) -> dict[str, Any] | None:
        """`restored_from` of a member, read as the runbook lists it: alone when it is the batch's first, else with
        its group (a resumed batch restoring some members only: no read of a subset of names the runbook lacks)."""
        if target == self.members[0]["target"]:
            return restored_from(self.ctx, target)
        group = next(group for group in name_groups(self._targets()) if target in group)
        return restored_from_many(self.ctx, group)[target]

    def _sizes(self) -> tuple[int, int]:
        """(bytes recovered or reused, bytes total) of the members, one `_recovery` read per group of all the members
        (as listed; those restored before, by an earlier run, count as recovered)."""
        recovered = total = 0
        for group in name_groups(self._targets()):
            status, body = self.ctx.destination.request("GET", self._sizes_path(group), ok=(200, 404))
            for index in (body or {}).values() if status == 200 else []:
                for shard in index.get("shards", []):
                    size = shard.get("index", {}).get("size", {})
                    recovered += size.get("recovered_in_bytes", 0) + size.get("reused_in_bytes", 0)
                    total += size.get("total_in_bytes", 0)
        return recovered, total

    def _record_uuids(self, targets: list[str]) -> None:
        """Record the `index.uuid` of these restored (or restoring) members in the ledger, one read per group of all
        the members (the runbook's paths): they stay ours whatever rewrites their recovery record later (a close, a
        restart, a cutover). Only these are recorded (a foreign member never)."""
        for target, uuid in (index_uuids(self.ctx.destination, self._targets()) if targets else {}).items():
            if uuid is not None and target in targets:
                self.ctx.ledger.record_index(target, uuid)
                self.recorded.add(target)

    def _why_stalled(self) -> str:
        """Asked on a stall: the members not seen restored yet (named, up to NAMED_IN_ERRORS), and the destination's
        reason why the primaries of those named wait."""
        waiting = [member for member in self.to_restore if not self.ctx.held_restores.marked_done(member["target"])]
        members = waiting[:NAMED_IN_ERRORS]
        reasons = " ".join(e.text for m in members for e in why_unassigned(self.ctx.destination, m["target"]))
        named = f"Not restored yet: {some_names([member['target'] for member in waiting])}"
        return f"{named}. {reasons}" if reasons else named

    def wait(self) -> dict[str, Any]:
        """Until the held restore answers, releasing the members whose primaries started meanwhile to their own
        steps (steps/batch_watch, polled at its adaptive interval) and reading the members' recovered bytes
        every PROGRESS_EVERY_S for the stall watch (its figures: the members not started yet and the bytes). A
        refusal raises (naming the members it names); a request cut (a restart, a proxy) ends the wait, and
        the members' recovery steps poll and heal. The members' `index.uuid` is recorded while the restore
        runs (the restore made every member at once when it began: one read, off the path to the answer), and
        for any answered member not recorded then, after the answer. Raises Cancelled on a cancel."""
        held = self.held
        if held is None:
            return {}
        if not held.done():
            self._record_uuids([member["target"] for member in self.to_restore])
        names = some_names([member["target"] for member in self.to_restore])
        watch = StallWatch(self.ctx, f"the restore of {names} ({self.id})", explain=self._why_stalled)
        restoring = {member["target"] for member in self.to_restore}
        ours = {target for target in self._targets() if target not in restoring and target not in self.foreign}
        members = MemberWatch(self.ctx, self.id, self._targets(), ours | self.recorded)
        while not held.done():
            deadline = time.monotonic() + PROGRESS_EVERY_S
            while not held.done() and time.monotonic() < deadline:
                if self.ctx.cancel_requested():
                    raise Cancelled("cancel requested")
                wait_for_futures([held], timeout=members.delay if members.pending else 0.5)
                if not held.done() and members.pending and members.poll():
                    started = len(restoring & members.seen)
                    self.ctx.progress.update(self.id, started, len(restoring), "indices", "restoring")
            if not held.done():
                recovered, total = self._sizes()
                started = len(restoring & members.seen)
                self.ctx.progress.update(self.id, started, len(restoring), "indices", f"{recovered}/{total} bytes")
                watch.see((len(members.pending), recovered, total), f"{recovered}/{total} bytes")
        error = held.exception()
        if isinstance(error, EsError) and error.status is not None:
            if not self._refused(error):
                raise error
            raise StepFailed(f"{self.id}: its restore was refused: {error}", transient=True, cure=error.cure)
        answer = {} if error is not None else (held.result() or {}).get("snapshot", {})
        self._record_uuids([target for target in answer.get("indices", []) if target not in self.recorded])
        restored = len(self.to_restore)
        self.ctx.progress.update(self.id, restored, restored, "indices", "answered")
        return {"restored": restored, "shards": answer.get("shards", {})}
