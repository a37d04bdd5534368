"""CLI -> migration (rollback) -> clients, state: `migrator rollback` undoes a cutover.

Place in the flow: CLI -> migration (rollback) -> clients -> state. The cutover itself is phase two
of the DAG (see `planner.add_cutover`); rollback lies outside the DAG. It stops a running executor,
removes the aliases the cutover switched to the destination (giving each back, in the same request,
to the destination indices the switch took it from), *then* lifts the write block migrator added on
the source, back to the value recorded before the cutover (in that order, so the two sides are never
both writable with the aliases on the destination; a block the source had of its own stays), opens
again a destination index the cutover closed but did not restore yet (it holds phase one's data),
deletes the attempt's incremental snapshot when Elasticsearch allows it, forgets the cutover's
checkpoints (a later `apply --phase cutover` takes a new incremental snapshot) and describes each
destination index as it is now; it deletes the templates the run created and puts back those it
overwrote (`steps.metadata_templates.undo_templates`), and so for the pipelines and policies
(`steps.metadata_pipelines.undo_recorded`).

`rollback_requests` (`migrator rollback --dry-run`) lists what `rollback` would send for the recorded
state, from the same builders, reading only.
"""

from __future__ import annotations

import json
from typing import Any

from migrator.aliases import RemovedAliases, alias_holders
from migrator.blocks import WRITE, SourceBlocks, added_write_block, batches, differences, lift_write_block, read_blocks
from migrator.clients.es import EsError, Request, build_path
from migrator.dag import RunStatus
from migrator.errors import NeedsAttention
from migrator.migration.cancel_requests import DESTINATION, SOURCE
from migrator.migration.opened import Migration
from migrator.migration.run import recorded_plan
from migrator.migration.undo import stop_and_take_over
from migrator.ownership import Ledger, delete_snapshot_if_ours, snapshot_deletion
from migrator.planner import (
    CUTOVER,
    METADATA_PIPELINES,
    METADATA_TEMPLATES,
    MigrationPlan,
    cutover_snapshot_name,
    phase_nodes,
)
from migrator.recorded_run import cutover_attempt
from migrator.state import StateStore
from migrator.steps.base import ConsoleRequest
from migrator.steps.metadata_pipelines import undo_plan as pipelines_undo_plan
from migrator.steps.metadata_pipelines import undo_recorded
from migrator.steps.metadata_templates import undo_plan as templates_undo_plan
from migrator.steps.metadata_templates import undo_templates
from migrator.steps.restore import restored_from


def _plan_to_roll_back(migration: Migration, state: StateStore) -> MigrationPlan:
    """The recorded run's plan; NeedsAttention when there is no run, or no cutover to undo."""
    plan = recorded_plan(migration, state)
    if plan is None:
        raise NeedsAttention(f"no run to roll back in {state.path}")
    if not phase_nodes(plan.graph, CUTOVER):
        raise NeedsAttention(
            "this plan has no cutover, so there is no write block to lift; `migrator cancel` stops a run"
        )
    return plan


def rollback_requests(migration: Migration) -> list[ConsoleRequest]:
    """`migrator rollback --dry-run`: the requests `rollback` would send for the recorded state, in its
    order, built by the same functions (`aliases_back`, `unblock_requests`, the template and pipeline
    `undo_plan`s, `ownership.snapshot_deletion`, `reopen_requests`). Reads the state file and both clusters;
    sends nothing mutating and records nothing. NeedsAttention as `rollback`."""
    state = migration.open_state()
    try:
        plan = _plan_to_roll_back(migration, state)
        targets = {move.source: move.target for move in plan.moves}
        sent: list[tuple[str, Request]] = []
        switch = aliases_back(migration, RemovedAliases(state), targets)
        sent += [(DESTINATION, switch)] if switch is not None else []
        sent += [(SOURCE, r) for r in unblock_requests(migration, SourceBlocks(state), sorted(targets))[1]]
        for node, undo_plan in ((METADATA_TEMPLATES, templates_undo_plan), (METADATA_PIPELINES, pipelines_undo_plan)):
            checkpoint = state.get_checkpoint(node)
            sent += [
                (DESTINATION, r)
                for _, r in undo_plan(migration.destination, checkpoint.detail if checkpoint else {})[0]
            ]
        repository = state.get_meta("repository")
        if repository:
            snapshot = cutover_snapshot_name(plan.snapshot, cutover_attempt(state))
            _, delete = snapshot_deletion(migration.source, Ledger(state), repository, snapshot, claim=False)
            sent += [(SOURCE, delete)] if delete is not None else []
        sent += [(DESTINATION, r) for r in reopen_requests(migration, sorted(targets.values()))[1]]
        return [ConsoleRequest(cluster, r.method, r.path.lstrip("/"), r.body) for cluster, r in sent]
    finally:
        state.close()


def rollback(migration: Migration, wait_s: float = 90.0) -> dict[str, Any]:
    """Undo a cutover (finished or not): see the module docstring. Returns what was done and found."""
    state = migration.open_state()
    try:
        plan = _plan_to_roll_back(migration, state)
        with migration.requests.listening(stop_and_take_over(migration, state, "rollback", wait_s)):
            targets = {move.source: move.target for move in plan.moves}
            taken = RemovedAliases(state)
            report: dict[str, Any] = {}
            report["aliases_removed"], report["aliases_given_back"] = _switch_back_aliases(migration, taken, targets)
            record = SourceBlocks(state)
            report["writes_unblocked"], report["blocks_changed_by_others"] = _unblock(
                migration, record, sorted(targets)
            )
            templates = state.get_checkpoint(METADATA_TEMPLATES)
            report.update(undo_templates(migration.destination, templates.detail if templates else {}))
            state.reset([METADATA_TEMPLATES])  # the next `apply` puts them back before a new cutover
            report.update(undo_recorded(migration.destination, state))
            attempt = cutover_attempt(state)
            report["cutover_snapshot"] = _delete_snapshot(
                migration, Ledger(state), state.get_meta("repository"), cutover_snapshot_name(plan.snapshot, attempt)
            )
            report["reopened"] = _reopen(migration, sorted(targets.values()))
            report["destination"] = describe_destination(migration, sorted(targets.values()))
            state.reset(sorted(phase_nodes(plan.graph, CUTOVER)))
            record.forget()  # the source is as recorded again: the next cutover records anew
            taken.forget()
            state.set_meta(status=RunStatus.ROLLED_BACK, cutover_attempt=str(attempt + 1), cancel_requested="0")
            state.event("rollback", json.dumps(report))
            return report
    finally:
        state.close()


def aliases_back(migration: Migration, record: RemovedAliases, targets: dict[str, str]) -> Request | None:
    """The one atomic `POST _aliases` that removes each alias of `finish.aliases` from the destination
    indices this migration restored and gives it back to the indices the switch took it from (as recorded;
    those deleted since are left out: `HEAD <index>`); None when there is nothing to change. Reads only."""
    ours = set(targets.values())
    taken = record.get() or {}
    holders = alias_holders(migration.destination, sorted(migration.spec.finish.aliases))
    actions = []
    for alias in sorted(holders):
        actions += [{"remove": {"index": index, "alias": alias}} for index in sorted(holders[alias] & ours)]
        for index in sorted(set(taken.get(alias, [])) - holders[alias] - ours):
            status, _ = migration.destination.request("HEAD", build_path(index), ok=(200, 404))
            if status == 200:
                actions.append({"add": {"index": index, "alias": alias}})
    return Request("POST", "/_aliases", {"actions": actions}) if actions else None


def _switch_back_aliases(
    migration: Migration, record: RemovedAliases, targets: dict[str, str]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Send `aliases_back` (when there is something to change). Returns the removals and the additions."""
    switch = aliases_back(migration, record, targets)
    if switch is None:
        return [], []
    migration.destination.request(switch.method, switch.path, switch.body)
    actions = switch.body["actions"]
    return [a["remove"] for a in actions if "remove" in a], [a["add"] for a in actions if "add" in a]


def unblock_requests(migration: Migration, record: SourceBlocks, sources: list[str]) -> tuple[list[str], list[Request]]:
    """The source indices whose write block migrator added (set now, not in the record), and the `PUT
    <indices>/_settings` requests that lift it back to its recorded value (one per recorded value and
    batch); any other block is the source's own and stays. Reads only."""
    before = record.get() or {}
    now = read_blocks(migration.source, sources)
    ours = sorted(name for name in sources if added_write_block(before.get(name), now[name]))
    by_value: dict[str | None, list[str]] = {}  # one request per recorded value ("false", or unset)
    for name in ours:
        by_value.setdefault(before[name].get(WRITE), []).append(name)
    requests = [
        Request("PUT", build_path(",".join(batch), "_settings"), lift_write_block(before[names[0]]))
        for names in by_value.values()
        for batch in batches(names)
    ]
    return ours, requests


def _unblock(migration: Migration, record: SourceBlocks, sources: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Send `unblock_requests`, then read the blocks again. Returns the indices unblocked and, per index, the
    blocks that still differ from the record (changed by someone else since; left as they are)."""
    before = record.get() or {}
    ours, requests = unblock_requests(migration, record, sources)
    for request in requests:
        migration.source.request(request.method, request.path, request.body)
    after = read_blocks(migration.source, sources)
    still = sorted(name for name in ours if added_write_block(before.get(name), after[name]))
    if still:
        raise NeedsAttention(f"the write block is still set on {', '.join(still)}; run `migrator rollback` again")
    return ours, differences({name: before[name] for name in sources if name in before}, after)


def reopen_requests(migration: Migration, targets: list[str]) -> tuple[list[str], list[Request]]:
    """The destination indices the cutover closed but did not restore yet (they hold phase one's data), and
    a `POST <index>/_open` for each. Their states come from the cluster state's metadata, which skips the
    targets that do not exist (`ignore_unavailable`, a parameter `_cat/indices` does not have in the REST
    specification). Reads only."""
    params = {"filter_path": "metadata.indices.*.state", "ignore_unavailable": True}
    path = build_path("_cluster", "state", "metadata", ",".join(targets), params=params)
    status, body = migration.destination.request("GET", path, ok=(200, 404))
    states = (body or {}).get("metadata", {}).get("indices", {}) if status == 200 else {}
    closed = sorted(name for name, index in states.items() if name in targets and index.get("state") == "close")
    return closed, [Request("POST", build_path(index, "_open")) for index in closed]


def _reopen(migration: Migration, targets: list[str]) -> list[str]:
    """Send `reopen_requests`. Returns the indices opened again."""
    closed, requests = reopen_requests(migration, targets)
    for request in requests:
        migration.destination.request(request.method, request.path)
    return closed


def _delete_snapshot(migration: Migration, ledger: Ledger, repository: str | None, snapshot: str) -> dict[str, Any]:
    """Delete the attempt's incremental snapshot; a refusal (a restore still reading it) is reported, not fatal."""
    if not repository:
        return {"name": snapshot, "deleted": False}
    try:
        outcome = delete_snapshot_if_ours(migration.source, ledger, repository, snapshot)
    except EsError as exc:
        return {"name": snapshot, "deleted": False, "why": str(exc)}
    if outcome == "kept":
        return {"name": snapshot, "deleted": False, "existed": True, "why": "not taken by this migration: kept"}
    return {"name": snapshot, "deleted": outcome == "deleted", "existed": outcome == "deleted"}


def describe_destination(migration: Migration, targets: list[str]) -> list[dict[str, Any]]:
    """Each destination index as it is now: state, health, documents, the snapshot it was restored from
    (when its recovery still says), and its aliases."""
    found = []
    for target in targets:
        path = build_path("_cat", "indices", target, params={"format": "json", "h": "health,status,docs.count"})
        status, rows = migration.destination.request("GET", path, ok=(200, 404))
        if status == 404 or not rows:
            found.append({"index": target, "exists": False})
            continue
        row = rows[0]
        aliases_status, aliases = migration.destination.request("GET", build_path(target, "_alias"), ok=(200, 404))
        restored = restored_from(migration, target) if row.get("status") == "open" else None
        found.append(
            {
                "index": target,
                "exists": True,
                "status": row.get("status"),
                "health": row.get("health"),
                # `_count`, as the plan and validation count (`_cat/indices` counts nested documents too)
                "docs": migration.destination.doc_count(target) if row.get("status") == "open" else None,
                "restored_from": (restored or {}).get("snapshot"),
                "aliases": sorted((aliases.get(target) or {}).get("aliases", {})) if aliases_status == 200 else [],
            }
        )
    return found
