"""The one storage layer migrator reads (and, for a client-side copy, writes) a snapshot repository through.

Place in the flow: steps -> clients -> storage, and steps -> repository.copy -> storage. Steps that
inspect a repository (its index-N files, snapshot and index metadata, shard blobs) ask a `Storage`
for objects by key relative to the repository root; they never see bucket names, base paths or the
SDK. `OssStorage` talks to OSS (or the sandbox's OSS server) with V4 signatures by default, retries
transient faults itself (oss2 retries nothing for single calls) and checks the CRC64 of whole-object
reads and of every write; `LocalStorage` reads and writes an `fs` repository folder directly. Both
list in UTF-8 byte order, so their answers compare equal, and both report the CRC-64/XZ OSS keeps
for an object (`crc64`), so a copy between them can be checked end to end.

Writes: `write` puts a whole object; `write_stream` writes a big one part by part from a ranged
reader, so memory stays bounded by one part (OSS: a multipart upload that a later call for the same
key resumes, skipping parts already uploaded with the same bytes; local: a temporary file renamed
into place). Both return the CRC64 of what is stored.

Errors are `StorageError` (with `.transient`) or its subclass `NotFound`; messages name the
operation, the object and what to do, and never contain the secret.

Over 400 lines: the one storage layer, with its two implementations (OSS through oss2, a local folder) and
their shared error model side by side so that they stay interchangeable.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import os
import random
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, Protocol, TypeVar

import crcmod
import requests
import urllib3

from migrator.clients.oss_sdk import oss2
from migrator.clients.oss_session import DirectSession
from migrator.errors import MigratorError

T = TypeVar("T")

PAGE_SIZE = 1000
POOL_SIZE = 32  # kept connections per client: the verifier's readers (8) and index workers (4), with room
PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 100 * 1024  # OSS refuses smaller parts (all but the last)
MAX_PARTS = 10000
CRC64_POLY = 0x142F0E1EBA9EA3693  # CRC-64/XZ (ECMA-182), what OSS reports in x-oss-hash-crc64ecma
_READ_CHUNK = 1024 * 1024
_MAX_BACKOFF_S = 10.0
_TRANSIENT_STATUSES = frozenset({408, 429})
_TRANSIENT_CODES = frozenset({"InvalidDigest"})  # a body damaged on the way: sending it again can succeed
_ADVICE = {
    "SignatureDoesNotMatch": "check access_key_secret (and, for V4 signatures, the region)",
    "InvalidAccessKeyId": "check access_key_id",
    "InvalidSecurityToken": "the STS security token is wrong or expired: fetch a new one",
    "SecurityTokenExpired": "the STS security token expired: fetch a new one",
    "AccessDenied": "grant this key read and list permissions on the bucket (and write, to copy into it)",
    "NoSuchBucket": "check the bucket name and that the endpoint is in the bucket's region",
    "InvalidArgument": "check the endpoint, region and key",
}


@dataclass(frozen=True)
class ObjectInfo:
    """One object of a repository: its key relative to the repository root, and its size in bytes."""

    key: str
    size: int


RangeReader = Callable[[int, int], bytes]
"""`read(start, length)`: exactly `length` bytes of the object being written, from offset `start`."""


# crcmod builds the polynomial's table (256 entries, in Python) for each `Crc` it makes: 0.25 ms, more than
# reading a small object; a fresh digest is a copy of this one, which shares the table.
_CRC64 = crcmod.Crc(CRC64_POLY, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)


def new_crc64() -> crcmod.Crc:
    """A fresh CRC-64/XZ digest, computed the way OSS computes `x-oss-hash-crc64ecma`."""
    return _CRC64.new()


def crc64_of(data: bytes) -> int:
    """The CRC-64/XZ of `data`, as OSS would report it for an object with these bytes."""
    digest = new_crc64()
    digest.update(data)
    return int(digest.crcValue)


def part_size_for(size: int, part_size: int = PART_SIZE) -> int:
    """`part_size`, raised to OSS's minimum and to what keeps an object of `size` bytes within 10000 parts."""
    return max(part_size, MIN_PART_SIZE, -(-size // MAX_PARTS))


class StorageError(MigratorError):
    """A storage operation failed; `transient` says whether trying again later may succeed."""


class NotFound(StorageError):
    """The object does not exist."""


class Storage(Protocol):
    """What migrator needs from a snapshot repository's storage."""

    description: str
    request_count: int

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with prefix, sorted by key (UTF-8 byte order)."""
        ...

    def read(self, key: str) -> bytes:
        """The whole object."""
        ...

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Exactly `length` bytes from `start`; StorageError when the object ends before that."""
        ...

    def size(self, key: str) -> int:
        """The object's size; NotFound when it does not exist."""
        ...

    def crc64(self, key: str) -> int | None:
        """The object's CRC-64/XZ (None when OSS keeps none for it); NotFound when it does not exist."""
        ...

    def write(self, key: str, data: bytes) -> int:
        """Create or replace the object with `data`; returns the CRC64 of what is stored."""
        ...

    def write_stream(self, key: str, size: int, read: RangeReader, part_size: int = PART_SIZE) -> int:
        """Create or replace the object with `size` bytes taken part by part from `read`; returns the stored
        CRC64. Memory holds one part at a time."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; no error when it does not exist."""
        ...


def _check_range(start: int, length: int) -> None:
    if start < 0 or length < 0:
        raise ValueError(f"a range needs start >= 0 and length >= 0, not start={start} length={length}")


def _short_range(where: str, key: str, start: int, length: int, size: int | None) -> StorageError:
    has = f"has only {size} bytes" if size is not None else f"ends before offset {start}"
    return StorageError(
        f"{where}: cannot read {length} bytes at offset {start} of {key!r}: the object {has} "
        "(the repository may be incomplete, or a caller computed a wrong offset)"
    )


class LocalStorage:
    """A repository folder on this machine (an Elasticsearch `fs` repository's location)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = f"dir:{self.root}"
        self.request_count = 0
        self._lock = threading.Lock()

    def _count(self) -> None:
        with self._lock:
            self.request_count += 1

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise StorageError(f"{self.description}: {key!r} is not a valid object key (empty, '.' or '..' segment)")
        return self.root.joinpath(*parts)

    def _fail(self, operation: str, key: str, error: OSError) -> StorageError:
        if isinstance(error, FileNotFoundError | NotADirectoryError | IsADirectoryError):
            return NotFound(f"{self.description}: {operation} {key!r}: no such object")
        return StorageError(f"{self.description}: {operation} {key!r} failed: {error} (check the folder's permissions)")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        dir_part = prefix[: prefix.rfind("/") + 1]
        found: list[ObjectInfo] = []
        pending = [dir_part]
        while pending:
            rel = pending.pop()
            self._count()
            try:
                with os.scandir(self.root / rel) as entries:
                    for entry in entries:
                        is_dir = entry.is_dir()
                        key = rel + entry.name + ("/" if is_dir else "")
                        if not key.startswith(prefix):
                            continue
                        if is_dir:
                            pending.append(key)
                        else:
                            self._count()
                            found.append(ObjectInfo(key, entry.stat().st_size))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as error:
                raise StorageError(f"{self.description}: listing {rel!r} failed: {error}") from error
        found.sort(key=lambda info: info.key)  # str order is code point order, which is UTF-8 byte order
        yield from found

    def read(self, key: str) -> bytes:
        path = self._path(key)
        self._count()
        try:
            return path.read_bytes()
        except OSError as error:
            raise self._fail("read", key, error) from error

    def read_range(self, key: str, start: int, length: int) -> bytes:
        _check_range(start, length)
        path = self._path(key)
        self._count()
        try:
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(start)
                data = f.read(length)
        except OSError as error:
            raise self._fail("read_range", key, error) from error
        if len(data) != length:
            raise _short_range(self.description, key, start, length, size)
        return data

    def size(self, key: str) -> int:
        path = self._path(key)
        self._count()
        try:
            st = path.stat()
        except OSError as error:
            raise self._fail("size", key, error) from error
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"{self.description}: size {key!r}: no such object")
        return st.st_size

    def crc64(self, key: str) -> int:
        path = self._path(key)
        self._count()
        digest = new_crc64()
        try:
            with path.open("rb") as f:
                while chunk := f.read(_READ_CHUNK):
                    digest.update(chunk)
        except OSError as error:
            raise self._fail("crc64", key, error) from error
        return int(digest.crcValue)

    def write(self, key: str, data: bytes) -> int:
        return self.write_stream(key, len(data), lambda start, length: data[start : start + length], len(data) or 1)

    def write_stream(self, key: str, size: int, read: RangeReader, part_size: int = PART_SIZE) -> int:
        """Write to a `pending-` file beside the object, then rename it into place: a reader never sees half an
        object, and a crash leaves only the pending file (which the next write of the key does not need)."""
        path = self._path(key)
        pending = path.with_name(f"pending-{path.name}-{uuid.uuid4().hex}")
        digest = new_crc64()
        self._count()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with pending.open("wb") as f:
                for start in range(0, size, max(1, part_size)):
                    data = read(start, min(part_size, size - start))
                    digest.update(data)
                    f.write(data)
            os.replace(pending, path)
        except OSError as error:
            raise StorageError(
                f"{self.description}: write {key!r} failed: {error} (check the folder's permissions and free space)"
            ) from error
        finally:
            with contextlib.suppress(OSError):  # gone after the rename, or never created
                pending.unlink()
        return int(digest.crcValue)

    def delete(self, key: str) -> None:
        path = self._path(key)
        self._count()
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise self._fail("delete", key, error) from error


class _Retry(Exception):
    """A transient fault noticed by this layer (short body, CRC mismatch)."""


class OssClient:
    """What every oss2 user in migrator shares: one signed `oss2.Bucket`, a retry loop with backoff for
    transient faults (oss2 retries nothing for single calls), and errors classified into StorageError
    with messages that name the operation and the fix and never contain the secret."""

    advice: ClassVar[dict[str, str]] = _ADVICE

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key_id: str,
        access_key_secret: str,
        region: str | None,
        security_token: str | None = None,
        signature: Literal["v4", "v1"] = "v4",
        retries: int = 5,
        backoff_s: float = 0.2,
        timeout_s: float = 30.0,
    ) -> None:
        if signature not in ("v4", "v1"):
            raise ValueError(f"signature must be 'v4' or 'v1', not {signature!r}")
        if signature == "v4" and not region:
            raise ValueError(
                "V4 signatures need the bucket's region (for example 'cn-hangzhou'); pass region=... or signature='v1'"
            )
        if retries < 0 or backoff_s < 0 or timeout_s <= 0:
            raise ValueError("retries and backoff_s must be >= 0 and timeout_s > 0")
        if security_token:
            self._auth = oss2.StsAuth(access_key_id, access_key_secret, security_token, auth_version=signature)
        elif signature == "v4":
            self._auth = oss2.AuthV4(access_key_id, access_key_secret)
        else:
            self._auth = oss2.Auth(access_key_id, access_key_secret)
        self.bucket_name = bucket
        self.description = f"oss://{bucket} ({endpoint})"
        self.request_count = 0
        self.retries = retries
        self.backoff_s = backoff_s
        self._secret = access_key_secret
        self._lock = threading.Lock()
        self._region_id = region.removeprefix("oss-") if region else None
        self._session = DirectSession(endpoint, POOL_SIZE)
        self._bucket = self._open(endpoint, timeout_s)

    def _open(self, endpoint: str, timeout_s: float, **options: bool) -> oss2.Bucket:
        return oss2.Bucket(
            self._auth,
            endpoint,
            self.bucket_name,
            connect_timeout=timeout_s,
            region=self._region_id,
            session=self._session,
            **options,
        )

    def _retrying(self, where: str, attempt: Callable[[], T]) -> T:
        """Run one request, retrying transient faults with exponential backoff (never 403/404)."""
        failures = 0
        while True:
            with self._lock:
                self.request_count += 1
            try:
                return attempt()
            except Exception as error:  # classified below; anything else is a bug and goes up unchanged
                failure = self._classify(where, error)
                if failure is None:
                    raise
                if not failure.transient:
                    raise failure from error
                failures += 1
                if failures > self.retries:
                    raise StorageError(
                        f"{failure}; still failing after {failures} attempts: check the endpoint and the network, "
                        "then run again",
                        transient=True,
                    ) from error
            delay = min(self.backoff_s * 2 ** (failures - 1), _MAX_BACKOFF_S)
            time.sleep(delay * random.uniform(0.5, 1.0))

    def _classify(self, where: str, error: Exception) -> StorageError | None:
        """The StorageError an exception stands for, or None for a programming error."""
        if isinstance(error, oss2.exceptions.ServerError):
            code = error.code or str(error.status)
            text = f"{where}: {error.status} {code}"
            if error.message:
                text += f" ({error.message})"
            if error.request_id:
                text += f" [request id {error.request_id}]"
            return self._server_error(text, error.status, code)
        if isinstance(error, oss2.exceptions.RequestError | oss2.exceptions.InconsistentError):
            return StorageError(self._scrub(f"{where}: {error.body}"), transient=True)
        if isinstance(error, requests.RequestException | urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
            return StorageError(self._scrub(f"{where}: connection failed: {error}"), transient=True)
        if isinstance(error, oss2.exceptions.ClientError):
            return StorageError(self._scrub(f"{where}: {error.body}; check the endpoint and bucket name"))
        return None

    def _server_error(self, text: str, status: int, code: str) -> StorageError:
        """OSS's answer as a StorageError: the advice for its code, transient for 5xx, 408, 429."""
        advice = self.advice.get(code)
        if advice:
            text += f"; {advice}"
        transient = status >= 500 or status in _TRANSIENT_STATUSES or code in _TRANSIENT_CODES
        return StorageError(self._scrub(text), transient=transient)

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text


class OssStorage(OssClient):
    """A repository at `oss://bucket/base_path`, read through oss2 with retries and CRC64 checks."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        base_path: str,
        access_key_id: str,
        access_key_secret: str,
        region: str | None = None,
        security_token: str | None = None,
        signature: Literal["v4", "v1"] = "v4",
        retries: int = 5,
        backoff_s: float = 0.2,
        timeout_s: float = 30.0,
    ) -> None:
        super().__init__(
            endpoint,
            bucket,
            access_key_id,
            access_key_secret,
            region,
            security_token,
            signature,
            retries,
            backoff_s,
            timeout_s,
        )
        self.base_path = base_path.strip("/")
        self._root = f"{self.base_path}/" if self.base_path else ""
        self.description = f"oss://{bucket}/{self.base_path} ({endpoint})"
        # reads and writes check the CRC64 OSS answers against one crcmod pass over the bytes (oss2's own check
        # wraps the body in a Python-level adapter that costs as much CPU as the upload itself, and builds a CRC
        # table for each object: 0.36 ms, about a third of migrator's CPU per index in a run of many small ones)
        self._plain = self._open(endpoint, timeout_s, enable_crc=False)

    # the retry loop ----------------------------------------------------------------------------

    def _call(self, operation: str, key: str, attempt: Callable[[], T]) -> T:
        return self._retrying(f"{self.description}: {operation} {key!r}", attempt)

    def _classify(self, where: str, error: Exception) -> StorageError | None:
        if isinstance(error, _Retry):
            return StorageError(f"{where}: {error}", transient=True)
        return super()._classify(where, error)

    def _server_error(self, text: str, status: int, code: str) -> StorageError:
        if status == 404 and code in ("NoSuchKey", "404"):
            return NotFound(self._scrub(text))
        return super()._server_error(text, status, code)

    # operations --------------------------------------------------------------------------------

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        token = ""
        while True:
            page = self._call(
                "ListObjectsV2",
                prefix,
                functools.partial(
                    self._bucket.list_objects_v2,
                    prefix=self._root + prefix,
                    continuation_token=token,
                    max_keys=PAGE_SIZE,
                ),
            )
            for obj in page.object_list:
                yield ObjectInfo(obj.key[len(self._root) :], obj.size)
            if not page.is_truncated:
                return
            token = page.next_continuation_token

    def read(self, key: str) -> bytes:
        def attempt() -> bytes:
            result = self._plain.get_object(self._root + key)
            data = result.read()
            if result.content_length is not None and len(data) != result.content_length:
                raise _Retry(f"short body: {len(data)} of {result.content_length} bytes")
            computed = crc64_of(data) if result.server_crc is not None else None
            if computed != result.server_crc:
                raise _Retry(f"CRC64 mismatch: computed {computed}, OSS says {result.server_crc}")
            return data

        return self._call("GetObject", key, attempt)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        _check_range(start, length)
        if length == 0:
            return b""

        def attempt() -> bytes:
            try:
                result = self._bucket.get_object(
                    self._root + key,
                    byte_range=(start, start + length - 1),
                    headers={"x-oss-range-behavior": "standard"},  # HTTP range semantics: clamp, or 416
                )
            except oss2.exceptions.ServerError as error:
                if error.status == 416:
                    raise _short_range(self.description, key, start, length, None) from error
                raise
            data = result.read()
            if result.content_length is not None and len(data) != result.content_length:
                raise _Retry(f"short body: {len(data)} of {result.content_length} bytes")
            size = int(result.content_range.rpartition("/")[2]) if result.content_range else len(data)
            if result.status == 200:  # the whole object instead of a range (OSS does that for an empty one)
                data = data[start : start + length]
            if len(data) != length:
                raise _short_range(self.description, key, start, length, size)
            return data

        return self._call("GetObject", key, attempt)

    def size(self, key: str) -> int:
        result = self._call("HeadObject", key, functools.partial(self._bucket.head_object, self._root + key))
        return int(result.content_length)

    def crc64(self, key: str) -> int | None:
        result = self._call("HeadObject", key, functools.partial(self._bucket.head_object, self._root + key))
        return result.server_crc

    def write(self, key: str, data: bytes) -> int:
        expected = crc64_of(data)
        headers = {"Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode()}

        def attempt() -> int:
            result = self._plain.put_object(self._root + key, data, headers=headers)
            return self._stored_crc(result.crc, expected)

        return self._call("PutObject", key, attempt)

    def write_stream(self, key: str, size: int, read: RangeReader, part_size: int = PART_SIZE) -> int:
        """A multipart upload, each part read from `read` when it is sent. A pending upload of the same key (left
        by an interrupted run) is resumed: its parts whose size and MD5 (the part's ETag) equal the source's are not
        sent again. The whole object's CRC64 is checked when the upload completes."""
        part_size = part_size_for(size, part_size)
        if size <= part_size:
            return self.write(key, read(0, size))
        name = self._root + key
        upload_id = self._pending_upload(key)
        uploaded: dict[int, oss2.models.PartInfo] = {}
        if upload_id is None:
            upload_id = self._call(
                "InitiateMultipartUpload", key, functools.partial(self._bucket.init_multipart_upload, name)
            ).upload_id
        else:
            uploaded = self._uploaded_parts(key, upload_id)
        whole = new_crc64()
        parts = []
        for number, start in enumerate(range(0, size, part_size), start=1):
            data = read(start, min(part_size, size - start))
            whole.update(data)
            done = uploaded.get(number)
            if done is None or done.size != len(data) or done.etag.upper() != hashlib.md5(data).hexdigest().upper():
                done = oss2.models.PartInfo(number, self._upload_part(key, upload_id, number, data))
            parts.append(oss2.models.PartInfo(number, done.etag))
        expected = int(whole.crcValue)
        completed: list[bool] = []

        def complete() -> int:
            try:
                result = self._plain.complete_multipart_upload(name, upload_id, parts)
            except oss2.exceptions.NoSuchUpload:
                if completed:  # an earlier attempt completed it but its answer was lost
                    return self._stored_crc(self._bucket.head_object(name).server_crc, expected)
                raise
            finally:
                completed.append(True)
            return self._stored_crc(result.crc, expected)

        return self._call("CompleteMultipartUpload", key, complete)

    def delete(self, key: str) -> None:
        self._call("DeleteObject", key, functools.partial(self._bucket.delete_object, self._root + key))

    # multipart helpers -------------------------------------------------------------------------

    def _stored_crc(self, stored: int | None, expected: int) -> int:
        """The CRC64 OSS reports for what it stored; a mismatch with the bytes sent is a transient fault."""
        if stored is not None and stored != expected:
            raise _Retry(f"CRC64 mismatch: sent {expected}, OSS stored {stored}")
        return expected if stored is None else stored

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        """Upload one part (its CRC64 checked); returns its ETag."""
        expected = crc64_of(data)

        def attempt() -> str:
            result = self._plain.upload_part(self._root + key, upload_id, number, data)
            self._stored_crc(result.crc, expected)
            return str(result.etag)

        return self._call("UploadPart", key, attempt)

    def _pending_upload(self, key: str) -> str | None:
        """The newest unfinished multipart upload of exactly this key, or None (also when the server cannot list
        uploads: OSS and the sandbox's server can; one that answers 501 has nothing to resume)."""
        name = self._root + key

        def attempt() -> str | None:
            newest: tuple[int, str] | None = None
            key_marker = upload_id_marker = ""
            while True:
                try:
                    page = self._bucket.list_multipart_uploads(
                        prefix=name, key_marker=key_marker, upload_id_marker=upload_id_marker
                    )
                except oss2.exceptions.ServerError as error:
                    if error.status == 501:
                        return None
                    raise
                for upload in page.upload_list:
                    if upload.key == name and (newest is None or upload.initiation_date >= newest[0]):
                        newest = (upload.initiation_date, upload.upload_id)
                if not page.is_truncated:
                    return newest[1] if newest else None
                key_marker, upload_id_marker = page.next_key_marker, page.next_upload_id_marker

        return self._call("ListMultipartUploads", key, attempt)

    def _uploaded_parts(self, key: str, upload_id: str) -> dict[int, oss2.models.PartInfo]:
        """Every part already uploaded to `upload_id`, by part number (with its size and CRC64)."""
        parts: dict[int, oss2.models.PartInfo] = {}
        marker = ""
        while True:
            page = self._call(
                "ListParts", key, functools.partial(self._bucket.list_parts, self._root + key, upload_id, marker=marker)
            )
            parts.update((part.part_number, part) for part in page.parts)
            if not page.is_truncated:
                return parts
            marker = page.next_marker
