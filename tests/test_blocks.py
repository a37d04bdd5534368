"""The block bookkeeping (migrator.blocks): reading blocks from a filtered cluster state, the record of
the source's blocks before the cutover (written once, kept across a kill, never overwritten by an
observation made after our own block), and what a rollback lifts."""

from __future__ import annotations

from migrator.blocks import (
    SourceBlocks,
    added_write_block,
    blocks_path,
    differences,
    lift_write_block,
    parse_blocks,
    read_blocks,
    refuses_writes,
)
from migrator.state import StateStore
from tests.steps.fakes import FakeIndices

ARCHIVE = {"index.blocks.write": "true"}


def test_blocks_are_read_from_the_cluster_state_with_flat_names():
    body = {
        "metadata": {
            "indices": {
                "archive": {"settings": {"index": {"blocks": {"write": "true", "read_only_allow_delete": "false"}}}},
                "odd": {"settings": {"index": {"blocks": {"unknown_block": "true"}}}},
            }
        }
    }
    assert parse_blocks(body, ["archive", "odd", "live"]) == {
        "archive": {"index.blocks.write": "true", "index.blocks.read_only_allow_delete": "false"},
        "odd": {},
        "live": {},
    }
    assert parse_blocks({}, ["live"]) == {"live": {}}  # filter_path leaves nothing when no index has a block
    assert (
        blocks_path(["a", "b"]) == "/_cluster/state/metadata/a,b?filter_path=metadata.indices.*.settings.index.blocks"
    )


def test_read_blocks_asks_in_batches_of_fifty():
    names = [f"i{n}" for n in range(120)]
    cluster = FakeIndices({name: ({"index.blocks.read": "true"} if name == "i99" else {}) for name in names})
    found = read_blocks(cluster, names)
    assert len(found) == 120 and found["i99"] == {"index.blocks.read": "true"} and found["i0"] == {}


def test_which_blocks_refuse_writes_and_which_write_block_is_ours():
    assert refuses_writes(ARCHIVE)
    assert refuses_writes({"index.blocks.read_only": "true"})
    assert not refuses_writes({"index.blocks.write": "false", "index.blocks.read": "true"})
    assert added_write_block({}, ARCHIVE)
    assert added_write_block({"index.blocks.write": "false"}, ARCHIVE)
    assert not added_write_block(ARCHIVE, ARCHIVE)  # the source's own
    assert not added_write_block(None, ARCHIVE)  # no record: the cutover never sent its block there
    assert not added_write_block({}, {})


def test_lifting_puts_back_the_recorded_value_exactly():
    assert lift_write_block({}) == {"index.blocks.write": None}
    assert lift_write_block({"index.blocks.write": "false"}) == {"index.blocks.write": False}


def test_differences_name_each_setting_with_its_recorded_and_current_value():
    before = {"a": {}, "b": ARCHIVE}
    now = {"a": {"index.blocks.read_only": "true"}, "b": ARCHIVE}
    assert differences(before, now) == {"a": {"index.blocks.read_only": [None, "true"]}}


def test_the_record_is_written_once_and_survives_a_kill(tmp_path):
    state = StateStore(tmp_path / "state.db")
    record = SourceBlocks(state)
    assert record.get() is None
    assert record.record({"archive": ARCHIVE, "live": {}}) == {"archive": ARCHIVE, "live": {}}
    state.close()  # as if killed right after our write block

    state = StateStore(tmp_path / "state.db")
    record = SourceBlocks(state)
    after_our_block = {"archive": ARCHIVE, "live": ARCHIVE, "new": {}}
    assert record.record(after_our_block) == {"archive": ARCHIVE, "live": {}, "new": {}}
    assert SourceBlocks(state).get() == {"archive": ARCHIVE, "live": {}, "new": {}}
    record.forget()
    assert SourceBlocks(state).get() is None
    assert record.record({"live": {}}) == {"live": {}}  # the next cutover records anew
    state.close()


def test_without_a_state_file_the_record_lives_in_memory():
    record = SourceBlocks()
    record.record({"live": {}})
    assert record.record({"live": ARCHIVE}) == {"live": {}}
    record.forget()
    assert record.get() is None
