"""The storage layer: OssStorage (through the sandbox OSS server) and LocalStorage agree on one tree."""

from __future__ import annotations

import os
import random
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import crcmod
import pytest

from migrator.clients.storage import LocalStorage, NotFound, ObjectInfo, OssStorage, Storage, StorageError
from migrator.sandbox.oss_server import BucketConfig, Faults, OssServer

AK = "LTAI-storage-key"
SK = "storage-secret-do-not-print"
BUCKET = "snapshots"
BASE = "clusters/prod"

SMALL = {
    "index-3": b'{"snapshots":[]}',
    "index.latest": b"\x00\x00\x00\x00\x00\x00\x00\x03",
    "snap-abc.dat": os.urandom(3000),
    "meta-abc.dat": b"",
    "indices/UUID one/0/__blob a": os.urandom(70_000),
    "indices/UUID one/0/snap-abc.dat": b"shard meta",
    "indices/UUID one/1/__blob+b": os.urandom(10),
    "indices/ünïcödé/0/__%41": b"percent",
    "indices/ünïcödé/meta-x.dat": b"index meta",
}
MANY = 1234  # more than one page of 1000


def populate(repo: Path) -> None:
    rng = random.Random(5)
    for key, data in SMALL.items():
        path = repo.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    many = repo / "indices" / "many" / "0"
    many.mkdir(parents=True)
    for i in range(MANY):
        (many / f"__{i:05d}").write_bytes(rng.randbytes(i % 50))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OssServer]:
    root = tmp_path_factory.mktemp("storage")
    populate(root / BUCKET / BASE)
    (root / BUCKET / "clusters" / "prod-old").mkdir(parents=True)
    (root / BUCKET / "clusters" / "prod-old" / "index-1").write_bytes(b"not in the repository")
    (root / BUCKET / "elsewhere").write_bytes(b"neither")
    with OssServer(root, [BucketConfig(BUCKET, region="oss-cn-shenzhen")], AK, SK) as srv:
        yield srv


@pytest.fixture(autouse=True)
def no_faults(server: OssServer) -> Iterator[None]:
    yield
    server.set_faults(Faults())


def oss(server: OssServer, signature: str = "v4", base: str = BASE, **kwargs: object) -> OssStorage:
    options: dict = {"region": "cn-shenzhen", "signature": signature, "backoff_s": 0.001, **kwargs}
    return OssStorage(server.endpoint, BUCKET, base, AK, options.pop("secret", SK), **options)


@pytest.fixture
def local(server: OssServer) -> LocalStorage:
    return LocalStorage(server.root / BUCKET / BASE)


@pytest.fixture(params=["v4", "v1"])
def remote(server: OssServer, request: pytest.FixtureRequest) -> OssStorage:
    return oss(server, request.param)


def everything(storage: Storage) -> list[ObjectInfo]:
    return list(storage.list())


def test_both_backends_agree(local: LocalStorage, remote: OssStorage) -> None:
    listed = everything(local)
    assert listed == everything(remote)
    assert len(listed) == len(SMALL) + MANY
    assert [info.key for info in listed] == sorted((info.key for info in listed), key=lambda k: k.encode())
    assert {info.key: info.size for info in listed if info.key in SMALL} == {k: len(v) for k, v in SMALL.items()}
    for prefix in ("indices/", "indices/UUID one/", "indices/ü", "index", "snap-", "nothing/", "indices/many/0/__0001"):
        assert list(local.list(prefix)) == list(remote.list(prefix)), prefix
    for key, data in SMALL.items():
        assert local.read(key) == remote.read(key) == data
        assert local.size(key) == remote.size(key) == len(data)
    blob = SMALL["indices/UUID one/0/__blob a"]
    for start, length in ((0, 1), (100, 5000), (len(blob) - 10, 10), (5, 0)):
        assert local.read_range("indices/UUID one/0/__blob a", start, length) == blob[start : start + length]
        assert remote.read_range("indices/UUID one/0/__blob a", start, length) == blob[start : start + length]


def test_listing_pages_through_more_than_1000(server: OssServer, remote: OssStorage) -> None:
    before = server.requests_by_op["ListObjectsV2"]
    listed = list(remote.list("indices/many/"))
    assert [info.key for info in listed] == [f"indices/many/0/__{i:05d}" for i in range(MANY)]
    assert server.requests_by_op["ListObjectsV2"] - before == 2
    assert remote.request_count == 2


@pytest.mark.parametrize("base", ["clusters/prod", "/clusters/prod/", "clusters/prod/"])
def test_base_path_normalisation(server: OssServer, base: str) -> None:
    storage = oss(server, base=base)
    assert storage.read("index-3") == SMALL["index-3"]
    assert storage.description == f"oss://{BUCKET}/clusters/prod ({server.endpoint})"
    assert [info.key for info in storage.list("index")] == ["index-3", "index.latest"]


def test_empty_base_path_is_the_bucket_root(server: OssServer) -> None:
    storage = oss(server, base="/")
    assert storage.read("elsewhere") == b"neither"
    assert [info.key for info in storage.list("clusters/prod-")] == ["clusters/prod-old/index-1"]
    assert storage.read(f"{BASE}/index-3") == SMALL["index-3"]


def test_not_found(local: LocalStorage, remote: OssStorage) -> None:
    for storage in (local, remote):
        for call in (storage.read, storage.size, lambda key, s=storage: s.read_range(key, 0, 1)):
            with pytest.raises(NotFound) as err:
                call("indices/missing")
            assert not err.value.transient and "indices/missing" in str(err.value)
        with pytest.raises(NotFound):
            storage.size("indices")  # a "directory" is not an object
        assert list(storage.list("missing/")) == []


def test_range_past_the_end(local: LocalStorage, remote: OssStorage) -> None:
    for storage in (local, remote):
        for start, length in ((10, 10), (3000, 1), (0, 1)):
            key = "meta-abc.dat" if (start, length) == (0, 1) else "index.latest"
            with pytest.raises(StorageError) as err:
                storage.read_range(key, start, length)
            assert not err.value.transient and "bytes" in str(err.value)


def test_faults_are_retried(server: OssServer, local: LocalStorage) -> None:
    clean = everything(local)
    server.set_faults(Faults(error_rate=0.2, truncate_rate=0.1, latency_ms=5, seed=11))
    storage = oss(server, retries=10)
    assert everything(storage) == clean
    keys = [*SMALL, *(f"indices/many/0/__{i:05d}" for i in range(0, MANY, 25))]
    for key in keys:
        assert storage.read(key) == local.read(key)
    assert storage.read_range("snap-abc.dat", 1000, 999) == SMALL["snap-abc.dat"][1000:1999]
    assert storage.size("snap-abc.dat") == 3000
    assert storage.request_count > len(keys) + 4  # some attempts failed and were repeated


def test_persistent_errors_give_up_after_bounded_retries(server: OssServer) -> None:
    server.set_faults(Faults(error_rate=1.0))
    storage = oss(server, retries=3)
    before = server.request_count
    with pytest.raises(StorageError) as err:
        storage.read("index-3")
    assert err.value.transient
    assert "503 ServiceUnavailable" in str(err.value) and "4 attempts" in str(err.value)
    assert server.request_count - before == 4 == storage.request_count
    with pytest.raises(StorageError) as err:
        list(storage.list())
    assert err.value.transient


def test_crc_mismatch_is_detected_and_retried(server: OssServer, tmp_path: Path) -> None:
    storage = oss(server, retries=2)
    path = server.root / BUCKET / BASE / "crc-victim"
    path.write_bytes(b"original content")
    assert storage.read("crc-victim") == b"original content"  # the server caches this CRC
    stamp = path.stat()
    path.write_bytes(b"corrupted content"[:16])  # same size, same mtime: the cached CRC goes stale
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    with pytest.raises(StorageError) as err:
        storage.read("crc-victim")
    assert err.value.transient and "CRC64 mismatch" in str(err.value)
    assert storage.request_count == 1 + 3
    path.unlink()


def test_reading_objects_builds_no_crc_table_per_object(server: OssServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: oss2's CRC check made a crcmod digest per object read, whose 256-entry table crcmod builds in
    # Python each time (0.36 ms): a third of migrator's CPU per index when verifying many small indices.
    storage = oss(server)
    builders: list[threading.Thread] = []  # the server (another thread) computes its answers' CRC as it likes
    module = sys.modules[crcmod.Crc.__module__]  # crcmod/crcmod.py, whose name the package's shadows
    make = module._mkCrcFun
    monkeypatch.setattr(module, "_mkCrcFun", lambda *args: builders.append(threading.current_thread()) or make(*args))
    for key, data in SMALL.items():
        assert storage.read(key) == data
    assert threading.current_thread() not in builders


def test_wrong_secret_is_not_retried_and_not_printed(server: OssServer) -> None:
    wrong_secret = "wrong-secret-value-123"
    for signature in ("v4", "v1"):
        storage = oss(server, signature, secret=wrong_secret)
        with pytest.raises(StorageError) as err:
            storage.read("index-3")
        text = str(err.value)
        assert "SignatureDoesNotMatch" in text and "access_key_secret" in text
        assert not err.value.transient and storage.request_count == 1
        assert wrong_secret not in text and SK not in text and wrong_secret not in storage.description


def test_other_configuration_errors(server: OssServer) -> None:
    with pytest.raises(StorageError) as err:
        OssStorage(server.endpoint, BUCKET, BASE, "LTAI-unknown", SK, region="cn-shenzhen").read("index-3")
    assert "InvalidAccessKeyId" in str(err.value) and not err.value.transient
    with pytest.raises(StorageError) as err:
        OssStorage(server.endpoint, "no-such-bucket", BASE, AK, SK, region="cn-shenzhen").size("index-3")
    assert "NoSuchBucket" in str(err.value) and not isinstance(err.value, NotFound)
    with pytest.raises(StorageError) as err:
        oss(server, region="cn-hangzhou").read("index-3")  # V4 signed for the wrong region
    assert "region" in str(err.value)
    with pytest.raises(ValueError, match="region"):
        OssStorage(server.endpoint, BUCKET, BASE, AK, SK)


def test_unreachable_endpoint_is_transient(server: OssServer) -> None:
    storage = OssStorage("http://127.0.0.1:9", BUCKET, BASE, AK, SK, region="cn-shenzhen", retries=1, backoff_s=0)
    with pytest.raises(StorageError) as err:
        storage.read("index-3")
    assert err.value.transient and storage.request_count == 2


def test_sts_token(tmp_path: Path) -> None:
    (tmp_path / "sts" / "repo").mkdir(parents=True)
    (tmp_path / "sts" / "repo" / "index-0").write_bytes(b"sts data")
    with OssServer(tmp_path, [BucketConfig("sts")], AK, SK, security_token="the-token") as sts:
        for signature in ("v4", "v1"):
            good = OssStorage(
                sts.endpoint,
                "sts",
                "repo",
                AK,
                SK,
                region="cn-hangzhou",
                security_token="the-token",
                signature=signature,
            )
            assert good.read("index-0") == b"sts data"
            bad = OssStorage(
                sts.endpoint, "sts", "repo", AK, SK, region="cn-hangzhou", security_token="stale", signature=signature
            )
            with pytest.raises(StorageError, match="InvalidSecurityToken"):
                bad.read("index-0")


def test_local_request_count_and_description(local: LocalStorage) -> None:
    assert local.description == f"dir:{local.root}"
    local.read("index-3")
    local.size("index-3")
    assert local.request_count == 2
    with pytest.raises(StorageError):
        local.read("../escape")


def test_reading_objects_reads_the_environment_once(server: OssServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: requests looked up the proxy settings in the whole environment twice on every request (about a
    # sixth of a small GET's CPU, 1,500 GETs to verify 500 one-shard indices); now once, when the client is made.
    lookups: list[str] = []
    environment = urllib.request.getproxies_environment
    monkeypatch.setattr(urllib.request, "getproxies_environment", lambda: lookups.append("") or environment())
    storage = oss(server)
    made = len(lookups)
    for key, data in SMALL.items():
        assert storage.read(key) == data
    assert len(lookups) == made


def test_the_environments_proxy_and_ca_bundle_still_apply(server: OssServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Read once, the environment still decides: the proxy for the endpoint (unless NO_PROXY names its host),
    # the CA bundle; ~/.netrc no longer replaces the OSS signature with basic credentials.
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/our-ca.pem")
    session = oss(server)._session.session
    assert session.proxies["http"] == "http://proxy.example:3128"
    assert session.verify == "/etc/ssl/our-ca.pem"
    assert session.trust_env is False
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert oss(server)._session.session.proxies == {}


def test_a_netrc_entry_for_the_endpoint_does_not_replace_the_signature(
    server: OssServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: requests read ~/.netrc on every request and, for a host it names, sent basic credentials in
    # the Authorization header instead of oss2's signature, so every read was refused.
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password other\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert oss(server).read("index-3") == SMALL["index-3"]
