"""Multipart uploads in the sandbox OSS server: Initiate, UploadPart(Copy), ListParts, ListUploads, Complete, Abort.

Place in the flow: dispatch (routes a request here) -> multipart (this module) -> store. Each pending
upload is a folder `<root>/.oss-server/uploads/<UPLOAD_ID>/` with `upload.json` (its bucket, key and
initiation time) and one file per part; Complete checks the parts' order, ETags and minimum size as OSS
does, concatenates them into the object and answers the `"HEX-N"` ETag OSS gives objects uploaded in parts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import uuid
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING
from urllib.parse import quote

from migrator.sandbox.oss_server.objects import checked_spool, copy_source, parse_range, write_headers
from migrator.sandbox.oss_server.protocol import (
    CHUNK,
    BucketConfig,
    OssError,
    Request,
    Response,
    invalid_argument,
    iso8601,
    key_parts,
    listing_params,
    new_crc64,
    sub,
    xml_document,
)
from migrator.sandbox.oss_server.store import Digest, quoted_etag

if TYPE_CHECKING:
    from migrator.sandbox.oss_server.server import OssServer

_MIN_PART_SIZE = 100 * 1024
_MAX_PART_NUMBER = 10000
_MAX_UPLOADS = 1000
_UPLOAD_ID = re.compile(r"[0-9A-F]{32}")


def initiate_multipart_upload(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """InitiateMultipartUpload: a new upload ID (sorting by initiation time) for `req.key`."""
    key_parts(req.key)
    # the ID starts with the time in ns: a key's upload IDs sort as the uploads were initiated, so OSS's
    # rule "upload IDs greater than upload-id-marker" and the listing order agree
    now_ns = time.time_ns()
    upload_id = f"{now_ns:016X}{uuid.uuid4().hex[:16].upper()}"
    directory = os.path.join(server.store.state, "uploads", upload_id)
    os.makedirs(directory)
    with open(os.path.join(directory, "upload.json"), "w", encoding="utf-8") as f:
        json.dump({"bucket": bucket.name, "key": req.key, "initiated": now_ns / 1e9}, f)
    root = ET.Element("InitiateMultipartUploadResult")
    sub(root, "Bucket", bucket.name)
    sub(root, "Key", req.key)
    sub(root, "UploadId", upload_id)
    return Response(200, {"Content-Type": "application/xml"}, xml_document(root))


def upload_part(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """UploadPart: store part `partNumber` (1-10000) of an upload; answers its MD5 ETag and CRC64."""
    directory = _upload_dir(server, req, bucket)
    number = _part_number(req)
    spool = checked_spool(req)
    digest = Digest(quoted_etag(spool.md5), spool.crc64)
    server.store.install(spool.path, os.path.join(directory, str(number)), digest)
    return Response(200, write_headers(spool, digest))


def upload_part_copy(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """UploadPartCopy: a part from (a byte range of) the object `x-oss-copy-source` names."""
    directory = _upload_dir(server, req, bucket)
    number = _part_number(req)
    f, meta = copy_source(server, req)
    with f:
        span = (0, meta.size - 1)
        wanted = req.headers.get("x-oss-copy-source-range")
        if wanted is not None:
            parsed = parse_range(wanted, meta.size, standard=True)
            if parsed is None:
                raise invalid_argument(
                    "x-oss-copy-source-range must be bytes=<first>-<last> within the source object.",
                    "x-oss-copy-source-range",
                    wanted,
                )
            span = parsed
        f.seek(span[0])
        remaining = span[1] - span[0] + 1
        md5, crc, tmp = hashlib.md5(), new_crc64(), server.store.tmp_path()
        with open(tmp, "wb") as out:
            while remaining > 0 and (chunk := f.read(min(remaining, CHUNK))):
                out.write(chunk)
                md5.update(chunk)
                crc.update(chunk)
                remaining -= len(chunk)
    digest = Digest(quoted_etag(md5.digest()), crc.crcValue)
    path = os.path.join(directory, str(number))
    server.store.install(tmp, path, digest)
    result = ET.Element("CopyPartResult")
    sub(result, "LastModified", iso8601(os.stat(path).st_mtime))
    sub(result, "ETag", digest.etag)
    headers = {"Content-Type": "application/xml", "ETag": digest.etag, "x-oss-hash-crc64ecma": str(digest.crc64)}
    return Response(200, headers, xml_document(result))


def list_parts(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """ListParts: the upload's parts after `part-number-marker`, at most `max-parts` (1-1000)."""
    directory = _upload_dir(server, req, bucket)
    marker = req.params.get("part-number-marker") or "0"
    raw_max = req.params.get("max-parts") or "1000"
    if not marker.isdigit() or not raw_max.isdigit() or not 0 < int(raw_max) <= 1000:
        raise invalid_argument("part-number-marker and max-parts (1-1000) must be numbers.", "max-parts", raw_max)
    parts = [(n, path) for n, path in _parts(directory) if n > int(marker)]
    page, truncated = parts[: int(raw_max)], len(parts) > int(raw_max)
    root = ET.Element("ListPartsResult")
    sub(root, "Bucket", bucket.name)
    sub(root, "Key", req.key)
    sub(root, "UploadId", req.params["uploadId"])
    sub(root, "StorageClass", bucket.storage_class)
    sub(root, "PartNumberMarker", int(marker))
    sub(root, "NextPartNumberMarker", page[-1][0] if page else int(marker))
    sub(root, "MaxParts", int(raw_max))
    sub(root, "IsTruncated", "true" if truncated else "false")
    for number, path in page:
        meta = server.store.meta(path, req.key)
        node = sub(root, "Part")
        sub(node, "PartNumber", number)
        sub(node, "LastModified", iso8601(meta.mtime))
        sub(node, "ETag", meta.digest.etag)
        sub(node, "HashCrc64ecma", meta.digest.crc64)
        sub(node, "Size", meta.size)
    return Response(200, {"Content-Type": "application/xml"}, xml_document(root))


def list_multipart_uploads(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """ListMultipartUploads: the bucket's pending uploads after the key and upload-ID markers."""
    params = req.params
    prefix, delimiter, encoding, max_uploads = listing_params(params, "max-uploads", _MAX_UPLOADS, _MAX_UPLOADS)
    key_marker = params.get("key-marker", "")
    id_marker = params.get("upload-id-marker", "")
    uploads = _pending_uploads(server, bucket, prefix)
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
    sub(root, "Bucket", bucket.name)
    if encoding:
        sub(root, "EncodingType", encoding)
    sub(root, "KeyMarker", enc(key_marker))
    sub(root, "UploadIdMarker", id_marker)
    sub(root, "NextKeyMarker", enc(entries[-1][0]) if entries else "")
    sub(root, "NextUploadIdMarker", (entries[-1][2] or "") if entries else "")
    sub(root, "Delimiter", enc(delimiter))
    sub(root, "Prefix", enc(prefix))
    sub(root, "MaxUploads", max_uploads)
    sub(root, "IsTruncated", "true" if truncated else "false")
    for name, initiated, upload in entries:
        if upload is not None:
            node = sub(root, "Upload")
            sub(node, "Key", enc(name))
            sub(node, "UploadId", upload)
            sub(node, "StorageClass", bucket.storage_class)
            sub(node, "Initiated", iso8601(initiated))
    for name, _, upload in entries:
        if upload is None:
            sub(sub(root, "CommonPrefixes"), "Prefix", enc(name))
    return Response(200, {"Content-Type": "application/xml"}, xml_document(root))


def abort_multipart_upload(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """AbortMultipartUpload: forget the upload and its parts (204)."""
    shutil.rmtree(_upload_dir(server, req, bucket), ignore_errors=True)
    return Response(204)


def complete_multipart_upload(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """CompleteMultipartUpload: the listed parts, in order, become the object (ETag `"HEX-N"`)."""
    directory = _upload_dir(server, req, bucket)
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
    uploaded = dict(_parts(directory))
    tmp = server.store.tmp_path()
    md5s = hashlib.md5()
    crc = new_crc64()
    with contextlib.ExitStack() as stack:
        parts = []
        for index, (number, etag) in enumerate(wanted):
            if number not in uploaded:
                raise OssError(400, "InvalidPart", f"Part {number} was not uploaded.", PartNumber=str(number))
            f, meta = server.store.open(uploaded[number], req.key)
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
                while chunk := f.read(CHUNK):
                    out.write(chunk)
                    crc.update(chunk)
    digest = Digest(f'"{md5s.hexdigest().upper()}-{len(wanted)}"', crc.crcValue)
    try:
        server.store.place(tmp, bucket, req, digest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    shutil.rmtree(directory, ignore_errors=True)
    result = ET.Element("CompleteMultipartUploadResult")
    encode = req.params.get("encoding-type") == "url"
    if encode:
        sub(result, "EncodingType", "url")
    sub(result, "Location", f"{server.endpoint}/{bucket.name}/{quote(req.key, safe='/')}")
    sub(result, "Bucket", bucket.name)
    sub(result, "Key", quote(req.key, safe="") if encode else req.key)
    sub(result, "ETag", digest.etag)
    headers = {"Content-Type": "application/xml", "ETag": digest.etag, "x-oss-hash-crc64ecma": str(digest.crc64)}
    return Response(200, headers, xml_document(result))


def _upload_dir(server: OssServer, req: Request, bucket: BucketConfig) -> str:
    upload_id = req.params.get("uploadId", "")
    directory = os.path.join(server.store.state, "uploads", upload_id)
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


def _parts(directory: str) -> list[tuple[int, str]]:
    """(part number, file) of every part uploaded so far, by number."""
    return sorted((int(name), os.path.join(directory, name)) for name in os.listdir(directory) if name.isdigit())


def _pending_uploads(server: OssServer, bucket: BucketConfig, prefix: str) -> list[tuple[str, float, str]]:
    """(key, initiated epoch s, upload ID) of every pending upload of the bucket whose key starts with
    prefix, in listing order: key (code point order is UTF-8 byte order), initiation time, upload ID."""
    uploads = []
    try:
        with os.scandir(os.path.join(server.store.state, "uploads")) as it:
            names = [entry.name for entry in it if _UPLOAD_ID.fullmatch(entry.name)]
    except FileNotFoundError:
        return []
    for upload_id in names:
        record, initiated = _read_upload(os.path.join(server.store.state, "uploads", upload_id))
        if record is None or record.get("bucket") != bucket.name:
            continue  # gone (completed, aborted) or still being initiated; or another bucket's
        key = record.get("key")
        if isinstance(key, str) and key.startswith(prefix):
            uploads.append((key, initiated, upload_id))
    uploads.sort()
    return uploads


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


def _part_number(req: Request) -> int:
    number = req.params.get("partNumber", "")
    if not number.isdigit() or not 1 <= int(number) <= _MAX_PART_NUMBER:
        raise invalid_argument(f"partNumber must be between 1 and {_MAX_PART_NUMBER}.", "partNumber", number)
    return int(number)
