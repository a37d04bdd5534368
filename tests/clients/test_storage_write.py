"""Writes through the storage layer: write, write_stream (multipart, resumed), crc64 and delete, on both backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.clients.storage import (
    MIN_PART_SIZE,
    LocalStorage,
    NotFound,
    OssStorage,
    Storage,
    StorageError,
    crc64_of,
    part_size_for,
)
from migrator.sandbox.oss_server import STATE_DIR, BucketConfig, Faults, OssServer, new_crc64

AK = "LTAI-write-key"
SK = "write-secret-do-not-print"
BUCKET = "writes"
BASE = "repo"
PART = MIN_PART_SIZE
BIG = os.urandom(3 * PART + 1234)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OssServer]:
    with OssServer(tmp_path_factory.mktemp("writes"), [BucketConfig(BUCKET)], AK, SK) as srv:
        yield srv


@pytest.fixture(autouse=True)
def no_faults(server: OssServer) -> Iterator[None]:
    yield
    server.set_faults(Faults())


def oss(server: OssServer, **kwargs: object) -> OssStorage:
    options: dict = {"region": "cn-hangzhou", "backoff_s": 0.001, **kwargs}
    return OssStorage(server.endpoint, BUCKET, BASE, AK, options.pop("secret", SK), **options)


@pytest.fixture(params=["local", "oss"])
def storage(request: pytest.FixtureRequest, server: OssServer, tmp_path: Path) -> Storage:
    return LocalStorage(tmp_path / "repo") if request.param == "local" else oss(server)


class Source:
    """A ranged reader over bytes that records every read (to prove memory stays bounded by a part)."""

    def __init__(self, data: bytes, fail_at: int | None = None) -> None:
        self.data = data
        self.reads: list[tuple[int, int]] = []
        self.fail_at = fail_at

    def __call__(self, start: int, length: int) -> bytes:
        if self.fail_at is not None and start >= self.fail_at:
            raise KeyboardInterrupt("interrupted while reading the source")
        self.reads.append((start, length))
        return self.data[start : start + length]


def test_write_read_crc64_delete(storage: Storage) -> None:
    for key, data in (("index-0", b'{"snapshots":[]}'), ("indices/a b/0/__ü", os.urandom(5000)), ("empty", b"")):
        assert storage.write(key, data) == crc64_of(data)
        assert storage.read(key) == data
        assert storage.size(key) == len(data)
        assert storage.crc64(key) == crc64_of(data)
    storage.write("index-0", b"replaced")
    assert storage.read("index-0") == b"replaced"
    storage.delete("index-0")
    storage.delete("index-0")  # deleting what is gone is not an error
    with pytest.raises(NotFound):
        storage.crc64("index-0")
    assert [info.key for info in storage.list()] == ["empty", "indices/a b/0/__ü"]


def test_crc64_is_what_oss_reports(server: OssServer, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    local = LocalStorage(tmp_path)
    local.write("x", data)
    remote = oss(server)
    remote.write("x", data)
    digest = new_crc64()
    digest.update(data)
    assert local.crc64("x") == remote.crc64("x") == crc64_of(data) == digest.crcValue


def test_write_stream_reads_one_part_at_a_time(storage: Storage) -> None:
    source = Source(BIG)
    assert storage.write_stream("indices/i/0/__big", len(BIG), source, PART) == crc64_of(BIG)
    assert storage.read("indices/i/0/__big") == BIG and storage.crc64("indices/i/0/__big") == crc64_of(BIG)
    assert source.reads == [(0, PART), (PART, PART), (2 * PART, PART), (3 * PART, 1234)]
    small = Source(b"tiny")
    assert storage.write_stream("tiny", 4, small, PART) == crc64_of(b"tiny") and small.reads == [(0, 4)]
    assert storage.write_stream("none", 0, Source(b""), PART) == 0 and storage.read("none") == b""


def test_oss_write_stream_is_a_multipart_upload(server: OssServer) -> None:
    before = dict(server.requests_by_op)
    oss(server).write_stream("multi", len(BIG), Source(BIG), PART)
    delta = {op: n - before.get(op, 0) for op, n in server.requests_by_op.items() if n != before.get(op, 0)}
    # first a look for a pending upload of the key to resume (none here)
    assert delta == {
        "ListMultipartUploads": 1,
        "InitiateMultipartUpload": 1,
        "UploadPart": 4,
        "CompleteMultipartUpload": 1,
    }


def test_part_size_respects_oss_limits() -> None:
    assert part_size_for(10, 1) == MIN_PART_SIZE
    assert part_size_for(10**12, 8 << 20) == 100_000_000
    assert part_size_for(10 << 20, 8 << 20) == 8 << 20


def test_interrupted_multipart_upload_is_resumed(server: OssServer) -> None:
    storage = oss(server)
    with pytest.raises(KeyboardInterrupt):
        storage.write_stream("resumed", len(BIG), Source(BIG, fail_at=2 * PART), PART)
    uploads = [p.name for p in (server.root / STATE_DIR / "uploads").iterdir() if (p / "2").exists()]
    assert len(uploads) == 1
    with pytest.raises(NotFound):
        storage.size("resumed")
    assert storage._pending_upload("resumed") == uploads[0]  # found through ListMultipartUploads
    before = server.requests_by_op["UploadPart"]
    source = Source(BIG)
    assert storage.write_stream("resumed", len(BIG), source, PART) == crc64_of(BIG)
    assert server.requests_by_op["UploadPart"] - before == 2  # parts 1 and 2 were already there
    assert storage._pending_upload("resumed") is None  # completed
    assert len(source.reads) == 4  # every part is read again: its MD5 decides whether it is sent
    assert storage.read("resumed") == BIG


def test_resumed_upload_resends_parts_that_differ(server: OssServer) -> None:
    storage = oss(server)
    other = os.urandom(len(BIG))
    with pytest.raises(KeyboardInterrupt):
        storage.write_stream("changed", len(other), Source(other, fail_at=2 * PART), PART)
    upload = next(
        p.name for p in (server.root / STATE_DIR / "uploads").iterdir() if "changed" in (p / "upload.json").read_text()
    )
    assert storage._pending_upload("changed") == upload
    before = server.requests_by_op["UploadPart"]
    storage.write_stream("changed", len(BIG), Source(BIG), PART)
    assert server.requests_by_op["UploadPart"] - before == 4
    assert storage.read("changed") == BIG


def test_writes_survive_injected_faults(server: OssServer) -> None:
    server.set_faults(Faults(error_rate=0.3, latency_ms=1, seed=7))
    storage = oss(server, retries=12)
    for number in range(10):
        data = os.urandom(number * 1000)
        assert storage.write(f"faulty/{number}", data) == crc64_of(data)
    assert storage.write_stream("faulty/big", len(BIG), Source(BIG), PART) == crc64_of(BIG)
    server.set_faults(Faults())
    assert storage.read("faulty/big") == BIG
    assert storage.request_count > 10 + 7


def test_write_errors_name_the_operation_and_hide_the_secret(server: OssServer, tmp_path: Path) -> None:
    wrong = "wrong-secret-for-writes"
    with pytest.raises(StorageError) as err:
        oss(server, secret=wrong).write("index-0", b"x")
    text = str(err.value)
    assert "PutObject 'index-0'" in text and "SignatureDoesNotMatch" in text and wrong not in text
    (tmp_path / "file").write_bytes(b"a file where a folder should be")
    local = LocalStorage(tmp_path)
    with pytest.raises(StorageError) as err:
        local.write("file/below", b"x")
    assert "write 'file/below' failed" in str(err.value) and "permissions" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no pending- file left behind
    with pytest.raises(StorageError):
        local.write("../escape", b"x")


@pytest.mark.parametrize("with_md5", [True, False])
def test_bytes_damaged_on_the_way_are_detected_and_sent_again(server: OssServer, with_md5: bool) -> None:
    storage = oss(server, retries=2)
    real = storage._plain.put_object
    sent: list[bytes] = []

    def damaging_put(key: str, data: bytes, headers: dict[str, str] | None = None) -> object:
        if not sent:
            data = bytes([data[0] ^ 1]) + data[1:]
            headers = headers if with_md5 else None  # without Content-MD5 only the CRC64 answer shows the damage
        sent.append(data)
        return real(key, data, headers=headers)

    storage._plain.put_object = damaging_put  # type: ignore[method-assign]
    data = os.urandom(4096)
    assert storage.write("damaged", data) == crc64_of(data)
    assert len(sent) == 2 and storage.read("damaged") == data

    real_part = storage._plain.upload_part
    parts: list[int] = []

    def damaging_part(key: str, upload_id: str, number: int, data: bytes) -> object:
        parts.append(number)
        if parts.count(number) == 1 and number == 2:
            data = data[:-1] + bytes([data[-1] ^ 1])
        return real_part(key, upload_id, number, data)

    storage._plain.upload_part = damaging_part  # type: ignore[method-assign]
    assert storage.write_stream("damaged-big", len(BIG), Source(BIG), PART) == crc64_of(BIG)
    assert parts == [1, 2, 2, 3, 4] and storage.read("damaged-big") == BIG
