"""EsClient against a small HTTP server: a cluster's version is read once and reused while fresh (discovery's
read serves preflight), read again once it is older than VERSION_FRESH_S."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from migrator.clients import es
from migrator.clients.es import EsClient

ANSWERS = {
    "/": {"version": {"number": "7.17.29"}},
    "/_nodes": {"nodes": {"n1": {"version": "7.17.29"}, "n2": {"version": "7.17.28"}}},
}


@pytest.fixture
def cluster() -> Iterator[tuple[str, list[str]]]:
    """The URL of a 'cluster' that answers `GET /` and `GET /_nodes`, and the paths it was asked, in order."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?")[0]
            asked.append(path)
            body = json.dumps(ANSWERS[path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


def test_the_version_is_read_once_while_fresh(cluster: tuple[str, list[str]]) -> None:
    # Before: each call sent `GET /` and `GET /_nodes` again (preflight re-read what discovery had just read).
    url, asked = cluster
    client = EsClient(url, label="source")
    try:
        first, second = client.version(), client.version()
    finally:
        client.close()
    assert str(first) == str(second) == "7.17.28"  # the lowest node's
    assert asked == ["/", "/_nodes"]


def test_a_version_older_than_the_freshness_window_is_read_again(
    cluster: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, asked = cluster
    monkeypatch.setattr(es, "VERSION_FRESH_S", 0.0)  # every earlier read is too old
    client = EsClient(url, label="source")
    try:
        client.version()
        client.version()
    finally:
        client.close()
    assert asked == ["/", "/_nodes", "/", "/_nodes"]
