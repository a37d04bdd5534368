"""The OSS REST API's vocabulary shared by the sandbox server's modules: buckets, requests, answers, errors.

Place in the flow: httpd (parses a request into a Request) -> dispatch (picks its Route) -> server
(authenticates, injects faults) -> a handler (objects, listing, multipart, replication) -> a Response or
an OssError, written back by http. This module holds what they all speak: the bucket configuration,
the fault settings, OSS error answers, XML and date formats, and the query parameters that select an
operation (see shared/notes/oss.md).
"""

from __future__ import annotations

import dataclasses
import email.utils
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

import crcmod

from migrator.sandbox import oss_layout

if TYPE_CHECKING:
    from migrator.sandbox.oss_server.server import OssServer

STATE_DIR = ".oss-server"
CRC64_POLY = 0x142F0E1EBA9EA3693
CHUNK = 1024 * 1024  # bytes read or written at a time
_ISO8601 = "%Y-%m-%dT%H:%M:%S.000Z"
# Query parameters that select an OSS operation (the rest, such as prefix or response-content-type, are
# options of one): a request with a selector this server has no operation for answers NotImplemented.
SELECTORS = frozenset(
    {
        "acl", "append", "bucketInfo", "cname", "comp", "cors", "delete", "encryption", "inventory", "lifecycle",
        "live", "location", "logging", "objectInfo", "objectMeta", "partNumber", "policy", "position", "qos",
        "referer", "replication", "replicationLocation", "replicationProgress", "requestPayment", "restore",
        "stat", "style", "symlink", "tagging", "transferAcceleration", "uploadId", "uploads", "versionId",
        "versioning", "versions", "website", "worm", "wormExtend", "wormId", "x-oss-async-process", "x-oss-process",
    }
)  # fmt: skip


def new_crc64() -> crcmod.Crc:
    """A fresh CRC-64/XZ (ECMA-182) digest, the one OSS reports in `x-oss-hash-crc64ecma`."""
    return crcmod.Crc(CRC64_POLY, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)


@dataclass
class BucketConfig:
    """One bucket: the directory `<root>/<name>`, the region it reports and its storage class."""

    name: str
    region: str = "oss-cn-hangzhou"
    storage_class: str = "Standard"

    @property
    def region_id(self) -> str:
        """The region as V4 signatures name it (`cn-hangzhou` for `oss-cn-hangzhou`)."""
        return self.region.removeprefix("oss-")


@dataclass
class Faults:
    """Faults injected into non-admin requests.

    error_rate: fraction of requests answered 503 ServiceUnavailable; error_keys: substrings of object
    keys whose requests always get 500 InternalError; latency_ms: delay added to every request;
    truncate_rate: fraction of GET object bodies cut short (headers promise the full length, then the
    connection closes); seed: seeds the random choices; replication_delay_ms: cross-region
    replication copies an object only once it is at least this old (replication made visibly
    asynchronous; NewObject progress lags by as much).
    """

    error_rate: float = 0.0
    latency_ms: int = 0
    truncate_rate: float = 0.0
    error_keys: list[str] = field(default_factory=list)
    seed: int | None = None
    replication_delay_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "truncate_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number between 0 and 1, not {value!r}")
        for name in ("latency_ms", "replication_delay_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        if isinstance(self.error_keys, str) or not all(isinstance(k, str) for k in self.error_keys):
            raise ValueError(f"error_keys must be a list of strings, not {self.error_keys!r}")
        self.error_keys = list(self.error_keys)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an integer or null, not {self.seed!r}")

    @classmethod
    def from_json(cls, data: object) -> Faults:
        """Faults from a decoded JSON object; ValueError names what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("faults must be a JSON object")
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class OssError(Exception):
    """An OSS error answer: HTTP status, Code, Message and extra detail elements."""

    def __init__(self, status: int, code: str, message: str, **details: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def no_such_key(key: str) -> OssError:
    """The 404 NoSuchKey answer for `key`."""
    return OssError(404, "NoSuchKey", "The specified key does not exist.", Key=key)


def invalid_argument(message: str, name: str, value: str) -> OssError:
    """A 400 InvalidArgument answer naming the argument and the value given."""
    return OssError(400, "InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


def listing_params(params: dict[str, str], max_name: str, default: int, limit: int) -> tuple[str, str, str, int]:
    """(prefix, delimiter, encoding-type, page size) of a listing request, the last two checked as OSS does."""
    encoding = params.get("encoding-type", "")
    if encoding not in ("", "url"):
        raise invalid_argument("encoding-type must be url.", "encoding-type", encoding)
    raw_max = params.get(max_name) or str(default)
    if not raw_max.isdigit() or not 0 < int(raw_max) <= limit:
        raise invalid_argument(f"{max_name} must be between 1 and {limit}.", max_name, raw_max)
    return params.get("prefix", ""), params.get("delimiter", ""), encoding, int(raw_max)


def iso8601(timestamp: float) -> str:
    """Epoch seconds as OSS writes them in XML (`2026-11-30T14:00:00.000Z`)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime(_ISO8601)


def http_date(timestamp: float) -> str:
    """Epoch seconds as an HTTP date (`Last-Modified`)."""
    return email.utils.formatdate(timestamp, usegmt=True)


def xml_document(root: ET.Element) -> bytes:
    """An XML document with its declaration, UTF-8."""
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def sub(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    """A child element `tag` of `parent`, with `text` when given."""
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def error_xml(error: OssError, request_id: str, host_id: str) -> bytes:
    """The body of an OSS error answer (Code, Message, RequestId, HostId and the details)."""
    root = ET.Element("Error")
    sub(root, "Code", error.code)
    sub(root, "Message", error.message)
    sub(root, "RequestId", request_id)
    sub(root, "HostId", host_id)
    for name, value in error.details.items():
        sub(root, name, value)
    return xml_document(root)


def key_parts(key: str) -> list[str]:
    """The on-disk names of a key's segments (oss_layout); OssError InvalidObjectName when it cannot be stored."""
    try:
        return oss_layout.check_key(key)
    except oss_layout.InvalidKey as error:
        raise OssError(400, "InvalidObjectName", f"The specified object name is not valid: {error}.", Key=key) from None


@dataclass(frozen=True)
class Route:
    """What a request asks for: the OSS operation (named as in the OSS API reference), the function that
    answers it (None: not implemented, 501) and whether its body is spooled to a file (object writes)."""

    operation: str
    handler: Callable[[OssServer, Request, BucketConfig], Response] | None
    streams_body: bool = False


@dataclass
class Request:
    """One parsed request: the bucket and key from its path, its query and headers, and its body."""

    method: str
    bucket: str
    key: str
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    header_items: list[tuple[str, str]]
    route: Route
    body: bytes = b""
    spool: Spool | None = None

    @property
    def op(self) -> str:
        """The OSS operation's name ("Unsupported" for none this server has)."""
        return self.route.operation


@dataclass
class Spool:
    """A request body written to a temp file while its MD5 and CRC64 were computed."""

    path: str
    size: int
    md5: bytes
    crc64: int


@dataclass
class Response:
    """An answer: status, headers and a body, or `length` bytes of an open file from `offset`."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: BinaryIO | None = None  # streamed instead of body: `length` bytes from `offset`
    offset: int = 0
    length: int = 0
