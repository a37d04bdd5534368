"""How the sandbox OSS server keeps objects: one file per object under `<root>/<bucket>`, digests cached.

Place in the flow: the handlers (objects, listing, multipart) -> store (this module) -> oss_layout (which
file holds a key) -> the file system. The bucket directories belong to whoever writes them
(Elasticsearch writes them directly through an `fs` repository), so the server keeps its own state
under `<root>/.oss-server/` (temp files, pending multipart uploads) and computes the MD5 ETag and CRC64
of a file lazily, caching them in memory by (path, size, mtime_ns). A multipart object's `"HEX-N"` ETag
lives in that cache only: after a restart it reads as the plain MD5 of the content.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from migrator.sandbox import oss_layout
from migrator.sandbox.oss_server.protocol import (
    CHUNK,
    BucketConfig,
    OssError,
    Request,
    key_parts,
    new_crc64,
    no_such_key,
)

# Objects at least this big that Elasticsearch wrote straight to disk get the ETag OSS gives objects
# uploaded in parts ("HEX-N", not an MD5 of the content), so listing them reads nothing.
FOREIGN_MULTIPART_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Digest:
    """The ETag and CRC64 (`x-oss-hash-crc64ecma`) of an object's bytes."""

    etag: str  # quoted, uppercase hex; multipart objects "HEX-N"
    crc64: int


@dataclass(frozen=True)
class ObjectMeta:
    """An object's size (bytes), mtime (epoch s) and digest."""

    size: int
    mtime: float
    digest: Digest

    @property
    def object_type(self) -> str:
        return "Multipart" if "-" in self.digest.etag else "Normal"


def _hash_file(f: BinaryIO, with_md5: bool = True) -> tuple[bytes, int]:
    """MD5 digest (empty without `with_md5`) and CRC64 of a whole open file (read from its start)."""
    f.seek(0)
    md5 = hashlib.md5()
    crc = new_crc64()
    while chunk := f.read(CHUNK):
        if with_md5:
            md5.update(chunk)
        crc.update(chunk)
    f.seek(0)
    return md5.digest() if with_md5 else b"", crc.crcValue


def foreign_etag(st: os.stat_result) -> str:
    """The ETag of a large object written straight to disk, in the form OSS gives objects uploaded in parts:
    stable while the file keeps its size and mtime (a replica keeps its source's mtime, so its ETag too)."""
    token = hashlib.md5(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest().upper()
    return f'"{token}-1"'


def quoted_etag(md5: bytes) -> str:
    """The ETag of content with this MD5: quoted uppercase hex."""
    return f'"{md5.hex().upper()}"'


class DigestCache:
    """ETag and CRC64 per file path, valid while the file keeps its size and mtime_ns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, int, Digest]] = {}

    def cached(self, path: str, st: os.stat_result) -> Digest | None:
        with self._lock:
            entry = self._entries.get(path)
        return entry[2] if entry is not None and entry[:2] == (st.st_size, st.st_mtime_ns) else None

    def get(self, path: str, f: BinaryIO, st: os.stat_result, foreign: bool = False) -> Digest:
        """`foreign`: a large object written straight to disk, whose ETag is not its MD5 (see `foreign_etag`)."""
        digest = self.cached(path, st)
        if digest is not None:
            return digest
        md5, crc = _hash_file(f, with_md5=not foreign)
        digest = Digest(foreign_etag(st) if foreign else quoted_etag(md5), crc)
        self.put(path, st, digest)
        return digest

    def put(self, path: str, st: os.stat_result, digest: Digest) -> None:
        with self._lock:
            self._entries[path] = (st.st_size, st.st_mtime_ns, digest)

    def forget(self, path: str) -> None:
        with self._lock:
            self._entries.pop(path, None)


def makedirs(path: str, mode: int) -> None:
    """Create path and its missing parents with exactly `mode` (whatever the umask)."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory)
            os.chmod(directory, mode)


def remove_file(bucket_dir: str, path: str) -> bool:
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


class ObjectStore:
    """The objects of every bucket under `root`, and the server's own files under `state`."""

    def __init__(self, root: Path, state: Path) -> None:
        self.root = root
        self.state = state
        self.digests = DigestCache()
        self.layout_lock = threading.Lock()

    def object_path(self, bucket: BucketConfig, key: str) -> str:
        """The file that holds (or would hold) an existing object (oss_layout); OssError for an invalid key."""
        key_parts(key)
        return oss_layout.object_file(os.path.join(self.root, bucket.name), key)

    def tmp_path(self) -> str:
        """A fresh path in the server's temp folder."""
        return os.path.join(self.state, "tmp", uuid.uuid4().hex)

    def open(self, path: str, key: str) -> tuple[BinaryIO, ObjectMeta]:
        """The open file and metadata of the object at `path`; NoSuchKey when there is none."""
        try:
            f = open(path, "rb")  # noqa: SIM115 - handed to the caller, which closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise no_such_key(key) from None
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            f.close()
            raise no_such_key(key)
        return f, ObjectMeta(st.st_size, st.st_mtime, self.digests.get(path, f, st, self.foreign(path, st)))

    def foreign(self, path: str, st: os.stat_result) -> bool:
        """A large bucket object the server has no digest of (written straight to disk, or before a restart)."""
        return st.st_size >= FOREIGN_MULTIPART_BYTES and not path.startswith(str(self.state))

    def listed(self, path: str, key: str) -> tuple[int, float, str]:
        """(size, mtime, ETag) for a listing: a large foreign object is not read at all."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise no_such_key(key) from None
        digest = self.digests.cached(path, st)
        if digest is not None and stat.S_ISREG(st.st_mode):
            return st.st_size, st.st_mtime, digest.etag
        if stat.S_ISREG(st.st_mode) and self.foreign(path, st):
            return st.st_size, st.st_mtime, foreign_etag(st)
        meta = self.meta(path, key)
        return meta.size, meta.mtime, meta.digest.etag

    def meta(self, path: str, key: str) -> ObjectMeta:
        """The metadata of the object at `path` (hashing it only when no digest is cached); NoSuchKey."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise no_such_key(key) from None
        digest = self.digests.cached(path, st)
        if digest is not None and stat.S_ISREG(st.st_mode):
            return ObjectMeta(st.st_size, st.st_mtime, digest)
        f, meta = self.open(path, key)  # not hashed yet (or not a file: _open says NoSuchKey)
        f.close()
        return meta

    def place(self, src: str, bucket: BucketConfig, req: Request, digest: Digest) -> os.stat_result:
        """Move a finished temp file into place as the object req.key, atomically; with the request header
        `x-oss-forbid-overwrite: true`, OssError 409 FileAlreadyExists when the object exists (OSS's rule)."""
        forbid = req.headers.get("x-oss-forbid-overwrite", "").lower() == "true"
        bucket_dir = os.path.join(self.root, bucket.name)
        key_parts(req.key)
        with self.layout_lock:  # parents made (or an object moved to make room) and the file placed as one step
            path = oss_layout.prepare_write(bucket_dir, req.key, os.path.join(self.state, "tmp"))
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
        self.digests.forget(path)
        self.digests.put(path, st, digest)
        return st

    def install(self, src: str, path: str, digest: Digest) -> None:
        """Move a finished temp file to a path of the server's own state (a multipart part)."""
        os.replace(src, path)
        self.digests.put(path, os.stat(path), digest)

    def remove(self, bucket: BucketConfig, path: str) -> None:
        """Delete the object file at `path` and the folders it leaves empty, forgetting its digest."""
        with self.layout_lock:  # not between another write's making of parents and its placing of the file
            removed = remove_file(os.path.join(self.root, bucket.name), path)
        if removed:
            self.digests.forget(path)
