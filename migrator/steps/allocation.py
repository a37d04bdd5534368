"""Why a restored primary stays unassigned: the destination's own decision, in a line, with the fix.

Place in the flow: recovery (a restore that answered with failed shards, a resumed recovery whose
primary cannot be allocated, a stalled recovery) -> allocation (this module) -> clients.es. Asked
only when something is wrong, never on the common path: `GET _cat/shards/<index>` for the index's
unassigned primaries, then `GET _cluster/allocation/explain` with body `{"index", "shard",
"primary": true}` for at most EXPLAINED of them (both built once, `shards_request` and
`explain_request`, which recovery's checks list) (the answer's `can_allocate`,
`allocate_explanation` and per-node `deciders`, Elasticsearch 7.x-9.x alike).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from migrator.clients.es import EsClient, EsError, build_path
from migrator.errors import Cure
from migrator.steps.base import ConsoleRequest

EXPLAINED = 3  # unassigned primaries explained in one message
EXPLAIN_PATH = "/_cluster/allocation/explain"
# `node does not match index setting [index.routing.allocation.require] filters [_name:"node-1"]`
_INDEX_FILTER = re.compile(
    r"index setting \[(index\.routing\.allocation\.(?:require|include|exclude))\] filters \[([^:\]]+)"
)
_TIER = re.compile(r"index has a preference for tiers")


@dataclass(frozen=True)
class Explanation:
    """One unassigned primary: `text` (one line: the shard, the decision, the fix), `failed_restore` when
    the destination gave up restoring it (it is never retried by itself), `cure` what continues after the fix."""

    shard: int
    text: str
    failed_restore: bool
    cure: Cure


def shards_request(index: str) -> ConsoleRequest:
    """`GET _cat/shards/<index>?format=json&h=shard,prirep,state,unassigned.reason`: each shard copy's
    number, primary (`p`) or replica, state and unassigned reason (the column's name, not its alias `ur`,
    which the 9.x rest-api-spec does not list); the one read of shard states recovery and this module send."""
    path = build_path("_cat", "shards", index, params={"format": "json", "h": "shard,prirep,state,unassigned.reason"})
    return ConsoleRequest("destination", "GET", path.lstrip("/"))


def explain_request(index: str, shard: int) -> ConsoleRequest:
    """`GET _cluster/allocation/explain {"index", "shard", "primary": true}`: why that primary is where it is."""
    return ConsoleRequest(
        "destination", "GET", EXPLAIN_PATH.lstrip("/"), {"index": index, "shard": shard, "primary": True}
    )


def unassigned_primaries(client: EsClient, index: str) -> list[int]:
    """The shard numbers of the index's primaries that are UNASSIGNED now (`shards_request`)."""
    rows = client.get(shards_request(index).sent_path)
    return sorted(int(row["shard"]) for row in rows if row.get("prirep") == "p" and row.get("state") == "UNASSIGNED")


def explain_primary(client: EsClient, index: str, shard: int) -> Explanation | None:
    """The destination's allocation decision for one primary; None when it is not unassigned any more."""
    request = explain_request(index, shard)
    try:
        answer = client.request(request.method, request.sent_path, request.body)[1]
    except EsError as exc:
        if exc.status == 400:  # the shard got assigned meanwhile: nothing to explain
            return None
        raise
    if answer.get("current_state") != "unassigned":
        return None
    deciders = [
        decider
        for node in answer.get("node_allocation_decisions") or []
        for decider in node.get("deciders") or []
        if decider.get("decision") in ("NO", "THROTTLE")
    ]
    failed = answer.get("can_allocate") == "no" or any(
        d.get("decider") == "restore_in_progress" and d.get("decision") == "NO" for d in deciders
    )
    causes = [d for d in deciders if d.get("decider") != "restore_in_progress"] or deciders
    first = causes[0] if causes else {}
    said = first.get("explanation") or answer.get("allocate_explanation") or "no reason given"
    fix, cure = _fix(str(first.get("decider", "")), said)
    text = f"{index} shard {shard}: {answer.get('can_allocate', 'unassigned')} ({first.get('decider', '?')}: {said})"
    return Explanation(shard, f"{text}. Fix: {fix}" if fix else text, failed, cure)


def why_unassigned(client: EsClient, index: str, shards: list[int] | None = None) -> list[Explanation]:
    """Explanations for up to EXPLAINED of the index's unassigned primaries (empty when none is); `shards`:
    their numbers when the caller has just read them (else `GET _cat/shards`)."""
    found = []
    for shard in (unassigned_primaries(client, index) if shards is None else shards)[:EXPLAINED]:
        explanation = explain_primary(client, index, shard)
        if explanation is not None:
            found.append(explanation)
    return found


def _fix(decider: str, said: str) -> tuple[str, Cure]:
    """The fix a decider's refusal calls for, and whether it is a plan change."""
    if decider == "filter" and (match := _INDEX_FILTER.search(said)):
        setting = f"{match.group(1)}.{match.group(2)}"
        return (
            f"the index carries {setting} from the source, which names no destination node: add "
            f"`restore.ignore_index_settings: [{setting}]` to the plan",
            Cure.REPLAN,
        )
    if decider == "data_tier" and _TIER.search(said):
        setting = "index.routing.allocation.include._tier_preference"
        return (
            f"the destination has no node of that tier: add `restore.ignore_index_settings: [{setting}]`",
            Cure.REPLAN,
        )
    if decider == "disk_threshold":
        return (
            "free disk on the destination's nodes (or add one): they are above the disk high watermark",
            Cure.RESUME,
        )
    if decider == "max_retry":
        return (
            "find the cause of the failures, then `POST _cluster/reroute?retry_failed=true` on the destination",
            Cure.RESUME,
        )
    if decider == "enable":
        return ("set cluster.routing.allocation.enable to all on the destination", Cure.RESUME)
    if decider == "filter":
        return ("the destination's cluster.routing.allocation filters exclude every node: change them", Cure.RESUME)
    return ("", Cure.RESUME)


def failed_restore_message(target: str, answer: Any, explanations: list[Explanation]) -> str:
    """The message of a restore that failed: the index, its shards (from the restore's `answer`, when there is
    one) and why."""
    shards = (answer.get("snapshot") or {}).get("shards") or {} if isinstance(answer, dict) else {}
    head = f"the restore of {target} failed"
    if shards:
        head += f": {shards.get('failed', '?')} of {shards.get('total', '?')} shards failed"
    lines = [e.text for e in explanations] or ["the destination gives no reason (GET _cluster/allocation/explain)"]
    command = "migrator resume --replan" if any(e.cure is Cure.REPLAN for e in explanations) else "migrator resume"
    return (
        f"{head}. {' '.join(lines)}. After the fix, `{command}` deletes the half-restored {target} "
        "(ours: restored from this migration's snapshot) and restores it again"
    )
