"""The sandbox OSS server's dispatch table: which operation a request is, by method, target, selectors, variant.

Unit tests of `dispatch.route` (no server): the cases where a request detail other than the method picks
the operation, and the requests that must stay NotImplemented.
"""

from __future__ import annotations

import pytest

from migrator.sandbox.oss_server.dispatch import ROUTES, UNSUPPORTED, route

COPY = {"x-oss-copy-source": "/b/k"}


@pytest.mark.parametrize(
    ("method", "key", "params", "headers", "operation"),
    [
        ("GET", "", {}, {}, "ListObjects"),
        ("GET", "", {"list-type": "2", "prefix": "a"}, {}, "ListObjectsV2"),
        ("GET", "", {"list-type": "1"}, {}, "ListObjects"),
        ("GET", "", {"list-type": "2"}, COPY, "ListObjectsV2"),
        ("GET", "", {}, COPY, "Unsupported"),
        ("PUT", "k", {}, {}, "PutObject"),
        ("PUT", "k", {}, COPY, "CopyObject"),
        ("PUT", "k", {"list-type": "2"}, COPY, "CopyObject"),
        ("PUT", "k", {"uploadId": "U", "partNumber": "1"}, {}, "UploadPart"),
        ("PUT", "k", {"uploadId": "U", "partNumber": "1"}, COPY, "UploadPartCopy"),
        ("GET", "k", {}, COPY, "Unsupported"),
        ("GET", "k", {"response-content-type": "text/plain"}, {}, "GetObject"),
        ("HEAD", "k", {"objectMeta": ""}, {}, "GetObjectMeta"),
        ("POST", "", {"replication": "", "comp": "add"}, {}, "PutBucketReplication"),
        ("POST", "", {"replication": "", "comp": "add"}, COPY, "PutBucketReplication"),
        ("POST", "", {"replication": "", "comp": "delete"}, {}, "DeleteBucketReplication"),
        ("POST", "", {"replication": "", "comp": "other"}, {}, "Unsupported"),
        ("GET", "k", {"comp": "add"}, {}, "Unsupported"),
        ("PUT", "k", {"acl": ""}, {}, "Unsupported"),
        ("GET", "", {"tagging": ""}, {}, "Unsupported"),
        ("PATCH", "k", {}, {}, "Unsupported"),
    ],
)
def test_a_request_is_routed_to_its_operation(
    method: str, key: str, params: dict[str, str], headers: dict[str, str], operation: str
) -> None:
    assert route(method, key, params, headers).operation == operation


def test_only_object_writes_stream_their_body_and_every_other_route_has_a_handler() -> None:
    routes = [r for variants in ROUTES.values() for r in variants.values()]
    assert {r.operation for r in routes if r.streams_body} == {"PutObject", "UploadPart"}
    assert all(r.handler is not None for r in routes)
    assert UNSUPPORTED.handler is None
