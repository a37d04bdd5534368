"""Verification on the fixture repositories (ES 5.6, 6.8, 7.10): clean as they are, each damage named.

Through LocalStorage and through the sandbox OSS server serving a copy (V4 and V1 signatures, and
with 10% injected 5xx answers), plus the `migrator verify` command. No Elasticsearch node needed.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest
import typer
from typer.testing import CliRunner

from migrator.cli.verify import verify
from migrator.clients.storage import LocalStorage, ObjectInfo, OssStorage
from migrator.repository.blob import decode_blob, encode_blob
from migrator.repository.repository_data import list_snapshots
from migrator.repository.verify import VerifyResult, verify_snapshot
from migrator.sandbox.oss_server import BucketConfig, Faults, OssServer
from tests.repository import FIXTURES, ReadRecorder, fixture_repositories

EXPECTED = {
    "ES_5_6_Updates_Deletes": ["rfs_snapshot"],
    "ES_6_8_Single": ["global_state_snapshot"],
    "ES_7_10_BWC_Check": ["rfs-snapshot"],
    "ES_7_10_Double": ["global_state_snapshot", "global_state_snapshot_2"],
}
CASES = [(root.name, snapshot) for root in fixture_repositories() for snapshot in EXPECTED[root.name]]
BUCKET, REGION, AK, SK = "fixtures", "oss-cn-hangzhou", "verify-test-key", "verify-test-secret-value"
DOUBLE = "ES_7_10_Double"
DOUBLE_SHARD = "indices/TKzEIy9ASTq-FuWhogYPHw/0"


def assert_clean(result: VerifyResult) -> None:
    assert result.restorable, result.summary()
    assert [f for f in result.findings if f.severity != "garbage"] == []
    assert result.indices and result.shards and result.files
    json.dumps(result.to_dict())


def test_every_fixture_repository_lists_its_snapshots():
    assert {root.name for root in fixture_repositories()} == set(EXPECTED)
    for root in fixture_repositories():
        generation, snapshots = list_snapshots(LocalStorage(root))
        assert generation is not None
        assert [s.name for s in snapshots] == EXPECTED[root.name]
        assert all(s.state == "SUCCESS" and s.indices for s in snapshots)


@pytest.mark.parametrize("level", ["normal", "deep", "full"])
@pytest.mark.parametrize(("repository", "snapshot"), CASES)
def test_every_fixture_snapshot_verifies_clean(repository, snapshot, level):
    result = verify_snapshot(LocalStorage(FIXTURES / repository), snapshot, deep=level == "deep", full=level == "full")
    assert_clean(result)
    assert result.level == level
    garbage = [f.code for f in result.findings]
    assert garbage == (["old_generations"] if repository == "ES_6_8_Single" else [])  # 6.8 keeps index-0


# through the OSS server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OssServer]:
    root = tmp_path_factory.mktemp("oss")
    shutil.copytree(FIXTURES, root / BUCKET, ignore=shutil.ignore_patterns("README.md"))
    with OssServer(root, [BucketConfig(BUCKET, region=REGION)], AK, SK) as srv:
        yield srv


def oss(server: OssServer, repository: str, signature: Literal["v4", "v1"] = "v4") -> OssStorage:
    return OssStorage(server.endpoint, BUCKET, repository, AK, SK, region=REGION, signature=signature, backoff_s=0.01)


@pytest.mark.parametrize(("repository", "snapshot"), CASES)
def test_through_the_oss_server_the_result_is_the_same(server, repository, snapshot):
    local = verify_snapshot(LocalStorage(FIXTURES / repository), snapshot, deep=True)
    before = server.stats()["requests_by_op"]
    remote = verify_snapshot(oss(server, repository), snapshot, deep=True)
    after = server.stats()["requests_by_op"]
    assert_clean(remote)
    assert remote.storage.startswith(f"oss://{BUCKET}/{repository}")
    for name in ("indices", "shards", "files", "blobs", "bytes", "listed", "generation", "uuid", "state"):
        assert getattr(remote, name) == getattr(local, name), name
    assert [f.code for f in remote.findings] == [f.code for f in local.findings]
    used = {op: after.get(op, 0) - before.get(op, 0) for op in after}
    assert used.get("HeadObject", 0) == used.get("GetObjectMeta", 0) == 0  # never a HEAD per blob
    pages = math.ceil(remote.listed / 1000) + remote.indices
    # deep adds one ranged GET of the footer per file (none for v__ files, whose bytes are inline)
    assert remote.requests <= 10 + 2 * remote.indices + 2 * remote.shards + pages + remote.files


def test_normal_verification_request_budget(server):
    """Without deep: a fixed handful at the root, then per index one GET + its listing (4 indices: fewer
    than shard_walker.JOINED_FROM, listed one by one, in parallel), per shard one GET (its snap file: the
    live index-<gen> is only listed, as restore never reads it)."""
    result = verify_snapshot(oss(server, "ES_7_10_BWC_Check"), "rfs-snapshot")
    assert_clean(result)
    assert result.requests == 10 + result.indices * 2 + result.shards


@pytest.mark.parametrize(("level", "per_index"), [("normal", 2), ("deep", 3)])
def test_gets_per_one_shard_index(server, level, per_index):
    """Per one-shard index, normal reads what a restore reads (the index's meta-*.dat, the shard's
    snap-*.dat); deep reads the shard's live index-<gen> as well."""
    reader = ReadRecorder(oss(server, "ES_7_10_BWC_Check"))
    result = verify_snapshot(reader, "rfs-snapshot", deep=level == "deep")
    assert_clean(result)
    assert result.indices == result.shards == 4
    per_shard = [key for key in reader.reads if key.startswith("indices/")]
    assert len(per_shard) == per_index * result.indices, per_shard
    assert (level == "deep") == any(key.rsplit("/", 1)[1].startswith("index-") for key in per_shard)


def test_v1_signatures_and_injected_faults(server):
    server.set_faults(Faults(error_rate=0.1, latency_ms=5, seed=4))
    try:
        for repository, snapshot in CASES:
            assert_clean(verify_snapshot(oss(server, repository, signature="v1"), snapshot, deep=True))
    finally:
        server.set_faults(Faults())


# damage, one kind at a time ---------------------------------------------------------------------


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x55
    path.write_bytes(bytes(data))


def rewrite_shard_snap(root: Path, change: Callable[[dict], None]) -> None:
    path = root / DOUBLE_SHARD / "snap-7_1RHMshSc6c0cuzX1NCDg.dat"
    document = decode_blob(path.name, path.read_bytes(), "snapshot")
    change(document)
    path.write_bytes(encode_blob("snapshot", document))


def edit_index_n(root: Path, change: Callable[[dict], None]) -> None:
    document = json.loads((root / "index-1").read_text())
    change(document)
    (root / "index-1").write_text(json.dumps(document))


def shorten_meta_hash(document: dict) -> None:
    virtual = next(info for info in document["files"] if info["name"].startswith("v__"))
    virtual["meta_hash"] = virtual["meta_hash"][:-1]


def first_data_file(root: Path) -> Path:
    return sorted((root / DOUBLE_SHARD).glob("__*"))[0]


DAMAGE: dict[str, tuple[Callable[[Path], None], dict, str, str, str]] = {
    # name: (damage, verify options, severity, code, words in the message)
    "index.latest missing": (lambda r: (r / "index.latest").unlink(), {}, "warning", "index_latest_missing", "missing"),
    "index.latest behind": (
        lambda r: (r / "index.latest").write_bytes((0).to_bytes(8, "big")),
        {},
        "warning",
        "index_latest_behind",
        "index.latest says 0 but index-1 exists",
    ),
    "live index-N deleted": (
        lambda r: (r / "index.latest").write_bytes((2).to_bytes(8, "big")),
        {},
        "error",
        "repository_data_missing",
        "index-2 is missing",
    ),
    "every index-N deleted": (
        lambda r: (r / "index-1").unlink(),
        {},
        "error",
        "repository_data_missing",
        "the live index-1 (named by index.latest) is missing",
    ),
    "index-N not JSON": (
        lambda r: (r / "index-1").write_text("{oops"),
        {},
        "error",
        "repository_data_damaged",
        "not valid JSON",
    ),
    "snapshot FAILED": (
        lambda r: edit_index_n(r, lambda d: d["snapshots"][0].update(state=2)),
        {},
        "error",
        "snapshot_state",
        "state is FAILED",
    ),
    "snapshot PARTIAL": (
        lambda r: edit_index_n(r, lambda d: d["snapshots"][0].update(state=3)),
        {},
        "error",
        "snapshot_partial",
        "PARTIAL",
    ),
    "snapshot PARTIAL allowed": (
        lambda r: edit_index_n(r, lambda d: d["snapshots"][0].update(state=3)),
        {"allow_partial": True},
        "warning",
        "snapshot_partial",
        "PARTIAL",
    ),
    "root snap blob damaged": (
        lambda r: flip(r / "snap-7_1RHMshSc6c0cuzX1NCDg.dat", 40),
        {},
        "error",
        "blob_damaged",
        "snap-7_1RHMshSc6c0cuzX1NCDg.dat: CRC32 mismatch",
    ),
    "root meta blob missing": (
        lambda r: (r / "meta-7_1RHMshSc6c0cuzX1NCDg.dat").unlink(),
        {},
        "error",
        "blob_missing",
        "meta-7_1RHMshSc6c0cuzX1NCDg.dat is missing",
    ),
    "index metadata missing": (
        lambda r: (r / "indices/TKzEIy9ASTq-FuWhogYPHw/meta-e0O-Zo4B5P7rRiUeQFTe.dat").unlink(),
        {},
        "error",
        "blob_missing",
        "index posts_2024_01_01: indices/TKzEIy9ASTq-FuWhogYPHw/meta-e0O-Zo4B5P7rRiUeQFTe.dat is missing",
    ),
    "shard snap file missing": (
        lambda r: (r / DOUBLE_SHARD / "snap-7_1RHMshSc6c0cuzX1NCDg.dat").unlink(),
        {},
        "error",
        "blob_missing",
        "index posts_2024_01_01, shard 0: indices/TKzEIy9ASTq-FuWhogYPHw/0/snap-7_1RHMshSc6c0cuzX1NCDg.dat is missing",
    ),
    "shard index-gen missing": (
        lambda r: (r / DOUBLE_SHARD / "index-guSEIbPOR8SI_i1M0mOHLQ").unlink(),
        {},
        "error",
        "shard_generation_missing",
        "shard 0: the shard's live index-guSEIbPOR8SI_i1M0mOHLQ is missing",
    ),
    "shard index-gen missing, deep": (
        lambda r: (r / DOUBLE_SHARD / "index-guSEIbPOR8SI_i1M0mOHLQ").unlink(),
        {"deep": True},
        "error",
        "shard_generation_missing",
        "shard 0: the shard's live index-guSEIbPOR8SI_i1M0mOHLQ is missing",
    ),
    "shard index-gen empty": (
        lambda r: (r / DOUBLE_SHARD / "index-guSEIbPOR8SI_i1M0mOHLQ").write_bytes(b""),
        {},
        "error",
        "shard_generation_damaged",
        "shard 0: the shard's live index-guSEIbPOR8SI_i1M0mOHLQ is empty (0 bytes)",
    ),
    "shard index-gen damaged, deep": (
        lambda r: flip(r / DOUBLE_SHARD / "index-guSEIbPOR8SI_i1M0mOHLQ", 100),
        {"deep": True},
        "error",
        "shard_generation_damaged",
        "CRC32 mismatch",
    ),
    "shard generation _new": (
        lambda r: edit_index_n(r, lambda d: d["indices"]["posts_2024_01_01"].update(shard_generations=["_new"])),
        {},
        "error",
        "shard_generation_missing",
        "shard 0: the live index-N records shard generation _new (no data)",
    ),
    "data blob missing": (
        lambda r: first_data_file(r).unlink(),
        {},
        "error",
        "blob_missing",
        "shard 0, file _1.cfe (__0288KPWOQDqkWIZaP_6u_w): blob __0288KPWOQDqkWIZaP_6u_w is missing",
    ),
    "data blob truncated": (
        lambda r: first_data_file(r).write_bytes(first_data_file(r).read_bytes()[:100]),
        {},
        "error",
        "blob_size",
        "blob __0288KPWOQDqkWIZaP_6u_w is 100 bytes, expected 479 (truncated)",
    ),
    "footer flipped, deep": (
        lambda r: flip(first_data_file(r), -2),
        {"deep": True},
        "error",
        "checksum_mismatch",
        "file _1.cfe (__0288KPWOQDqkWIZaP_6u_w): footer CRC32 is",
    ),
    "middle flipped, full": (
        lambda r: flip(first_data_file(r), 100),
        {"full": True},
        "error",
        "checksum_mismatch",
        "file _1.cfe (__0288KPWOQDqkWIZaP_6u_w): content CRC32 is",
    ),
    "virtual file bytes short": (
        lambda r: rewrite_shard_snap(r, shorten_meta_hash),
        {},
        "error",
        "blob_size",
        "inline bytes are 374 long, the file is 375",
    ),
    "malformed file entry": (
        lambda r: rewrite_shard_snap(r, lambda d: d["files"][0].pop("length")),
        {},
        "error",
        "metadata_damaged",
        "malformed file entry",
    ),
    "garbage": (
        lambda r: [
            (r / "tests-abc").mkdir(),
            (r / "tests-abc" / "master.dat").write_bytes(b"x"),
            (r / "pending-index-5").write_bytes(b"x"),
            (r / "snap-deadbeef.dat").write_bytes(b"x"),
            (r / DOUBLE_SHARD / "__orphan.part0").write_bytes(b"x"),
            (r / DOUBLE_SHARD / "index-oldgeneration").write_bytes(b"x"),
            (r / "indices/TKzEIy9ASTq-FuWhogYPHw/meta-unused.dat").write_bytes(b"x"),
        ],
        {},
        "garbage",
        "unreferenced_blobs",
        "3 blob(s) in indices/TKzEIy9ASTq-FuWhogYPHw/ that no snapshot references",
    ),
}


@pytest.fixture
def double(tmp_path: Path) -> Path:
    root = tmp_path / DOUBLE
    shutil.copytree(FIXTURES / DOUBLE, root)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    root.chmod(0o755)
    return root


@pytest.mark.parametrize("case", list(DAMAGE))
def test_each_damage_is_named(double, case):
    damage, options, severity, code, words = DAMAGE[case]
    damage(double)
    result = verify_snapshot(LocalStorage(double), "global_state_snapshot", **options)
    matching = [f for f in result.findings if f.code == code and f.severity == severity]
    assert matching, result.findings
    assert any(words in f.message for f in matching), [f.message for f in matching]
    assert result.restorable == (severity != "error")
    if severity == "error":
        assert words in result.summary() or len(result.errors) > 5


def test_damaged_shard_index_gen_is_not_read_at_the_normal_level(double):
    """Restore never reads a shard's live index-<gen>: normal leaves damaged bytes there unread (deep finds
    them, see DAMAGE) unless the shard folder holds names its snap file does not explain."""
    generation = f"{DOUBLE_SHARD}/index-guSEIbPOR8SI_i1M0mOHLQ"
    flip(double / generation, 100)
    reader = ReadRecorder(LocalStorage(double))
    assert verify_snapshot(reader, "global_state_snapshot").restorable
    assert generation not in reader.reads and f"{DOUBLE_SHARD}/snap-7_1RHMshSc6c0cuzX1NCDg.dat" in reader.reads
    (double / DOUBLE_SHARD / "__orphan").write_bytes(b"x")  # garbage or another snapshot's file: index-<gen> says
    reader = ReadRecorder(LocalStorage(double))
    result = verify_snapshot(reader, "global_state_snapshot")
    assert generation in reader.reads
    assert [f.code for f in result.errors] == ["shard_generation_damaged"]


def test_flipped_middle_byte_is_found_only_by_full(double):
    flip(first_data_file(double), 100)
    storage = LocalStorage(double)
    assert verify_snapshot(storage, "global_state_snapshot").restorable
    assert verify_snapshot(storage, "global_state_snapshot", deep=True).restorable
    assert not verify_snapshot(storage, "global_state_snapshot", full=True).restorable


def test_garbage_at_the_root_is_reported_not_failed(double):
    DAMAGE["garbage"][0](double)
    result = verify_snapshot(LocalStorage(double), "global_state_snapshot")
    assert result.restorable
    messages = " | ".join(f.message for f in result.findings if f.severity == "garbage")
    assert "1 tests-* blob(s)" in messages and "1 pending-* blob(s)" in messages
    assert "root blob(s) of snapshots the live index-N does not list" in messages and "snap-deadbeef.dat" in messages


def test_numeric_shard_generations_of_old_repositories(tmp_path):
    root = tmp_path / "r"
    shutil.copytree(FIXTURES / "ES_5_6_Updates_Deletes", root)
    shard = root / "indices/-KQKQKwfQ8-nhYQ8JfijxQ/0"
    (shard / "index-0").rename(shard / "index-1")
    (shard / "index-0").write_bytes(b"old")
    result = verify_snapshot(LocalStorage(root), "rfs_snapshot")
    assert result.restorable
    assert "1 blob(s)" in result.findings[0].message and "0/index-0" in result.findings[0].message
    for path in shard.glob("index-*"):
        path.unlink()
    result = verify_snapshot(LocalStorage(root), "rfs_snapshot")
    assert [f.code for f in result.errors] == ["shard_generation_missing"]
    assert "shard 0: the shard folder has no index-N" in result.errors[0].message


def test_unknown_snapshot_and_index_and_empty_repository(double, tmp_path):
    storage = LocalStorage(double)
    result = verify_snapshot(storage, "nope")
    assert [f.code for f in result.errors] == ["snapshot_not_found"]
    assert "global_state_snapshot, global_state_snapshot_2" in result.errors[0].message
    result = verify_snapshot(storage, "global_state_snapshot", indices=["posts_2024_01_01", "other"])
    assert [f.code for f in result.errors] == ["index_not_in_snapshot"]
    assert result.indices == 1
    empty = verify_snapshot(LocalStorage(tmp_path / "empty"), "any")
    assert [f.code for f in empty.errors] == ["repository_data_missing"]
    assert list_snapshots(LocalStorage(tmp_path / "empty")) == (None, [])


class ConcurrentWriter(LocalStorage):
    """Writes a newer index-N (as a snapshot delete or a new snapshot would) after the first root listing."""

    def __init__(self, root: Path, keep_snapshot: bool) -> None:
        super().__init__(root)
        self.keep_snapshot = keep_snapshot
        self.listings = 0

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if prefix == "index-":
            self.listings += 1
            if self.listings == 2:
                document = json.loads((self.root / "index-1").read_text())
                if not self.keep_snapshot:
                    document["snapshots"] = document["snapshots"][1:]
                (self.root / "index-2").write_text(json.dumps(document))
        return super().list(prefix)


@pytest.mark.parametrize(
    ("keep", "severity", "code"), [(False, "error", "snapshot_deleted"), (True, "warning", "repository_changed")]
)
def test_a_generation_that_moves_during_verification(double, keep, severity, code):
    result = verify_snapshot(ConcurrentWriter(double, keep), "global_state_snapshot")
    assert [(f.severity, f.code) for f in result.findings if f.severity != "garbage"] == [(severity, code)]


# the command ------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> Callable[..., tuple[int, str]]:
    app = typer.Typer()
    app.command()(verify)
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env=env)
        return result.exit_code, result.output

    return run


def test_command_lists_and_verifies_a_folder(cli):
    code, out = cli("--dir", str(FIXTURES / DOUBLE))
    assert code == 0 and "global_state_snapshot_2" in out and "2 snapshot(s) in index-1" in out
    code, out = cli("--dir", str(FIXTURES / DOUBLE), "--json")
    assert code == 0 and [s["name"] for s in json.loads(out)["snapshots"]] == EXPECTED[DOUBLE]
    code, out = cli("--dir", str(FIXTURES / DOUBLE), "--snapshot", "global_state_snapshot", "--deep")
    assert code == 0 and "RESTORABLE" in out and "level deep" in out


def test_command_exit_codes(cli, double):
    first_data_file(double).unlink()
    code, out = cli("--dir", str(double), "-s", "global_state_snapshot", "--json")
    document = json.loads(out)
    assert code == 1 and document["restorable"] is False
    assert document["findings"][0]["shard"] == 0 and document["findings"][0]["file"] == "_1.cfe"
    code, out = cli("--dir", str(double), "-s", "global_state_snapshot")
    assert code == 1 and "NOT RESTORABLE" in out and "__0288KPWOQDqkWIZaP_6u_w is missing" in out
    assert cli()[0] == 2
    assert cli("--dir", str(double), "--endpoint", "http://127.0.0.1:1", "--bucket", "b")[0] == 2
    assert cli("--dir", str(double / "nope"))[0] == 2
    assert cli("--endpoint", "http://127.0.0.1:1", "--bucket", "b", env={"OSS_ACCESS_KEY_ID": ""})[0] == 2
    assert cli("--dir", str(double), "--signature", "v3")[0] == 2


def test_command_with_oss_coordinates(cli, server):
    env = {"OSS_ACCESS_KEY_ID": AK, "OSS_ACCESS_KEY_SECRET": SK}
    args = ("--endpoint", server.endpoint, "--bucket", BUCKET, "--base-path", DOUBLE, "--region", REGION)
    code, out = cli(*args, "-s", "global_state_snapshot_2", env=env)
    assert code == 0 and "RESTORABLE" in out and SK not in out
    code, out = cli(*args, env={**env, "OSS_ACCESS_KEY_SECRET": "wrong-secret"})
    assert code == 1 and "SignatureDoesNotMatch" in out and "wrong-secret" not in out


def test_command_with_a_plan(cli, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        json.dumps(
            {
                "name": "verify-test",
                "source": {"url": "http://127.0.0.1:1"},
                "destination": {"url": "http://127.0.0.1:2"},
                "repository": {"name": "r", "type": "fs", "settings": {"location": str(FIXTURES / DOUBLE)}},
                "storage": {"kind": "local", "path": str(FIXTURES / DOUBLE)},
                "snapshot": {"indices": ["*"]},
            }
        )
    )
    code, out = cli("--plan", str(plan), "--snapshot", "global_state_snapshot")
    assert code == 0 and "RESTORABLE" in out
    plan.write_text("name: [")
    assert cli("--plan", str(plan), "--snapshot", "x")[0] == 2
