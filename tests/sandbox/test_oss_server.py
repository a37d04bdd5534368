"""The sandbox OSS server, driven only through the unmodified oss2 client (and urllib for the admin endpoint)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.sandbox.oss_server import FOREIGN_MULTIPART_BYTES, BucketConfig, Faults, OssServer, new_crc64

AK = "LTAI-sandbox-key"
SK = "sandbox-secret-value"
TOKEN = "sts-token-value"
REPO_ROOT = Path(__file__).resolve().parents[2]


def crc64(data: bytes) -> int:
    crc = new_crc64()
    crc.update(data)
    return crc.crcValue


def utf8_sorted(items: set[str]) -> list[str]:
    return sorted(items, key=lambda s: s.encode("utf-8"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OssServer]:
    root = tmp_path_factory.mktemp("oss")
    buckets = [BucketConfig("main"), BucketConfig("archive", region="oss-cn-shanghai", storage_class="IA")]
    with OssServer(root, buckets, AK, SK) as srv:
        yield srv


@pytest.fixture(autouse=True)
def no_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "server" in request.fixturenames:
        request.getfixturevalue("server").set_faults(Faults())


def make_bucket(server: OssServer, version: str, name: str = "main", secret: str = SK, ak: str = AK) -> oss2.Bucket:
    if version == "v4":
        return oss2.Bucket(oss2.AuthV4(ak, secret), server.endpoint, name, region=server.buckets[name].region_id)
    return oss2.Bucket(oss2.Auth(ak, secret), server.endpoint, name)


@pytest.fixture(params=["v1", "v4"])
def version(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def bucket(server: OssServer, version: str) -> oss2.Bucket:
    return make_bucket(server, version)


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}/"


def bucket_dir(server: OssServer, name: str = "main") -> Path:
    return server.root / name


# bucket level ------------------------------------------------------------------------------------


def test_bucket_info_and_location(server: OssServer, version: str) -> None:
    info = make_bucket(server, version).get_bucket_info()
    assert (info.name, info.location, info.storage_class) == ("main", "oss-cn-hangzhou", "Standard")
    assert info.acl.grant == "private" and info.owner.id
    archive = make_bucket(server, version, "archive")
    info = archive.get_bucket_info()
    assert (info.location, info.storage_class) == ("oss-cn-shanghai", "IA")
    assert archive.get_bucket_location().location == "oss-cn-shanghai"


def test_v4_signing_region_must_be_the_buckets(server: OssServer) -> None:
    wrong = oss2.Bucket(oss2.AuthV4(AK, SK), server.endpoint, "archive", region="cn-hangzhou")
    with pytest.raises(oss2.exceptions.InvalidArgument) as err:
        wrong.get_bucket_info()
    assert "cn-shanghai" in err.value.message


def test_missing_bucket(server: OssServer, version: str) -> None:
    missing = (
        make_bucket(server, "v1", "no-such-bucket")
        if version == "v1"
        else oss2.Bucket(oss2.AuthV4(AK, SK), server.endpoint, "no-such-bucket", region="cn-hangzhou")
    )
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        missing.head_object("k")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        missing.object_exists("k")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        missing.get_bucket_info()


# authentication ----------------------------------------------------------------------------------


def test_wrong_secret_unknown_key_and_anonymous(server: OssServer, version: str) -> None:
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        make_bucket(server, version, secret="not-the-secret").get_bucket_info()
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        make_bucket(server, version, secret="not-the-secret").put_object("x", b"data")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        make_bucket(server, version, ak="LTAI-unknown").get_bucket_info()
    assert (err.value.status, err.value.code) == (403, "InvalidAccessKeyId")
    with pytest.raises(oss2.exceptions.AccessDenied):
        oss2.Bucket(oss2.AnonymousAuth(), server.endpoint, "main").get_object("x")


@pytest.fixture(scope="module")
def sts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OssServer]:
    with OssServer(tmp_path_factory.mktemp("sts"), [BucketConfig("sts")], AK, SK, security_token=TOKEN) as srv:
        yield srv


def sts_bucket(server: OssServer, version: str, token: str) -> oss2.Bucket:
    auth = oss2.StsAuth(AK, SK, token, auth_version=version)
    return oss2.Bucket(auth, server.endpoint, "sts", region="cn-hangzhou" if version == "v4" else None)


def test_sts_token(sts_server: OssServer, version: str) -> None:
    good = sts_bucket(sts_server, version, TOKEN)
    good.put_object("k", b"sts")
    assert good.get_object("k").read() == b"sts"
    for bad in (sts_bucket(sts_server, version, "wrong-token"), make_bucket(sts_server, version, "sts")):
        with pytest.raises(oss2.exceptions.ServerError) as err:
            bad.get_object("k")
        assert (err.value.status, err.value.code) == (403, "InvalidSecurityToken")


# objects -----------------------------------------------------------------------------------------


def test_put_get_head_object_meta(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    key = prefix + "dir/sub/ob ject+é%.bin"
    data = os.urandom(5000)
    put = bucket.put_object(key, data)
    assert put.etag == hashlib.md5(data).hexdigest().upper()
    assert put.crc == crc64(data)
    assert (bucket_dir(server) / key).read_bytes() == data
    got = bucket.get_object(key)
    assert got.read() == data
    assert got.server_crc == crc64(data) == got.client_crc
    head = bucket.head_object(key)
    assert (head.content_length, head.etag, head.object_type) == (len(data), put.etag, "Normal")
    assert abs(head.last_modified - time.time()) < 60
    assert head.headers["x-oss-storage-class"] == "Standard"
    assert head.server_crc == crc64(data)
    meta = bucket.get_object_meta(key)
    assert (meta.content_length, meta.etag) == (len(data), put.etag)
    assert bucket.object_exists(key) and not bucket.object_exists(prefix + "missing")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object(prefix + "missing")
    with pytest.raises(oss2.exceptions.NotFound):
        bucket.head_object(prefix + "missing")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object(prefix + "dir")  # a directory is not an object


def test_get_object_to_file_checks_crc(bucket: oss2.Bucket, prefix: str, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    bucket.put_object(prefix + "f", data)
    result = bucket.get_object_to_file(prefix + "f", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == data
    assert result.server_crc == crc64(data)


def test_content_md5(bucket: oss2.Bucket, prefix: str) -> None:
    data = b"checked body"
    good = base64.b64encode(hashlib.md5(data).digest()).decode()
    bucket.put_object(prefix + "md5", data, headers={"Content-MD5": good})
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(oss2.exceptions.InvalidDigest):  # a large body, read whole before the error answer
        bucket.put_object(prefix + "md5", os.urandom(2_000_000), headers={"Content-MD5": bad})
    assert bucket.get_object(prefix + "md5").read() == data  # the pooled connection still works


def test_chunked_upload(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    parts = [os.urandom(70_000) for _ in range(3)]
    result = bucket.put_object(prefix + "chunked", iter(parts))  # an iterator is sent chunked
    assert result.crc == crc64(b"".join(parts))
    assert (bucket_dir(server) / prefix / "chunked").read_bytes() == b"".join(parts)


def test_ranged_get(bucket: oss2.Bucket, prefix: str) -> None:
    data = bytes(range(256)) * 4
    bucket.put_object(prefix + "r", data)
    part = bucket.get_object(prefix + "r", byte_range=(10, 19))
    assert (part.status, part.read(), part.content_range) == (206, data[10:20], "bytes 10-19/1024")
    assert part.server_crc == crc64(data)  # the whole object's CRC
    tail = bucket.get_object(prefix + "r", byte_range=(None, 5))
    assert (tail.status, tail.read()) == (206, data[-5:])
    rest = bucket.get_object(prefix + "r", byte_range=(1000, None))
    assert (rest.status, rest.read()) == (206, data[1000:])
    for invalid in ((2000, 3000), (10, 5000), (None, 5000)):
        whole = bucket.get_object(prefix + "r", byte_range=invalid)
        assert (whole.status, whole.read()) == (200, data)
    clamped = bucket.get_object(prefix + "r", byte_range=(1000, 5000), headers={"x-oss-range-behavior": "standard"})
    assert (clamped.status, clamped.read()) == (206, data[1000:])
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.get_object(prefix + "r", byte_range=(2000, 3000), headers={"x-oss-range-behavior": "standard"})
    assert (err.value.status, err.value.code) == (416, "InvalidRange")


def test_conditional_get(bucket: oss2.Bucket, prefix: str) -> None:
    etag = bucket.put_object(prefix + "c", b"conditional").etag
    assert bucket.get_object(prefix + "c", headers={"If-Match": etag}).read() == b"conditional"
    assert bucket.get_object(prefix + "c", headers={"If-Match": f'"{etag}"'}).read() == b"conditional"
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object(prefix + "c", headers={"If-Match": "0" * 32})
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object(prefix + "c", headers={"If-Unmodified-Since": oss2.utils.http_date(time.time() - 3600)})
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object(prefix + "c", headers={"If-None-Match": etag})
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object(prefix + "c", headers={"If-Modified-Since": oss2.utils.http_date(time.time() + 3600)})
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.head_object(prefix + "c", headers={"If-Match": "0" * 32})


def test_files_written_by_others(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    path = bucket_dir(server) / prefix / "es" / "index-0"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"written by elasticsearch")
    head = bucket.head_object(prefix + "es/index-0")
    assert head.etag == hashlib.md5(b"written by elasticsearch").hexdigest().upper()
    assert head.server_crc == crc64(b"written by elasticsearch")
    path.write_bytes(b"rewritten, longer than before")
    got = bucket.get_object(prefix + "es/index-0")
    assert got.read() == b"rewritten, longer than before"
    assert got.server_crc == crc64(b"rewritten, longer than before")


def test_large_files_written_by_others_are_listed_without_reading_them(
    server: OssServer, bucket: oss2.Bucket, prefix: str
) -> None:
    """A big blob Elasticsearch wrote to disk is listed with a multipart-style ETag (as OSS gives objects
    uploaded in parts) computed from its size and mtime: the listing reads nothing, HEAD agrees with it."""
    data = os.urandom(FOREIGN_MULTIPART_BYTES + 10)
    path = bucket_dir(server) / prefix / "es" / "__blob"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    listed = next(iter(oss2.ObjectIteratorV2(bucket, prefix=prefix + "es/")))
    assert listed.etag.endswith("-1") and listed.type == "Multipart" and listed.size == len(data)
    assert server.store.digests.cached(str(path), path.stat()) is None  # nothing was hashed for the listing
    head = bucket.head_object(prefix + "es/__blob")
    assert head.etag == listed.etag and head.server_crc == crc64(data)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert next(iter(oss2.ObjectIteratorV2(bucket, prefix=prefix + "es/"))).etag != listed.etag


def test_delete_object_and_empty_parents(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    bucket.put_object(prefix + "a/b/c", b"1")
    bucket.put_object(prefix + "a/keep", b"2")
    assert bucket.delete_object(prefix + "a/b/c").status == 204
    assert not (bucket_dir(server) / prefix / "a" / "b").exists()
    assert (bucket_dir(server) / prefix / "a" / "keep").exists()
    assert bucket.delete_object(prefix + "a/b/c").status == 204  # missing: still 204
    bucket.delete_object(prefix + "a/keep")
    assert not (bucket_dir(server) / prefix).exists()
    assert bucket_dir(server).is_dir()
    assert not (bucket_dir(server) / ".oss-server").exists()


def test_invalid_object_names(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    for key in ("x" * 1024, prefix + "y" * 256):  # OSS's limit; this server's disk limit on a segment
        with pytest.raises(oss2.exceptions.InvalidObjectName):
            bucket.put_object(key, b"x")
    for key in ("../escape", "a/../../escape"):  # stored inside the bucket, as OSS stores them
        bucket.put_object(prefix + key, b"x")
        assert bucket.get_object(prefix + key).read() == b"x"
    assert not (server.root / "escape").exists()
    assert not (bucket_dir(server) / "escape").exists()


def test_batch_delete(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    keys = [prefix + name for name in ("one", "two two", "drei+é", "sub/vier%")]
    for key in keys:
        bucket.put_object(key, b"x")
    result = bucket.batch_delete_objects([*keys, prefix + "never-existed"])
    assert sorted(result.deleted_keys) == sorted([*keys, prefix + "never-existed"])
    assert not (bucket_dir(server) / prefix).exists()
    # quiet mode and a wrong Content-MD5, through oss2's own request machinery
    bucket.put_object(prefix + "quiet", b"x")
    body = oss2.xml_utils.to_batch_delete_objects_request([prefix + "quiet"], True)
    headers = {"Content-MD5": oss2.utils.content_md5(body)}
    resp = bucket._do("POST", bucket.bucket_name, "", data=body, params={"delete": ""}, headers=headers)
    assert b"<Deleted>" not in resp.read()
    assert not bucket.object_exists(prefix + "quiet")
    with pytest.raises(oss2.exceptions.InvalidDigest):
        headers = {"Content-MD5": oss2.utils.content_md5(b"other")}
        bucket._do("POST", bucket.bucket_name, "", data=body, params={"delete": ""}, headers=headers)


# multipart ---------------------------------------------------------------------------------------


def test_multipart_upload(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    key = prefix + "multi part"
    chunks = [os.urandom(100 * 1024), os.urandom(100 * 1024), os.urandom(7)]
    upload_id = bucket.init_multipart_upload(key).upload_id
    parts = []
    for number, chunk in enumerate(chunks, 1):
        result = bucket.upload_part(key, upload_id, number, chunk)
        assert result.crc == crc64(chunk)
        parts.append(oss2.models.PartInfo(number, result.etag, size=len(chunk), part_crc=result.crc))
    listed = list(oss2.PartIterator(bucket, key, upload_id, max_parts=2))
    assert [(p.part_number, p.etag, p.size) for p in listed] == [(p.part_number, p.etag, p.size) for p in parts]
    assert not (bucket_dir(server) / key).exists()
    done = bucket.complete_multipart_upload(key, upload_id, parts)  # oss2 checks the combined CRC
    data = b"".join(chunks)
    assert done.crc == crc64(data)
    digests = b"".join(hashlib.md5(c).digest() for c in chunks)
    assert done.etag == f"{hashlib.md5(digests).hexdigest().upper()}-3"
    assert bucket.get_object(key).read() == data
    head = bucket.head_object(key)
    assert (head.etag, head.object_type, head.server_crc) == (done.etag, "Multipart", crc64(data))
    listed_object = next(iter(oss2.ObjectIterator(bucket, prefix=key)))
    assert (listed_object.etag, listed_object.type) == (done.etag, "Multipart")
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(key, upload_id)
    assert not any((server.root / ".oss-server" / "uploads").iterdir())


def test_multipart_errors_and_abort(bucket: oss2.Bucket, prefix: str) -> None:
    key = prefix + "bad"
    upload_id = bucket.init_multipart_upload(key).upload_id
    small = bucket.upload_part(key, upload_id, 1, b"too small")
    last = bucket.upload_part(key, upload_id, 2, b"last")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.complete_multipart_upload(
            key, upload_id, [oss2.models.PartInfo(1, small.etag), oss2.models.PartInfo(2, last.etag)]
        )
    assert err.value.code == "EntityTooSmall"
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(2, "0" * 32)])
    assert err.value.code == "InvalidPart"
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part(prefix + "other-key", upload_id, 1, b"x")
    assert bucket.abort_multipart_upload(key, upload_id).status == 204
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(key, upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.abort_multipart_upload(key, "F" * 32)


def test_resumable_upload_and_download(bucket: oss2.Bucket, prefix: str, tmp_path: Path) -> None:
    data = os.urandom(350 * 1024)
    source = tmp_path / "source"
    source.write_bytes(data)
    key = prefix + "resumable/object"
    oss2.resumable_upload(
        bucket,
        key,
        str(source),
        store=oss2.ResumableStore(root=str(tmp_path)),
        multipart_threshold=150 * 1024,
        part_size=100 * 1024,
        num_threads=2,
    )
    head = bucket.head_object(key)
    assert (head.content_length, head.object_type, head.server_crc) == (len(data), "Multipart", crc64(data))
    target = tmp_path / "target"
    oss2.resumable_download(
        bucket,
        key,
        str(target),
        store=oss2.ResumableDownloadStore(root=str(tmp_path)),
        multiget_threshold=150 * 1024,
        part_size=100 * 1024,
        num_threads=2,
    )
    assert target.read_bytes() == data


def pending(page: oss2.models.ListMultipartUploadsResult) -> list[tuple[str, str]]:
    return [(u.key, u.upload_id) for u in page.upload_list]


def test_list_multipart_uploads(server: OssServer, version: str, bucket: oss2.Bucket, prefix: str) -> None:
    started = int(time.time())
    names = ["é", "a b", "c", "b/x", "a b", "a%20b", "a+b"]  # initiated in this order, "a b" twice
    initiated = [(prefix + name, bucket.init_multipart_upload(prefix + name).upload_id) for name in names]
    archive = make_bucket(server, version, "archive")
    elsewhere = archive.init_multipart_upload(prefix + "a b").upload_id
    # by key in UTF-8 byte order, then by initiation time
    expected = sorted(initiated, key=lambda upload: (upload[0].encode(), initiated.index(upload)))
    assert [key for key, _ in expected] == [prefix + n for n in ["a b", "a b", "a%20b", "a+b", "b/x", "c", "é"]]

    page = bucket.list_multipart_uploads(prefix=prefix)
    assert pending(page) == expected and not page.is_truncated and page.prefix_list == []
    assert (page.next_key_marker, page.next_upload_id_marker) == expected[-1]
    assert all(started <= u.initiation_date <= time.time() for u in page.upload_list)

    seen, key_marker, id_marker = [], "", ""  # one upload a page, through both markers
    while True:
        page = bucket.list_multipart_uploads(
            prefix=prefix, key_marker=key_marker, upload_id_marker=id_marker, max_uploads=1
        )
        assert len(page.upload_list) == 1
        seen += pending(page)
        if not page.is_truncated:
            break
        key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker
    assert seen == expected
    listed = oss2.MultipartUploadIterator(bucket, prefix=prefix, max_uploads=2)
    assert [(u.key, u.upload_id) for u in listed] == expected
    both = oss2.ObjectUploadIterator(bucket, prefix + "a b", max_uploads=1)
    assert [u.upload_id for u in both] == [upload_id for key, upload_id in expected if key == prefix + "a b"]

    assert pending(bucket.list_multipart_uploads(prefix=prefix, key_marker=prefix + "a b")) == expected[2:]
    after_first = bucket.list_multipart_uploads(
        prefix=prefix, key_marker=prefix + "a b", upload_id_marker=expected[0][1]
    )
    assert pending(after_first) == expected[1:]
    assert pending(bucket.list_multipart_uploads(prefix=prefix + "a")) == expected[:4]
    rolled = bucket.list_multipart_uploads(prefix=prefix, delimiter="/")
    assert pending(rolled) == [upload for upload in expected if "/" not in upload[0][len(prefix) :]]
    assert rolled.prefix_list == [prefix + "b/"]
    first = bucket.list_multipart_uploads(prefix=prefix, delimiter="/", key_marker=prefix + "a+b", max_uploads=1)
    assert (first.prefix_list, first.upload_list, first.is_truncated) == ([prefix + "b/"], [], True)
    assert (first.next_key_marker, first.next_upload_id_marker) == (prefix + "b/", "")
    rest = bucket.list_multipart_uploads(prefix=prefix, delimiter="/", key_marker=first.next_key_marker)
    assert pending(rest) == expected[5:] and rest.prefix_list == []
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.list_multipart_uploads(prefix=prefix, max_uploads=1001)

    # a completed and an aborted upload are no longer pending; another bucket's uploads are its own
    key, upload_id = expected[0]
    part = bucket.upload_part(key, upload_id, 1, b"last and only part")
    bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, part.etag)])
    bucket.abort_multipart_upload(*expected[5])
    left = [upload for upload in expected if upload not in (expected[0], expected[5])]
    assert pending(bucket.list_multipart_uploads(prefix=prefix)) == left
    # a marker upload that is gone: the key's uploads initiated after it still follow
    gone = bucket.list_multipart_uploads(prefix=prefix, key_marker=key, upload_id_marker=upload_id)
    assert pending(gone) == left
    assert pending(archive.list_multipart_uploads(prefix=prefix)) == [(prefix + "a b", elsewhere)]
    for key, upload_id in left:
        bucket.abort_multipart_upload(key, upload_id)
    archive.abort_multipart_upload(prefix + "a b", elsewhere)
    assert pending(bucket.list_multipart_uploads(prefix=prefix)) == []
    assert pending(archive.list_multipart_uploads(prefix=prefix)) == []


def test_uploads_of_older_servers_are_listed(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    """An upload.json without its initiation time (written before it was recorded) reads as initiated when
    the file was written; such an upload still takes parts and is aborted."""
    key, upload_id = prefix + "old", "F" + uuid.uuid4().hex[1:].upper()  # its ID sorts after newer ones
    directory = server.root / ".oss-server" / "uploads" / upload_id
    directory.mkdir()
    (directory / "upload.json").write_text(json.dumps({"bucket": "main", "key": key}), encoding="utf-8")
    os.utime(directory / "upload.json", (1_600_000_000, 1_600_000_000))
    newer = bucket.init_multipart_upload(key).upload_id
    bucket.upload_part(key, upload_id, 1, b"part")
    page = bucket.list_multipart_uploads(prefix=prefix)
    assert pending(page) == [(key, upload_id), (key, newer)]  # initiated first
    assert page.upload_list[0].initiation_date == 1_600_000_000
    bucket.abort_multipart_upload(key, upload_id)
    bucket.abort_multipart_upload(key, newer)
    assert pending(bucket.list_multipart_uploads(prefix=prefix)) == []


# listing -----------------------------------------------------------------------------------------

AWKWARD = ["a b", "a+b", "a%20b", "a%b", "é", "z", "日本/語", "dir/x", "dir/y/z", "dir-x", "dir.x", "~"]


def test_list_v1_paging_delimiter_and_encoding(bucket: oss2.Bucket, prefix: str) -> None:
    for name in AWKWARD:
        bucket.put_object(prefix + name, name.encode())
    first = bucket.list_objects(prefix=prefix, delimiter="/", max_keys=3)
    assert first.is_truncated
    assert [o.key for o in first.object_list] == [prefix + "a b", prefix + "a%20b", prefix + "a%b"]
    assert first.next_marker == prefix + "a%b"
    seen, marker = [], ""
    while True:
        page = bucket.list_objects(prefix=prefix, delimiter="/", marker=marker, max_keys=3)
        assert len(page.object_list) + len(page.prefix_list) <= 3
        seen += utf8_sorted({o.key for o in page.object_list} | set(page.prefix_list))  # pages are in order
        if not page.is_truncated:
            break
        marker = page.next_marker
    expected = {prefix + n for n in AWKWARD if "/" not in n} | {prefix + "dir/", prefix + "日本/"}
    assert seen == utf8_sorted(expected)
    sizes = {o.key: o.size for o in oss2.ObjectIterator(bucket, prefix=prefix, max_keys=2)}
    assert sizes == {prefix + n: len(n.encode()) for n in AWKWARD}


def test_list_v2_tokens_start_after_and_raw_keys(bucket: oss2.Bucket, prefix: str) -> None:
    for name in AWKWARD:
        bucket.put_object(prefix + name, b"")
    everything = utf8_sorted({prefix + n for n in AWKWARD})
    page = bucket.list_objects_v2(prefix=prefix, max_keys=4)
    assert page.is_truncated and [o.key for o in page.object_list] == everything[:4]
    # continuation-token wins over start-after (ObjectIteratorV2 sends both)
    second = bucket.list_objects_v2(
        prefix=prefix, max_keys=4, continuation_token=page.next_continuation_token, start_after=everything[8]
    )
    assert [o.key for o in second.object_list] == everything[4:8]
    after = bucket.list_objects_v2(prefix=prefix, start_after=everything[8], fetch_owner=True)
    assert [o.key for o in after.object_list] == everything[9:]
    assert all(o.owner is not None for o in after.object_list)
    raw = bucket.list_objects_v2(prefix=prefix, encoding_type="", delimiter="/")  # keys as plain XML text
    assert utf8_sorted({o.key for o in raw.object_list} | set(raw.prefix_list)) == utf8_sorted(
        {prefix + n for n in AWKWARD if "/" not in n} | {prefix + "dir/", prefix + "日本/"}
    )
    listed = [o.key for o in oss2.ObjectIteratorV2(bucket, prefix=prefix, start_after=everything[1], max_keys=3)]
    assert listed == everything[2:]


def test_list_max_keys_bounds(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    folder = bucket_dir(server) / prefix / "many"
    folder.mkdir(parents=True)
    for i in range(1200):
        (folder / f"{i:05d}").write_bytes(b"x")
    page = bucket.list_objects_v2(prefix=prefix, max_keys=1000)
    assert len(page.object_list) == 1000 and page.is_truncated
    assert sum(1 for _ in oss2.ObjectIterator(bucket, prefix=prefix, max_keys=1000)) == 1200
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.list_objects(prefix=prefix, max_keys=1001)


def test_listing_skips_server_state_and_empty_directories(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    (bucket_dir(server) / prefix / "empty" / "deeper").mkdir(parents=True)
    bucket.put_object(prefix + "full/x", b"x")
    result = bucket.list_objects(prefix=prefix, delimiter="/")
    assert (result.object_list, result.prefix_list) == ([], [prefix + "full/"])
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix=prefix)] == [prefix + "full/x"]
    assert not any(o.key.startswith(".oss-server") for o in oss2.ObjectIterator(bucket))


segment = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"), min_size=1, max_size=6
).filter(lambda s: s not in (".", ".."))
key_sets = st.lists(st.lists(segment, min_size=1, max_size=3).map("/".join), min_size=0, max_size=25, unique=True)


def drop_conflicts(keys: list[str]) -> set[str]:
    """A disk cannot hold both `a` and `a/b`: keep the deeper key."""
    return {k for k in keys if not any(other.startswith(k + "/") for other in keys)}


def write_tree(root: Path, keys: set[str]) -> None:
    for key in keys:
        path = root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.encode())


def expected_listing(keys: set[str], prefix: str, delimiter: str) -> list[str]:
    entries = set()
    for key in keys:
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        entries.add(key if cut < 0 else key[: cut + len(delimiter)])
    return utf8_sorted(entries)


_example = iter(range(10**9))


@pytest.mark.parametrize("version", ["v1", "v4"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=key_sets,
    delimiter=st.sampled_from(["", "/", "a", "é"]),
    cut=st.integers(min_value=0, max_value=40),
    max_keys=st.integers(min_value=1, max_value=4),
)
def test_listing_property(
    server: OssServer, version: str, keys: list[str], delimiter: str, cut: int, max_keys: int
) -> None:
    top = f"prop-{next(_example)}/"
    tree = {top + key for key in drop_conflicts(keys)}
    write_tree(bucket_dir(server), tree)
    bucket = make_bucket(server, version)
    ordered = utf8_sorted(tree)
    prefix = ordered[cut % len(ordered)][: len(top) + cut // 2] if ordered else top
    want = expected_listing(tree, prefix, delimiter)
    v1 = [o.key for o in oss2.ObjectIterator(bucket, prefix=prefix, delimiter=delimiter, max_keys=max_keys)]
    v2 = [o.key for o in oss2.ObjectIteratorV2(bucket, prefix=prefix, delimiter=delimiter, max_keys=max_keys)]
    assert v1 == want
    assert v2 == want


# faults and the admin endpoint -------------------------------------------------------------------


def admin(server: OssServer, method: str, path: str, payload: object = None) -> tuple[int, dict]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(server.endpoint + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_error_rate_and_error_keys(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    bucket.put_object(prefix + "ok", b"x")
    bucket.put_object(prefix + "poison-pill", b"x")
    server.set_faults(Faults(error_keys=["poison"]))
    assert bucket.get_object(prefix + "ok").read() == b"x"
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.get_object(prefix + "poison-pill")
    assert (err.value.status, err.value.code) == (500, "InternalError")
    server.set_faults(Faults(error_rate=1.0))
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.get_object(prefix + "ok")
    assert (err.value.status, err.value.code) == (503, "ServiceUnavailable")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.head_object(prefix + "ok")
    assert err.value.code == "ServiceUnavailable"  # decoded from x-oss-err
    server.set_faults(Faults(error_rate=0.5, seed=7))
    outcomes = []
    for _ in range(40):
        try:
            bucket.head_object(prefix + "ok")
            outcomes.append(True)
        except oss2.exceptions.ServerError:
            outcomes.append(False)
    assert 5 < outcomes.count(False) < 35


def test_truncated_bodies_are_detected(server: OssServer, bucket: oss2.Bucket, prefix: str, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    bucket.put_object(prefix + "t", data)
    server.set_faults(Faults(truncate_rate=1.0))
    with pytest.raises((requests.exceptions.RequestException, oss2.exceptions.RequestError)):
        bucket.get_object(prefix + "t").read()
    with pytest.raises((requests.exceptions.RequestException, oss2.exceptions.RequestError)):
        bucket.get_object_to_file(prefix + "t", str(tmp_path / "t"))
    server.set_faults(Faults())
    assert bucket.get_object(prefix + "t").read() == data


def test_latency(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    bucket.put_object(prefix + "slow", b"x")
    server.set_faults(Faults(latency_ms=300))
    started = time.monotonic()
    bucket.head_object(prefix + "slow")
    assert time.monotonic() - started >= 0.3


def test_admin_endpoint(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    bucket.put_object(prefix + "a", b"x")
    status, body = admin(server, "PUT", "/-/faults", {"error_rate": 1.0, "error_keys": ["k"], "seed": 3})
    assert status == 200 and body["error_rate"] == 1.0 and body["error_keys"] == ["k"]
    assert admin(server, "GET", "/-/faults") == (200, body)  # faults never touch the admin endpoint
    assert server.faults == Faults(error_rate=1.0, error_keys=["k"], seed=3)
    with pytest.raises(oss2.exceptions.ServerError):
        bucket.get_object(prefix + "a")
    assert admin(server, "PUT", "/-/faults", {"error_rate": 2})[0] == 400
    assert admin(server, "PUT", "/-/faults", {"bogus": 1})[0] == 400
    assert admin(server, "PUT", "/-/faults", {})[0] == 200
    assert bucket.get_object(prefix + "a").read() == b"x"
    assert admin(server, "GET", "/-/nothing")[0] == 404


def test_request_counters(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    before, ops = server.request_count, server.requests_by_op.copy()
    bucket.put_object(prefix + "n", b"x")
    bucket.get_object(prefix + "n").read()
    bucket.get_object_meta(prefix + "n")
    admin(server, "GET", "/-/faults")
    assert server.request_count == before + 3
    assert server.requests_by_op - ops == {"PutObject": 1, "GetObject": 1, "GetObjectMeta": 1}
    status, stats = admin(server, "GET", "/-/stats")
    assert status == 200 and stats["request_count"] == server.request_count


# the process entry point -------------------------------------------------------------------------


def test_process_entry_point(tmp_path: Path) -> None:
    config = {
        "root": str(tmp_path / "root"),
        "host": "127.0.0.1",
        "port": 0,
        "buckets": [{"name": "proc", "region": "oss-cn-beijing", "storage_class": "Standard"}],
        "access_key_id": AK,
        "access_key_secret": SK,
        "faults": {"latency_ms": 1},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "migrator.sandbox.oss_server", "--config", str(tmp_path / "config.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        endpoint = json.loads(process.stdout.readline())["endpoint"]
        remote = oss2.Bucket(oss2.AuthV4(AK, SK), endpoint, "proc", region="cn-beijing")
        remote.put_object("hello", b"world")
        assert (tmp_path / "root" / "proc" / "hello").read_bytes() == b"world"
        assert remote.get_bucket_info().location == "oss-cn-beijing"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert SK not in process.stderr.read()


def test_stop_closes_idle_connections(tmp_path: Path) -> None:
    with OssServer(tmp_path, [BucketConfig("short")], AK, SK) as short:
        remote = make_bucket(short, "v1", "short")
        remote.put_object("k", b"v")  # leaves a pooled keep-alive connection open
    started = time.monotonic()
    with pytest.raises(oss2.exceptions.RequestError):
        remote.get_object("k")
    assert time.monotonic() - started < 5


def test_removing_a_file_says_whether_it_was_there(tmp_path: Path) -> None:
    """`_remove_file` answers True when it deleted the file (the server then forgets the file's digest and
    tells replication of the deletion); it once answered None, so neither ever happened."""
    from migrator.sandbox.oss_server.store import remove_file as _remove_file

    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "key").write_bytes(b"x")
    assert _remove_file(str(tmp_path), str(nested / "key")) is True
    assert not (tmp_path / "a").exists()  # the parents it left empty went with it
    assert _remove_file(str(tmp_path), str(nested / "key")) is False
