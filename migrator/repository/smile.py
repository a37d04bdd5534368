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


_SMALL_INTS = tuple(_zigzag(n) for n in range(32))  # the value of each small-int token 0xC0-0xDF


class _Decoder:
    """One document's decoding state. The hot paths (short strings and key names, small ints, objects,
    arrays) read `data` through local names and slices, one method call per value; the rarer tokens go
    through the helpers. Every read is bounds-checked against `size`, so a truncated document fails with
    its offset, never with an IndexError or a short slice."""

    __slots__ = ("data", "size", "pos", "names", "values", "raw_binary")

    def __init__(self, data: bytes, flags: int) -> None:
        self.data = data
        self.size = len(data)
        self.pos = 4
        self.names: list[str] | None = [] if flags & _SHARED_NAMES else None
        self.values: list[str] | None = [] if flags & _SHARED_VALUES else None
        self.raw_binary = bool(flags & _RAW_BINARY)

    def fail(self, what: str, at: int | None = None) -> SmileError:
        return SmileError(f"{what} at offset {self.pos - 1 if at is None else at}")

    def take(self, n: int) -> bytes:
        start = self.pos
        end = start + n
        if end > self.size:
            raise self.fail(f"document ends inside a {n}-byte value", start)
        self.pos = end
        return self.data[start:end]

    def long_text(self, encoding: str) -> str:
        """A string or key name that runs to the end-of-string marker (0xFC), which is skipped."""
        start = self.pos
        end = self.data.find(_END_OF_STRING, start)
        if end < 0:
            raise self.fail("document ends inside a long string", start)
        text = self.text(start, end, encoding)
        self.pos = end + 1
        return text

    def vint(self) -> int:
        data = self.data
        pos = self.pos
        size = self.size
        value = 0
        while pos < size:
            byte = data[pos]
            pos += 1
            if byte & 0x80:
                self.pos = pos
                return (value << 6) | (byte & 0x3F)
            value = (value << 7) | byte
        raise self.fail("document ends inside a VInt", pos)

    def seven_bit_bytes(self, length: int) -> bytes:
        return _from_7bit(self.take(_encoded_7bit_size(length)), length)

    def text(self, start: int, end: int, encoding: str) -> str:
        """The bytes `start:end` (within the document) as text; the position moves to `end`."""
        if end > self.size:
            raise self.fail(f"document ends inside a {end - start}-byte value", start)
        try:
            text = self.data[start:end].decode(encoding)
        except UnicodeDecodeError as exc:
            raise self.fail(f"invalid {encoding} text ({exc.reason})", start) from None
        self.pos = end
        return text

    def shared_value(self, index: int) -> str:
        if self.values is None or index >= len(self.values):
            raise self.fail(f"reference to shared string value {index}, which was not seen")
        return self.values[index]

    def shared_name(self, index: int) -> str:
        if self.names is None or index >= len(self.names):
            raise self.fail(f"reference to shared key name {index}, which was not seen")
        return self.names[index]

    def value(self) -> Any:
        pos = self.pos
        if pos >= self.size:
            raise self.fail("document ends where a value should start", pos)
        tag = self.data[pos]
        pos += 1
        self.pos = pos
        if tag >= 0xC0:
            if tag < 0xE0:
                return _SMALL_INTS[tag & 0x1F]
            if tag == 0xFA:
                return self.object()
            if tag == 0xF8:
                return self.array()
            return self.misc(tag)
        if tag >= 0x40:  # tiny/short ASCII (0x40-0x7F: 1..64 bytes), tiny/short Unicode (0x80-0xBF: 2..65 bytes)
            if tag < 0x80:
                text = self.text(pos, pos + (tag & 0x3F) + 1, "ascii")
            else:
                text = self.text(pos, pos + (tag & 0x3F) + 2, "utf-8")
            values = self.values
            if values is not None:
                if len(values) == _MAX_SHARED:
                    values.clear()
                values.append(text)
            return text
        if tag >= 0x20:
            return self.literal_or_number(tag)
        if tag == 0:
            raise self.fail("invalid value byte 0x00")
        return self.shared_value(tag - 1)

    def literal_or_number(self, tag: int) -> Any:
        if tag in (0x24, 0x25):
            return _zigzag(self.vint())
        if tag == 0x20:
            return ""
        if tag == 0x21:
            return None
        if tag == 0x22:
            return False
        if tag == 0x23:
            return True
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
            return self.long_text("ascii")
        if tag == 0xE4:
            return self.long_text("utf-8")
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
        append = items.append
        value = self.value
        data = self.data
        size = self.size
        while True:
            pos = self.pos
            if pos >= size:
                raise self.fail("document ends inside an array", pos)
            if data[pos] == 0xF9:
                self.pos = pos + 1
                return items
            append(value())

    def object(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        data = self.data
        size = self.size
        names = self.names
        value = self.value
        while True:
            pos = self.pos
            if pos >= size:
                raise self.fail("document ends inside an object", pos)
            tag = data[pos]
            pos += 1
            self.pos = pos
            if 0x40 <= tag <= 0x7F:  # short shared name reference
                index = tag & 0x3F
                name = names[index] if names is not None and index < len(names) else self.shared_name(index)
            elif 0x80 <= tag <= 0xF7:  # short ASCII name (1..64 bytes), short Unicode name (2..57 bytes)
                if tag < 0xC0:
                    name = self.text(pos, pos + (tag & 0x3F) + 1, "ascii")
                else:
                    name = self.text(pos, pos + tag - 0xC0 + 2, "utf-8")
                if names is not None:
                    if len(names) == _MAX_SHARED:
                        names.clear()
                    names.append(name)
            elif tag == 0xFB:
                return result
            elif 0x30 <= tag <= 0x33 and pos < size:  # long shared name reference (2 bytes)
                index = ((tag & 0x03) << 8) | data[pos]
                self.pos = pos + 1
                name = names[index] if names is not None and index < len(names) else self.shared_name(index)
            else:
                name = self.rare_key(tag)
            result[name] = value()

    def rare_key(self, tag: int) -> str:
        """A key other than a short name or a whole reference: a long name, the empty name (or what fails)."""
        if 0x30 <= tag <= 0x33:  # long shared name reference
            return self.shared_name(((tag & 0x03) << 8) | self.take(1)[0])
        if tag == 0x34:
            name = self.long_text("utf-8")
            if self.names is not None:
                if len(self.names) == _MAX_SHARED:
                    self.names.clear()
                self.names.append(name)
            return name
        if tag == 0x20:
            return ""
        raise self.fail(f"invalid key byte 0x{tag:02X}")


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
