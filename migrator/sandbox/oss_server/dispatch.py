"""Which handler answers a request: the sandbox OSS server's dispatch table.

Place in the flow: httpd (parses the request line and headers) -> dispatch (this module: method, bucket or
object, selecting query parameters and one variant -> a Route) -> server.handle (authenticates, then
calls the Route's handler in objects, listing, multipart or replication_api). Names are those of the
OSS API reference. A request no row matches is "Unsupported": it answers 501 NotImplemented and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from migrator.sandbox.oss_server import listing, multipart, objects, replication_api
from migrator.sandbox.oss_server.protocol import SELECTORS, Route

UNSUPPORTED = Route("Unsupported", None)

# (method, on an object?, the selectors sent) -> {variant: route}. The variant is the one request
# detail beyond those that picks among operations: "list-type=2", "comp=<value>", "copy" (an
# `x-oss-copy-source` header) or "" (none).
ROUTES: dict[tuple[str, bool, frozenset[str]], dict[str, Route]] = {
    ("GET", False, frozenset()): {
        "": Route("ListObjects", listing.list_objects),
        "list-type=2": Route("ListObjectsV2", listing.list_objects_v2),
    },
    ("GET", False, frozenset({"bucketInfo"})): {"": Route("GetBucketInfo", listing.get_bucket_info)},
    ("GET", False, frozenset({"location"})): {"": Route("GetBucketLocation", listing.get_bucket_location)},
    ("GET", False, frozenset({"uploads"})): {"": Route("ListMultipartUploads", multipart.list_multipart_uploads)},
    ("GET", False, frozenset({"replication"})): {
        "": Route("GetBucketReplication", replication_api.get_bucket_replication)
    },
    ("GET", False, frozenset({"replicationProgress"})): {
        "": Route("GetBucketReplicationProgress", replication_api.get_bucket_replication_progress)
    },
    ("GET", False, frozenset({"replicationLocation"})): {
        "": Route("GetBucketReplicationLocation", replication_api.get_bucket_replication_location)
    },
    ("POST", False, frozenset({"replication", "comp"})): {
        "comp=add": Route("PutBucketReplication", replication_api.put_bucket_replication),
        "comp=delete": Route("DeleteBucketReplication", replication_api.delete_bucket_replication),
    },
    ("POST", False, frozenset({"delete"})): {"": Route("DeleteMultipleObjects", objects.delete_multiple_objects)},
    ("GET", True, frozenset()): {"": Route("GetObject", objects.get_object)},
    ("GET", True, frozenset({"uploadId"})): {"": Route("ListParts", multipart.list_parts)},
    ("HEAD", True, frozenset()): {"": Route("HeadObject", objects.head_object)},
    ("HEAD", True, frozenset({"objectMeta"})): {"": Route("GetObjectMeta", objects.head_object)},
    ("PUT", True, frozenset()): {
        "": Route("PutObject", objects.put_object, streams_body=True),
        "copy": Route("CopyObject", objects.copy_object),
    },
    ("PUT", True, frozenset({"uploadId", "partNumber"})): {
        "": Route("UploadPart", multipart.upload_part, streams_body=True),
        "copy": Route("UploadPartCopy", multipart.upload_part_copy),
    },
    ("POST", True, frozenset({"uploads"})): {"": Route("InitiateMultipartUpload", multipart.initiate_multipart_upload)},
    ("POST", True, frozenset({"uploadId"})): {
        "": Route("CompleteMultipartUpload", multipart.complete_multipart_upload)
    },
    ("DELETE", True, frozenset()): {"": Route("DeleteObject", objects.delete_object)},
    ("DELETE", True, frozenset({"uploadId"})): {"": Route("AbortMultipartUpload", multipart.abort_multipart_upload)},
}


def _variants(params: Mapping[str, str], headers: Mapping[str, str]) -> list[str]:
    """The variants a request could mean, the most specific first (a `comp` or `list-type=2` decides before
    a copy header; an operation without that variant falls back to the next)."""
    found = []
    if "comp" in params:
        found.append(f"comp={params['comp']}")
    if params.get("list-type") == "2":
        found.append("list-type=2")
    found.append("copy" if "x-oss-copy-source" in headers else "")
    return found


def route(method: str, key: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Route:
    """The Route of a request: from its method, whether it names an object (`key`), the selecting query
    parameters and the variant; UNSUPPORTED when no row of ROUTES matches. `headers` have lower-case names."""
    variants = ROUTES.get((method, bool(key), frozenset(params.keys() & SELECTORS)))
    if variants is None:
        return UNSUPPORTED
    return next((variants[name] for name in _variants(params, headers) if name in variants), UNSUPPORTED)
