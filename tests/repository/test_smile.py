"""The SMILE decoder: hand-made vectors from the format's rules, every fixture blob, round trips."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.repository import smile
from migrator.repository.blob import read_frame
from tests.repository import fixture_repositories, framed_blobs

HEADER_NAMES = b":)\n\x01"  # shared names only
HEADER_ES = b":)\n\x05"  # what Elasticsearch writes: shared names + raw binary
HEADER_VALUES = b":)\n\x03"  # shared names + shared string values


def test_object_with_short_ascii_keys_and_values_as_elasticsearch_writes_them():
    # From ES_7_10_BWC_Check/snap-*.dat: {"snapshot": {"name": "rfs-snapshot", "version_id": 7100299, ...}}
    data = HEADER_ES + bytes.fromhex("fa87") + b"snapshot" + bytes.fromhex("fa83") + b"name" + b"\x4b" + b"rfs-snapshot"
    data += b"\x89version_id" + bytes.fromhex("240d453c96") + b"\xfb\xfb"
    assert smile.decode(data) == {"snapshot": {"name": "rfs-snapshot", "version_id": 7100299}}


def test_literals_small_ints_and_shared_key_names():
    data = HEADER_NAMES + b"\xfa\x80a\xf8\x20\x21\x22\x23\xc0\xc1\xc2\xdf\xf9\x80b\xfa\x40\xc8\xfb\xfb"
    assert smile.decode(data) == {"a": ["", None, False, True, 0, -1, 1, -16], "b": {"a": 4}}


def test_long_shared_key_name_reference_and_long_names():
    names = {f"k{n}": n for n in range(70)}  # index 64+ needs the two-byte reference
    long_name = "x" * 70  # longer than a short name: 0x34 ... 0xFC
    data = smile.encode([names, names, {long_name: 1, "é" * 40: 2}])
    assert bytes([0x30, 64]) in data  # the second time k64 is written as a long reference
    assert smile.decode(data) == [names, names, {long_name: 1, "é" * 40: 2}]


def test_shared_string_values():
    data = HEADER_VALUES + b"\xfa\x80a\x42xyz\x80b\x01\xfb"
    assert smile.decode(data) == {"a": "xyz", "b": "xyz"}


def test_numbers_floats_and_doubles_in_seven_bit_groups():
    assert smile.decode(HEADER_NAMES + bytes.fromhex("28037e000000")) == 1.5
    assert smile.decode(HEADER_NAMES + bytes.fromhex("29003f7c00000000000000")) == 1.5
    assert smile.decode(HEADER_NAMES + bytes.fromhex("2481")) == -1  # zigzag
    assert smile.decode(smile.encode(2**40)) == 2**40  # 0x25 long
    assert smile.decode(smile.encode(-(2**70))) == -(2**70)  # 0x26 BigInteger


def test_big_decimal():
    unscaled = (12345).to_bytes(2, "big", signed=True)  # 0x3039
    encoded = smile._to_7bit(unscaled)
    data = HEADER_NAMES + b"\x2a" + smile._vint(4) + smile._vint(len(unscaled)) + encoded  # scale 2 (zigzag 4)
    assert smile.decode(data) == Decimal("123.45")


def test_binary_seven_bit_and_raw():
    assert smile.decode(HEADER_NAMES + bytes.fromhex("e8817f01")) == b"\xff"
    assert smile.decode(HEADER_ES + b"\xfd\x83abc") == b"abc"
    with pytest.raises(smile.SmileError, match="raw binary"):
        smile.decode(HEADER_NAMES + b"\xfd\x83abc")


def test_long_strings_and_unicode():
    text = "ünïcode " * 20
    assert smile.decode(smile.encode({"t": text, "a": "a" * 200})) == {"t": text, "a": "a" * 200}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{}", "not a SMILE document"),
        (b":)\n\x15\xfa\xfb", "version 1"),
        (HEADER_NAMES + b"\xfa\x80a", "ends where a value should start"),
        (HEADER_NAMES + b"\xfa\x41\xc0\xfb", "shared key name 1"),
        (HEADER_NAMES + b"\x05", "shared string value 4"),
        (HEADER_NAMES + b"\x2b", "invalid value byte 0x2B"),
        (HEADER_NAMES + b"\xc0\xc0", "1 unexpected bytes"),
        (HEADER_NAMES + b"\x45abc", "inside a 6-byte value"),
        (HEADER_NAMES + b"\xe0abc", "inside a long string"),
        (HEADER_NAMES + b"\x42\xff\xfe\xfd", "invalid ascii"),
    ],
)
def test_malformed_documents_fail_with_the_offset(data, message):
    with pytest.raises(smile.SmileError, match=message):
        smile.decode(data)


def test_end_of_content_marker_is_accepted():
    assert smile.decode(HEADER_NAMES + b"\xc2\xff") == 1


FIXTURE_BLOBS = [path for root in fixture_repositories() for path in framed_blobs(root)]


def test_the_fixtures_are_there():
    assert len(fixture_repositories()) == 4
    assert len(FIXTURE_BLOBS) == 38  # 10 root, 9 index metadata, 10 shard snap, 9 shard index-*


@pytest.mark.parametrize("path", FIXTURE_BLOBS, ids=lambda path: "/".join(path.parts[-4:]))
def test_every_fixture_blob_decodes(path):
    body = read_frame(str(path), path.read_bytes()).body
    assert body[:4] == b":)\n\x05"
    document = smile.decode(body)
    assert isinstance(document, dict) and document
    # what each kind of blob must hold
    if path.name.startswith("index-"):
        assert set(document) >= {"snapshots"}
    elif path.parents[2].name == "indices":
        assert {"name", "files"} <= set(document)
        for info in document["files"]:
            assert {"name", "physical_name", "length", "checksum"} <= set(info)
            if info["name"].startswith("v__"):
                assert len(info["meta_hash"]) == info["length"]
    elif path.parents[1].name == "indices":
        (index,) = document.values()
        assert int(index["settings"]["index.number_of_shards"]) >= 1
    elif path.name.startswith("snap-"):
        assert document["snapshot"]["state"] == "SUCCESS"
    # and the encoder writes the same value back
    assert smile.decode(smile.encode(document)) == document


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=80)
    | st.binary(max_size=40)
)
documents = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=70), children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(documents, st.booleans(), st.booleans(), st.booleans())
def test_round_trip(document, shared_names, shared_values, raw_binary):
    data = smile.encode(document, shared_names=shared_names, shared_values=shared_values, raw_binary=raw_binary)
    decoded = smile.decode(data)
    assert decoded == document or (isinstance(document, float) and math.isclose(decoded, document))


@pytest.mark.parametrize("shared_values", [False, True])
def test_shared_tables_start_over_after_1024_entries(shared_values):
    keys = [f"key-{n}" for n in range(1500)]  # more distinct names (and values) than a table holds
    document = [{key: key for key in keys}, {key: n for n, key in enumerate(keys)}]
    assert smile.decode(smile.encode(document, shared_values=shared_values)) == document


@pytest.mark.parametrize("path", FIXTURE_BLOBS[::4], ids=lambda path: "/".join(path.parts[-4:]))
def test_every_truncation_of_a_fixture_blob_fails_with_its_offset(path):
    # The decoder reads strings and key names by slicing: a document cut anywhere must fail with a SmileError
    # naming an offset inside it, never decode a short slice or raise an IndexError.
    body = read_frame(str(path), path.read_bytes()).body
    for end in range(4, len(body), max(1, len(body) // 300)):
        with pytest.raises(smile.SmileError, match=r"at offset (\d+)") as failed:
            smile.decode(body[:end])
        assert int(failed.value.args[0].rpartition(" ")[2]) <= end
