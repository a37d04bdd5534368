"""replica.copy from a real repository's folder (the 7.10 fixture) to an empty one: the step copies the
snapshot's blobs until the replica verifies, reports its progress, records its figures, and copies
nothing again once the replica is whole; a cancel stops it between blobs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from migrator.clients.storage import LocalStorage
from migrator.steps.base import Cancelled
from migrator.steps.replica_copy import CopyToReplica
from tests.steps.fakes import Progress
from tests.steps.test_storage_verify_requests import INDICES, SNAPSHOT, repository


def context(replica_root: Path, cancelled: bool = False) -> SimpleNamespace:
    source, replica = LocalStorage(repository()), LocalStorage(replica_root)
    return SimpleNamespace(
        spec=SimpleNamespace(
            storage_spec=lambda: SimpleNamespace(bucket=None, path=str(repository()), base_path=None),
            replication=SimpleNamespace(workers=2, storage=SimpleNamespace(bucket="dst", path=None, base_path="repo")),
        ),
        plan=SimpleNamespace(moves=[SimpleNamespace(source=name) for name in INDICES]),
        snapshot=SNAPSHOT,
        storage=lambda: source,
        replica=lambda: replica,
        progress=Progress(),
        cancel_requested=lambda: cancelled,
    )


def test_the_snapshot_is_copied_until_the_replica_verifies_and_not_again(tmp_path):
    copy = CopyToReplica("replica.copy", {}, context(tmp_path / "replica"))
    assert not copy.observe().done
    copy.act()
    figures = copy.wait()
    assert figures["blobs"] == figures["copied"] > 0 and figures["skipped"] == 0
    assert copy.observe().done
    done, total = copy.ctx.progress.updates[-1]
    assert done == total == figures["bytes"]
    [shown] = copy.describe()
    assert shown.path.startswith(f"{repository()}/ -> dst/repo: the blobs of {SNAPSHOT} (2 indices)")
    again = CopyToReplica("replica.copy", {}, context(tmp_path / "replica"))
    again.act()
    assert again.wait()["copied"] == 2  # only the repository's root (index-N, index.latest) is written again


def test_a_cancel_stops_the_copy(tmp_path):
    with pytest.raises(Cancelled):
        CopyToReplica("replica.copy", {}, context(tmp_path / "replica", cancelled=True)).act()
