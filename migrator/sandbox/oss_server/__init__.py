"""An OSS-compatible HTTP server that serves local directories as buckets (the sandbox's stand-in for OSS).

Place in the flow: the local test bed starts it next to the Elasticsearch nodes. Those nodes write
snapshots straight into `<root>/<bucket>/<base_path>` through an `fs` repository (or through the test
bed's `oss` repository plugin and this server); the server exposes the same directories over the OSS
REST API, so that migrator's storage layer and the unmodified `oss2` client read (and write) them as
they would a real bucket.

What it speaks (see shared/notes/oss.md): path-style URLs `/<bucket>/<key>`, V1 and V4 signatures (plus
an optional STS token), GetBucketInfo/GetBucketLocation, Get/Head/GetObjectMeta with ranges and
conditions, ListObjects v1 and v2, PutObject, CopyObject, multipart upload (UploadPartCopy, ListParts
and ListMultipartUploads too), DeleteObject and DeleteMultipleObjects, `x-oss-forbid-overwrite` (409
FileAlreadyExists), CRC64 (`x-oss-hash-crc64ecma`) and quoted uppercase MD5 ETags, OSS error XML, and
cross-region replication between its buckets. Any other operation (a selecting query parameter such as
`?acl`, `?tagging` or `?append` it has no handler for) answers 501 NotImplemented and changes nothing.
Keys map to files as oss_layout.py says.

The package, in the order a request goes through it:

- httpd: connections, bodies, answers, the `/-/faults` and `/-/stats` admin endpoints;
- dispatch: the table (method, bucket or object, selecting query parameters, variant) -> Route;
- server: OssServer (lifecycle, faults, counters) and `handle`: the bucket, then auth, then the handler;
- auth: V1/V4 signatures, STS token, clock skew;
- objects, listing, multipart, replication_api: the handlers, by family of operations;
- store: objects as files and their cached digests; replication: the rules and the background copier;
- protocol: the vocabulary they share (BucketConfig, Faults, OssError, Request, Route, Response, XML);
- cli: `python -m migrator.sandbox.oss_server --config FILE`.
"""

from migrator.sandbox.oss_server.cli import main
from migrator.sandbox.oss_server.protocol import CRC64_POLY, STATE_DIR, BucketConfig, Faults, OssError, new_crc64
from migrator.sandbox.oss_server.server import OssServer
from migrator.sandbox.oss_server.store import FOREIGN_MULTIPART_BYTES

__all__ = [
    "CRC64_POLY",
    "FOREIGN_MULTIPART_BYTES",
    "STATE_DIR",
    "BucketConfig",
    "Faults",
    "OssError",
    "OssServer",
    "main",
    "new_crc64",
]
