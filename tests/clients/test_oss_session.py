"""The oss2 session's shorter request path (clients/oss_session.py), through the sandbox OSS server: what it
skips (requests.Session's merges, oss2's debug formatting when nobody logs) and what it keeps (signatures,
CRC64 checks, streaming, proxies, timeouts, the error model)."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from migrator.clients.oss_sdk import oss2
from migrator.clients.oss_session import _target
from migrator.clients.storage import OssStorage, StorageError
from migrator.sandbox.oss_server import BucketConfig, OssServer

AK, SK, BUCKET, REGION = "LTAI-session-key", "session-secret-do-not-print", "session", "oss-cn-beijing"
SMALL = os.urandom(700)
LARGE = os.urandom(3 * 1024 * 1024 + 17)  # several of oss2's read chunks and urllib3's buffers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OssServer]:
    root = tmp_path_factory.mktemp("session")
    (root / BUCKET / "repo").mkdir(parents=True)
    (root / BUCKET / "repo" / "small").write_bytes(SMALL)
    (root / BUCKET / "repo" / "large").write_bytes(LARGE)
    with OssServer(root, [BucketConfig(BUCKET, region=REGION)], AK, SK) as srv:
        yield srv


def oss(endpoint: str, signature: str = "v4", **options: object) -> OssStorage:
    return OssStorage(endpoint, BUCKET, "repo", AK, SK, region="cn-beijing", signature=signature, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("signature", ["v4", "v1"])
def test_requests_skip_the_requests_session(server: OssServer, monkeypatch: pytest.MonkeyPatch, signature: str) -> None:
    # Before: oss2 sent each request through requests.Session.request (its merges of headers, cookies, params,
    # hooks and proxies, its redirect handling): about a quarter of a small GET's CPU, for nothing migrator uses.
    storage = oss(server.endpoint, signature)

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("requests.Session.request was called")

    monkeypatch.setattr(requests.Session, "request", refused)
    assert storage.read("small") == SMALL
    assert storage.read_range("large", 1_000_000, 5) == LARGE[1_000_000:1_000_005]
    assert storage.read("large") == LARGE  # streamed in chunks, CRC64 checked
    assert storage.write("written", b"new bytes") == storage.crc64("written")
    assert [info.key for info in storage.list("w")] == ["written"]
    storage.delete("written")
    assert storage.size("small") == 700


def test_debug_lines_are_formatted_only_when_logged(
    server: OssServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: oss2's session formatted every request's and answer's header dictionaries into debug lines that
    # nobody logged (a few percent of a small GET's CPU). oss2's Bucket and Request still format their own.
    formatted: list[str] = []  # the function whose debug line formatted a header dictionary
    shown = CaseInsensitiveDict.__repr__

    def counted(self: CaseInsensitiveDict) -> str:
        formatted.append(sys._getframe(1).f_code.co_qualname)
        return shown(self)

    monkeypatch.setattr(CaseInsensitiveDict, "__repr__", counted)
    storage = oss(server.endpoint)
    caplog.set_level(logging.WARNING, logger="oss2")  # restored after the test
    assert storage.read("small") == SMALL
    assert {"Session.do_request", "DirectSession.do_request", "Response.__init__"}.isdisjoint(formatted), formatted
    with caplog.at_level(logging.DEBUG, logger="oss2"):
        assert storage.read("small") == SMALL
    lines = [record.getMessage() for record in caplog.records if record.name == "oss2.http"]
    assert any(line.startswith("Send request, method: GET") for line in lines), lines
    assert any(line.startswith("Get response headers") for line in lines), lines
    assert SK not in caplog.text


def test_the_environments_proxy_is_used(server: OssServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:  # a port nothing listens on: the proxy that cannot be reached
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(StorageError) as err:
        oss(server.endpoint, retries=0).read("small")
    assert err.value.transient and "proxy" in str(err.value).lower()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert oss(server.endpoint, retries=0).read("small") == SMALL


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        storage = oss(endpoint, retries=1, backoff_s=0, timeout_s=0.3)
        with pytest.raises(StorageError) as err:
            storage.read("small")
    assert err.value.transient and "2 attempts" in str(err.value) and storage.request_count == 2
    assert SK not in str(err.value)


ODD_KEYS = ["a b+c", "percent%2Fkept", "tilde~and*star", "ünïcödé/日本", "semi;colon=eq&amp", "slash/../dots"]


@pytest.mark.parametrize("signature", ["v4", "v1"])
def test_bodyless_requests_skip_requests_preparation(
    server: OssServer, monkeypatch: pytest.MonkeyPatch, signature: str
) -> None:
    # Before: every request was prepared by requests (URL parsed, IDNA-checked, re-quoted; urllib3 parsed and
    # re-encoded it again) and answered through requests.Response (its header dictionary, cookie extraction):
    # about a third of a small GET's CPU. Reads, listings, HEAD and DELETE now go to urllib3's pool with oss2's
    # URL as built; the server checks their signatures, so the path and query are the ones oss2 signed.
    storage = oss(server.endpoint, signature)
    for key in ODD_KEYS:
        storage.write(f"odd/{key}", key.encode())  # a body: still prepared by requests

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("requests prepared a request without a body")

    monkeypatch.setattr(requests.PreparedRequest, "prepare", refused)
    for key in ODD_KEYS:
        assert storage.read(f"odd/{key}") == key.encode()
        assert storage.size(f"odd/{key}") == len(key.encode())
        assert [info.key for info in storage.list(f"odd/{key}")] == [f"odd/{key}"]
    assert storage.read_range("large", 3_000_000, 7) == LARGE[3_000_000:3_000_007]
    assert storage.read("large") == LARGE
    for key in ODD_KEYS:
        storage.delete(f"odd/{key}")  # a DELETE without a body: Content-Length 0, as requests sent it
    assert list(storage.list("odd/")) == []


def test_sequential_reads_reuse_one_connection(server: OssServer) -> None:
    # A body read to its end gives its connection back to the pool: 30 reads in a row open one connection.
    storage = oss(server.endpoint)
    for _ in range(30):
        assert storage.read("small") == SMALL
    pools = storage._session.session.get_adapter(server.endpoint).poolmanager.pools
    assert [pool.num_connections for pool in pools._container.values()] == [1]


def test_a_status_outside_2xx_is_oss2s_error_and_no_redirect_is_followed(server: OssServer) -> None:
    storage = oss(server.endpoint, retries=0)
    with pytest.raises(StorageError) as missing:
        storage.read("no-such-object")
    assert type(missing.value).__name__ == "NotFound" and "NoSuchKey" in str(missing.value)
    wrong_secret = OssStorage(server.endpoint, BUCKET, "repo", AK, "wrong", region="cn-beijing", retries=0)
    with pytest.raises(StorageError) as denied:
        wrong_secret.read("small")
    assert "SignatureDoesNotMatch" in str(denied.value) and not denied.value.transient


@settings(max_examples=300, deadline=None)
@given(
    key=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
    params=st.dictionaries(
        st.sampled_from(["prefix", "continuation-token", "list-type", "max-keys", "uploads", "partNumber"]),
        st.one_of(st.none(), st.integers(0, 10_000), st.text(st.characters(codec="utf-8"), max_size=20)),
        max_size=4,
    ),
    path_style=st.booleans(),
)
def test_the_target_is_what_requests_and_urllib3_send(key: str, params: dict[str, object], path_style: bool) -> None:
    # The direct path sends oss2's URL as built: for every key and query oss2 can make, the same path and query
    # requests would have prepared (parse, re-quote, encode the parameters) and urllib3 re-encoded.
    url = oss2.api._UrlMaker("http://oss-cn-beijing.aliyuncs.com", False, path_style)("bucket-1", key)
    prepared = requests.PreparedRequest()
    prepared.prepare(method="GET", url=url, params=params or None)
    split = _target(url, params)
    assert split is not None
    base, target = split
    assert base + target == prepared.url
    assert target == urllib3.util.parse_url(prepared.url).request_uri
