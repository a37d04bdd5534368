"""The client-side copy to the destination's bucket (`replica.copy`) between two local folders: no cluster, no OSS.

The source is a vendored repository (ES 7.10, two snapshots); the step copies exactly what one snapshot's
selected indices need, is done once the replica verifies, copies nothing a second time, and stops on cancel.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from migrator.clients.storage import LocalStorage
from migrator.repository.needed_blobs import snapshot_blobs
from migrator.steps.base import Cancelled, StepFailed
from migrator.steps.replica_copy import CopyToReplica
from tests.repository import FIXTURES
from tests.steps.fakes import Progress

REPOSITORY = "ES_7_10_Double"
SNAPSHOT = "global_state_snapshot_2"
INDEX = "posts_2024_01_01"


def step(source: Path, replica: Path, *, snapshot: str = SNAPSHOT) -> Any:
    ctx = SimpleNamespace(
        spec=SimpleNamespace(
            storage_spec=lambda: SimpleNamespace(bucket="source-bucket", path=None, base_path="snapshots"),
            replication=SimpleNamespace(
                workers=2, storage=SimpleNamespace(bucket="replica-bucket", path=None, base_path="snapshots")
            ),
        ),
        plan=SimpleNamespace(moves=[SimpleNamespace(source=INDEX)]),
        snapshot=snapshot,
        storage=lambda: LocalStorage(source),
        replica=lambda: LocalStorage(replica),
        progress=Progress(),
        cancelled=False,
    )
    ctx.cancel_requested = lambda: ctx.cancelled
    return CopyToReplica("replica.copy", {}, ctx)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(FIXTURES / REPOSITORY, tmp_path / "source")
    (tmp_path / "replica").mkdir()
    return tmp_path / "source", tmp_path / "replica"


def test_the_copy_is_exactly_the_snapshots_blobs_and_then_the_replica_verifies(folders: tuple[Path, Path]) -> None:
    source, replica = folders
    copy = step(source, replica)
    assert not copy.observe().done
    copy.act()
    figures = copy.wait()
    needed = snapshot_blobs(LocalStorage(source), SNAPSHOT, [INDEX])
    assert figures["blobs"] == figures["copied"] == len(needed) and figures["skipped"] == 0
    assert figures["bytes"] == sum(blob.size for blob in needed)
    copied = sorted(str(path.relative_to(replica)) for path in replica.rglob("*") if path.is_file())
    assert copied == sorted(blob.key for blob in needed)
    assert copy.observe().done
    updates = copy.ctx.progress.updates
    assert updates and updates[-1] == (figures["bytes"], figures["bytes"])


def test_a_second_copy_sends_only_the_root_again(folders: tuple[Path, Path]) -> None:
    source, replica = folders
    step(source, replica).act()
    again = step(source, replica)
    again.act()
    figures = again.wait()
    assert figures["copied"] == 2  # the root index-N and index.latest are always written again, last
    assert figures["skipped"] == figures["blobs"] - 2


def test_cancel_stops_the_copy(folders: tuple[Path, Path]) -> None:
    source, replica = folders
    copy = step(source, replica)
    copy.ctx.cancelled = True
    with pytest.raises(Cancelled):
        copy.act()
    assert not (replica / "index.latest").exists()


def test_a_snapshot_the_source_does_not_list_fails_naming_it(folders: tuple[Path, Path]) -> None:
    source, replica = folders
    with pytest.raises(StepFailed) as failed:
        step(source, replica, snapshot="nope").act()
    assert "snapshot nope is not in the live index-1" in str(failed.value)
    assert not failed.value.transient


def test_the_dry_run_names_both_buckets_and_the_snapshot(folders: tuple[Path, Path]) -> None:
    [request] = step(*folders).describe()
    assert (request.cluster, request.method) == ("storage", "GET+PUT")
    assert request.path == (
        f"source-bucket/snapshots -> replica-bucket/snapshots: the blobs of {SNAPSHOT} (1 indices), index.latest last"
    )
