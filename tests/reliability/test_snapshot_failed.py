"""A source snapshot that ends PARTIAL or FAILED: the run stops naming the state, the failed shards and
the next command; after the cause is fixed, that command (`migrator resume`) finishes the migration.

The fault is real: the Elasticsearch user `migrator-es` is denied writing into the repository.
PARTIAL: the shard folders of one index, left by an earlier snapshot in the same repository, are
made read-only, so that index's shards fail while the other index's succeed. FAILED: the
repository's `indices` folder belongs to root, so the snapshot fails as a whole and never reaches
the repository (only the held create request learns why).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from migrator.clients.es import build_path
from tests.helpers import cli, counts, repository_of

pytestmark = pytest.mark.cluster

BROKEN, HEALTHY = "snapfail-broken", "snapfail-healthy"


@pytest.fixture(scope="module")
def indices(seeded):
    """Two small indices of our own on 7.17: BROKEN with 2 shards, HEALTHY with 1."""
    source = seeded.client("7.17")
    for name, shards in ((BROKEN, 2), (HEALTHY, 1)):
        source.request("PUT", build_path(name), {"settings": {"number_of_shards": shards, "number_of_replicas": 0}})
        lines = []
        for number in range(300):
            lines.append(json.dumps({"index": {"_index": name, "_id": str(number)}}))
            lines.append(json.dumps({"n": number, "text": f"{name} document {number}"}))
        source.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode())
        source.request("POST", build_path(name, "_refresh"))
    yield seeded
    for name in (BROKEN, HEALTHY):
        source.request("DELETE", build_path(name), ok=(200, 404))
    source.close()


def plan_for(bed, folder: Path, prefix: str) -> tuple[Path, Path]:
    plan = bed.write_plan(
        folder,
        "7.17",
        "8",
        name=prefix,
        repository_type="fs",  # the snapshot is made to fail through the folder's permissions
        snapshot={"indices": [BROKEN, HEALTHY]},
        restore={"rename_pattern": "(.+)", "rename_replacement": f"{prefix}-$1"},
    )
    location = Path(yaml.safe_load(plan.read_text())["repository"]["settings"]["location"])
    location.mkdir(parents=True)
    os.chown(location, *bed.owner)
    return plan, location


def writable(paths: list[Path], owner: tuple[int, int] | None, mode: int) -> None:
    for path in paths:
        if owner is not None:
            os.chown(path, *owner)
        os.chmod(path, mode)


def our_snapshot(bed, plan: Path) -> list[dict]:
    source = bed.client("7.17")
    try:
        snapshots = source.get(build_path("_snapshot", repository_of(plan), "_all"))["snapshots"]
    finally:
        source.close()
    return [s for s in snapshots if s["snapshot"] != "earlier"]


def assert_finished_after_fix(bed, plan: Path, prefix: str) -> None:
    done = cli(bed, "resume", str(plan), "--poll", "0.3", timeout=240)
    assert done.returncode == 0
    snapshots = our_snapshot(bed, plan)
    assert [s["state"] for s in snapshots] == ["SUCCESS"], snapshots
    expected = {f"{prefix}-{name}": count for name, count in counts(bed, "7.17", f"{BROKEN},{HEALTHY}").items()}
    assert counts(bed, "8", f"{prefix}-*") == expected


def test_a_partial_snapshot_stops_naming_the_shards_and_resume_takes_it_again(indices, tmp_path):
    bed, prefix = indices, "snappartial"
    plan, location = plan_for(bed, tmp_path, prefix)
    source = bed.client("7.17")
    repository = yaml.safe_load(plan.read_text())["repository"]
    registration = {"type": "fs", "settings": repository["settings"]}
    source.request("PUT", build_path("_snapshot", repository["name"]), registration)
    earlier = build_path("_snapshot", repository["name"], "earlier", params={"wait_for_completion": True})
    source.request("PUT", earlier, {"indices": BROKEN, "include_global_state": False})
    source.close()
    shard_folders = [path for path in (location / "indices").glob("*/*") if path.is_dir()]
    assert len(shard_folders) == 2
    writable(shard_folders, None, 0o555)
    try:
        first = cli(bed, "apply", str(plan), "--yes", "--poll", "0.3", check=False, timeout=240)
        assert first.returncode == 1, first.stdout + first.stderr
        assert "ended PARTIAL" in first.stderr
        assert "2 of 3 shards failed" in first.stderr
        assert f"{BROKEN}[0]" in first.stderr and "AccessDeniedException" in first.stderr
        assert f"migrator resume {plan}" in first.stderr and "Traceback" not in first.stderr
        assert counts(bed, "8", f"{prefix}-*") == {}

        again = cli(bed, "resume", str(plan), "--poll", "0.3", check=False, timeout=240)  # the cause is still there
        assert again.returncode == 1 and "ended PARTIAL" in again.stderr, again.stderr
        assert [s["state"] for s in our_snapshot(bed, plan)] == ["PARTIAL"]
    finally:
        writable(shard_folders, bed.owner, 0o755)
    assert_finished_after_fix(bed, plan, prefix)


def test_a_failed_snapshot_missing_from_the_repository_stops_naming_the_cause_and_resume_takes_it_again(
    indices, tmp_path
):
    bed, prefix = indices, "snapfailed"
    plan, location = plan_for(bed, tmp_path, prefix)
    folder = location / "indices"
    folder.mkdir()
    os.chmod(folder, 0o755)  # root's: the node cannot create an index folder in it
    try:
        first = cli(bed, "apply", str(plan), "--yes", "--poll", "0.3", check=False, timeout=240)
        assert first.returncode == 1, first.stdout + first.stderr
        assert "failed" in first.stderr and "failed to create blob container" in first.stderr, first.stderr
        assert f"migrator resume {plan}" in first.stderr and "Traceback" not in first.stderr
        assert our_snapshot(bed, plan) == []
        assert counts(bed, "8", f"{prefix}-*") == {}
    finally:
        writable([folder], bed.owner, 0o755)
    assert_finished_after_fix(bed, plan, prefix)
