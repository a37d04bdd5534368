"""Framed repository blobs: Lucene codec header, optional DEFLATE, SMILE or JSON body, CRC32 footer.

Place in the flow: verify -> blob (this module) -> smile. Elasticsearch writes every `.dat` blob
(`snap-*`, `meta-*`, shard `snap-*`) and every shard `index-<gen>` as

    0x3FD76C17 | codec name (Lucene VInt length + UTF-8) | int32 version | body | footer

where the footer is 0xC02893E8, int32 0 (the algorithm) and the CRC32 of every byte before it, as
an int64. The body is SMILE (or, just in case, JSON), DEFLATE-compressed behind `DFL\\0` when the
repository has `compress` on. Lucene data files end with the same 16-byte footer, which is what
`lucene_footer` reads for the deep check. Every error names the blob.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from migrator.repository import smile

CODEC_MAGIC = 0x3FD76C17
FOOTER_MAGIC = 0xC02893E8
FOOTER_LENGTH = 16
DEFLATE_HEADER = b"DFL\x00"


class BlobError(Exception):
    """A blob is damaged or not what Elasticsearch writes; the message names it."""


@dataclass(frozen=True)
class Frame:
    codec: str
    version: int
    body: bytes


def _vint(data: bytes, pos: int) -> tuple[int, int]:
    """A Lucene VInt (little-endian 7-bit groups, high bit = more) at pos → (value, next position)."""
    value = shift = 0
    while pos < len(data) and shift < 35:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated or invalid VInt")


def lucene_footer(name: str, tail: bytes) -> int:
    """The CRC32 stored in a Lucene-style footer (the last 16 bytes of a file or framed blob)."""
    if len(tail) != FOOTER_LENGTH:
        raise BlobError(f"{name}: {len(tail)} bytes is too short for the 16-byte footer")
    magic, algorithm, checksum = struct.unpack(">IIq", tail)
    if magic != FOOTER_MAGIC:
        raise BlobError(f"{name}: no footer (the last 16 bytes start with 0x{magic:08X}, not 0x{FOOTER_MAGIC:08X})")
    if algorithm != 0:
        raise BlobError(f"{name}: footer names checksum algorithm {algorithm}, not 0 (CRC32)")
    if checksum >> 32:
        raise BlobError(f"{name}: footer checksum {checksum} is not a CRC32")
    return checksum


def read_frame(name: str, data: bytes, codec: str | None = None) -> Frame:
    """Check header, footer and CRC32 of a framed blob (and its codec when given); return its body."""
    if len(data) < 9 + FOOTER_LENGTH:
        raise BlobError(f"{name}: only {len(data)} bytes, too short for a framed blob (truncated?)")
    (magic,) = struct.unpack_from(">I", data)
    if magic != CODEC_MAGIC:
        raise BlobError(f"{name}: does not start with the codec header 0x{CODEC_MAGIC:08X} (0x{magic:08X} instead)")
    try:
        length, pos = _vint(data, 4)
        found = data[pos : pos + length].decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise BlobError(f"{name}: unreadable codec name in the header ({exc})") from None
    pos += length
    if codec is not None and found != codec:
        raise BlobError(f"{name}: codec is {found!r}, expected {codec!r}")
    if pos + 4 + FOOTER_LENGTH > len(data):
        raise BlobError(f"{name}: only {len(data)} bytes, too short for its header and footer (truncated?)")
    (version,) = struct.unpack_from(">i", data, pos)
    pos += 4
    stored = lucene_footer(name, data[-FOOTER_LENGTH:])
    actual = zlib.crc32(memoryview(data)[:-8])
    if stored != actual:
        raise BlobError(f"{name}: CRC32 mismatch: footer says {stored:08x}, content is {actual:08x} (damaged blob)")
    return Frame(found, version, data[pos:-FOOTER_LENGTH])


def decode_body(name: str, body: bytes) -> Any:
    """A frame's body as Python values: inflate `DFL\\0` bodies, then SMILE or JSON."""
    if body.startswith(DEFLATE_HEADER):
        inflater = zlib.decompressobj(-15)
        try:
            body = inflater.decompress(body[len(DEFLATE_HEADER) :]) + inflater.flush()
        except zlib.error as exc:
            raise BlobError(f"{name}: compressed body does not inflate ({exc})") from None
        if not inflater.eof:
            raise BlobError(f"{name}: compressed body ends before its DEFLATE stream does")
    if smile.is_smile(body):
        try:
            return smile.decode(body)
        except smile.SmileError as exc:
            raise BlobError(f"{name}: SMILE body does not decode: {exc}") from None
    if body.lstrip()[:1] == b"{":
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BlobError(f"{name}: JSON body does not decode: {exc}") from None
    raise BlobError(f"{name}: body is neither SMILE nor JSON (starts with {body[:8]!r})")


def decode_blob(name: str, data: bytes, codec: str | None = None) -> Any:
    """A whole framed blob, checked and decoded."""
    return decode_body(name, read_frame(name, data, codec).body)


def encode_blob(codec: str, document: Any, *, compress: bool = False, version: int = 1) -> bytes:
    """A framed SMILE blob as Elasticsearch writes it (for synthetic repositories: tests, benchmark)."""
    raw_codec = codec.encode()
    if len(raw_codec) > 127:
        raise ValueError("codec names are at most 127 bytes")
    body = smile.encode(document)
    if compress:
        deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = DEFLATE_HEADER + deflater.compress(body) + deflater.flush()
    head = struct.pack(">IB", CODEC_MAGIC, len(raw_codec)) + raw_codec + struct.pack(">i", version)
    framed = head + body + struct.pack(">Ii", FOOTER_MAGIC, 0)
    return framed + struct.pack(">q", zlib.crc32(framed))
