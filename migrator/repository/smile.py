"""SMILE, the binary JSON that Elasticsearch writes inside its framed repository blobs.

Place in the flow: verify -> blob (frame, CRC32, DEFLATE) -> smile (this module) -> plain Python
values. `decode` turns one SMILE document into dicts, lists, str, int, float, bool, None, bytes
(binary values, e.g. a file's `meta_hash`) and Decimal. It follows Jackson's parser, which is what
Elasticsearch uses: shared key names and shared string values (back-references into tables of at
most 1024 entries that start over when full), zigzag VInts, 7-bit and raw binary, floats and
doubles in 7-bit groups. `encode` is the inverse for building synthetic repositories (tests,
benchmark); it writes what Elasticsearch writes (shared names on, raw binary, no shared values)
unless told otherwise.

Over 400 lines: one decoder of one binary format (Jackson's SMILE), token by token.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any

HEADER = b":)\n"
_SHARED_NAMES = 0x01
_SHARED_VALUES = 0x02
_RAW_BINARY = 0x04
_MAX_SHARED = 1024
_END_OF_STRING = 0xFC


class SmileError(ValueError):
    """The bytes are not a SMILE document this decoder understands; the message gives the offset."""


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _from_7bit(encoded: bytes | bytearray, length: int) -> bytes:
    """`length` bytes carried 7 bits per byte: full 7-byte groups in 8, the rest right-aligned in n+1."""
    out = bytearray()
    pos = 0
    while len(out) + 7 <= length:
        group = 0
        for byte in encoded[pos : pos + 8]:
            group = (group << 7) | byte
        out += group.to_bytes(7, "big")
        pos += 8
    left = length - len(out)
    if left:
        bits = 0
        for byte in encoded[pos : pos + left]:
            bits = (bits << 7) | byte
        bits = (bits << left) | encoded[pos + left]
        out += (bits & ((1 << (8 * left)) - 1)).to_bytes(left, "big")
    return bytes(out)


def _encoded_7bit_size(length: int) -> int:
    full, left = divmod(length, 7)
    return full * 8 + (left + 1 if left else 0)


class _Decoder:
    __slots__ = ("data", "pos", "names", "values", "raw_binary")

    def __init__(self, data: bytes, flags: int) -> None:
        self.data = data
        self.pos = 4
        self.names: list[str] | None = [] if flags & _SHARED_NAMES else None
        self.values: list[str] | None = [] if flags & _SHARED_VALUES else None
        self.raw_binary = bool(flags & _RAW_BINARY)

    def fail(self, what: str, at: int | None = None) -> SmileError:
        return SmileError(f"{what} at offset {self.pos - 1 if at is None else at}")

    def take(self, n: int) -> bytes:
        start = self.pos
        end = start + n
        if end > len(self.data):
            raise self.fail(f"document ends inside a {n}-byte value", start)
        self.pos = end
        return self.data[start:end]

    def until_end_marker(self) -> bytes:
        end = self.data.find(_END_OF_STRING, self.pos)
        if end < 0:
            raise self.fail("document ends inside a long string", self.pos)
        text = self.data[self.pos : end]
        self.pos = end + 1
        return text

    def vint(self) -> int:
        data = self.data
        value = 0
        while True:
            if self.pos >= len(data):
                raise self.fail("document ends inside a VInt", self.pos)
            byte = data[self.pos]
            self.pos += 1
            if byte & 0x80:
                return (value << 6) | (byte & 0x3F)
            value = (value << 7) | byte

    def seven_bit_bytes(self, length: int) -> bytes:
        return _from_7bit(self.take(_encoded_7bit_size(length)), length)

    def text(self, raw: bytes, encoding: str) -> str:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise self.fail(f"invalid {encoding} text ({exc.reason})", self.pos - len(raw)) from None

    def remember(self, table: list[str], text: str) -> None:
        if len(table) == _MAX_SHARED:
            table.clear()
        table.append(text)

    def shared_value(self, index: int) -> str:
        if self.values is None or index >= len(self.values):
            raise self.fail(f"reference to shared string value {index}, which was not seen")
        return self.values[index]

    def value(self) -> Any:
        if self.pos >= len(self.data):
            raise self.fail("document ends where a value should start", self.pos)
        tag = self.data[self.pos]
        self.pos += 1
        kind = tag >> 5
        if kind == 7:
            if tag == 0xFA:
                return self.object()
            if tag == 0xF8:
                return self.array()
            return self.misc(tag)
        if 2 <= kind <= 5:  # tiny/short ASCII (1..64 bytes), tiny/short Unicode (2..65 bytes)
            if kind <= 3:
                text = self.text(self.take((tag & 0x3F) + 1), "ascii")
            else:
                text = self.text(self.take((tag & 0x3F) + 2), "utf-8")
            if self.values is not None:
                self.remember(self.values, text)
            return text
        if kind == 6:
            return _zigzag(tag & 0x1F)
        if kind == 0:
            if tag == 0:
                raise self.fail("invalid value byte 0x00")
            return self.shared_value(tag - 1)
        return self.literal_or_number(tag)

    def literal_or_number(self, tag: int) -> Any:
        if tag == 0x20:
            return ""
        if tag == 0x21:
            return None
        if tag == 0x22:
            return False
        if tag == 0x23:
            return True
        if tag in (0x24, 0x25):
            return _zigzag(self.vint())
        if tag == 0x26:
            return int.from_bytes(self.seven_bit_bytes(self.vint()), "big", signed=True)
        if tag == 0x28:
            bits = 0
            for byte in self.take(5):
                bits = (bits << 7) | byte
            return struct.unpack(">f", (bits & 0xFFFFFFFF).to_bytes(4, "big"))[0]
        if tag == 0x29:
            bits = 0
            for byte in self.take(10):
                bits = (bits << 7) | byte
            return struct.unpack(">d", (bits & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"))[0]
        if tag == 0x2A:
            scale = _zigzag(self.vint())
            unscaled = int.from_bytes(self.seven_bit_bytes(self.vint()), "big", signed=True)
            return Decimal(unscaled).scaleb(-scale)
        raise self.fail(f"invalid value byte 0x{tag:02X}")

    def misc(self, tag: int) -> Any:
        if tag == 0xE0:
            return self.text(self.until_end_marker(), "ascii")
        if tag == 0xE4:
            return self.text(self.until_end_marker(), "utf-8")
        if tag == 0xE8:
            return self.seven_bit_bytes(self.vint())
        if 0xEC <= tag <= 0xEF:
            return self.shared_value(((tag & 0x03) << 8) | self.take(1)[0])
        if tag == 0xFD:
            if not self.raw_binary:
                raise self.fail("raw binary value, but the header does not allow raw binary")
            return self.take(self.vint())
        raise self.fail(f"invalid value byte 0x{tag:02X}")

    def array(self) -> list[Any]:
        items: list[Any] = []
        data = self.data
        while True:
            if self.pos >= len(data):
                raise self.fail("document ends inside an array", self.pos)
            if data[self.pos] == 0xF9:
                self.pos += 1
                return items
            items.append(self.value())

    def object(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        data = self.data
        names = self.names
        while True:
            if self.pos >= len(data):
                raise self.fail("document ends inside an object", self.pos)
            tag = data[self.pos]
            self.pos += 1
            if tag == 0xFB:
                return result
            if 0x40 <= tag <= 0x7F:  # short shared name reference
                index = tag & 0x3F
                if names is None or index >= len(names):
                    raise self.fail(f"reference to shared key name {index}, which was not seen")
                name = names[index]
            elif tag >= 0x80:
                if tag < 0xC0:
                    name = self.text(self.take((tag & 0x3F) + 1), "ascii")
                elif tag <= 0xF7:
                    name = self.text(self.take(tag - 0xC0 + 2), "utf-8")
                else:
                    raise self.fail(f"invalid key byte 0x{tag:02X}")
                if names is not None:
                    self.remember(names, name)
            elif 0x30 <= tag <= 0x33:  # long shared name reference
                index = ((tag & 0x03) << 8) | self.take(1)[0]
                if names is None or index >= len(names):
                    raise self.fail(f"reference to shared key name {index}, which was not seen")
                name = names[index]
            elif tag == 0x34:
                name = self.text(self.until_end_marker(), "utf-8")
                if names is not None:
                    self.remember(names, name)
            elif tag == 0x20:
                name = ""
            else:
                raise self.fail(f"invalid key byte 0x{tag:02X}")
            result[name] = self.value()


def is_smile(data: bytes) -> bool:
    return data[:3] == HEADER


def decode(data: bytes) -> Any:
    """One SMILE document (with its 4-byte header) as Python values; SmileError when malformed."""
    if len(data) < 4 or not is_smile(data):
        raise SmileError("not a SMILE document: it does not start with the header ':)\\n'")
    flags = data[3]
    if flags >> 4:
        raise SmileError(f"SMILE version {flags >> 4} is not supported (only version 0 exists)")
    decoder = _Decoder(bytes(data), flags)
    try:
        result = decoder.value()
    except RecursionError:
        raise SmileError("the document nests deeper than this decoder allows") from None
    if decoder.pos < len(data) and data[decoder.pos] == 0xFF:  # optional end-of-content marker
        decoder.pos += 1
    if decoder.pos != len(data):
        raise SmileError(f"{len(data) - decoder.pos} unexpected bytes after the document at offset {decoder.pos}")
    return result


# encoding ---------------------------------------------------------------------------------------


def _vint(value: int) -> bytes:
    """Unsigned VInt: 7-bit groups, the last one holding 6 bits and flagged with 0x80."""
    last = 0x80 | (value & 0x3F)
    value >>= 6
    groups = []
    while value:
        groups.append(value & 0x7F)
        value >>= 7
    return bytes(reversed(groups)) + bytes([last])


def _to_7bit(raw: bytes) -> bytes:
    out = bytearray()
    full = len(raw) - len(raw) % 7
    for start in range(0, full, 7):
        group = int.from_bytes(raw[start : start + 7], "big")
        out += bytes((group >> shift) & 0x7F for shift in range(49, -1, -7))
    left = len(raw) - full
    if left:
        bits = int.from_bytes(raw[full:], "big")
        out += bytes((bits >> (left + 7 * k)) & 0x7F for k in range(left - 1, -1, -1))
        out.append(bits & ((1 << left) - 1))
    return bytes(out)


class _Encoder:
    def __init__(self, shared_names: bool, shared_values: bool, raw_binary: bool) -> None:
        self.out = bytearray(HEADER)
        flags = (_SHARED_NAMES if shared_names else 0) | (_SHARED_VALUES if shared_values else 0)
        self.out.append(flags | (_RAW_BINARY if raw_binary else 0))
        self.names: dict[str, int] | None = {} if shared_names else None
        self.values: dict[str, int] | None = {} if shared_values else None
        self.raw_binary = raw_binary

    @staticmethod
    def remember(table: dict[str, int], text: str) -> None:
        if len(table) == _MAX_SHARED:
            table.clear()
        table[text] = len(table)

    def key(self, name: str) -> None:
        out = self.out
        if not name:
            out.append(0x20)
            return
        if self.names is not None and name in self.names:
            index = self.names[name]
            out += bytes([0x40 | index]) if index < 64 else bytes([0x30 | (index >> 8), index & 0xFF])
            return
        raw = name.encode()
        if raw.isascii() and len(raw) <= 64:
            out.append(0x80 + len(raw) - 1)
            out += raw
        elif not raw.isascii() and len(raw) <= 57:
            out.append(0xC0 + len(raw) - 2)
            out += raw
        else:
            out.append(0x34)
            out += raw
            out.append(_END_OF_STRING)
        if self.names is not None:
            self.remember(self.names, name)

    def string(self, text: str) -> None:
        out = self.out
        if not text:
            out.append(0x20)
            return
        if self.values is not None and text in self.values and (self.values[text] & 0xFF) < 0xFE:
            index = self.values[text]
            out += bytes([index + 1]) if index < 31 else bytes([0xEC | (index >> 8), index & 0xFF])
            return
        raw = text.encode()
        ascii_ = raw.isascii()
        if ascii_ and len(raw) <= 32:
            out.append(0x40 + len(raw) - 1)
        elif ascii_ and len(raw) <= 64:
            out.append(0x60 + len(raw) - 33)
        elif not ascii_ and len(raw) <= 33:
            out.append(0x80 + len(raw) - 2)
        elif not ascii_ and len(raw) <= 65:
            out.append(0xA0 + len(raw) - 34)
        else:
            out.append(0xE0 if ascii_ else 0xE4)
            out += raw
            out.append(_END_OF_STRING)
            return
        out += raw
        if self.values is not None:
            self.remember(self.values, text)

    def integer(self, value: int) -> None:
        zigzag = (value << 1) ^ (value >> 63) if -(2**63) <= value < 2**63 else None
        if -16 <= value <= 15:
            self.out.append(0xC0 | ((value << 1) ^ (value >> 31)) & 0x1F)
        elif zigzag is not None:
            self.out.append(0x24 if -(2**31) <= value < 2**31 else 0x25)
            self.out += _vint(zigzag)
        else:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
            self.out.append(0x26)
            self.out += _vint(len(raw)) + _to_7bit(raw)

    def value(self, value: Any) -> None:
        out = self.out
        if value is None:
            out.append(0x21)
        elif value is True:
            out.append(0x23)
        elif value is False:
            out.append(0x22)
        elif isinstance(value, int):
            self.integer(value)
        elif isinstance(value, float):
            bits = int.from_bytes(struct.pack(">d", value), "big")
            out.append(0x29)
            out += bytes((bits >> shift) & 0x7F for shift in range(63, -1, -7))
        elif isinstance(value, str):
            self.string(value)
        elif isinstance(value, bytes | bytearray):
            if self.raw_binary:
                out.append(0xFD)
                out += _vint(len(value)) + value
            else:
                out.append(0xE8)
                out += _vint(len(value)) + _to_7bit(bytes(value))
        elif isinstance(value, dict):
            out.append(0xFA)
            for name, item in value.items():
                self.key(name)
                self.value(item)
            out.append(0xFB)
        elif isinstance(value, list | tuple):
            out.append(0xF8)
            for item in value:
                self.value(item)
            out.append(0xF9)
        else:
            raise TypeError(f"cannot encode {type(value).__name__} as SMILE")


def encode(value: Any, *, shared_names: bool = True, shared_values: bool = False, raw_binary: bool = True) -> bytes:
    """`value` as a SMILE document with header (Elasticsearch's settings by default)."""
    encoder = _Encoder(shared_names, shared_values, raw_binary)
    encoder.value(value)
    return bytes(encoder.out)
