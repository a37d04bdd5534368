"""The object operations of the sandbox OSS server: Put, Copy, Get, Head (GetObjectMeta), Delete, DeleteMultiple.

Place in the flow: dispatch (routes a request here) -> objects (this module) -> store (the files). Gets
honour ranges (OSS's lenient rule, or `x-oss-range-behavior: standard`) and conditions (If-Match,
If-None-Match, If-(Un)Modified-Since); writes check Content-MD5, answer the quoted uppercase MD5 ETag and
`x-oss-hash-crc64ecma`, and honour `x-oss-forbid-overwrite` (409 FileAlreadyExists).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import hashlib
import os
import re
import shutil
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote, unquote

from migrator.sandbox.oss_server.protocol import (
    CHUNK,
    BucketConfig,
    OssError,
    Request,
    Response,
    Spool,
    http_date,
    invalid_argument,
    iso8601,
    key_parts,
    sub,
    xml_document,
)
from migrator.sandbox.oss_server.store import Digest, ObjectMeta, quoted_etag

if TYPE_CHECKING:
    from migrator.sandbox.oss_server.server import OssServer

_MAX_DELETE_KEYS = 1000


def put_object(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """PutObject: the spooled body becomes the object (Content-MD5 checked; 409 with forbid-overwrite)."""
    key_parts(req.key)
    spool = checked_spool(req)
    digest = Digest(quoted_etag(spool.md5), spool.crc64)
    server.store.place(spool.path, bucket, req, digest)
    return Response(200, write_headers(spool, digest))


def copy_source(server: OssServer, req: Request) -> tuple[BinaryIO, ObjectMeta]:
    """The open file and metadata of the object `x-oss-copy-source: /<bucket>/<url-encoded key>` names;
    OssError NoSuchBucket or NoSuchKey (404) as OSS when it is missing."""
    source = req.headers["x-oss-copy-source"].split("?", 1)[0]
    name, _, raw_key = source.lstrip("/").partition("/")
    key = unquote(raw_key)
    bucket = server.buckets.get(name)
    if bucket is None:
        raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=name)
    if not key:
        raise invalid_argument("x-oss-copy-source must be /<bucket>/<object>.", "x-oss-copy-source", source)
    return server.store.open(server.store.object_path(bucket, key), key)


def copy_object(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """CopyObject: a copy of the object `x-oss-copy-source` names, keeping its ETag and CRC64."""
    key_parts(req.key)
    f, meta = copy_source(server, req)
    tmp = server.store.tmp_path()
    try:
        with f, open(tmp, "wb") as out:
            shutil.copyfileobj(f, out, CHUNK)
        st = server.store.place(tmp, bucket, req, meta.digest)  # a copy keeps the source's ETag and CRC64
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    result = ET.Element("CopyObjectResult")
    sub(result, "ETag", meta.digest.etag)
    sub(result, "LastModified", iso8601(st.st_mtime))
    headers = {
        "Content-Type": "application/xml",
        "ETag": meta.digest.etag,
        "x-oss-hash-crc64ecma": str(meta.digest.crc64),
    }
    return Response(200, headers, xml_document(result))


def get_object(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """GetObject: the object's bytes (206 with a Range), after its conditions; NoSuchKey when absent."""
    f, meta = server.store.open(server.store.object_path(bucket, req.key), req.key)
    try:
        headers = object_headers(bucket, meta)
        check_conditions(req, meta)
        span = parse_range(
            req.headers.get("range", ""), meta.size, req.headers.get("x-oss-range-behavior") == "standard"
        )
    except BaseException:
        f.close()
        raise
    if span is None:
        return Response(200, headers, file=f, length=meta.size)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{meta.size}"
    return Response(206, headers, file=f, offset=start, length=end - start + 1)


def head_object(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """HeadObject and GetObjectMeta: the object's headers (size, ETag, CRC64), no body."""
    meta = server.store.meta(server.store.object_path(bucket, req.key), req.key)
    check_conditions(req, meta)
    return Response(200, object_headers(bucket, meta), length=meta.size)


def delete_object(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """DeleteObject: remove the object (204, also when it did not exist)."""
    server.store.remove(bucket, server.store.object_path(bucket, req.key))
    return Response(204)


def delete_multiple_objects(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """DeleteMultipleObjects: remove up to 1000 keys (Content-MD5 required); Quiet lists none."""
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
    paths = [server.store.object_path(bucket, key) for key in keys]
    for path in paths:
        server.store.remove(bucket, path)
    encoding = req.params.get("encoding-type", "")
    result = ET.Element("DeleteResult")
    if encoding == "url":
        sub(result, "EncodingType", "url")
    if not quiet:
        for key in keys:
            sub(sub(result, "Deleted"), "Key", quote(key, safe="") if encoding == "url" else key)
    return Response(200, {"Content-Type": "application/xml"}, xml_document(result))


def object_headers(bucket: BucketConfig, meta: ObjectMeta) -> dict[str, str]:
    """The headers a Get or Head of an object answers with."""
    return {
        "Content-Type": "application/octet-stream",
        "ETag": meta.digest.etag,
        "Last-Modified": http_date(meta.mtime),
        "Accept-Ranges": "bytes",
        "x-oss-object-type": meta.object_type,
        "x-oss-storage-class": bucket.storage_class,
        "x-oss-hash-crc64ecma": str(meta.digest.crc64),
    }


def check_conditions(req: Request, meta: ObjectMeta) -> None:
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


def parse_range(value: str, size: int, standard: bool) -> tuple[int, int] | None:
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


def checked_spool(req: Request) -> Spool:
    """The spooled body of an object write, after its Content-MD5 (when sent) is checked."""
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


def write_headers(spool: Spool, digest: Digest) -> dict[str, str]:
    """The headers an object write answers: ETag, Content-MD5 and CRC64."""
    return {
        "ETag": digest.etag,
        "Content-MD5": base64.b64encode(spool.md5).decode(),
        "x-oss-hash-crc64ecma": str(digest.crc64),
    }
