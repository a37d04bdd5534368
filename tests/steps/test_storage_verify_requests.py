"""storage.verify and replica.verify on a real repository read from its folder (the 7.10 fixture of
tests/fixtures): a whole snapshot is verified with its figures; a missing file or an unknown snapshot
stops the step naming it, and a replica's failure is transient (it may still be catching up)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from migrator.clients.storage import LocalStorage
from migrator.steps.base import StepFailed
from migrator.steps.storage_verify import VerifyInStorage, VerifyReplica
from tests.repository import fixture_repositories

SNAPSHOT = "rfs-snapshot"
INDICES = ["bwc_index_1", "fwc_index_1"]


def repository() -> Path:
    return next(repo for repo in fixture_repositories() if repo.name == "ES_7_10_BWC_Check")


def context(root: Path, snapshot: str = SNAPSHOT) -> SimpleNamespace:
    storage = LocalStorage(root)
    location = SimpleNamespace(location=str(root))
    return SimpleNamespace(
        spec=SimpleNamespace(
            snapshot=SimpleNamespace(partial=False),
            storage_spec=lambda: location,
            replication=SimpleNamespace(storage=location),
        ),
        plan=SimpleNamespace(moves=[SimpleNamespace(source=name) for name in INDICES]),
        snapshot=snapshot,
        storage=lambda: storage,
        replica=lambda: storage,
    )


def test_a_whole_snapshot_is_verified_with_its_figures_and_the_dry_run_names_the_bucket_read():
    step = VerifyInStorage("storage.verify", {}, context(repository()))
    observation = step.observe()
    assert observation.done and "2 indices" in observation.summary
    assert observation.detail["files"] > 0 and observation.detail["bytes"] > 0
    [shown] = step.describe()
    assert shown.cluster == "storage" and str(repository()) in shown.path


def test_a_missing_file_stops_naming_it_and_is_not_transient(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(repository(), root)
    victim = next(path for path in (root / "indices").rglob("__*"))
    victim.unlink()
    with pytest.raises(StepFailed) as failed:
        VerifyInStorage("storage.verify", {}, context(root)).observe()
    assert victim.name in str(failed.value) and failed.value.transient is False


def test_a_replica_without_the_snapshot_yet_is_retried():
    with pytest.raises(StepFailed) as failed:
        VerifyReplica("replica.verify", {}, context(repository(), "not-there-yet")).observe()
    assert "not-there-yet" in str(failed.value) and failed.value.transient is True
