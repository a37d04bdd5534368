"""The sandbox OSS server where a second client found it unlike OSS: copies, operations it does not
implement, overwrite protection and keys a plain file tree cannot hold (through the unmodified oss2)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest

from migrator.sandbox.oss_layout import MARK, SELF
from migrator.sandbox.oss_server import BucketConfig, OssServer

AK = "LTAI-fidelity-key"
SK = "fidelity-secret-value"
FORBID = {"x-oss-forbid-overwrite": "true"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OssServer]:
    buckets = [BucketConfig("main"), BucketConfig("other")]
    with OssServer(tmp_path_factory.mktemp("oss"), buckets, AK, SK) as srv:
        yield srv


@pytest.fixture(params=["v1", "v4"])
def bucket(server: OssServer, request: pytest.FixtureRequest) -> oss2.Bucket:
    if request.param == "v4":
        return oss2.Bucket(oss2.AuthV4(AK, SK), server.endpoint, "main", region=server.buckets["main"].region_id)
    return oss2.Bucket(oss2.Auth(AK, SK), server.endpoint, "main")


@pytest.fixture
def prefix() -> str:
    return f"f-{uuid.uuid4().hex[:8]}/"


def test_copy_object_copies_the_data(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    data = uuid.uuid4().bytes * 5000
    source = bucket.put_object(prefix + "source", data)
    result = bucket.copy_object("main", prefix + "source", prefix + "copy")
    assert result.status == 200
    assert result.etag == source.etag
    assert bucket.get_object(prefix + "copy").read() == data
    assert bucket.head_object(prefix + "copy").server_crc == source.crc
    other = oss2.Bucket(bucket.auth, server.endpoint, "other", region=getattr(bucket, "region", None))
    other.copy_object("main", prefix + "source", prefix + "across buckets é")
    assert other.get_object(prefix + "across buckets é").read() == data


def test_copy_object_of_a_missing_source_writes_nothing(bucket: oss2.Bucket, prefix: str) -> None:
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.copy_object("main", prefix + "missing", prefix + "copy")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        bucket.copy_object("no-such-bucket", prefix + "missing", prefix + "copy")
    assert not bucket.object_exists(prefix + "copy")


def test_upload_part_copy(bucket: oss2.Bucket, prefix: str) -> None:
    data = bytes(range(256)) * 2000  # 512,000 bytes
    bucket.put_object(prefix + "source", data)
    upload_id = bucket.init_multipart_upload(prefix + "assembled").upload_id
    first = bucket.upload_part_copy("main", prefix + "source", (0, 299_999), prefix + "assembled", upload_id, 1)
    second = bucket.upload_part_copy("main", prefix + "source", (300_000, 511_999), prefix + "assembled", upload_id, 2)
    parts = [oss2.models.PartInfo(1, first.etag), oss2.models.PartInfo(2, second.etag)]
    assert [p.size for p in bucket.list_parts(prefix + "assembled", upload_id).parts] == [300_000, 212_000]
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.upload_part_copy("main", prefix + "missing", (0, 9), prefix + "assembled", upload_id, 3)
    bucket.complete_multipart_upload(prefix + "assembled", upload_id, parts)
    assert bucket.get_object(prefix + "assembled").read() == data


def test_operations_not_implemented_change_nothing(bucket: oss2.Bucket, prefix: str) -> None:
    bucket.put_object(prefix + "kept", b"kept")
    attempts = [
        lambda: bucket.put_object_acl(prefix + "kept", oss2.OBJECT_ACL_PUBLIC_READ),
        lambda: bucket.put_object_tagging(prefix + "kept", oss2.models.Tagging()),
        lambda: bucket.delete_object_tagging(prefix + "kept"),  # was answered as DeleteObject
        lambda: bucket.put_symlink(prefix + "kept", prefix + "link"),
        lambda: bucket.append_object(prefix + "appended", 0, b"x"),
        lambda: bucket.restore_object(prefix + "kept"),
        lambda: bucket.get_bucket_lifecycle(),  # was answered as ListObjects
    ]
    for attempt in attempts:
        with pytest.raises(oss2.exceptions.ServerError) as raised:
            attempt()
        assert (raised.value.status, raised.value.code) == (501, "NotImplemented")
    assert bucket.get_object(prefix + "kept").read() == b"kept"
    assert not bucket.object_exists(prefix + "link")
    assert not bucket.object_exists(prefix + "appended")


def test_forbid_overwrite(bucket: oss2.Bucket, prefix: str) -> None:
    bucket.put_object(prefix + "once", b"first", headers=FORBID)
    for write in (
        lambda: bucket.put_object(prefix + "once", b"second", headers=FORBID),
        lambda: bucket.copy_object("main", prefix + "once", prefix + "once", headers=FORBID),
    ):
        with pytest.raises(oss2.exceptions.ServerError) as raised:
            write()
        assert (raised.value.status, raised.value.code) == (409, "FileAlreadyExists")
    upload_id = bucket.init_multipart_upload(prefix + "once").upload_id
    part = bucket.upload_part(prefix + "once", upload_id, 1, b"third")
    with pytest.raises(oss2.exceptions.ServerError, match="FileAlreadyExists"):
        bucket.complete_multipart_upload(
            prefix + "once", upload_id, [oss2.models.PartInfo(1, part.etag)], headers=FORBID
        )
    assert bucket.get_object(prefix + "once").read() == b"first"
    bucket.put_object(prefix + "once", b"fourth", headers={"x-oss-forbid-overwrite": "false"})
    assert bucket.get_object(prefix + "once").read() == b"fourth"


def test_keys_a_file_tree_cannot_hold(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    keys = [
        "dir/",
        "a//b",
        "x",
        "x/y",
        "y/z",
        "y",  # written after y/z: a directory already stands where it goes
        "x/y/",
        "dot/./dotdot/../end",
        f"{MARK}literal",
        f"q/{SELF}",
        "x!",
    ]
    for index, key in enumerate(keys):
        bucket.put_object(prefix + key, str(index).encode())
    for index, key in enumerate(keys):
        assert bucket.get_object(prefix + key).read() == str(index).encode(), key
        assert bucket.head_object(prefix + key).content_length == len(str(index))
    listed = [o.key[len(prefix) :] for o in oss2.ObjectIteratorV2(bucket, prefix=prefix, max_keys=2)]
    assert listed == sorted(keys, key=lambda k: k.encode())
    top = bucket.list_objects_v2(prefix=prefix, delimiter="/")
    assert [o.key[len(prefix) :] for o in top.object_list] == ["x", "x!", "y", f"{MARK}literal"]
    assert [p[len(prefix) :] for p in top.prefix_list] == ["a/", "dir/", "dot/", "q/", "x/", "y/"]
    below_x = bucket.list_objects(prefix=prefix + "x/", delimiter="/")
    assert [o.key[len(prefix) :] for o in below_x.object_list] == ["x/y"]
    assert [p[len(prefix) :] for p in below_x.prefix_list] == ["x/y/"]
    for key in keys:
        bucket.delete_object(prefix + key)
    assert list(oss2.ObjectIteratorV2(bucket, prefix=prefix)) == []
    assert not (server.root / "main" / prefix).exists()


def test_plain_keys_stay_plain_files(server: OssServer, bucket: oss2.Bucket, prefix: str) -> None:
    """The `fs` repository mode: what Elasticsearch writes to disk and what oss2 writes are the same tree."""
    bucket.put_object(prefix + "indices/abc/0/__x", b"blob")
    assert (server.root / "main" / prefix / "indices" / "abc" / "0" / "__x").read_bytes() == b"blob"
    written = server.root / "main" / prefix / "index-0"
    written.write_bytes(b"by Elasticsearch")
    assert bucket.get_object(prefix + "index-0").read() == b"by Elasticsearch"
    assert not any(MARK in str(path) for path in Path(server.root / "main" / prefix).rglob("*"))


def test_folders_the_server_makes_belong_to_their_parents_owner(server: OssServer, prefix: str) -> None:
    """Run as root, the server must not leave folders the Elasticsearch user (writing an `fs` repository in
    the same bucket) cannot write in."""
    if os.geteuid() != 0:
        pytest.skip("only a server run as root makes folders of another owner")
    top = server.root / "main" / prefix
    top.mkdir()
    os.chown(top, 4321, 4321)
    bucket = oss2.Bucket(oss2.Auth(AK, SK), server.endpoint, "main")
    bucket.put_object(prefix + "repos/one/blob", b"x")
    for folder in (top / "repos", top / "repos" / "one"):
        assert (folder.stat().st_uid, folder.stat().st_gid) == (4321, 4321)
