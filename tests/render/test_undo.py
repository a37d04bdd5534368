"""The cancel's report as a person reads it (render/undo.py)."""

from __future__ import annotations

from migrator.render.undo import cancel_lines


def test_each_kind_of_undo_is_one_readable_line_in_the_order_the_cancel_acted():
    report = {
        "snapshot_deleted": "nightly-1",
        "indices_deleted": ["v8-orders", "v8-logs"],
        "kept": ["index v8-users (not restored by this migration)"],
        "templates_deleted": [],
        "templates_kept": ["_template/logs (changed on the destination since migrator put it)"],
    }
    # Before: `cancelled: {'snapshot_deleted': 'nightly-1', 'indices_deleted': [...], ...}` (a Python dict).
    assert cancel_lines(report) == [
        "cancelled.",
        "indices deleted on the destination: v8-orders, v8-logs",
        "templates kept: _template/logs (changed on the destination since migrator put it)",
        "snapshot deleted: nightly-1",
        "kept (not made by this migration): index v8-users (not restored by this migration)",
    ]


def test_a_cancel_with_nothing_to_undo_says_so():
    assert cancel_lines({"snapshot_deleted": None, "indices_deleted": []}) == [
        "cancelled.",
        "nothing this migration made was left to delete",
    ]
