"""The bucket operations of the sandbox OSS server: GetBucketInfo, GetBucketLocation, ListObjects v1 and v2.

Place in the flow: dispatch (routes a request here) -> listing (this module) -> oss_layout.walk (keys in
UTF-8 byte order, from the files under `<root>/<bucket>`) and store (sizes and ETags; a large object
Elasticsearch wrote straight to disk is listed without being read). Pages, markers, continuation
tokens, delimiters and `encoding-type=url` behave as OSS documents them.
"""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING
from urllib.parse import quote

from migrator.sandbox import oss_layout
from migrator.sandbox.oss_server.protocol import (
    BucketConfig,
    OssError,
    Request,
    Response,
    invalid_argument,
    iso8601,
    listing_params,
    sub,
    xml_document,
)

if TYPE_CHECKING:
    from migrator.sandbox.oss_server.server import OssServer

_DEFAULT_MAX_KEYS = 100
_MAX_KEYS = 1000
OWNER_ID = "1000000000000000"  # the owner every object and bucket reports


def get_bucket_info(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """GetBucketInfo: the bucket's name, region, endpoints, storage class and owner (XML)."""
    root = ET.Element("BucketInfo")
    node = sub(root, "Bucket")
    sub(node, "Name", bucket.name)
    sub(node, "CreationDate", iso8601(server.created))
    sub(node, "Location", bucket.region)
    sub(node, "ExtranetEndpoint", f"{bucket.region}.aliyuncs.com")
    sub(node, "IntranetEndpoint", f"{bucket.region}-internal.aliyuncs.com")
    sub(node, "StorageClass", bucket.storage_class)
    sub(node, "DataRedundancyType", "LRS")
    owner = sub(node, "Owner")
    sub(owner, "DisplayName", OWNER_ID)
    sub(owner, "ID", OWNER_ID)
    sub(sub(node, "AccessControlList"), "Grant", "private")
    return Response(200, {"Content-Type": "application/xml"}, xml_document(root))


def get_bucket_location(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """GetBucketLocation: the bucket's region, e.g. `oss-cn-hangzhou` (XML)."""
    root = ET.Element("LocationConstraint")
    root.text = bucket.region
    return Response(200, {"Content-Type": "application/xml"}, xml_document(root))


def list_objects(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """ListObjects (v1): a page of keys after `marker`, at most `max-keys` (default 100, up to 1000)."""
    return _list(server, req, bucket, v2=False)


def list_objects_v2(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """ListObjectsV2: a page of keys after `start-after` or `continuation-token`, with KeyCount."""
    return _list(server, req, bucket, v2=True)


def _list(server: OssServer, req: Request, bucket: BucketConfig, v2: bool) -> Response:
    params = req.params
    prefix, delimiter, encoding, max_keys = listing_params(params, "max-keys", _DEFAULT_MAX_KEYS, _MAX_KEYS)
    token = params.get("continuation-token", "")
    if v2 and token:
        try:
            after = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
        except (ValueError, UnicodeError):
            raise invalid_argument("The continuation-token is not valid.", "continuation-token", token) from None
    else:
        after = params.get("start-after", "") if v2 else params.get("marker", "")
    entries, truncated = _list_entries(os.path.join(server.root, bucket.name), prefix, delimiter, after, max_keys)

    def enc(text: str) -> str:
        return quote(text, safe="") if encoding else text

    root = ET.Element("ListBucketResult")
    sub(root, "Name", bucket.name)
    sub(root, "Prefix", enc(prefix))
    if v2:
        if "start-after" in params:
            sub(root, "StartAfter", enc(params["start-after"]))
        if token:
            sub(root, "ContinuationToken", token)
    else:
        sub(root, "Marker", enc(after))
    sub(root, "MaxKeys", max_keys)
    sub(root, "Delimiter", enc(delimiter))
    if encoding:
        sub(root, "EncodingType", encoding)
    sub(root, "IsTruncated", "true" if truncated else "false")
    if truncated:
        last = entries[-1][0]
        if v2:
            sub(root, "NextContinuationToken", base64.urlsafe_b64encode(last.encode("utf-8")).decode())
        else:
            sub(root, "NextMarker", enc(last))
    if v2:
        sub(root, "KeyCount", len(entries))
    with_owner = not v2 or params.get("fetch-owner") == "true"
    for name, is_prefix, path in entries:
        if is_prefix:
            sub(sub(root, "CommonPrefixes"), "Prefix", enc(name))
            continue
        try:
            size, mtime, etag = server.store.listed(path, name)
        except OssError:  # deleted between the walk and now
            continue
        node = sub(root, "Contents")
        sub(node, "Key", enc(name))
        sub(node, "LastModified", iso8601(mtime))
        sub(node, "ETag", etag)
        sub(node, "Type", "Multipart" if "-" in etag else "Normal")
        sub(node, "Size", size)
        sub(node, "StorageClass", bucket.storage_class)
        if with_owner:
            owner = sub(node, "Owner")
            sub(owner, "ID", OWNER_ID)
            sub(owner, "DisplayName", OWNER_ID)
    return Response(200, {"Content-Type": "application/xml"}, xml_document(root))


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
