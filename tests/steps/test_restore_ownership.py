"""restore: an existing target counts as restored only when this migration restored it (ownership)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from migrator.ownership import Ledger, now_ms
from migrator.steps.base import StepFailed
from migrator.steps.handoffs import HeldRequests
from migrator.steps.restore import Restore

REPOSITORY = "repo"


class FakeDestination:
    """Answers `GET <target>/_recovery` with one shard restored from `snapshot` at `started_ms`."""

    def __init__(self, snapshot: str | None, started_ms: int) -> None:
        self.snapshot, self.started_ms = snapshot, started_ms

    uuid = "idx-uuid-1"

    def request(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        if path.startswith("/_cluster/state/metadata/orders"):
            return 200, {"metadata": {"indices": {"orders": {"settings": {"index": {"uuid": self.uuid}}}}}}
        assert method == "GET" and path.startswith("/orders/_recovery")
        if self.snapshot is None:
            shard = {"type": "EMPTY_STORE", "start_time_in_millis": self.started_ms}
        else:
            source = {"repository": REPOSITORY, "snapshot": self.snapshot, "index": "orders"}
            shard = {"type": "SNAPSHOT", "source": source, "start_time_in_millis": self.started_ms}
        return 200, {"orders": {"shards": [shard]}}

    def get(self, path: str) -> dict[str, Any]:
        assert path == "/_cluster/state/routing_table/orders"  # read first: started, its recovery says the rest
        return {"routing_table": {"indices": {"orders": {"shards": {"0": [{"state": "STARTED"}]}}}}}


def restore_step(destination: FakeDestination, ledger: Ledger) -> Restore:
    ctx = SimpleNamespace(
        destination=destination,
        ledger=ledger,
        repository=REPOSITORY,
        snapshot="nightly-fixed",
        held_restores=HeldRequests(),
    )
    return Restore("restore[orders]", {"source": "orders", "target": "orders"}, ctx)  # type: ignore[arg-type]


def our_snapshot() -> tuple[Ledger, int]:
    """A ledger holding the snapshot this run took, and the snapshot's start time."""
    ledger = Ledger()
    ledger.intend_snapshot(REPOSITORY, "nightly-fixed")
    started = now_ms()
    assert ledger.claim_snapshot(REPOSITORY, "nightly-fixed", {"uuid": "u1", "start_time_in_millis": started})
    return ledger, started


def test_an_index_restored_from_our_snapshot_is_followed():
    ledger, started = our_snapshot()
    observation = restore_step(FakeDestination("nightly-fixed", started + 5_000), ledger).observe()
    assert observation.done and "restored by this migration" in observation.summary


def test_an_index_restored_from_an_older_snapshot_of_the_same_name_is_not_ours():
    ledger, started = our_snapshot()
    yesterday = started - 86_400_000
    with pytest.raises(StepFailed, match="not restored by this migration"):
        restore_step(FakeDestination("nightly-fixed", yesterday), ledger).observe()


def test_an_index_restored_from_a_snapshot_of_that_name_we_did_not_take_is_not_ours():
    with pytest.raises(StepFailed, match="never overwrites it"):
        restore_step(FakeDestination("nightly-fixed", now_ms()), Ledger()).observe()


def test_an_index_not_restored_from_a_snapshot_is_not_ours():
    with pytest.raises(StepFailed, match="never overwrites it"):
        restore_step(FakeDestination(None, now_ms()), our_snapshot()[0]).observe()


def test_an_index_we_restored_stays_ours_by_its_uuid_after_its_recovery_record_changed():
    ledger, started = our_snapshot()
    destination = FakeDestination("nightly-fixed", started + 5_000)
    assert restore_step(destination, ledger).observe().done  # seen restored from our snapshot: uuid recorded
    destination.snapshot = None  # closed and opened, or a node restarted: the recovery is EXISTING_STORE now
    assert restore_step(destination, ledger).observe().done
    destination.uuid = "idx-uuid-2"  # deleted and made again under the name by someone else
    with pytest.raises(StepFailed, match="never overwrites it"):
        restore_step(destination, ledger).observe()
