"""The storage-verification steps on a vendored repository (ES 7.10) in a local folder: no cluster, no OSS.

`storage.verify` proves from the source's bucket, `replica.verify` from the destination's, that the snapshot
is restorable; a damaged repository stops the run (for good in the source, retried for a replica that may
still be catching up), an unlisted snapshot is retried (an eventually consistent store may not list it yet).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from migrator.clients.storage import LocalStorage, ObjectInfo, StorageError
from migrator.repository.repository_data import read_repository_data
from migrator.steps.base import StepFailed
from migrator.steps.storage_verify import VerifyInStorage, VerifyReplica
from tests.repository import FIXTURES

REPOSITORY = "ES_7_10_BWC_Check"
SNAPSHOT = "rfs-snapshot"
INDEX = "bwc_index_1"


class Unreachable:
    """A storage every read of which fails as an unreachable bucket does."""

    description = "oss://unreachable/base"
    request_count = 0

    def list(self, prefix: str) -> list[ObjectInfo]:
        raise StorageError("oss://unreachable/base: connection refused", transient=True)

    def read(self, key: str) -> bytes:
        raise StorageError("oss://unreachable/base: connection refused", transient=True)


def step(cls: type, storage: Any, *, indices: tuple[str, ...] = (INDEX,)) -> Any:
    located = SimpleNamespace(location="oss://bucket/base")
    ctx = SimpleNamespace(
        spec=SimpleNamespace(
            snapshot=SimpleNamespace(partial=False),
            storage_spec=lambda: located,
            replication=SimpleNamespace(storage=located),
        ),
        plan=SimpleNamespace(moves=[SimpleNamespace(source=name) for name in indices]),
        snapshot=SNAPSHOT,
        storage=lambda: storage,
        replica=lambda: storage,
    )
    return cls(cls.kind, {}, ctx)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / REPOSITORY, tmp_path / "repo")
    return tmp_path / "repo"


def data_blob(repository: Path) -> Path:
    """One data blob (`__*`) of the index's shard 0 (its folder named by the root index-N)."""
    data = read_repository_data(LocalStorage(repository))
    assert data is not None
    folder = repository / "indices" / data.raw["indices"][INDEX]["id"] / "0"
    return next(path for path in sorted(folder.iterdir()) if path.name.startswith("__"))


@pytest.mark.parametrize("cls", [VerifyInStorage, VerifyReplica])
def test_a_whole_snapshot_is_done_with_what_was_read(cls: type, repository: Path) -> None:
    observed = step(cls, LocalStorage(repository)).observe()
    assert observed.done
    assert observed.summary == "1 indices, 1 shards, 4 files verified in storage"
    assert observed.detail["files"] == 4 and observed.detail["bytes"] > 0 and observed.detail["requests"] > 0


@pytest.mark.parametrize(("cls", "transient"), [(VerifyInStorage, False), (VerifyReplica, True)])
def test_a_missing_blob_fails_naming_it_and_only_a_replica_retries(
    cls: type, transient: bool, repository: Path
) -> None:
    blob = data_blob(repository)
    blob.unlink()
    with pytest.raises(StepFailed) as failed:
        step(cls, LocalStorage(repository)).observe()
    assert f"snapshot {SNAPSHOT} is NOT restorable" in str(failed.value)
    assert f"index {INDEX}, shard 0" in str(failed.value) and blob.name in str(failed.value)
    assert failed.value.transient is transient


def test_a_snapshot_not_listed_yet_is_retried(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(StepFailed) as failed:
        step(VerifyInStorage, LocalStorage(tmp_path / "empty")).observe()
    assert failed.value.transient
    assert "no index-N blob at the repository's root" in str(failed.value)


def test_an_unreadable_bucket_is_retried_naming_it() -> None:
    with pytest.raises(StepFailed) as failed:
        step(VerifyInStorage, Unreachable()).observe()
    assert failed.value.transient
    assert str(failed.value) == "cannot read the repository from storage: oss://unreachable/base: connection refused"


def test_the_dry_run_shows_the_reads_in_the_bucket() -> None:
    [request] = step(VerifyInStorage, Unreachable()).describe()
    assert (request.cluster, request.method) == ("storage", "LIST+GET")
    assert request.path.startswith("oss://bucket/base (index-N")
