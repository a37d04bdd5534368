"""steps (recovery) -> restore batch: the members of a batch whose restore failed or was lost, restored
again together, in one request of their batch.

Place in the flow: executor -> steps (recovery) -> this service -> restore_batch -> clients. A recovery
step that finds its index's restore given up (a failed primary, a restore lost to a restart, the index
gone) does not restore its index alone: it asks `restore_again`, which looks at every member
of the index's batch at once (`_cluster/state/routing_table` per group of names, then the allocation
decision of a waiting primary), deletes those of the given-up members that this migration owns
(`owned_targets_now`: the ledger; an index it does not own is never touched) in one `DELETE a,b,c` per
group, and sends the batch's restore request naming them alone (`RestoreBatch.act`, logged under the
batch's id, the request the dry run shows for the batch, with fewer indices). Each member's recovery step
then follows its own index, as after the batch's first request. Before (issue 17's per-index cost on this
path): a resumed run after a batch's failed restore sent one DELETE and one restore per index.

A member is restored again at most once per run (`handoffs.BatchHeals` keeps which, and one lock per
batch, so that members that find their restores given up at once send one request): given up again, its
recovery step stops, naming the reason (the fix was not made). The cutover's restores are not in a batch
(the recovery step restores its index alone, as before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from migrator.clients.es import build_path, name_groups
from migrator.steps.restore import owned_targets_now
from migrator.steps.restore_batch import RestoreBatch, some_names

# (index name, its routing table entry) -> whether its restore was given up (see recovery.restore_given_up)
GivenUp = Callable[[str, dict[str, Any]], bool]


def restore_again(ctx: Any, batch: str, target: str, given_up: GivenUp, given_up_now: Callable[[], bool]) -> bool:
    """Restore again, in one request of `batch`, `target` (its recovery step found its restore given up) and
    every other member whose restore `given_up` says was given up, deleting first those this migration owns.
    True when it is restored again now, or was with another member meanwhile and is being restored (its held
    request in `ctx.held_restores`, unless it was taken); False when it was restored again in this run and
    `given_up_now` (its recovery step's look, taken again once the lock is held) says it is given up again:
    its recovery step stops. Raises what the batch's request raises (a refusal: StepFailed naming members)."""
    heals = ctx.batch_heals
    with heals.lock(batch):
        if target in heals.restored_again:
            return not given_up_now()
        asking = ctx.requests.step
        ctx.requests.working_on(batch)  # the event log names the batch, whose runbook entry lists these requests
        try:
            return _restore_given_up(ctx, batch, target, given_up)
        finally:
            ctx.requests.working_on(asking)


def _restore_given_up(ctx: Any, batch: str, target: str, given_up: GivenUp) -> bool:
    """`restore_again`'s work, under the batch's lock: read, delete, restore; True when `target` is restored again."""
    heals = ctx.batch_heals
    params = ctx.plan.graph.nodes[batch]["params"]
    members = [m for m in params["members"] if m["target"] not in heals.restored_again]
    # read for every member not restored again yet, as the batch's checks list these reads
    targets = [m["target"] for m in members]
    chosen = {target} | set(given_up_members(ctx, targets, given_up))
    again = [m for m in members if m["target"] in chosen]
    owned = owned_targets_now(ctx, ctx.ledger, ctx.repository, targets)
    again = [m for m in again if owned[m["target"]] != (True, False)]  # not ours: never touched
    doomed = [m["target"] for m in again if owned[m["target"]][0]]
    names = some_names([m["target"] for m in again])
    ctx.progress.message(batch, f"restoring {names} again from {ctx.snapshot} in one request (restore given up)")
    for group in name_groups(doomed):
        ctx.destination.request("DELETE", build_path(",".join(group)), ok=(200, 404))
    if again:
        step = RestoreBatch(batch, params, ctx)
        step.to_restore = again
        step.act()
    heals.restored_again |= {m["target"] for m in again}
    return target in heals.restored_again


def given_up_members(ctx: Any, targets: list[str], given_up: GivenUp) -> list[str]:
    """The `targets` whose restore `given_up` says was given up, from one routing table read per group (an
    absent index is not one: whether its recovery ended before it was deleted is not known here; the member
    whose recovery step asks is restored again in any case)."""
    found: list[str] = []
    for group in name_groups(targets):
        path = build_path("_cluster", "state", "routing_table", ",".join(group))
        routed = ctx.destination.get(path).get("routing_table", {}).get("indices", {})
        found += [target for target in group if target in routed and given_up(target, routed[target])]
    return found
