"""Verification on repositories written by the test bed's real 7.17, 8.x and 9.x nodes.

Each node writes two `fs` repositories (compress on and off, chunk_size 2kb so data files become
`.partN` blobs) under the OSS server's bucket, with a SUCCESS snapshot and a PARTIAL one (an index
whose primary can never be allocated). The untouched repositories must verify clean, locally and
through the OSS server with 10% injected 5xx answers and added latency; copies damaged one way each
must be caught with the right message. The blob reader is checked against what the nodes say.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrator.clients.es import build_path
from migrator.clients.storage import LocalStorage, OssStorage, Storage
from migrator.repository.blob import DEFLATE_HEADER, decode_blob, read_frame
from migrator.repository.verify import VerifyResult, verify_snapshot
from migrator.sandbox.oss_server import Faults
from tests.repository import ReadRecorder, framed_blobs

pytestmark = pytest.mark.cluster

VERSIONS = ("7.17", "8", "9")
GOOD, PARTIAL = "snap-ok", "snap-partial"
REGION = "oss-cn-hangzhou"


@dataclass(frozen=True)
class Written:
    """One repository a node wrote, and what the node said about its snapshots."""

    alias: str
    compress: bool
    folder: Path
    index: str
    bad_index: str
    snapshots: dict[str, dict]

    @property
    def label(self) -> str:
        return f"{self.alias}-{'compressed' if self.compress else 'plain'}"


def _documents(index: str, count: int) -> bytes:
    lines = []
    for number in range(count):
        lines.append(json.dumps({"index": {"_index": index, "_id": str(number)}}))
        lines.append(json.dumps({"n": number, "text": f"verify payload ünïcode {number} " * 8}))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def written(testbed) -> Iterator[list[Written]]:
    tag = uuid.uuid4().hex[:8]
    repositories: list[Written] = []
    for alias in VERSIONS:
        client = testbed.client(alias)
        short = alias.replace(".", "")
        index, bad = f"verify-{short}-{tag}", f"verify-{short}-unassigned-{tag}"
        client.request("PUT", build_path(index), {"settings": {"number_of_shards": 2, "number_of_replicas": 0}})
        client.request(
            "PUT",
            build_path(bad, params={"wait_for_active_shards": "0"}),
            {
                "settings": {
                    "number_of_shards": 1,
                    "number_of_replicas": 0,
                    "index.routing.allocation.require._name": "nowhere",
                }
            },
        )
        client.request("POST", "/_bulk", _documents(index, 300), timeout_s=120)
        client.request("POST", build_path(index, "_refresh"))
        try:
            for compress in (True, False):
                folder = testbed.bucket_dir / f"verify-{uuid.uuid4().hex}"
                repository = f"verify-{short}-{compress}-{tag}".lower()
                settings = {"location": str(folder), "compress": compress, "chunk_size": "2kb"}
                client.request("PUT", build_path("_snapshot", repository), {"type": "fs", "settings": settings})
                try:
                    for name, body in (
                        (GOOD, {"indices": index}),
                        (PARTIAL, {"indices": f"{index},{bad}", "partial": True}),
                    ):
                        client.request(
                            "PUT",
                            build_path("_snapshot", repository, name, params={"wait_for_completion": "true"}),
                            {**body, "include_global_state": False},
                            timeout_s=120,
                        )
                    said = client.get(build_path("_snapshot", repository, "_all"))["snapshots"]
                finally:
                    client.request("DELETE", build_path("_snapshot", repository))
                snapshots = {item["snapshot"]: item for item in said}
                repositories.append(Written(alias, compress, folder, index, bad, snapshots))
        finally:
            client.request("DELETE", build_path(f"{index},{bad}"), ok=(200, 404))
            client.close()
    yield repositories
    for repository in repositories:
        shutil.rmtree(repository.folder, ignore_errors=True)


@pytest.fixture
def oss(testbed) -> Iterator[Callable[[Path], OssStorage]]:
    """OssStorage for a folder under the bucket, with the server answering 10% 5xx and adding latency."""
    testbed.oss.set_faults(Faults(error_rate=0.1, latency_ms=5, seed=7))

    def storage(folder: Path) -> OssStorage:
        base_path = folder.relative_to(testbed.bucket_dir).as_posix()
        return OssStorage(
            testbed.oss.endpoint,
            "migrator-tests",
            base_path,
            testbed.key_id,
            testbed.secret,
            region=REGION,
            backoff_s=0.01,
        )

    yield storage
    testbed.oss.set_faults(Faults())


def assert_clean(result: VerifyResult) -> None:
    assert result.restorable, result.summary()
    assert [f for f in result.findings if f.severity != "garbage"] == []
    assert result.shards == 2 and result.files > 0


def test_the_nodes_wrote_what_the_tests_need(written):
    assert {(r.alias, r.compress) for r in written} == {(a, c) for a in VERSIONS for c in (True, False)}
    for repository in written:
        assert repository.snapshots[GOOD]["state"] == "SUCCESS"
        assert repository.snapshots[PARTIAL]["state"] == "PARTIAL"
        assert list(repository.folder.glob("indices/*/*/__*.part1")), f"{repository.label}: no chunked data file"


def test_every_framed_blob_decodes_and_agrees_with_the_node(written):
    """SMILE decoding, DEFLATE (compress: true) and CRC32 on every blob the 7.17/8.x/9.x nodes wrote."""
    for repository in written:
        blobs = framed_blobs(repository.folder)
        assert len(blobs) > 10
        for path in blobs:
            key = path.relative_to(repository.folder).as_posix()
            body = read_frame(key, path.read_bytes()).body
            assert body.startswith(DEFLATE_HEADER) == repository.compress, key
            assert isinstance(decode_blob(key, path.read_bytes()), dict)
        for name, said in repository.snapshots.items():
            info = decode_blob("snap", (repository.folder / f"snap-{said['uuid']}.dat").read_bytes(), "snapshot")
            info = info["snapshot"]
            assert (info["name"], info["uuid"], info["state"]) == (name, said["uuid"], said["state"])
            assert sorted(info["indices"]) == sorted(said["indices"])
            assert info["version_id"] == said["version_id"]
            assert [(f["index"], f["shard_id"]) for f in info["failures"]] == [
                (f["index"], f["shard_id"]) for f in said["failures"]
            ]


@pytest.mark.parametrize("level", ["normal", "deep", "full"])
def test_untouched_repositories_verify_clean(written, level):
    for repository in written:
        result = verify_snapshot(LocalStorage(repository.folder), GOOD, deep=level == "deep", full=level == "full")
        assert_clean(result)
        assert result.blobs > result.files - 4  # chunked files count several blobs


def test_untouched_repositories_verify_clean_through_oss_with_faults(written, oss, testbed):
    before = testbed.oss.stats()["requests_by_op"]
    for repository in written:
        for deep in (False, True):
            assert_clean(verify_snapshot(oss(repository.folder), GOOD, deep=deep))
        partial = verify_snapshot(oss(repository.folder), PARTIAL, allow_partial=True)
        assert partial.restorable and partial.indices == 2 and partial.shards == 2
    after = testbed.oss.stats()["requests_by_op"]
    assert after.get("HeadObject", 0) == before.get("HeadObject", 0)


# damage -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A chunked data file of shard 0 of the snapshot: its name, physical name and blob parts."""

    shard_folder: Path
    snap_file: Path
    name: str
    physical: str
    parts: list[str]


def chunked_file(folder: Path) -> Target:
    data = json.loads((folder / sorted(p.name for p in folder.glob("index-*"))[-1]).read_text())
    snapshot = next(s for s in data["snapshots"] if s["name"] == GOOD)
    index_id = next(i["id"] for i in data["indices"].values() if snapshot["uuid"] in i["snapshots"])
    shard = folder / "indices" / index_id / "0"
    files = decode_blob("snap", (shard / f"snap-{snapshot['uuid']}.dat").read_bytes(), "snapshot")["files"]
    biggest = max((f for f in files if not f["name"].startswith("v__")), key=lambda f: f["length"])
    parts = sorted((p.name for p in shard.glob(biggest["name"] + ".part*")), key=lambda n: int(n.rsplit("part", 1)[1]))
    assert len(parts) > 2
    return Target(shard, shard / f"snap-{snapshot['uuid']}.dat", biggest["name"], biggest["physical_name"], parts)


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def live_index_n(folder: Path) -> Path:
    return max(folder.glob("index-*"), key=lambda p: int(p.name.removeprefix("index-")))


def live_shard_generation(folder: Path) -> Path:
    """Shard 0's live `index-<gen>` of the SUCCESS snapshot's index, as the root index-N names it."""
    data = json.loads(live_index_n(folder).read_text())
    snapshot = next(s for s in data["snapshots"] if s["name"] == GOOD)
    index = next(i for i in data["indices"].values() if snapshot["uuid"] in i["snapshots"])
    return folder / "indices" / index["id"] / "0" / f"index-{index['shard_generations'][0]}"


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str, dict, str, Callable[[Target], str]]] = {
    # name: (damage, snapshot, verify options, finding code, the words the message must contain)
    "deleted data blob": (
        lambda f: (chunked_file(f).shard_folder / chunked_file(f).parts[1]).unlink(),
        GOOD,
        {},
        "blob_missing",
        lambda t: f"shard 0, file {t.physical} ({t.name}): blob {t.parts[1]} (part of {len(t.parts)}) is missing",
    ),
    "truncated data blob": (
        lambda f: (chunked_file(f).shard_folder / chunked_file(f).parts[0]).write_bytes(b"x" * 100),
        GOOD,
        {},
        "blob_size",
        lambda t: f"shard 0, file {t.physical} ({t.name}): blob {t.parts[0]} is 100 bytes, expected 2048 (truncated)",
    ),
    "flipped byte (deep)": (
        lambda f: flip_last_byte(chunked_file(f).shard_folder / chunked_file(f).parts[-1]),
        GOOD,
        {"deep": True},
        "checksum_mismatch",
        lambda t: f"shard 0, file {t.physical} ({t.name}): footer CRC32 is",
    ),
    "deleted shard snap file": (
        lambda f: chunked_file(f).snap_file.unlink(),
        GOOD,
        {},
        "blob_missing",
        lambda t: f"shard 0: indices/{t.shard_folder.parent.name}/0/{t.snap_file.name} is missing",
    ),
    "deleted shard index-<gen>": (
        lambda f: live_shard_generation(f).unlink(),
        GOOD,
        {},
        "shard_generation_missing",
        lambda t: f"shard 0: the shard's live {live_shard_generation(t.shard_folder.parents[2]).name} is missing",
    ),
    "damaged shard index-<gen> (deep)": (
        lambda f: flip_last_byte(live_shard_generation(f)),
        GOOD,
        {"deep": True},
        "shard_generation_damaged",
        lambda t: "CRC32 mismatch",
    ),
    "deleted live index-N": (
        lambda f: live_index_n(f).unlink(),
        GOOD,
        {},
        "repository_data_missing",
        lambda t: "(named by index.latest) is missing",
    ),
    "PARTIAL snapshot": (
        lambda f: None,
        PARTIAL,
        {},
        "snapshot_partial",
        lambda t: f"snapshot {PARTIAL}: PARTIAL: some shards failed",
    ),
}


@pytest.mark.parametrize("backend", ["local", "oss"])
@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_each_corruption_is_detected_with_the_right_message(written, testbed, oss, case, backend):
    damage, snapshot, options, code, words = CORRUPTIONS[case]
    for repository in written:
        copy = testbed.bucket_dir / f"verify-{uuid.uuid4().hex}"
        shutil.copytree(repository.folder, copy)
        try:
            target = chunked_file(copy)
            damage(copy)
            storage: Storage = LocalStorage(copy) if backend == "local" else oss(copy)
            result = verify_snapshot(storage, snapshot, **options)
            assert not result.restorable, f"{repository.label}: {case} went unnoticed"
            messages = [f.message for f in result.errors if f.code == code]
            assert any(words(target) in message for message in messages), (repository.label, result.findings)
            if case == "flipped byte (deep)":  # only the deep check reads the bytes
                assert verify_snapshot(storage, snapshot).restorable
            if case == "damaged shard index-<gen> (deep)":  # restore never reads it: normal does not either
                reader = ReadRecorder(storage)
                assert verify_snapshot(reader, snapshot).restorable
                damaged = live_shard_generation(copy).relative_to(copy).as_posix()
                assert damaged not in reader.reads and any(key.startswith("indices/") for key in reader.reads)
        finally:
            shutil.rmtree(copy)


def test_partial_snapshot_allowed_skips_the_failed_shard(written):
    for repository in written:
        result = verify_snapshot(LocalStorage(repository.folder), PARTIAL, allow_partial=True, deep=True)
        assert result.restorable, result.summary()
        assert [f.code for f in result.findings if f.severity != "garbage"] == ["snapshot_partial"]
        assert result.indices == 2 and result.shards == 2  # the unassigned index's shard has no data
        only_bad = verify_snapshot(
            LocalStorage(repository.folder), PARTIAL, allow_partial=True, indices=[repository.bad_index]
        )
        assert only_bad.restorable and only_bad.shards == 0


@pytest.fixture
def one_snapshot(testbed) -> Iterator[tuple[Path, str]]:
    """A 7.17 node's SUCCESS snapshot of a 2-shard index in an `fs` repository under the bucket: (folder, index id)."""
    client = testbed.client("7.17")
    tag = uuid.uuid4().hex[:8]
    index, repository = f"stray-{tag}", f"stray-{tag}"
    folder = testbed.bucket_dir / f"verify-{uuid.uuid4().hex}"
    client.request("PUT", build_path(index), {"settings": {"number_of_shards": 2, "number_of_replicas": 0}})
    client.request("POST", "/_bulk", _documents(index, 200), timeout_s=120)
    client.request("POST", build_path(index, "_refresh"))
    client.request("PUT", build_path("_snapshot", repository), {"type": "fs", "settings": {"location": str(folder)}})
    try:
        client.request(
            "PUT",
            build_path("_snapshot", repository, GOOD, params={"wait_for_completion": "true"}),
            {"indices": index, "include_global_state": False},
            timeout_s=120,
        )
    finally:
        client.request("DELETE", build_path("_snapshot", repository))
        client.request("DELETE", build_path(index), ok=(200, 404))
        client.close()
    data = json.loads(live_index_n(folder).read_text())
    yield folder, data["indices"][index]["id"]
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("backend", ["local", "oss"])
def test_a_stray_folder_beside_a_shard_folder_is_a_leftover(one_snapshot, oss, backend):
    """`0.bak/` and `0-old/` sort just before `0/` (and `1~/` after `1/`): none of them is a shard's folder."""
    folder, index_id = one_snapshot
    strays = ("0.bak", "0-old", "1~")
    for stray in strays:
        (folder / "indices" / index_id / stray).mkdir()
        (folder / "indices" / index_id / stray / "__leftover").write_bytes(b"x" * 10)
    storage: Storage = LocalStorage(folder) if backend == "local" else oss(folder)
    result = verify_snapshot(storage, GOOD)
    assert result.restorable, result.summary()
    assert [f for f in result.findings if f.severity != "garbage"] == []
    assert result.shards == 2 and result.files > 0
    leftovers = " ".join(f.message for f in result.findings if f.code == "unreferenced_blobs")
    assert "3 blob(s)" in leftovers and f"indices/{index_id}/0.bak/__leftover" in leftovers
