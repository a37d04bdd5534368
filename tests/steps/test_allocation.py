"""The destination's allocation decision for an unassigned primary, read into one line with the fix."""

from __future__ import annotations

from typing import Any

import pytest

from migrator.clients.es import EsError, Request
from migrator.errors import Cure
from migrator.steps.allocation import explain_primary, failed_restore_message, why_unassigned


class Destination:
    def __init__(self, answer: dict[str, Any] | None, shards: list[dict[str, Any]] | None = None) -> None:
        self.answer = answer
        self.shards = shards or []
        self.requests: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if self.answer is None:
            raise EsError("destination", Request(method, path), 400, "illegal_argument_exception: no unassigned shards")
        return 200, self.answer

    def get(self, path: str) -> Any:
        self.requests.append(("GET", path, None))
        return self.shards


def refused(decider: str, explanation: str, can_allocate: str = "no", decision: str = "NO") -> dict[str, Any]:
    return {
        "current_state": "unassigned",
        "can_allocate": can_allocate,
        "allocate_explanation": "cannot allocate because allocation is not permitted to any of the nodes",
        "node_allocation_decisions": [
            {"deciders": [{"decider": decider, "decision": decision, "explanation": explanation}]}
        ],
    }


@pytest.mark.parametrize(
    ("decider", "explanation", "fix", "cure"),
    [
        (
            "filter",
            'node does not match index setting [index.routing.allocation.include] filters [box-type:"hot"]',
            "`restore.ignore_index_settings: [index.routing.allocation.include.box-type]`",
            Cure.REPLAN,
        ),
        (
            "data_tier",
            "index has a preference for tiers [data_warm] and node does not meet the required [data_warm] tier",
            "`restore.ignore_index_settings: [index.routing.allocation.include._tier_preference]`",
            Cure.REPLAN,
        ),
        (
            "disk_threshold",
            "the node is above the high watermark cluster setting [cluster.routing.allocation.disk.watermark.high=90%]",
            "free disk on the destination's nodes",
            Cure.RESUME,
        ),
        (
            "enable",
            "no allocations are allowed due to cluster setting",
            "cluster.routing.allocation.enable",
            Cure.RESUME,
        ),
    ],
)
def test_each_refusal_names_its_fix_and_whether_it_is_a_plan_change(decider, explanation, fix, cure):
    found = explain_primary(Destination(refused(decider, explanation)), "moved-orders", 2)
    assert found is not None and found.failed_restore and found.cure is cure
    assert found.text.startswith(f"moved-orders shard 2: no ({decider}: {explanation})")
    assert fix in found.text


def test_a_throttled_primary_is_explained_but_not_a_failed_restore():
    answer = refused(
        "throttling", "reached the limit of ongoing initial primary recoveries [0]", "throttled", "THROTTLE"
    )
    found = explain_primary(Destination(answer), "moved-orders", 0)
    assert found is not None and not found.failed_restore
    assert (
        found.text
        == "moved-orders shard 0: throttled (throttling: reached the limit of ongoing initial primary recoveries [0])"
    )


def test_a_primary_assigned_meanwhile_has_nothing_to_explain():
    assert explain_primary(Destination(None), "moved-orders", 0) is None
    assert explain_primary(Destination({"current_state": "started"}), "moved-orders", 0) is None


def test_only_unassigned_primaries_are_explained_and_at_most_three():
    rows = [{"shard": str(n), "prirep": "p", "state": "UNASSIGNED"} for n in range(5)]
    rows += [{"shard": "0", "prirep": "r", "state": "UNASSIGNED"}, {"shard": "9", "prirep": "p", "state": "STARTED"}]
    destination = Destination(refused("disk_threshold", "above the high watermark"), rows)
    found = why_unassigned(destination, "moved-orders")
    assert [e.shard for e in found] == [0, 1, 2]
    bodies = [body for method, path, body in destination.requests if path == "/_cluster/allocation/explain"]
    assert bodies == [{"index": "moved-orders", "shard": n, "primary": True} for n in range(3)]
    message = failed_restore_message("moved-orders", {"snapshot": {"shards": {"total": 5, "failed": 5}}}, found)
    assert message.startswith("the restore of moved-orders failed: 5 of 5 shards failed. moved-orders shard 0: no")
