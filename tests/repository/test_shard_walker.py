"""The shard walker on the vendored repositories (ES 5.6, 6.8, 7.10): from the root index-N to every blob.

One case per fixture repository; the fixture list comes from `fixture_repositories()`, which raises when
it is empty, so a missing fixture fails the collection instead of leaving no case to run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrator.clients.storage import LocalStorage, ObjectInfo
from migrator.repository.blob import decode_blob
from migrator.repository.repository_data import read_repository_data
from migrator.repository.shard_walker import (
    Shard,
    failed_shards,
    index_groups,
    index_metadata_key,
    index_shards,
    joined_listing,
    parse_file_info,
    shard_count,
    shard_files,
)
from tests.repository import fixture_repositories


@dataclass(frozen=True)
class Expected:
    """What each fixture's writer put there (read with `ls` and the index-N JSON)."""

    shards: int  # shards over all snapshots and indices
    files: int  # files over all those shards
    inline: int  # of them, `v__` files with inline bytes
    named_generations: bool  # 7.6+: the root index-N names each shard's live generation
    deduplicated_metadata: bool  # 7.9+: index metadata blobs are not named by the snapshot's uuid


EXPECTED = {
    "ES_5_6_Updates_Deletes": Expected(1, 10, 0, False, False),
    "ES_6_8_Single": Expected(2, 14, 0, False, False),
    "ES_7_10_BWC_Check": Expected(4, 10, 6, True, True),
    "ES_7_10_Double": Expected(3, 18, 8, True, True),
}


def test_the_fixture_list_is_the_four_vendored_repositories() -> None:
    assert [root.name for root in fixture_repositories()] == sorted(EXPECTED)


@pytest.mark.parametrize("root", fixture_repositories(), ids=lambda root: root.name)
def test_the_walk_reaches_every_blob_a_restore_reads(root: Path) -> None:
    storage = LocalStorage(root)
    data = read_repository_data(storage)
    assert data is not None
    expected = EXPECTED[root.name]
    shards = files = inline = 0
    for snapshot in data.snapshots.values():
        info_key = f"snap-{snapshot.uuid}.dat"
        assert failed_shards(decode_blob(info_key, storage.read(info_key), "snapshot")) == set()
        for index in snapshot.indices:
            meta_key = index_metadata_key(data, index, snapshot.uuid)
            assert (meta_key.rpartition("/meta-")[2] != f"{snapshot.uuid}.dat") == expected.deduplicated_metadata
            count = shard_count(decode_blob(meta_key, storage.read(meta_key), "index-metadata"))
            assert count is not None
            walked = index_shards(data, index, count)
            assert [shard.number for shard in walked] == list(range(count))
            for shard in walked:
                assert (shard.generation is not None) == expected.named_generations
                folder = root / shard.prefix
                live = shard.live_generation_blob(os.listdir(folder))
                assert live is not None and (folder / live).is_file()
                key = shard.snap_key(snapshot.uuid)
                listed = shard_files(decode_blob(key, storage.read(key), "snapshot"))
                for file in listed:
                    if file.inline is not None:
                        assert len(file.inline) == file.length
                    for part, size in file.parts:
                        assert (folder / part).stat().st_size == size
                shards += 1
                files += len(listed)
                inline += sum(file.inline is not None for file in listed)
    assert (shards, files, inline) == (expected.shards, expected.files, expected.inline)


def test_a_file_longer_than_the_part_size_is_split_into_numbered_parts() -> None:
    info = parse_file_info({"name": "__a", "physical_name": "_0.cfs", "length": 250, "part_size": 100})
    assert info.parts == (("__a.part0", 100), ("__a.part1", 100), ("__a.part2", 50))
    assert parse_file_info({"name": "__b", "length": 100, "part_size": 100}).parts == (("__b", 100),)
    assert parse_file_info({"name": "v__c", "length": 3, "meta_hash": "YWJj"}).inline == b"abc"
    with pytest.raises(ValueError):
        parse_file_info({"name": "__d", "length": -1})


def test_failed_shards_are_left_out_and_no_data_generations_have_no_live_blob() -> None:
    data = read_repository_data(LocalStorage(fixture_repositories()[2]))
    assert data is not None
    index = "bwc_index_1"
    data.raw["indices"][index]["shard_generations"] = ["gen-a", "_new", "7"]
    failed = failed_shards({"snapshot": {"failures": [{"index": index, "shard_id": 2, "reason": "x"}]}})
    assert failed == {(index, 2)}
    walked = index_shards(data, index, 3, failed)
    assert [(shard.number, shard.generation, shard.has_no_data) for shard in walked] == [
        (0, "gen-a", False),
        (1, "_new", True),
    ]
    assert walked[1].live_generation_blob(["index-0"]) is None
    numeric = Shard(index, "id", 2, None)
    assert numeric.live_generation_blob(["index-3", "index-12", "snap-x.dat"]) == "index-12"
    assert numeric.live_generation_blob([]) is None


def info(key: str) -> ObjectInfo:
    return ObjectInfo(key, 1)


def test_index_groups_hand_each_wanted_index_its_keys_and_skip_the_rest():
    keys = [
        "indices/a-x/0/__1",  # '-' sorts before '/': index a-x before index a
        "indices/a/0/__1",
        "indices/a/0/snap-u.dat",
        "indices/a/meta-m.dat",
        "indices/b/0/__1",
        "indices/c/0/__1",
        "indices/c/0/__2",
        "indices/c/0/__3",
        "indices/stray",
        "indices/d/meta-m.dat",
    ]
    listing = iter([ObjectInfo(key, 1) for key in keys])
    groups = []
    for index_id, infos in index_groups(listing, {"a", "c", "d", "z"}, 2):
        groups.append((index_id, type(infos).__name__, [info.key for info in infos]))
    assert groups == [
        ("a", "chain", ["indices/a/0/__1", "indices/a/0/snap-u.dat", "indices/a/meta-m.dat"]),  # 3 > 2: streamed
        ("c", "chain", ["indices/c/0/__1", "indices/c/0/__2", "indices/c/0/__3"]),
        ("d", "list", ["indices/d/meta-m.dat"]),
    ]
    assert next(listing, None) is None
    kinds = [(index_id, type(infos).__name__) for index_id, infos in index_groups(iter(map(info, keys)), {"a", "c"}, 3)]
    assert kinds == [("a", "list"), ("c", "list")]


def test_joined_listing_when_the_snapshot_holds_half_of_the_repository_indices():
    assert joined_listing(500, 500) and joined_listing(20, 40) and joined_listing(16, 16)
    assert not joined_listing(19, 40) and not joined_listing(0, 0) and not joined_listing(10, 1000)
    assert not joined_listing(4, 4) and not joined_listing(15, 15)  # a few indices: their listings in parallel
