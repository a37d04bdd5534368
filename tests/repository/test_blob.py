"""Framed blobs: codec header, CRC32 footer, DEFLATE bodies, SMILE or JSON; errors name the blob."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.repository.blob import (
    CODEC_MAGIC,
    DEFLATE_HEADER,
    FOOTER_MAGIC,
    BlobError,
    decode_blob,
    decode_body,
    encode_blob,
    lucene_footer,
    read_frame,
)
from tests.repository import FIXTURES, fixture_repositories, framed_blobs

DOCUMENT = {"name": "snap", "files": [{"name": "__a", "length": 3, "meta_hash": b"\x00\x01\x02"}], "n": 2**40}


def expected_codec(path) -> str:
    if path.name.startswith("index-"):
        return "snapshots"
    if path.parents[2].name == "indices":
        return "snapshot"
    if path.parents[1].name == "indices":
        return "index-metadata"
    return "snapshot" if path.name.startswith("snap-") else "metadata"


@pytest.mark.parametrize("root", fixture_repositories(), ids=lambda root: root.name)
def test_fixture_blobs_have_the_codec_their_place_implies(root):
    for path in framed_blobs(root):
        frame = read_frame(path.name, path.read_bytes(), expected_codec(path))
        assert frame.version >= 1
        assert decode_body(path.name, frame.body)


def frame(codec: bytes, body: bytes) -> bytes:
    head = struct.pack(">IB", CODEC_MAGIC, len(codec)) + codec + struct.pack(">i", 1)
    framed = head + body + struct.pack(">Ii", FOOTER_MAGIC, 0)
    return framed + struct.pack(">q", zlib.crc32(framed))


@pytest.mark.parametrize("compress", [False, True])
def test_encode_and_decode(compress):
    data = encode_blob("snapshot", DOCUMENT, compress=compress)
    assert read_frame("x", data).body.startswith(DEFLATE_HEADER if compress else b":)\n")
    assert decode_blob("x", data, "snapshot") == DOCUMENT


def test_json_body_is_accepted():
    data = frame(b"metadata", b' {"a": [1, 2]}')
    assert decode_blob("x", data, "metadata") == {"a": [1, 2]}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_flipped_byte_is_caught(data):
    blob = encode_blob("snapshot", DOCUMENT, compress=data.draw(st.booleans()))
    position = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    damaged = bytearray(blob)
    damaged[position] ^= 1 << bit
    with pytest.raises(BlobError, match=r"^indices/x/0/snap-u\.dat: "):
        decode_blob("indices/x/0/snap-u.dat", bytes(damaged), "snapshot")


@pytest.mark.parametrize("keep", [0, 10, 24, -1, -9])
def test_truncated_blobs_are_caught(keep):
    blob = encode_blob("snapshot", DOCUMENT)
    with pytest.raises(BlobError, match="snap-u.dat"):
        decode_blob("snap-u.dat", blob[:keep])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00" * 40, "does not start with the codec header"),
        (encode_blob("metadata", {}), "codec is 'metadata', expected 'snapshot'"),
        (frame(b"snapshot", DEFLATE_HEADER + b"\x00garbage"), "does not inflate"),
        (frame(b"snapshot", DEFLATE_HEADER + zlib.compressobj(6, zlib.DEFLATED, -15).compress(b"x" * 100)), "ends"),
        (frame(b"snapshot", b"<xml/>"), "neither SMILE nor JSON"),
        (frame(b"snapshot", b":)\n\x05\xfa\x80"), "SMILE body does not decode"),
        (frame(b"snapshot", b"{nope"), "JSON body does not decode"),
    ],
)
def test_bad_bodies_and_headers_are_named(data, message):
    with pytest.raises(BlobError, match=message):
        decode_blob("meta-u.dat", data, "snapshot")


def test_lucene_footer_of_a_real_data_file_matches_its_recorded_checksum():
    shard = FIXTURES / "ES_7_10_Double" / "indices" / "TKzEIy9ASTq-FuWhogYPHw" / "0"
    files = decode_blob("snap", (shard / "snap-MLvfrD_pTnO_XKWl4qrhOw.dat").read_bytes(), "snapshot")["files"]
    assert files
    for info in files:
        content = info["meta_hash"] if info["name"].startswith("v__") else (shard / info["name"]).read_bytes()
        assert lucene_footer(info["name"], content[-16:]) == int(info["checksum"], 36) == zlib.crc32(content[:-8])


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b"\x00" * 8, "too short"),
        (b"\x00" * 16, "no footer"),
        (struct.pack(">IIq", FOOTER_MAGIC, 1, 5), "algorithm 1"),
        (struct.pack(">IIq", FOOTER_MAGIC, 0, 2**40), "not a CRC32"),
    ],
)
def test_bad_footers(tail, message):
    with pytest.raises(BlobError, match=message):
        lucene_footer("_0.cfs", tail)


def test_index_n_is_plain_json_not_framed():
    data = (FIXTURES / "ES_7_10_Double" / "index-1").read_bytes()
    assert json.loads(data)["snapshots"]
    with pytest.raises(BlobError, match="codec header"):
        read_frame("index-1", data)
