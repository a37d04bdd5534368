"""An OSS-compatible HTTP server that serves local directories as buckets (the sandbox's stand-in for OSS).

Place in the flow: the local test bed starts it next to the Elasticsearch nodes. Those nodes write
snapshots straight into `<root>/<bucket>/<base_path>` through an `fs` repository; this server exposes
the same directories over the OSS REST API, so that migrator's storage layer and the unmodified `oss2`
client read (and write) them as they would a real bucket.

What it speaks (see shared/notes/oss.md): path-style URLs `/<bucket>/<key>`, V1 and V4 signatures
(plus an optional STS token), GetBucketInfo/GetBucketLocation, Get/Head/GetObjectMeta with ranges and
conditions, ListObjects v1 and v2, PutObject, CopyObject, multipart upload (UploadPartCopy, ListParts and
ListMultipartUploads too), DeleteObject and DeleteMultipleObjects, `x-oss-forbid-overwrite` (409
FileAlreadyExists), CRC64 (`x-oss-hash-crc64ecma`) and quoted uppercase MD5 ETags, OSS error XML. Any
other operation (a selecting query parameter such as `?acl`, `?tagging` or `?append` it has no handler
for) answers 501 NotImplemented and changes nothing. Keys map to files as oss_layout.py says: a plain
key is the same path on disk, and the keys a file tree cannot hold (`x/`, `a//b`, `x` beside `x/y`) are
stored under reserved names.

Cross-region replication (CRR) between buckets of one server: Put/Get/DeleteBucketReplication,
GetBucketReplicationProgress and GetBucketReplicationLocation, with rules kept in
`<root>/.oss-server/replication.json` (they survive a restart). A background thread replicates: about
every 0.2 s it walks each rule's prefixes on disk (Elasticsearch writes the source bucket directly, not
through this server) and copies new or changed files (size or mtime) to the same key in the target
bucket, atomically, keeping the source's mtime; with Action ALL (or DELETE) it also deletes target files
under the prefixes whose source is gone. Objects that existed when the rule was added are "historical":
copied only when HistoricalObjectReplication is enabled, and counted in the historical progress. The
NewObject progress is the point in time before which every object written is in the target. Error codes
as OSS: a target bucket that does not exist is NoSuchBucket, a Location that is not the target's region
BadReplicationLocation, a second rule with the same ID or to the same target BucketReplicationAlreadyExist,
no rules NoSuchReplicationConfiguration, an unknown rule ID NoSuchReplicationRule.

The bucket directories belong to whoever writes them (Elasticsearch too), so the server keeps its own
state under `<root>/.oss-server/` (temp files; each pending multipart upload in `uploads/<UPLOAD_ID>/`:
`upload.json` with its bucket, key and initiation time, and one file per part) and computes MD5/CRC64
of files lazily, caching them in memory by (path, size, mtime_ns). A multipart object's `"HEX-N"` ETag
lives in that cache only: after a restart it reads as the plain MD5 of the content.

Faults (errors, latency, truncated bodies, a replication delay) can be injected for reliability tests, from Python with
`OssServer.set_faults` or from another process with `PUT /-/faults` (`GET /-/faults`, `GET /-/stats`).
Run it alone with `python -m migrator.sandbox.oss_server --config FILE`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import email.utils
import hashlib
import hmac
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import stat
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl, quote, unquote

import crcmod

from migrator.sandbox import oss_layout

logger = logging.getLogger(__name__)

STATE_DIR = ".oss-server"
CRC64_POLY = 0x142F0E1EBA9EA3693
_CHUNK = 1024 * 1024
# Objects at least this big that Elasticsearch wrote straight to disk get the ETag OSS gives objects
# uploaded in parts ("HEX-N", not an MD5 of the content), so listing them reads nothing.
FOREIGN_MULTIPART_BYTES = 8 * 1024 * 1024
_MAX_CLOCK_SKEW_S = 15 * 60
_MIN_PART_SIZE = 100 * 1024
_MAX_PART_NUMBER = 10000
_DEFAULT_MAX_KEYS = 100
_MAX_KEYS = 1000
_MAX_DELETE_KEYS = 1000
_MAX_UPLOADS = 1000
_UPLOAD_ID = re.compile(r"[0-9A-F]{32}")
_ISO8601 = "%Y-%m-%dT%H:%M:%S.000Z"
_OWNER_ID = "1000000000000000"
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# Query parameters that V1 signs (a subset of OSS's list: those this server's operations can receive).
_V1_SUBRESOURCES = frozenset(
    {
        "acl",
        "append",
        "bucketInfo",
        "comp",
        "continuation-token",
        "delete",
        "location",
        "objectMeta",
        "partNumber",
        "position",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "security-token",
        "stat",
        "uploadId",
        "uploads",
        "versionId",
        "x-oss-process",
    }
)
_V4_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


# Rebuilds the string to sign; returns (string to sign, expected signature, given signature).
SignatureCheck = Callable[[], tuple[str, str, str]]


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


def _no_such_key(key: str) -> OssError:
    return OssError(404, "NoSuchKey", "The specified key does not exist.", Key=key)


def _invalid_argument(message: str, name: str, value: str) -> OssError:
    return OssError(400, "InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


def _listing_params(params: dict[str, str], max_name: str, default: int, limit: int) -> tuple[str, str, str, int]:
    """(prefix, delimiter, encoding-type, page size) of a listing request, the last two checked as OSS does."""
    encoding = params.get("encoding-type", "")
    if encoding not in ("", "url"):
        raise _invalid_argument("encoding-type must be url.", "encoding-type", encoding)
    raw_max = params.get(max_name) or str(default)
    if not raw_max.isdigit() or not 0 < int(raw_max) <= limit:
        raise _invalid_argument(f"{max_name} must be between 1 and {limit}.", max_name, raw_max)
    return params.get("prefix", ""), params.get("delimiter", ""), encoding, int(raw_max)


@dataclass(frozen=True)
class _Digest:
    etag: str  # quoted, uppercase hex; multipart objects "HEX-N"
    crc64: int


@dataclass(frozen=True)
class _ObjectMeta:
    size: int
    mtime: float
    digest: _Digest

    @property
    def object_type(self) -> str:
        return "Multipart" if "-" in self.digest.etag else "Normal"


def _hash_file(f: BinaryIO, with_md5: bool = True) -> tuple[bytes, int]:
    """MD5 digest (empty without `with_md5`) and CRC64 of a whole open file (read from its start)."""
    f.seek(0)
    md5 = hashlib.md5()
    crc = new_crc64()
    while chunk := f.read(_CHUNK):
        if with_md5:
            md5.update(chunk)
        crc.update(chunk)
    f.seek(0)
    return md5.digest() if with_md5 else b"", crc.crcValue


def _foreign_etag(st: os.stat_result) -> str:
    """The ETag of a large object written straight to disk, in the form OSS gives objects uploaded in parts:
    stable while the file keeps its size and mtime (a replica keeps its source's mtime, so its ETag too)."""
    token = hashlib.md5(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest().upper()
    return f'"{token}-1"'


def _quoted_etag(md5: bytes) -> str:
    return f'"{md5.hex().upper()}"'


class _DigestCache:
    """ETag and CRC64 per file path, valid while the file keeps its size and mtime_ns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, int, _Digest]] = {}

    def cached(self, path: str, st: os.stat_result) -> _Digest | None:
        with self._lock:
            entry = self._entries.get(path)
        return entry[2] if entry is not None and entry[:2] == (st.st_size, st.st_mtime_ns) else None

    def get(self, path: str, f: BinaryIO, st: os.stat_result, foreign: bool = False) -> _Digest:
        """`foreign`: a large object written straight to disk, whose ETag is not its MD5 (see `_foreign_etag`)."""
        digest = self.cached(path, st)
        if digest is not None:
            return digest
        md5, crc = _hash_file(f, with_md5=not foreign)
        digest = _Digest(_foreign_etag(st) if foreign else _quoted_etag(md5), crc)
        self.put(path, st, digest)
        return digest

    def put(self, path: str, st: os.stat_result, digest: _Digest) -> None:
        with self._lock:
            self._entries[path] = (st.st_size, st.st_mtime_ns, digest)

    def forget(self, path: str) -> None:
        with self._lock:
            self._entries.pop(path, None)


def _iso8601(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime(_ISO8601)


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _v4_encode(text: str, keep_slash: bool) -> str:
    out = []
    for byte in text.encode("utf-8"):
        if byte in _V4_UNRESERVED or (keep_slash and byte == 0x2F):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _xml(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _sub(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def _error_xml(error: OssError, request_id: str, host_id: str) -> bytes:
    root = ET.Element("Error")
    _sub(root, "Code", error.code)
    _sub(root, "Message", error.message)
    _sub(root, "RequestId", request_id)
    _sub(root, "HostId", host_id)
    for name, value in error.details.items():
        _sub(root, name, value)
    return _xml(root)


def _key_parts(key: str) -> list[str]:
    """The on-disk names of a key's segments (oss_layout); OssError InvalidObjectName when it cannot be stored."""
    try:
        return oss_layout.check_key(key)
    except oss_layout.InvalidKey as error:
        raise OssError(400, "InvalidObjectName", f"The specified object name is not valid: {error}.", Key=key) from None


@dataclass
class _Request:
    method: str
    bucket: str
    key: str
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    header_items: list[tuple[str, str]]
    op: str
    body: bytes = b""
    spool: _Spool | None = None


@dataclass
class _Spool:
    """A request body written to a temp file while its MD5 and CRC64 were computed."""

    path: str
    size: int
    md5: bytes
    crc64: int


@dataclass
class _Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: BinaryIO | None = None  # streamed instead of body: `length` bytes from `offset`
    offset: int = 0
    length: int = 0


# Query parameters that select an OSS operation (the rest, such as prefix or response-content-type, are
# options of one): a request with a selector this server has no operation for answers NotImplemented.
_SELECTORS = frozenset(
    {
        "acl", "append", "bucketInfo", "cname", "comp", "cors", "delete", "encryption", "inventory", "lifecycle",
        "live", "location", "logging", "objectInfo", "objectMeta", "partNumber", "policy", "position", "qos",
        "referer", "replication", "replicationLocation", "replicationProgress", "requestPayment", "restore",
        "stat", "style", "symlink", "tagging", "transferAcceleration", "uploadId", "uploads", "versionId",
        "versioning", "versions", "website", "worm", "wormExtend", "wormId", "x-oss-async-process", "x-oss-process",
    }
)  # fmt: skip
# (method, on an object?, the selectors sent) -> operation, names as in the OSS API reference
_OPERATIONS: dict[tuple[str, bool, frozenset[str]], str] = {
    ("GET", False, frozenset()): "ListObjects",
    ("GET", False, frozenset({"bucketInfo"})): "GetBucketInfo",
    ("GET", False, frozenset({"location"})): "GetBucketLocation",
    ("GET", False, frozenset({"uploads"})): "ListMultipartUploads",
    ("GET", False, frozenset({"replication"})): "GetBucketReplication",
    ("GET", False, frozenset({"replicationProgress"})): "GetBucketReplicationProgress",
    ("GET", False, frozenset({"replicationLocation"})): "GetBucketReplicationLocation",
    ("POST", False, frozenset({"replication", "comp"})): "BucketReplication",
    ("POST", False, frozenset({"delete"})): "DeleteMultipleObjects",
    ("GET", True, frozenset()): "GetObject",
    ("GET", True, frozenset({"uploadId"})): "ListParts",
    ("HEAD", True, frozenset()): "HeadObject",
    ("HEAD", True, frozenset({"objectMeta"})): "GetObjectMeta",
    ("PUT", True, frozenset()): "PutObject",
    ("PUT", True, frozenset({"uploadId", "partNumber"})): "UploadPart",
    ("POST", True, frozenset({"uploads"})): "InitiateMultipartUpload",
    ("POST", True, frozenset({"uploadId"})): "CompleteMultipartUpload",
    ("DELETE", True, frozenset()): "DeleteObject",
    ("DELETE", True, frozenset({"uploadId"})): "AbortMultipartUpload",
}
_COPIES = {"PutObject": "CopyObject", "UploadPart": "UploadPartCopy"}


def _operation(method: str, key: str, params: dict[str, str], headers: dict[str, str]) -> str:
    """The OSS operation a request asks for, from its method, whether it names an object, the selecting
    query parameters and (copies) the `x-oss-copy-source` header; "Unsupported" for any other."""
    op = _OPERATIONS.get((method, bool(key), frozenset(params.keys() & _SELECTORS)), "Unsupported")
    if op == "ListObjects" and params.get("list-type") == "2":
        return "ListObjectsV2"
    if op == "BucketReplication":
        return {"add": "PutBucketReplication", "delete": "DeleteBucketReplication"}.get(params["comp"], "Unsupported")
    if "x-oss-copy-source" in headers:
        return _COPIES.get(op, "Unsupported")
    return op


_REPLICATION_STATE = "replication.json"
_REPLICATION_INTERVAL_S = 0.2
_REPLICATION_ACTIONS = frozenset({"ALL", "PUT", "DELETE", "ABORT"})
_REPLICATION_TRANSFER_TYPES = frozenset({"internal", "oss_acc"})
_MAX_REPLICATION_PREFIXES = 10


@dataclass
class _ReplicationRule:
    """One cross-region replication rule of a source bucket, as stored in the state file."""

    id: str
    source: str
    target: str
    location: str
    prefixes: list[str]
    actions: list[str]
    historical: bool
    created_ns: int  # objects last written at or before this are historical
    transfer_type: str = "internal"
    status: str = "starting"  # starting -> doing; closing once deleted, until the replicator drops it
    historical_progress: float = 0.0  # fraction of the historical objects in the target (kept at 1.0 once done)
    new_object_progress: float | None = None  # every object written before this (epoch s) is in the target

    @property
    def replicates_deletes(self) -> bool:
        return bool({"ALL", "DELETE"} & set(self.actions))

    def stored(self) -> dict[str, object]:
        record = dataclasses.asdict(self)
        del record["new_object_progress"]  # recomputed by the first pass after a restart
        return record


class _Replicator:
    """Holds the replication rules of every bucket and copies objects in a background thread."""

    def __init__(self, root: Path, state_file: Path, buckets: set[str], delay_ms: Callable[[], int]) -> None:
        self._root = root
        self._state_file = state_file
        self._buckets = buckets
        self._delay_ms = delay_ms
        self._lock = threading.Lock()
        self._rules: dict[tuple[str, str], _ReplicationRule] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_changed: Callable[[str], None] = lambda path: None

    def start(self, on_changed: Callable[[str], None]) -> None:
        """Load the stored rules, start replicating; on_changed(path) hears of each target file written or deleted."""
        self._on_changed = on_changed
        with self._lock:
            self._rules = {}
            if self._state_file.is_file():
                for record in json.loads(self._state_file.read_text(encoding="utf-8")):
                    rule = _ReplicationRule(**record)
                    self._rules[(rule.source, rule.id)] = rule
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="oss-replication", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # rules -------------------------------------------------------------------------------------

    def rules(self, bucket: str) -> list[_ReplicationRule]:
        with self._lock:
            return [dataclasses.replace(r) for (source, _), r in sorted(self._rules.items()) if source == bucket]

    def rule(self, bucket: str, rule_id: str) -> _ReplicationRule:
        with self._lock:
            rule = self._rules.get((bucket, rule_id))
            if rule is None:
                raise _no_such_rule(rule_id)
            return dataclasses.replace(rule)

    def add(self, rule: _ReplicationRule) -> None:
        with self._lock:
            for other in self._rules.values():
                if other.source != rule.source:
                    continue
                if other.id == rule.id:
                    raise OssError(
                        400, "BucketReplicationAlreadyExist", f"A replication rule with ID {rule.id} already exists."
                    )
                if other.target == rule.target:
                    raise OssError(
                        400,
                        "BucketReplicationAlreadyExist",
                        f"Bucket replication already exists: rule {other.id} replicates {rule.source} to "
                        f"{rule.target}.",
                    )
            self._rules[(rule.source, rule.id)] = rule
            self._save()

    def close(self, bucket: str, rule_id: str) -> None:
        with self._lock:
            rule = self._rules.get((bucket, rule_id))
            if rule is None:
                raise _no_such_rule(rule_id)
            rule.status = "closing"
            self._save()

    def _save(self) -> None:
        """Write the rules (caller holds the lock) atomically."""
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_name(f"{self._state_file.name}.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps([r.stored() for r in self._rules.values()], indent=1), encoding="utf-8")
        os.replace(tmp, self._state_file)

    # replicating -------------------------------------------------------------------------------

    def _run(self) -> None:
        interval = _REPLICATION_INTERVAL_S
        while not self._stopping.wait(interval):
            started = time.monotonic()
            try:
                self.replicate_once()
            except Exception:  # a bad pass must not end replication for good
                logger.exception("OSS server: a replication pass failed")
            # a pass over a large repository takes a while: rest twice as long, so it uses at most a third of a CPU
            interval = max(_REPLICATION_INTERVAL_S, 2 * (time.monotonic() - started))

    def replicate_once(self) -> None:
        """One pass over every rule: drop closing rules, copy what changed, delete what is gone."""
        with self._lock:
            closing = [key for key, rule in self._rules.items() if rule.status == "closing"]
            for key in closing:
                del self._rules[key]
            if closing:
                self._save()
            rules = [dataclasses.replace(r) for r in self._rules.values()]
        for rule in rules:
            if rule.source in self._buckets and rule.target in self._buckets:
                self._replicate(rule)

    def _replicate(self, rule: _ReplicationRule) -> None:
        started = time.time()
        cutoff_ns = int((started - self._delay_ms() / 1000) * 1e9)
        source_dir = os.path.join(self._root, rule.source)
        target_dir = os.path.join(self._root, rule.target)
        complete = True
        historical = copied_historical = 0
        present: set[str] = set()
        for key, relative in _rule_keys(source_dir, rule.prefixes):
            if self._stopping.is_set():
                return
            present.add(key)
            path = os.path.join(source_dir, relative)
            try:
                st = os.stat(path)
            except OSError:
                continue  # deleted since the walk
            is_historical = st.st_mtime_ns <= rule.created_ns
            if is_historical and not rule.historical:
                continue
            historical += is_historical
            if st.st_mtime_ns > cutoff_ns:
                continue  # too young for the replication delay; written after this pass's progress point
            target = os.path.join(target_dir, relative)
            done = _same_file(target, st) or self._copy(path, target, st)
            complete = complete and done
            copied_historical += is_historical and done
        if rule.replicates_deletes:
            for key, relative in _rule_keys(target_dir, rule.prefixes):
                if key not in present and not os.path.exists(os.path.join(source_dir, relative)):
                    target = os.path.join(target_dir, relative)
                    if _remove_file(target_dir, target):
                        self._on_changed(target)
        with self._lock:
            current = self._rules.get((rule.source, rule.id))
            if current is None or current.status == "closing":
                return
            if rule.historical and current.historical_progress < 1.0:
                current.historical_progress = copied_historical / historical if historical else 1.0
            if complete:
                current.new_object_progress = cutoff_ns / 1e9
                if current.status == "starting":
                    current.status = "doing"
                    self._save()

    def _copy(self, source: str, target: str, st: os.stat_result) -> bool:
        """Copy one file atomically (0644, parents 0755, the source's mtime); False when it changed meanwhile."""
        tmp = os.path.join(os.path.dirname(self._state_file), "tmp", uuid.uuid4().hex)
        try:
            with open(source, "rb") as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
                after = os.fstat(src.fileno())
            if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                return False  # still being written: next pass
            os.chmod(tmp, 0o644)
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
            _makedirs(os.path.dirname(target), 0o755)
            os.replace(tmp, target)
        except OSError as error:
            logger.debug("OSS server: replicating %s to %s failed: %s", source, target, error)
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._on_changed(target)
        return True


def _no_such_rule(rule_id: str) -> OssError:
    return OssError(404, "NoSuchReplicationRule", "The specified replication rule does not exist.", RuleId=rule_id)


def _rule_keys(bucket_dir: str, prefixes: list[str]) -> Iterator[tuple[str, str]]:
    """(key, path relative to the bucket directory) of a bucket's objects under any of the prefixes (all
    objects when there are none)."""
    seen: set[str] = set()
    for prefix in prefixes or [""]:
        for key, _, path in oss_layout.walk(bucket_dir, prefix, "", roll_up_dirs=False):
            if key not in seen:
                seen.add(key)
                yield key, os.path.relpath(path, bucket_dir)


def _same_file(path: str, st: os.stat_result) -> bool:
    try:
        target = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(target.st_mode) and (target.st_size, target.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def _makedirs(path: str, mode: int) -> None:
    """Create path and its missing parents with exactly `mode` (whatever the umask)."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory)
            os.chmod(directory, mode)


def _remove_file(bucket_dir: str, path: str) -> bool:
    """Delete a file and the parent directories it leaves empty, up to the bucket directory; False if absent."""
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return False
    parent = os.path.dirname(path)
    while parent != bucket_dir and parent.startswith(bucket_dir + os.sep):
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = os.path.dirname(parent)
    return True


class OssServer:
    """Serves `<root>/<bucket>` directories as OSS buckets on http://host:port (see the module doc)."""

    def __init__(
        self,
        root: Path,
        buckets: list[BucketConfig],
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
    ) -> None:
        for bucket in buckets:
            if not _BUCKET_NAME.match(bucket.name):
                raise ValueError(
                    f"bucket name {bucket.name!r} is not valid for OSS: 3-63 characters of a-z, 0-9 and '-',"
                    " starting and ending with a letter or digit"
                )
        self.root = Path(root)
        self.buckets = {bucket.name: bucket for bucket in buckets}
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.security_token = security_token
        self.host = host
        self.port = port
        self.endpoint = ""
        self.request_count = 0
        self.requests_by_op: Counter[str] = Counter()
        self._state = self.root / STATE_DIR
        self._digests = _DigestCache()
        self._lock = threading.Lock()
        self._layout_lock = threading.Lock()
        self._faults: Faults
        self._rng: random.Random
        self.set_faults(faults or Faults())
        self._created = time.time()
        self._replicator = _Replicator(
            self.root, self._state / _REPLICATION_STATE, set(self.buckets), lambda: self.faults.replication_delay_ms
        )
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Create the bucket and state directories, listen, and serve from a background thread."""
        for name in self.buckets:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self._state / "tmp", ignore_errors=True)
        (self._state / "tmp").mkdir(parents=True, exist_ok=True)
        (self._state / "uploads").mkdir(parents=True, exist_ok=True)
        self._httpd = _HttpServer((self.host, self.port), self)
        host, port = self._httpd.socket.getsockname()[:2]
        self.port = int(port)
        self.endpoint = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oss-server", daemon=True)
        self._thread.start()
        self._replicator.start(on_changed=self._digests.forget)
        logger.info("OSS server on %s serving %s (buckets %s)", self.endpoint, self.root, sorted(self.buckets))

    def stop(self) -> None:
        """Stop listening, close open connections and wait for the serving thread."""
        if self._httpd is None:
            return
        self._replicator.stop()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> OssServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # faults and counters -----------------------------------------------------------------------

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = dataclasses.replace(faults, error_keys=list(faults.error_keys))
            self._rng = random.Random(faults.seed)

    @property
    def faults(self) -> Faults:
        with self._lock:
            return dataclasses.replace(self._faults, error_keys=list(self._faults.error_keys))

    def _count(self, op: str) -> None:
        with self._lock:
            self.request_count += 1
            self.requests_by_op[op] += 1

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {"request_count": self.request_count, "requests_by_op": dict(self.requests_by_op)}

    def _roll(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def _inject_faults(self, req: _Request) -> None:
        faults = self.faults
        if req.key and any(part in req.key for part in faults.error_keys):
            raise OssError(500, "InternalError", "Injected fault: this key always fails.")
        if self._roll(faults.error_rate):
            raise OssError(503, "ServiceUnavailable", "Injected fault: please reduce your request rate.")

    def _should_truncate(self) -> bool:
        return self._roll(self.faults.truncate_rate)

    # request handling --------------------------------------------------------------------------

    def _handle(self, req: _Request) -> _Response:
        """Answer one parsed request (body already read); OssError for an error answer."""
        self._count(req.op)
        latency = self.faults.latency_ms
        if latency:
            time.sleep(latency / 1000)
        if not req.bucket:
            raise OssError(501, "NotImplemented", "This server implements bucket and object operations only.")
        bucket = self.buckets.get(req.bucket)
        if bucket is None:
            raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=req.bucket)
        self._authenticate(req, bucket)
        self._inject_faults(req)
        handler = {
            "GetBucketInfo": self._get_bucket_info,
            "GetBucketLocation": self._get_bucket_location,
            "ListObjects": self._list_objects,
            "ListObjectsV2": self._list_objects_v2,
            "ListMultipartUploads": self._list_multipart_uploads,
            "DeleteMultipleObjects": self._delete_multiple_objects,
            "PutObject": self._put_object,
            "GetObject": self._get_object,
            "HeadObject": self._head_object,
            "GetObjectMeta": self._head_object,
            "DeleteObject": self._delete_object,
            "InitiateMultipartUpload": self._initiate_multipart_upload,
            "UploadPart": self._upload_part,
            "UploadPartCopy": self._upload_part_copy,
            "CopyObject": self._copy_object,
            "ListParts": self._list_parts,
            "AbortMultipartUpload": self._abort_multipart_upload,
            "CompleteMultipartUpload": self._complete_multipart_upload,
            "PutBucketReplication": self._put_bucket_replication,
            "GetBucketReplication": self._get_bucket_replication,
            "GetBucketReplicationProgress": self._get_bucket_replication_progress,
            "GetBucketReplicationLocation": self._get_bucket_replication_location,
            "DeleteBucketReplication": self._delete_bucket_replication,
        }.get(req.op)
        if handler is None:
            raise OssError(
                501,
                "NotImplemented",
                f"This server does not implement {req.method} with these parameters: {sorted(req.params)}.",
            )
        return handler(req, bucket)

    # authentication ----------------------------------------------------------------------------

    def _authenticate(self, req: _Request, bucket: BucketConfig) -> None:
        auth = req.headers.get("authorization", "")
        if not auth:
            raise OssError(403, "AccessDenied", "Anonymous access is forbidden for this operation.")
        if auth.startswith("OSS4-HMAC-SHA256"):
            access_key_id, check = self._v4(req, bucket, auth)
        elif auth.startswith("OSS "):
            access_key_id, check = self._v1(req, auth)
        else:
            raise OssError(403, "AccessDenied", "Authorization must be OSS (V1) or OSS4-HMAC-SHA256 (V4).")
        if access_key_id != self.access_key_id:
            raise OssError(
                403,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
                OSSAccessKeyId=access_key_id,
            )
        if self.security_token is not None and req.headers.get("x-oss-security-token") != self.security_token:
            raise OssError(403, "InvalidSecurityToken", "The security token you provided is invalid.")
        string_to_sign, expected, given = check()
        if not hmac.compare_digest(expected, given):
            raise OssError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match "
                "the signature you provided. Check your key and signing method.",
                StringToSign=string_to_sign,
            )

    def _check_skew(self, when: datetime | None, header: str) -> None:
        if when is None:
            raise OssError(403, "AccessDenied", f"The request needs a valid {header} header.")
        if abs(when.timestamp() - time.time()) > _MAX_CLOCK_SKEW_S:
            raise OssError(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            )

    def _v1(self, req: _Request, auth: str) -> tuple[str, SignatureCheck]:
        access_key_id, _, signature = auth[len("OSS ") :].strip().rpartition(":")
        date = req.headers.get("x-oss-date") or req.headers.get("date", "")
        try:
            when = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            when = None
        self._check_skew(when, "Date")

        def check() -> tuple[str, str, str]:
            oss_headers = sorted((k.lower(), v) for k, v in req.header_items if k.lower().startswith("x-oss-"))
            canonical = "".join(f"{k}:{v}\n" for k, v in oss_headers)
            sub = sorted((k, v) for k, v in req.params.items() if k in _V1_SUBRESOURCES or k in _SELECTORS)
            resource = f"/{req.bucket}/{req.key}"
            if sub:
                resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
            headers = req.headers
            text = "\n".join(
                [
                    req.method,
                    headers.get("content-md5", ""),
                    headers.get("content-type", ""),
                    date,
                    canonical + resource,
                ]
            )
            mac = hmac.new(self._secret.encode(), text.encode("utf-8"), hashlib.sha1)
            return text, base64.b64encode(mac.digest()).decode(), signature

        return access_key_id, check

    def _v4(self, req: _Request, bucket: BucketConfig, auth: str) -> tuple[str, SignatureCheck]:
        fields: dict[str, str] = {}
        for item in auth[len("OSS4-HMAC-SHA256") :].split(","):
            name, _, value = item.strip().partition("=")
            fields[name] = value.strip()
        scope = fields.get("Credential", "").split("/")
        if len(scope) != 5 or not fields.get("Signature") or scope[4] != "aliyun_v4_request":
            raise OssError(
                400,
                "InvalidArgument",
                "The V4 Authorization header needs "
                "Credential=<ak>/<date>/<region>/oss/aliyun_v4_request and Signature=<hex>.",
            )
        access_key_id, day, region, product, _ = scope
        if product != "oss" or region != bucket.region_id:
            raise _invalid_argument(
                f"Invalid signing region in Authorization header: bucket {bucket.name} is in region "
                f"{bucket.region_id} (product oss).",
                "Credential",
                fields["Credential"],
            )
        stamp = req.headers.get("x-oss-date", "")
        try:
            when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            when = None
        self._check_skew(when, "x-oss-date")
        additional = sorted({h.strip().lower() for h in fields.get("AdditionalHeaders", "").split(";") if h.strip()})

        def check() -> tuple[str, str, str]:
            signed = sorted(
                (
                    (k.lower(), v)
                    for k, v in req.header_items
                    if k.lower().startswith("x-oss-") or k.lower() in ("content-type", "content-md5", *additional)
                ),
                key=lambda item: item[0],
            )
            query = sorted((_v4_encode(k, False), _v4_encode(v, False)) for k, v in req.params.items())
            canonical_request = "\n".join(
                [
                    req.method,
                    _v4_encode(f"/{req.bucket}/{req.key}", True),
                    "&".join(f"{k}={v}" if v else k for k, v in query),
                    "".join(f"{k}:{v}\n" for k, v in signed),
                    ";".join(additional),
                    req.headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
                ]
            )
            text = "\n".join(
                [
                    "OSS4-HMAC-SHA256",
                    stamp,
                    f"{day}/{region}/oss/aliyun_v4_request",
                    hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
                ]
            )
            key = ("aliyun_v4" + self._secret).encode()
            for part in (day, region, "oss", "aliyun_v4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            return text, hmac.new(key, text.encode(), hashlib.sha256).hexdigest(), fields["Signature"]

        return access_key_id, check

    # files -------------------------------------------------------------------------------------

    def _object_path(self, bucket: BucketConfig, key: str) -> str:
        """The file that holds (or would hold) an existing object (oss_layout); OssError for an invalid key."""
        _key_parts(key)
        return oss_layout.object_file(os.path.join(self.root, bucket.name), key)

    def _tmp_path(self) -> str:
        return os.path.join(self._state, "tmp", uuid.uuid4().hex)

    def _open(self, path: str, key: str) -> tuple[BinaryIO, _ObjectMeta]:
        try:
            f = open(path, "rb")  # noqa: SIM115 - handed to the caller, which closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise _no_such_key(key) from None
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            f.close()
            raise _no_such_key(key)
        return f, _ObjectMeta(st.st_size, st.st_mtime, self._digests.get(path, f, st, self._foreign(path, st)))

    def _foreign(self, path: str, st: os.stat_result) -> bool:
        """A large bucket object the server has no digest of (written straight to disk, or before a restart)."""
        return st.st_size >= FOREIGN_MULTIPART_BYTES and not path.startswith(str(self._state))

    def _listed(self, path: str, key: str) -> tuple[int, float, str]:
        """(size, mtime, ETag) for a listing: a large foreign object is not read at all."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise _no_such_key(key) from None
        digest = self._digests.cached(path, st)
        if digest is not None and stat.S_ISREG(st.st_mode):
            return st.st_size, st.st_mtime, digest.etag
        if stat.S_ISREG(st.st_mode) and self._foreign(path, st):
            return st.st_size, st.st_mtime, _foreign_etag(st)
        meta = self._meta(path, key)
        return meta.size, meta.mtime, meta.digest.etag

    def _meta(self, path: str, key: str) -> _ObjectMeta:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise _no_such_key(key) from None
        digest = self._digests.cached(path, st)
        if digest is not None and stat.S_ISREG(st.st_mode):
            return _ObjectMeta(st.st_size, st.st_mtime, digest)
        f, meta = self._open(path, key)  # not hashed yet (or not a file: _open says NoSuchKey)
        f.close()
        return meta

    def _store(self, src: str, bucket: BucketConfig, req: _Request, digest: _Digest) -> os.stat_result:
        """Move a finished temp file into place as the object req.key, atomically; with the request header
        `x-oss-forbid-overwrite: true`, OssError 409 FileAlreadyExists when the object exists (OSS's rule)."""
        forbid = req.headers.get("x-oss-forbid-overwrite", "").lower() == "true"
        bucket_dir = os.path.join(self.root, bucket.name)
        _key_parts(req.key)
        with self._layout_lock:  # parents made (or an object moved to make room) and the file placed as one step
            path = oss_layout.prepare_write(bucket_dir, req.key, os.path.join(self._state, "tmp"))
            if forbid:
                try:
                    os.link(src, path)
                except FileExistsError:
                    raise OssError(
                        409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten."
                    ) from None
                os.unlink(src)
            else:
                os.replace(src, path)
        st = os.stat(path)
        self._digests.forget(path)
        self._digests.put(path, st, digest)
        return st

    def _install(self, src: str, path: str, digest: _Digest) -> None:
        """Move a finished temp file to a path of the server's own state (a multipart part)."""
        os.replace(src, path)
        self._digests.put(path, os.stat(path), digest)

    def _remove(self, bucket: BucketConfig, path: str) -> None:
        with self._layout_lock:  # not between another write's making of parents and its placing of the file
            removed = _remove_file(os.path.join(self.root, bucket.name), path)
        if removed:
            self._digests.forget(path)

    def _object_headers(self, bucket: BucketConfig, meta: _ObjectMeta) -> dict[str, str]:
        return {
            "Content-Type": "application/octet-stream",
            "ETag": meta.digest.etag,
            "Last-Modified": _http_date(meta.mtime),
            "Accept-Ranges": "bytes",
            "x-oss-object-type": meta.object_type,
            "x-oss-storage-class": bucket.storage_class,
            "x-oss-hash-crc64ecma": str(meta.digest.crc64),
        }

    # bucket operations -------------------------------------------------------------------------

    def _get_bucket_info(self, req: _Request, bucket: BucketConfig) -> _Response:
        root = ET.Element("BucketInfo")
        node = _sub(root, "Bucket")
        _sub(node, "Name", bucket.name)
        _sub(node, "CreationDate", _iso8601(self._created))
        _sub(node, "Location", bucket.region)
        _sub(node, "ExtranetEndpoint", f"{bucket.region}.aliyuncs.com")
        _sub(node, "IntranetEndpoint", f"{bucket.region}-internal.aliyuncs.com")
        _sub(node, "StorageClass", bucket.storage_class)
        _sub(node, "DataRedundancyType", "LRS")
        owner = _sub(node, "Owner")
        _sub(owner, "DisplayName", _OWNER_ID)
        _sub(owner, "ID", _OWNER_ID)
        _sub(_sub(node, "AccessControlList"), "Grant", "private")
        return _Response(200, {"Content-Type": "application/xml"}, _xml(root))

    def _get_bucket_location(self, req: _Request, bucket: BucketConfig) -> _Response:
        root = ET.Element("LocationConstraint")
        root.text = bucket.region
        return _Response(200, {"Content-Type": "application/xml"}, _xml(root))

    def _list_objects(self, req: _Request, bucket: BucketConfig) -> _Response:
        return self._list(req, bucket, v2=False)

    def _list_objects_v2(self, req: _Request, bucket: BucketConfig) -> _Response:
        return self._list(req, bucket, v2=True)

    def _list(self, req: _Request, bucket: BucketConfig, v2: bool) -> _Response:
        params = req.params
        prefix, delimiter, encoding, max_keys = _listing_params(params, "max-keys", _DEFAULT_MAX_KEYS, _MAX_KEYS)
        token = params.get("continuation-token", "")
        if v2 and token:
            try:
                after = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
            except (ValueError, UnicodeError):
                raise _invalid_argument("The continuation-token is not valid.", "continuation-token", token) from None
        else:
            after = params.get("start-after", "") if v2 else params.get("marker", "")
        entries, truncated = _list_entries(os.path.join(self.root, bucket.name), prefix, delimiter, after, max_keys)

        def enc(text: str) -> str:
            return quote(text, safe="") if encoding else text

        root = ET.Element("ListBucketResult")
        _sub(root, "Name", bucket.name)
        _sub(root, "Prefix", enc(prefix))
        if v2:
            if "start-after" in params:
                _sub(root, "StartAfter", enc(params["start-after"]))
            if token:
                _sub(root, "ContinuationToken", token)
        else:
            _sub(root, "Marker", enc(after))
        _sub(root, "MaxKeys", max_keys)
        _sub(root, "Delimiter", enc(delimiter))
        if encoding:
            _sub(root, "EncodingType", encoding)
        _sub(root, "IsTruncated", "true" if truncated else "false")
        if truncated:
            last = entries[-1][0]
            if v2:
                _sub(root, "NextContinuationToken", base64.urlsafe_b64encode(last.encode("utf-8")).decode())
            else:
                _sub(root, "NextMarker", enc(last))
        if v2:
            _sub(root, "KeyCount", len(entries))
        with_owner = not v2 or params.get("fetch-owner") == "true"
        for name, is_prefix, path in entries:
            if is_prefix:
                _sub(_sub(root, "CommonPrefixes"), "Prefix", enc(name))
                continue
            try:
                size, mtime, etag = self._listed(path, name)
            except OssError:  # deleted between the walk and now
                continue
            node = _sub(root, "Contents")
            _sub(node, "Key", enc(name))
            _sub(node, "LastModified", _iso8601(mtime))
            _sub(node, "ETag", etag)
            _sub(node, "Type", "Multipart" if "-" in etag else "Normal")
            _sub(node, "Size", size)
            _sub(node, "StorageClass", bucket.storage_class)
            if with_owner:
                owner = _sub(node, "Owner")
                _sub(owner, "ID", _OWNER_ID)
                _sub(owner, "DisplayName", _OWNER_ID)
        return _Response(200, {"Content-Type": "application/xml"}, _xml(root))

    def _delete_multiple_objects(self, req: _Request, bucket: BucketConfig) -> _Response:
        given = req.headers.get("content-md5", "")
        if not given:
            raise OssError(400, "InvalidDigest", "DeleteMultipleObjects needs a Content-MD5 header.")
        if given != base64.b64encode(hashlib.md5(req.body).digest()).decode():
            raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        try:
            root = ET.fromstring(req.body)
        except ET.ParseError:
            raise OssError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
        keys = [node.text or "" for node in root.findall("Object/Key")]
        if root.tag != "Delete" or not keys or len(keys) > _MAX_DELETE_KEYS:
            raise OssError(400, "MalformedXML", f"Delete needs 1 to {_MAX_DELETE_KEYS} Object/Key elements.")
        quiet = (root.findtext("Quiet") or "false").strip().lower() == "true"
        paths = [self._object_path(bucket, key) for key in keys]
        for path in paths:
            self._remove(bucket, path)
        encoding = req.params.get("encoding-type", "")
        result = ET.Element("DeleteResult")
        if encoding == "url":
            _sub(result, "EncodingType", "url")
        if not quiet:
            for key in keys:
                _sub(_sub(result, "Deleted"), "Key", quote(key, safe="") if encoding == "url" else key)
        return _Response(200, {"Content-Type": "application/xml"}, _xml(result))

    # replication -------------------------------------------------------------------------------

    def replicate_now(self) -> None:
        """Run one replication pass at once (tests; the background thread runs them anyway)."""
        self._replicator.replicate_once()

    def _put_bucket_replication(self, req: _Request, bucket: BucketConfig) -> _Response:
        root = _xml_body(req, "ReplicationConfiguration")
        nodes = root.findall("Rule")
        if len(nodes) != 1:
            raise OssError(400, "MalformedXML", "ReplicationConfiguration needs exactly one Rule.")
        node = nodes[0]
        target = (node.findtext("Destination/Bucket") or "").strip()
        location = (node.findtext("Destination/Location") or "").strip()
        if not target or not location:
            raise OssError(400, "MalformedXML", "A replication Rule needs Destination/Bucket and Destination/Location.")
        transfer_type = node.findtext("Destination/TransferType") or "internal"
        if transfer_type not in _REPLICATION_TRANSFER_TYPES:
            raise _invalid_argument("TransferType must be internal or oss_acc.", "TransferType", transfer_type)
        historical = node.findtext("HistoricalObjectReplication") or "enabled"
        if historical not in ("enabled", "disabled"):
            raise _invalid_argument(
                "HistoricalObjectReplication must be enabled or disabled.", "HistoricalObjectReplication", historical
            )
        prefixes = [p.text or "" for p in node.findall("PrefixSet/Prefix")]
        if len(prefixes) > _MAX_REPLICATION_PREFIXES:
            raise _invalid_argument(
                f"A replication rule takes at most {_MAX_REPLICATION_PREFIXES} prefixes.", "Prefix", str(len(prefixes))
            )
        action = node.findtext("Action") or "ALL"
        actions = [a.strip() for a in action.split(",")]
        if not set(actions) <= _REPLICATION_ACTIONS:
            raise _invalid_argument("Action must be ALL or a list of PUT, DELETE and ABORT.", "Action", action)
        if target == bucket.name:
            raise _invalid_argument("The target bucket must not be the source bucket.", "Bucket", target)
        target_bucket = self.buckets.get(target)
        if target_bucket is None:
            raise OssError(
                404, "NoSuchBucket", "The target bucket of the replication rule does not exist.", BucketName=target
            )
        if location != target_bucket.region:
            raise OssError(
                400,
                "BadReplicationLocation",
                f"The replication location you choose is invalid: bucket {target} is in {target_bucket.region}.",
            )
        rule = _ReplicationRule(
            id=(node.findtext("ID") or "").strip() or str(uuid.uuid4()),
            source=bucket.name,
            target=target,
            location=location,
            prefixes=prefixes,
            actions=actions,
            historical=historical == "enabled",
            created_ns=time.time_ns(),
            transfer_type=transfer_type,
        )
        self._replicator.add(rule)
        return _Response(200, {"x-oss-replication-rule-id": rule.id})

    def _get_bucket_replication(self, req: _Request, bucket: BucketConfig) -> _Response:
        rules = self._replicator.rules(bucket.name)
        if not rules:
            raise OssError(
                404,
                "NoSuchReplicationConfiguration",
                "The replication configuration does not exist.",
                BucketName=bucket.name,
            )
        root = ET.Element("ReplicationConfiguration")
        for rule in rules:
            _rule_xml(root, rule)
        return _Response(200, {"Content-Type": "application/xml"}, _xml(root))

    def _get_bucket_replication_progress(self, req: _Request, bucket: BucketConfig) -> _Response:
        rule = self._replicator.rule(bucket.name, req.params.get("rule-id", ""))
        root = ET.Element("ReplicationProgress")
        node = _rule_xml(root, rule)
        progress = _sub(node, "Progress")
        if rule.historical:
            _sub(progress, "HistoricalObject", f"{rule.historical_progress:.2f}".rstrip("0").rstrip("."))
        if rule.new_object_progress is not None:
            _sub(progress, "NewObject", _iso8601(rule.new_object_progress))
        return _Response(200, {"Content-Type": "application/xml"}, _xml(root))

    def _get_bucket_replication_location(self, req: _Request, bucket: BucketConfig) -> _Response:
        root = ET.Element("ReplicationLocation")
        for region in sorted({b.region for b in self.buckets.values()} - {bucket.region}):
            _sub(root, "Location", region)
        return _Response(200, {"Content-Type": "application/xml"}, _xml(root))

    def _delete_bucket_replication(self, req: _Request, bucket: BucketConfig) -> _Response:
        root = _xml_body(req, "ReplicationRules")
        rule_id = (root.findtext("ID") or "").strip()
        if not rule_id:
            raise OssError(400, "MalformedXML", "ReplicationRules needs the ID of the rule to delete.")
        self._replicator.close(bucket.name, rule_id)
        return _Response(200)

    # object operations -------------------------------------------------------------------------

    def _put_object(self, req: _Request, bucket: BucketConfig) -> _Response:
        _key_parts(req.key)
        spool = _checked_spool(req)
        digest = _Digest(_quoted_etag(spool.md5), spool.crc64)
        self._store(spool.path, bucket, req, digest)
        return _Response(200, _write_headers(spool, digest))

    def _copy_source(self, req: _Request) -> tuple[BinaryIO, _ObjectMeta]:
        """The open file and metadata of the object `x-oss-copy-source: /<bucket>/<url-encoded key>` names;
        OssError NoSuchBucket or NoSuchKey (404) as OSS when it is missing."""
        source = req.headers["x-oss-copy-source"].split("?", 1)[0]
        name, _, raw_key = source.lstrip("/").partition("/")
        key = unquote(raw_key)
        bucket = self.buckets.get(name)
        if bucket is None:
            raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=name)
        if not key:
            raise _invalid_argument("x-oss-copy-source must be /<bucket>/<object>.", "x-oss-copy-source", source)
        return self._open(self._object_path(bucket, key), key)

    def _copy_object(self, req: _Request, bucket: BucketConfig) -> _Response:
        _key_parts(req.key)
        f, meta = self._copy_source(req)
        tmp = self._tmp_path()
        try:
            with f, open(tmp, "wb") as out:
                shutil.copyfileobj(f, out, _CHUNK)
            st = self._store(tmp, bucket, req, meta.digest)  # a copy keeps the source's ETag and CRC64
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        result = ET.Element("CopyObjectResult")
        _sub(result, "ETag", meta.digest.etag)
        _sub(result, "LastModified", _iso8601(st.st_mtime))
        headers = {
            "Content-Type": "application/xml",
            "ETag": meta.digest.etag,
            "x-oss-hash-crc64ecma": str(meta.digest.crc64),
        }
        return _Response(200, headers, _xml(result))

    def _upload_part_copy(self, req: _Request, bucket: BucketConfig) -> _Response:
        directory = self._upload_dir(req, bucket)
        number = _part_number(req)
        f, meta = self._copy_source(req)
        with f:
            span = (0, meta.size - 1)
            wanted = req.headers.get("x-oss-copy-source-range")
            if wanted is not None:
                parsed = _parse_range(wanted, meta.size, standard=True)
                if parsed is None:
                    raise _invalid_argument(
                        "x-oss-copy-source-range must be bytes=<first>-<last> within the source object.",
                        "x-oss-copy-source-range",
                        wanted,
                    )
                span = parsed
            f.seek(span[0])
            remaining = span[1] - span[0] + 1
            md5, crc, tmp = hashlib.md5(), new_crc64(), self._tmp_path()
            with open(tmp, "wb") as out:
                while remaining > 0 and (chunk := f.read(min(remaining, _CHUNK))):
                    out.write(chunk)
                    md5.update(chunk)
                    crc.update(chunk)
                    remaining -= len(chunk)
        digest = _Digest(_quoted_etag(md5.digest()), crc.crcValue)
        path = os.path.join(directory, str(number))
        self._install(tmp, path, digest)
        result = ET.Element("CopyPartResult")
        _sub(result, "LastModified", _iso8601(os.stat(path).st_mtime))
        _sub(result, "ETag", digest.etag)
        headers = {"Content-Type": "application/xml", "ETag": digest.etag, "x-oss-hash-crc64ecma": str(digest.crc64)}
        return _Response(200, headers, _xml(result))

    def _get_object(self, req: _Request, bucket: BucketConfig) -> _Response:
        f, meta = self._open(self._object_path(bucket, req.key), req.key)
        try:
            headers = self._object_headers(bucket, meta)
            _check_conditions(req, meta)
            span = _parse_range(
                req.headers.get("range", ""), meta.size, req.headers.get("x-oss-range-behavior") == "standard"
            )
        except BaseException:
            f.close()
            raise
        if span is None:
            return _Response(200, headers, file=f, length=meta.size)
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end}/{meta.size}"
        return _Response(206, headers, file=f, offset=start, length=end - start + 1)

    def _head_object(self, req: _Request, bucket: BucketConfig) -> _Response:
        meta = self._meta(self._object_path(bucket, req.key), req.key)
        _check_conditions(req, meta)
        return _Response(200, self._object_headers(bucket, meta), length=meta.size)

    def _delete_object(self, req: _Request, bucket: BucketConfig) -> _Response:
        self._remove(bucket, self._object_path(bucket, req.key))
        return _Response(204)

    # multipart ---------------------------------------------------------------------------------

    def _upload_dir(self, req: _Request, bucket: BucketConfig) -> str:
        upload_id = req.params.get("uploadId", "")
        directory = os.path.join(self._state, "uploads", upload_id)
        record = _read_upload(directory)[0] if _UPLOAD_ID.fullmatch(upload_id) else None
        if record is None or (record.get("bucket"), record.get("key")) != (bucket.name, req.key):
            raise OssError(
                404,
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be "
                "invalid, or the upload may have been aborted or completed.",
                UploadId=upload_id,
            )
        return directory

    def _parts(self, directory: str) -> list[tuple[int, str]]:
        return sorted((int(name), os.path.join(directory, name)) for name in os.listdir(directory) if name.isdigit())

    def _initiate_multipart_upload(self, req: _Request, bucket: BucketConfig) -> _Response:
        _key_parts(req.key)
        # the ID starts with the time in ns: a key's upload IDs sort as the uploads were initiated, so OSS's
        # rule "upload IDs greater than upload-id-marker" and the listing order agree
        now_ns = time.time_ns()
        upload_id = f"{now_ns:016X}{uuid.uuid4().hex[:16].upper()}"
        directory = os.path.join(self._state, "uploads", upload_id)
        os.makedirs(directory)
        with open(os.path.join(directory, "upload.json"), "w", encoding="utf-8") as f:
            json.dump({"bucket": bucket.name, "key": req.key, "initiated": now_ns / 1e9}, f)
        root = ET.Element("InitiateMultipartUploadResult")
        _sub(root, "Bucket", bucket.name)
        _sub(root, "Key", req.key)
        _sub(root, "UploadId", upload_id)
        return _Response(200, {"Content-Type": "application/xml"}, _xml(root))

    def _pending_uploads(self, bucket: BucketConfig, prefix: str) -> list[tuple[str, float, str]]:
        """(key, initiated epoch s, upload ID) of every pending upload of the bucket whose key starts with
        prefix, in listing order: key (code point order is UTF-8 byte order), initiation time, upload ID."""
        uploads = []
        try:
            with os.scandir(os.path.join(self._state, "uploads")) as it:
                names = [entry.name for entry in it if _UPLOAD_ID.fullmatch(entry.name)]
        except FileNotFoundError:
            return []
        for upload_id in names:
            record, initiated = _read_upload(os.path.join(self._state, "uploads", upload_id))
            if record is None or record.get("bucket") != bucket.name:
                continue  # gone (completed, aborted) or still being initiated; or another bucket's
            key = record.get("key")
            if isinstance(key, str) and key.startswith(prefix):
                uploads.append((key, initiated, upload_id))
        uploads.sort()
        return uploads

    def _list_multipart_uploads(self, req: _Request, bucket: BucketConfig) -> _Response:
        params = req.params
        prefix, delimiter, encoding, max_uploads = _listing_params(params, "max-uploads", _MAX_UPLOADS, _MAX_UPLOADS)
        key_marker = params.get("key-marker", "")
        id_marker = params.get("upload-id-marker", "")
        uploads = self._pending_uploads(bucket, prefix)
        # After the markers: keys > key-marker and, with upload-id-marker, the key-marker's uploads that
        # come after that upload (when it is gone: those whose ID is greater, IDs sorting by initiation).
        marker = next(
            (
                (initiated, upload_id)
                for key, initiated, upload_id in uploads
                if (key, upload_id) == (key_marker, id_marker)
            ),
            None,
        )

        def after_markers(key: str, initiated: float, upload_id: str) -> bool:
            if key != key_marker or not id_marker:
                return key > key_marker
            return (initiated, upload_id) > marker if marker is not None else upload_id > id_marker

        entries: list[tuple[str, float, str | None]] = []  # (key, initiated, upload ID), or (common prefix, 0, None)
        truncated = False
        last_prefix = None
        for key, initiated, upload_id in uploads:
            if not after_markers(key, initiated, upload_id):
                continue
            entry: tuple[str, float, str | None] = (key, initiated, upload_id)
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                common = key[: cut + len(delimiter)]
                if common == last_prefix or common <= key_marker:
                    continue
                last_prefix = common
                entry = (common, 0.0, None)
            if len(entries) == max_uploads:
                truncated = True
                break
            entries.append(entry)

        def enc(text: str) -> str:
            return quote(text, safe="") if encoding else text

        root = ET.Element("ListMultipartUploadsResult")
        _sub(root, "Bucket", bucket.name)
        if encoding:
            _sub(root, "EncodingType", encoding)
        _sub(root, "KeyMarker", enc(key_marker))
        _sub(root, "UploadIdMarker", id_marker)
        _sub(root, "NextKeyMarker", enc(entries[-1][0]) if entries else "")
        _sub(root, "NextUploadIdMarker", (entries[-1][2] or "") if entries else "")
        _sub(root, "Delimiter", enc(delimiter))
        _sub(root, "Prefix", enc(prefix))
        _sub(root, "MaxUploads", max_uploads)
        _sub(root, "IsTruncated", "true" if truncated else "false")
        for name, initiated, upload in entries:
            if upload is not None:
                node = _sub(root, "Upload")
                _sub(node, "Key", enc(name))
                _sub(node, "UploadId", upload)
                _sub(node, "StorageClass", bucket.storage_class)
                _sub(node, "Initiated", _iso8601(initiated))
        for name, _, upload in entries:
            if upload is None:
                _sub(_sub(root, "CommonPrefixes"), "Prefix", enc(name))
        return _Response(200, {"Content-Type": "application/xml"}, _xml(root))

    def _upload_part(self, req: _Request, bucket: BucketConfig) -> _Response:
        directory = self._upload_dir(req, bucket)
        number = _part_number(req)
        spool = _checked_spool(req)
        digest = _Digest(_quoted_etag(spool.md5), spool.crc64)
        self._install(spool.path, os.path.join(directory, str(number)), digest)
        return _Response(200, _write_headers(spool, digest))

    def _list_parts(self, req: _Request, bucket: BucketConfig) -> _Response:
        directory = self._upload_dir(req, bucket)
        marker = req.params.get("part-number-marker") or "0"
        raw_max = req.params.get("max-parts") or "1000"
        if not marker.isdigit() or not raw_max.isdigit() or not 0 < int(raw_max) <= 1000:
            raise _invalid_argument("part-number-marker and max-parts (1-1000) must be numbers.", "max-parts", raw_max)
        parts = [(n, path) for n, path in self._parts(directory) if n > int(marker)]
        page, truncated = parts[: int(raw_max)], len(parts) > int(raw_max)
        root = ET.Element("ListPartsResult")
        _sub(root, "Bucket", bucket.name)
        _sub(root, "Key", req.key)
        _sub(root, "UploadId", req.params["uploadId"])
        _sub(root, "StorageClass", bucket.storage_class)
        _sub(root, "PartNumberMarker", int(marker))
        _sub(root, "NextPartNumberMarker", page[-1][0] if page else int(marker))
        _sub(root, "MaxParts", int(raw_max))
        _sub(root, "IsTruncated", "true" if truncated else "false")
        for number, path in page:
            meta = self._meta(path, req.key)
            node = _sub(root, "Part")
            _sub(node, "PartNumber", number)
            _sub(node, "LastModified", _iso8601(meta.mtime))
            _sub(node, "ETag", meta.digest.etag)
            _sub(node, "HashCrc64ecma", meta.digest.crc64)
            _sub(node, "Size", meta.size)
        return _Response(200, {"Content-Type": "application/xml"}, _xml(root))

    def _abort_multipart_upload(self, req: _Request, bucket: BucketConfig) -> _Response:
        shutil.rmtree(self._upload_dir(req, bucket), ignore_errors=True)
        return _Response(204)

    def _complete_multipart_upload(self, req: _Request, bucket: BucketConfig) -> _Response:
        directory = self._upload_dir(req, bucket)
        try:
            root = ET.fromstring(req.body)
            wanted = [
                (int(node.findtext("PartNumber") or ""), (node.findtext("ETag") or "").strip('"').upper())
                for node in root.findall("Part")
            ]
        except (ET.ParseError, ValueError):
            raise OssError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
        if root.tag != "CompleteMultipartUpload" or not wanted:
            raise OssError(400, "MalformedXML", "CompleteMultipartUpload needs at least one Part.")
        numbers = [number for number, _ in wanted]
        if numbers != sorted(set(numbers)):
            raise OssError(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        uploaded = dict(self._parts(directory))
        tmp = self._tmp_path()
        md5s = hashlib.md5()
        crc = new_crc64()
        with contextlib.ExitStack() as stack:
            parts = []
            for index, (number, etag) in enumerate(wanted):
                if number not in uploaded:
                    raise OssError(400, "InvalidPart", f"Part {number} was not uploaded.", PartNumber=str(number))
                f, meta = self._open(uploaded[number], req.key)
                stack.enter_context(f)
                if meta.digest.etag.strip('"') != etag:
                    raise OssError(400, "InvalidPart", f"Part {number}'s ETag does not match.", PartNumber=str(number))
                if index < len(wanted) - 1 and meta.size < _MIN_PART_SIZE:
                    raise OssError(
                        400,
                        "EntityTooSmall",
                        f"Part {number} is smaller than {_MIN_PART_SIZE} bytes.",
                        PartNumber=str(number),
                    )
                parts.append((f, meta))
            with open(tmp, "wb") as out:
                for f, meta in parts:
                    md5s.update(bytes.fromhex(meta.digest.etag.strip('"')))
                    while chunk := f.read(_CHUNK):
                        out.write(chunk)
                        crc.update(chunk)
        digest = _Digest(f'"{md5s.hexdigest().upper()}-{len(wanted)}"', crc.crcValue)
        try:
            self._store(tmp, bucket, req, digest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        shutil.rmtree(directory, ignore_errors=True)
        result = ET.Element("CompleteMultipartUploadResult")
        encode = req.params.get("encoding-type") == "url"
        if encode:
            _sub(result, "EncodingType", "url")
        _sub(result, "Location", f"{self.endpoint}/{bucket.name}/{quote(req.key, safe='/')}")
        _sub(result, "Bucket", bucket.name)
        _sub(result, "Key", quote(req.key, safe="") if encode else req.key)
        _sub(result, "ETag", digest.etag)
        headers = {"Content-Type": "application/xml", "ETag": digest.etag, "x-oss-hash-crc64ecma": str(digest.crc64)}
        return _Response(200, headers, _xml(result))


def _read_upload(directory: str) -> tuple[dict[str, object] | None, float]:
    """A pending upload's record (None when it is gone or not fully written) and its initiation time: the
    recorded one, or (records of older servers) the mtime of upload.json, written once at initiation."""
    try:
        with open(os.path.join(directory, "upload.json"), encoding="utf-8") as f:
            record = json.load(f)
            mtime = os.fstat(f.fileno()).st_mtime
    except (OSError, ValueError):
        return None, 0.0
    if not isinstance(record, dict):
        return None, 0.0
    initiated = record.get("initiated")
    if isinstance(initiated, bool) or not isinstance(initiated, int | float):
        initiated = mtime
    return record, float(initiated)


def _xml_body(req: _Request, tag: str) -> ET.Element:
    """The request's XML document (Content-MD5 checked when sent); MalformedXML unless its root is `tag`."""
    given = req.headers.get("content-md5")
    if given is not None and given != base64.b64encode(hashlib.md5(req.body).digest()).decode():
        raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
    try:
        root = ET.fromstring(req.body)
    except ET.ParseError:
        raise OssError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
    if root.tag != tag:
        raise OssError(400, "MalformedXML", f"The XML document must be a {tag}.")
    return root


def _rule_xml(parent: ET.Element, rule: _ReplicationRule) -> ET.Element:
    node = _sub(parent, "Rule")
    _sub(node, "ID", rule.id)
    if rule.prefixes:
        prefix_set = _sub(node, "PrefixSet")
        for prefix in rule.prefixes:
            _sub(prefix_set, "Prefix", prefix)
    _sub(node, "Action", ",".join(rule.actions))
    destination = _sub(node, "Destination")
    _sub(destination, "Bucket", rule.target)
    _sub(destination, "Location", rule.location)
    _sub(destination, "TransferType", rule.transfer_type)
    _sub(node, "Status", rule.status)
    _sub(node, "HistoricalObjectReplication", "enabled" if rule.historical else "disabled")
    return node


def _part_number(req: _Request) -> int:
    number = req.params.get("partNumber", "")
    if not number.isdigit() or not 1 <= int(number) <= _MAX_PART_NUMBER:
        raise _invalid_argument(f"partNumber must be between 1 and {_MAX_PART_NUMBER}.", "partNumber", number)
    return int(number)


def _checked_spool(req: _Request) -> _Spool:
    spool = req.spool
    assert spool is not None, "object writes are spooled by the handler"
    given = req.headers.get("content-md5")
    if given is not None:
        try:
            wanted = base64.b64decode(given, validate=True)
        except binascii.Error:
            wanted = b""
        if wanted != spool.md5:
            raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
    return spool


def _write_headers(spool: _Spool, digest: _Digest) -> dict[str, str]:
    return {
        "ETag": digest.etag,
        "Content-MD5": base64.b64encode(spool.md5).decode(),
        "x-oss-hash-crc64ecma": str(digest.crc64),
    }


def _check_conditions(req: _Request, meta: _ObjectMeta) -> None:
    """If-Match / If-Unmodified-Since → 412; If-None-Match / If-Modified-Since → 304."""
    etag = meta.digest.etag.strip('"')
    mtime = int(meta.mtime)

    def etags(value: str) -> set[str]:
        return {tag.strip().strip('"').upper() for tag in value.split(",")}

    def since(value: str) -> int | None:
        try:
            return int(email.utils.parsedate_to_datetime(value).timestamp())
        except (TypeError, ValueError):
            return None

    headers = req.headers
    if "if-match" in headers and not etags(headers["if-match"]) & {etag, "*"}:
        raise OssError(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
            Condition="If-Match",
        )
    unmodified = since(headers.get("if-unmodified-since", ""))
    if unmodified is not None and mtime > unmodified:
        raise OssError(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
            Condition="If-Unmodified-Since",
        )
    if "if-none-match" in headers and etags(headers["if-none-match"]) & {etag, "*"}:
        raise OssError(304, "NotModified", "Not Modified")
    modified = since(headers.get("if-modified-since", ""))
    if modified is not None and mtime <= modified:
        raise OssError(304, "NotModified", "Not Modified")


def _parse_range(value: str, size: int, standard: bool) -> tuple[int, int] | None:
    """The (first, last) byte a Range header asks for, or None for the whole object (OSS answers an
    invalid range with 200 and everything; with `x-oss-range-behavior: standard` it clamps the end and
    answers a start past the end with 416)."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if not match or match.groups() == ("", "") or size == 0:
        return None
    first, last = match.groups()
    if not first:  # suffix: the last N bytes
        count = int(last)
        if count == 0 or (count > size and not standard):
            return None
        return max(size - count, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size:
        if standard:
            raise OssError(416, "InvalidRange", "The requested range cannot be satisfied.")
        return None
    if end < start:
        return None
    if end >= size:
        if not standard:
            return None
        end = size - 1
    return start, end


def _list_entries(
    bucket_dir: str, prefix: str, delimiter: str, after: str, max_keys: int
) -> tuple[list[tuple[str, bool, str]], bool]:
    """Up to max_keys (name, is_common_prefix, file) entries after `after`, sorted, and whether more follow."""
    entries: list[tuple[str, bool, str]] = []
    last_prefix = None
    for key, is_dir_prefix, path in oss_layout.walk(bucket_dir, prefix, after, roll_up_dirs=delimiter == "/"):
        entry = (key, is_dir_prefix, path)
        if not is_dir_prefix and delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                common = key[: cut + len(delimiter)]
                if common == last_prefix or common <= after:
                    continue
                last_prefix = common
                entry = (common, True, "")
        if len(entries) == max_keys:
            return entries, True
        entries.append(entry)
    return entries, False


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], oss: OssServer) -> None:
        self.oss = oss
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        logger.debug("OSS server: connection from %s failed", client_address, exc_info=True)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer
    timeout = 120  # idle keep-alive connections

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK add 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def version_string(self) -> str:
        return "AliyunOSS"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET  # noqa: N815

    # body --------------------------------------------------------------------------------------

    def _body_chunks(self) -> Iterator[bytes]:
        """The request body, whole: Content-Length or chunked. ConnectionError when framing breaks."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            yield from self._read_exactly(self.headers.get("Content-Length") or "0")
            return
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            yield from self._read_exactly(size_line.decode("ascii", "replace") or "-", base=16)
            if size_line.strip(b"0") == b"":
                break
            self.rfile.readline(1024)  # the CRLF after the chunk
        while self.rfile.readline(8192).strip():  # trailers up to the empty line
            pass

    def _read_exactly(self, count: str, base: int = 10) -> Iterator[bytes]:
        try:
            remaining = int(count, base)
        except ValueError:
            raise ConnectionError(f"bad request body framing: {count!r}") from None
        if remaining < 0:
            raise ConnectionError(f"bad request body length: {count!r}")
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, _CHUNK))
            if not chunk:
                raise ConnectionError("request body ended early")
            remaining -= len(chunk)
            yield chunk

    def _spool(self) -> _Spool:
        path = self.server.oss._tmp_path()
        md5 = hashlib.md5()
        crc = new_crc64()
        size = 0
        try:
            with open(path, "wb") as f:
                for chunk in self._body_chunks():
                    f.write(chunk)
                    md5.update(chunk)
                    crc.update(chunk)
                    size += len(chunk)
        except BaseException:
            os.unlink(path)
            raise
        return _Spool(path, size, md5.digest(), crc.crcValue)

    # dispatch ----------------------------------------------------------------------------------

    def _serve(self) -> None:
        request_id = uuid.uuid4().hex[:24].upper()
        raw_path, _, query = self.path.partition("?")
        if raw_path == "/-" or raw_path.startswith("/-/"):
            self._admin(raw_path)
            return
        params = dict(parse_qsl(query, keep_blank_values=True))
        bucket, _, raw_key = raw_path.lstrip("/").partition("/")
        try:
            key = unquote(raw_key, errors="strict")
        except UnicodeDecodeError:
            key = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        op = _operation(self.command, key or "", params, headers)
        req = _Request(
            self.command,
            bucket,
            key or "",
            params,
            headers,
            list(self.headers.items()),
            op,
        )
        try:
            if op in ("PutObject", "UploadPart"):
                req.spool = self._spool()
            else:
                req.body = b"".join(self._body_chunks())
            if key is None:
                raise OssError(400, "InvalidURI", "The object name is not valid percent-encoded UTF-8.")
            response = self.server.oss._handle(req)
        except OssError as error:
            self._send_error(error, request_id, bucket)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # answer 500 rather than dropping the connection
            logger.exception("OSS server: %s %s failed", self.command, self.path)
            self._send_error(OssError(500, "InternalError", f"{type(exc).__name__}: {exc}"), request_id, bucket)
        else:
            self._send(response, request_id)
        finally:
            if req.spool is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(req.spool.path)

    def _send_error(self, error: OssError, request_id: str, bucket: str) -> None:
        body = _error_xml(error, request_id, f"{bucket}.{self.server.socket.getsockname()[0]}" if bucket else "")
        headers = {"Content-Type": "application/xml"}
        if self.command == "HEAD":
            headers["x-oss-err"] = base64.b64encode(body).decode()
        if error.status == 304:
            headers, body = {}, b""
        self._send(_Response(error.status, headers, body, length=len(body)), request_id)

    def _send(self, response: _Response, request_id: str) -> None:
        file = response.file
        try:
            self.send_response(response.status)
            length = response.length if file is not None or self.command == "HEAD" else len(response.body)
            if self.command == "HEAD" and response.status >= 300:
                length = 0
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(length))
            self.send_header("x-oss-request-id", request_id)
            self.send_header("Connection", "close" if self.close_connection else "keep-alive")
            self.end_headers()
            if self.command == "HEAD":
                return
            if file is None:
                self.wfile.write(response.body)
                return
            send = length
            if length and self.server.oss._should_truncate():
                send = length // 2
                self.close_connection = True
            file.seek(response.offset)
            while send > 0:
                chunk = file.read(min(send, _CHUNK))
                if not chunk:  # the file shrank under us: the client sees a short body
                    self.close_connection = True
                    break
                self.wfile.write(chunk)
                send -= len(chunk)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            if file is not None:
                file.close()

    # admin -------------------------------------------------------------------------------------

    def _admin(self, path: str) -> None:
        oss = self.server.oss
        status, payload = 200, None
        try:
            body = b"".join(self._body_chunks())
            if path == "/-/faults" and self.command == "GET":
                payload = oss.faults.to_json()
            elif path == "/-/faults" and self.command == "PUT":
                oss.set_faults(Faults.from_json(json.loads(body or b"{}")))
                payload = oss.faults.to_json()
            elif path == "/-/stats" and self.command == "GET":
                payload = oss.stats()
            else:
                status, payload = 404, {"error": f"no admin endpoint {self.command} {path}"}
        except (ValueError, TypeError) as exc:
            status, payload = 400, {"error": str(exc)}
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; print `{"endpoint": ...}` once listening."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        required=True,
        type=Path,
        help="JSON file: {root, host, port, buckets: [{name, region, storage_class}], "
        "access_key_id, access_key_secret, security_token?, faults?}",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    config = json.loads(args.config.read_text(encoding="utf-8"))
    server = OssServer(
        root=Path(config["root"]),
        buckets=[BucketConfig(**bucket) for bucket in config["buckets"]],
        access_key_id=config["access_key_id"],
        access_key_secret=config["access_key_secret"],
        security_token=config.get("security_token"),
        host=config.get("host", "127.0.0.1"),
        port=int(config.get("port", 0)),
        faults=Faults.from_json(config["faults"]) if config.get("faults") else None,
    )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    print(json.dumps({"endpoint": server.endpoint}), flush=True)
    stopping.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
