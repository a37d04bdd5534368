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
from requests.structures import CaseInsensitiveDict

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
