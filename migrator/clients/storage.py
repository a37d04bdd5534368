"""The one storage layer migrator reads a snapshot repository through: OSS (via oss2) or a local directory.

Place in the flow: steps -> clients -> storage. Steps that inspect a repository (its index-N files,
snapshot and index metadata, shard blobs) ask a `Storage` for objects by key relative to the
repository root; they never see bucket names, base paths or the SDK. `OssStorage` talks to OSS (or
the sandbox's OSS server) with V4 signatures by default, retries transient faults itself (oss2
retries nothing for single calls) and checks the CRC64 of whole-object reads; `LocalStorage` reads an
`fs` repository folder directly. Both list in UTF-8 byte order, so their answers compare equal.

Errors are `StorageError` (with `.transient`) or its subclass `NotFound`; messages name the
operation, the object and what to do, and never contain the secret.
"""

from __future__ import annotations

import functools
import os
import random
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import oss2
import requests
import urllib3

T = TypeVar("T")

PAGE_SIZE = 1000
_MAX_BACKOFF_S = 10.0
_TRANSIENT_STATUSES = frozenset({408, 429})
_ADVICE = {
    "SignatureDoesNotMatch": "check access_key_secret (and, for V4 signatures, the region)",
    "InvalidAccessKeyId": "check access_key_id",
    "InvalidSecurityToken": "the STS security token is wrong or expired: fetch a new one",
    "SecurityTokenExpired": "the STS security token expired: fetch a new one",
    "AccessDenied": "grant this key read and list permissions on the bucket",
    "NoSuchBucket": "check the bucket name and that the endpoint is in the bucket's region",
    "InvalidArgument": "check the endpoint, region and key",
}


@dataclass(frozen=True)
class ObjectInfo:
    """One object of a repository: its key relative to the repository root, and its size in bytes."""

    key: str
    size: int


class StorageError(Exception):
    """A storage operation failed; `transient` says whether trying again later may succeed."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


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


class _Retry(Exception):
    """A transient fault noticed by this layer (short body, CRC mismatch)."""


class OssStorage:
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
        if signature not in ("v4", "v1"):
            raise ValueError(f"signature must be 'v4' or 'v1', not {signature!r}")
        if signature == "v4" and not region:
            raise ValueError(
                "V4 signatures need the bucket's region (for example 'cn-hangzhou'); pass region=... or signature='v1'"
            )
        if retries < 0 or backoff_s < 0 or timeout_s <= 0:
            raise ValueError("retries and backoff_s must be >= 0 and timeout_s > 0")
        region_id = region.removeprefix("oss-") if region else None
        if security_token:
            auth = oss2.StsAuth(access_key_id, access_key_secret, security_token, auth_version=signature)
        elif signature == "v4":
            auth = oss2.AuthV4(access_key_id, access_key_secret)
        else:
            auth = oss2.Auth(access_key_id, access_key_secret)
        self.base_path = base_path.strip("/")
        self._root = f"{self.base_path}/" if self.base_path else ""
        self.bucket_name = bucket
        self.description = f"oss://{bucket}/{self.base_path} ({endpoint})"
        self.request_count = 0
        self.retries = retries
        self.backoff_s = backoff_s
        self._secret = access_key_secret
        self._lock = threading.Lock()
        self._bucket = oss2.Bucket(auth, endpoint, bucket, connect_timeout=timeout_s, region=region_id)

    # the retry loop ----------------------------------------------------------------------------

    def _call(self, operation: str, key: str, attempt: Callable[[], T]) -> T:
        """Run one request, retrying transient faults with exponential backoff (never 403/404)."""
        where = f"{self.description}: {operation} {key!r}"
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
        if isinstance(error, _Retry):
            return StorageError(f"{where}: {error}", transient=True)
        if isinstance(error, oss2.exceptions.ServerError):
            code = error.code or str(error.status)
            text = f"{where}: {error.status} {code}"
            if error.message:
                text += f" ({error.message})"
            if error.request_id:
                text += f" [request id {error.request_id}]"
            if error.status == 404 and code in ("NoSuchKey", "404"):
                return NotFound(self._scrub(text))
            advice = _ADVICE.get(code)
            if advice:
                text += f"; {advice}"
            transient = error.status >= 500 or error.status in _TRANSIENT_STATUSES
            return StorageError(self._scrub(text), transient=transient)
        if isinstance(error, oss2.exceptions.RequestError | oss2.exceptions.InconsistentError):
            return StorageError(self._scrub(f"{where}: {error.body}"), transient=True)
        if isinstance(error, requests.RequestException | urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
            return StorageError(self._scrub(f"{where}: connection failed: {error}"), transient=True)
        if isinstance(error, oss2.exceptions.ClientError):
            return StorageError(self._scrub(f"{where}: {error.body}; check the endpoint and bucket name"))
        return None

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

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
            result = self._bucket.get_object(self._root + key)
            data = result.read()
            if result.content_length is not None and len(data) != result.content_length:
                raise _Retry(f"short body: {len(data)} of {result.content_length} bytes")
            if result.server_crc is not None and result.client_crc != result.server_crc:
                raise _Retry(f"CRC64 mismatch: computed {result.client_crc}, OSS says {result.server_crc}")
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
