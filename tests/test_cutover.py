"""The cutover's figures from a state file alone: snapshot reuse, restores over existing indices, and the
write freeze from the first write-block request to the alias switch (or a rollback); rollback's alias
part with a fake destination."""

from __future__ import annotations

import time
from types import SimpleNamespace

from migrator.aliases import RemovedAliases
from migrator.migration.readback import cutover_figures
from migrator.migration.rollback import _reopen, _switch_back_aliases, describe_destination
from migrator.sandbox.conformance import Checked
from migrator.state import StateStore
from tests.rest_conformance import nonconforming
from tests.steps.fakes import FakeIndices


def state_with_a_cutover(tmp_path) -> StateStore:
    store = StateStore(tmp_path / "state.db")
    store.set_json("nodes", ["snapshot.wait", "cutover.block", "cutover.snapshot.wait", "cutover.switch"])
    full = {"incremental_bytes": 1000, "total_bytes": 1000, "incremental_files": 10, "total_files": 10}
    store.checkpoint("snapshot.wait", "done", full)
    incremental = {"incremental_bytes": 50, "total_bytes": 1040, "incremental_files": 2, "total_files": 12}
    store.checkpoint("cutover.snapshot.wait", "done", incremental)
    store.checkpoint("cutover.recovery[a]", "done", {"bytes": 600, "reused_bytes": 500})
    store.checkpoint("cutover.recovery[b]", "done", {"bytes": 440, "reused_bytes": 400})
    store.checkpoint("recovery[a]", "done", {"bytes": 590, "reused_bytes": 0})  # phase one: not counted
    return store


def test_figures_of_a_finished_cutover(tmp_path):
    store = state_with_a_cutover(tmp_path)
    try:
        store.event("request", "GET /a/_settings/index.blocks.write", step="cutover.block")
        store.event("request", "PUT /a,b/_settings", step="cutover.block")
        time.sleep(0.2)
        store.event("step.done", "cutover.switch done", step="cutover.switch")
        store.event("rollback", "{}")  # later: the freeze had ended with the cutover already
        figures = cutover_figures(store)
    finally:
        store.close()
    assert figures["full_snapshot"]["incremental_bytes"] == 1000
    assert figures["incremental_snapshot"]["incremental_bytes"] == 50
    assert figures["incremental_reused_fraction"] == round(1 - 50 / 1040, 4)
    assert figures["restore_over"] == {"indices": 2, "bytes": 1040, "reused_bytes": 900}
    window = figures["write_block"]
    assert window["ended_by"] == "cutover" and 0.2 <= window["seconds"] < 5


def test_a_cutover_still_frozen_and_one_rolled_back(tmp_path):
    store = state_with_a_cutover(tmp_path)
    try:
        store.event("request", "PUT /a,b/_settings", step="cutover.block")
        frozen = cutover_figures(store)["write_block"]
        store.event("rollback", "{}")
        rolled = cutover_figures(store)["write_block"]
    finally:
        store.close()
    assert frozen["blocked_at"] is not None and frozen["ended_at"] is None and "seconds" not in frozen
    assert rolled["ended_by"] == "rollback"


def test_no_cutover_no_figures(tmp_path):
    store = StateStore(tmp_path / "state.db")
    try:
        store.set_json("nodes", ["snapshot.wait", "restore[a]"])
        assert cutover_figures(store) is None
    finally:
        store.close()


class CannedDestination:
    """An index with nested documents: `_cat/indices` counts 150 (nested included), `_count` 50."""

    def request(self, method, path, body=None, ok=(200,), **_):
        if path.startswith("/_cat/indices/"):
            return 200, [{"health": "green", "status": "open", "docs.count": "150"}]
        if path.endswith("/_alias"):
            return 200, {"orders": {"aliases": {"live": {}}}}
        if path.startswith("/orders/_recovery"):
            return 200, {"orders": {"shards": [{"type": "SNAPSHOT", "source": {"snapshot": "snap"}}]}}
        raise AssertionError(path)

    def get(self, path, **_):
        if path == "/_cluster/state/routing_table/orders":  # restored and started: its recovery says the snapshot
            return {"routing_table": {"indices": {"orders": {"shards": {"0": [{"state": "STARTED"}]}}}}}
        assert path == "/orders/_count", path
        return {"count": 50}

    def doc_count(self, index):
        return int(self.get(f"/{index}/_count")["count"])


def test_rollback_counts_top_level_documents_like_the_plan_and_validation():
    migration = type("M", (), {"destination": CannedDestination()})()
    (found,) = describe_destination(migration, ["orders"])
    assert found["docs"] == 50 and found["restored_from"] == "snap" and found["aliases"] == ["live"]


def test_rollback_gives_an_alias_back_to_the_indices_the_switch_took_it_from():
    destination = FakeIndices({"orders-v1": {}, "new-orders": {}}, {"orders-read": {"new-orders"}})
    record = RemovedAliases()
    record.record({"orders-read": ["orders-v1", "deleted-since"]})
    migration = SimpleNamespace(
        destination=destination, spec=SimpleNamespace(finish=SimpleNamespace(aliases={"orders-read": ["orders"]}))
    )
    removed, restored = _switch_back_aliases(migration, record, {"orders": "new-orders"})
    assert removed == [{"index": "new-orders", "alias": "orders-read"}]
    assert restored == [{"index": "orders-v1", "alias": "orders-read"}]
    assert [sent[2] for sent in destination.sent] == [
        {
            "actions": [
                {"remove": {"index": "new-orders", "alias": "orders-read"}},
                {"add": {"index": "orders-v1", "alias": "orders-read"}},
            ]
        }
    ]  # one atomic request: the alias never points at both, nor at none
    assert destination.aliases == {"orders-read": {"orders-v1"}}


class ClosedAndMissing:
    """A destination where `closed` is closed, `open` open and `missing` absent; records every request and
    answers the index states from `_cat/indices` or the cluster state's metadata."""

    STATES = {"closed": "close", "open": "open"}

    def __init__(self) -> None:
        self.sent: list[Checked] = []

    def request(self, method, path, body=None, ok=(200,), **_):
        self.sent.append(Checked("destination", method, path, body))
        if method == "POST":
            return 200, {"acknowledged": True}
        if path.startswith("/_cat/indices"):
            return 200, [{"index": name, "status": state} for name, state in self.STATES.items()]
        indices = {name: {"state": state} for name, state in self.STATES.items()}
        return 200, {"metadata": {"indices": indices}}


def test_rollback_reopens_what_the_cutover_closed_with_requests_the_specification_has():
    destination = ClosedAndMissing()
    reopened = _reopen(SimpleNamespace(destination=destination), ["closed", "missing", "open"])
    assert reopened == ["closed"]
    assert nonconforming(destination.sent, {"destination": "8.19.21"}) == []
    assert [(r.method, r.path) for r in destination.sent if r.method == "POST"] == [("POST", "/closed/_open")]
