"""The cutover's middle layer (beside `migration`): rolling a cutover back, and what it cost.

Place in the flow: CLI -> migration / cutover -> steps -> clients -> state. The cutover itself is
phase two of the DAG (see `planner.add_cutover`); this module adds what lies outside the DAG:

- `rollback`: stop a running executor, remove the aliases the cutover switched to the destination
  (giving each back, in the same request, to the destination indices the switch took it from),
  *then* lift the write block migrator added on the source, back to the value recorded before the
  cutover (in that order, so the two sides are never both writable with the aliases on the
  destination; a block the source had of its own stays), open again a destination index the
  cutover closed but did not restore yet (it holds phase one's data), delete the attempt's incremental snapshot when
  Elasticsearch allows it, forget the cutover's checkpoints (a later `apply --phase cutover` takes a
  new incremental snapshot) and describe each destination index as it is now; delete the templates the
  run created and put back those it overwrote (`steps.metadata_templates.undo_templates`);
- `cutover_figures`: from the state file alone, how much the incremental snapshot reused (its
  status statistics), how much the restores over the existing indices reused, and how long writes
  were blocked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from migrator.aliases import RemovedAliases, alias_holders
from migrator.blocks import (
    WRITE,
    SourceBlocks,
    added_write_block,
    batches,
    differences,
    lift_write_block,
    read_blocks,
)
from migrator.clients.es import EsError, build_path
from migrator.migration import (
    Migration,
    NeedsAttention,
    recorded_plan,
    stop_and_take_over,
)
from migrator.ownership import Ledger, delete_snapshot_if_ours
from migrator.planner import (
    ALIAS_SWITCH,
    CUTOVER,
    CUTOVER_SNAPSHOT_WAIT,
    METADATA_TEMPLATES,
    SNAPSHOT_WAIT,
    WRITE_BLOCK,
    cutover_snapshot_name,
    phase_nodes,
)
from migrator.recorded_run import cutover_attempt
from migrator.state import StateStore
from migrator.steps.metadata_templates import undo_templates
from migrator.steps.restore import restored_from


def rollback(migration: Migration, wait_s: float = 90.0) -> dict[str, Any]:
    """Undo a cutover (finished or not): see the module docstring. Returns what was done and found."""
    state = migration.open_state()
    try:
        plan = recorded_plan(migration, state)
        if plan is None:
            raise NeedsAttention(f"no run to roll back in {state.path}")
        if not phase_nodes(plan.graph, CUTOVER):
            raise NeedsAttention(
                "this plan has no cutover, so there is no write block to lift; `migrator cancel` stops a run"
            )
        stop_and_take_over(migration, state, "rollback", wait_s)
        targets = {move.source: move.target for move in plan.moves}
        taken = RemovedAliases(state)
        report: dict[str, Any] = {}
        report["aliases_removed"], report["aliases_given_back"] = _switch_back_aliases(migration, taken, targets)
        record = SourceBlocks(state)
        report["writes_unblocked"], report["blocks_changed_by_others"] = _unblock(migration, record, sorted(targets))
        templates = state.get_checkpoint(METADATA_TEMPLATES)
        report.update(undo_templates(migration.destination, templates.detail if templates else {}))
        state.reset([METADATA_TEMPLATES])  # the next `apply` puts them back before a new cutover
        attempt = cutover_attempt(state)
        report["cutover_snapshot"] = _delete_snapshot(
            migration, Ledger(state), state.get_meta("repository"), cutover_snapshot_name(plan.snapshot, attempt)
        )
        report["reopened"] = _reopen(migration, sorted(targets.values()))
        report["destination"] = describe_destination(migration, sorted(targets.values()))
        state.reset(sorted(phase_nodes(plan.graph, CUTOVER)))
        record.forget()  # the source is as recorded again: the next cutover records anew
        taken.forget()
        state.set_meta(status="rolled back", cutover_attempt=str(attempt + 1), cancel_requested="0")
        state.event("rollback", json.dumps(report))
        return report
    finally:
        state.close()


def _switch_back_aliases(
    migration: Migration, record: RemovedAliases, targets: dict[str, str]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Remove each alias of `finish.aliases` from the destination indices this migration restored and give
    it back, in the same atomic request, to the indices the switch took it from (as recorded; those
    deleted since are left out). Returns the removals and the additions."""
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
    if actions:
        migration.destination.request("POST", "/_aliases", {"actions": actions})
    return [a["remove"] for a in actions if "remove" in a], [a["add"] for a in actions if "add" in a]


def _unblock(migration: Migration, record: SourceBlocks, sources: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Lift the write block migrator added (set now, not in the record) back to its recorded value; any
    other block is the source's own and stays. Returns the indices unblocked and, per index, the blocks
    that still differ from the record (changed by someone else since; left as they are)."""
    before = record.get() or {}
    now = read_blocks(migration.source, sources)
    ours = sorted(name for name in sources if added_write_block(before.get(name), now[name]))
    by_value: dict[str | None, list[str]] = {}  # one request per recorded value ("false", or unset)
    for name in ours:
        by_value.setdefault(before[name].get(WRITE), []).append(name)
    for names in by_value.values():
        for batch in batches(names):
            migration.source.request(
                "PUT", build_path(",".join(batch), "_settings"), lift_write_block(before[names[0]])
            )
    after = read_blocks(migration.source, sources)
    still = sorted(name for name in ours if added_write_block(before.get(name), after[name]))
    if still:
        raise NeedsAttention(f"the write block is still set on {', '.join(still)}; run `migrator rollback` again")
    return ours, differences({name: before[name] for name in sources if name in before}, after)


def _reopen(migration: Migration, targets: list[str]) -> list[str]:
    """Open the destination indices the cutover closed but did not restore yet: they hold phase one's data.
    Their states come from the cluster state's metadata, which skips the targets that do not exist
    (`ignore_unavailable`, a parameter `_cat/indices` does not have in the REST specification)."""
    params = {"filter_path": "metadata.indices.*.state", "ignore_unavailable": True}
    path = build_path("_cluster", "state", "metadata", ",".join(targets), params=params)
    status, body = migration.destination.request("GET", path, ok=(200, 404))
    states = (body or {}).get("metadata", {}).get("indices", {}) if status == 200 else {}
    closed = sorted(name for name, index in states.items() if name in targets and index.get("state") == "close")
    for index in closed:
        migration.destination.request("POST", build_path(index, "_open"))
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


def _snapshot_stats(detail: dict[str, Any]) -> dict[str, Any] | None:
    if not detail:
        return None
    keys = ("incremental_bytes", "total_bytes", "incremental_files", "total_files")
    return {key: detail.get(key) for key in keys}


def cutover_report(state_path: Path) -> dict[str, Any] | None:
    """`cutover_figures` of the state file at `state_path` (None when it has no cutover)."""
    if not state_path.is_file():
        return None
    state = StateStore(state_path)
    try:
        return cutover_figures(state)
    finally:
        state.close()


def cutover_figures(state: StateStore) -> dict[str, Any] | None:
    """What the cutover cost, from the state file alone (None when the run has no cutover step yet)."""
    checkpoints = state.checkpoints()
    nodes = state.get_json("nodes") or []
    if WRITE_BLOCK not in nodes:
        return None
    bulk = checkpoints.get(SNAPSHOT_WAIT)
    incremental = checkpoints.get(CUTOVER_SNAPSHOT_WAIT)
    figures: dict[str, Any] = {
        "full_snapshot": _snapshot_stats(bulk.detail if bulk else {}),
        "incremental_snapshot": _snapshot_stats(incremental.detail if incremental else {}),
    }
    full, inc = figures["full_snapshot"], figures["incremental_snapshot"]
    if full and inc and inc.get("total_bytes"):
        figures["incremental_reused_fraction"] = round(1 - (inc["incremental_bytes"] or 0) / inc["total_bytes"], 4)
    restored = [
        cp.detail for node, cp in checkpoints.items() if node.startswith("cutover.recovery[") and cp.status == "done"
    ]
    figures["restore_over"] = {
        "indices": len(restored),
        "bytes": sum(int(d.get("bytes", 0)) for d in restored),
        "reused_bytes": sum(int(d.get("reused_bytes", 0)) for d in restored),
    }
    figures["write_block"] = _write_block_window(state)
    return figures


def _write_block_window(state: StateStore) -> dict[str, Any]:
    """When writes were first blocked, when the cutover (or a rollback) ended the freeze, and how long."""
    blocks = [e.ts for e in state.events(kind="request") if e.step == WRITE_BLOCK and e.message.startswith("PUT ")]
    blocked_at = blocks[-1] if blocks else None  # the latest attempt's
    ended_at, ended_by = None, None
    for event in state.events():
        if blocked_at is None or event.ts < blocked_at or ended_at is not None:
            continue
        if event.kind == "step.done" and event.step == ALIAS_SWITCH:
            ended_at, ended_by = event.ts, "cutover"
        elif event.kind == "rollback":
            ended_at, ended_by = event.ts, "rollback"
    window: dict[str, Any] = {"blocked_at": blocked_at, "ended_at": ended_at, "ended_by": ended_by}
    if blocked_at is not None and ended_at is not None:
        window["seconds"] = round(ended_at - blocked_at, 1)
    return window
