"""EsClient against a small HTTP server: a cluster's version is read once and reused while fresh (discovery's
read serves preflight), read again once it is older than VERSION_FRESH_S."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from migrator.clients import es
from migrator.clients.es import EsClient
from tests.canned_http import canned_server

ANSWERS = {
    "/": {"version": {"number": "7.17.29"}},
    "/_nodes": {"nodes": {"n1": {"version": "7.17.29"}, "n2": {"version": "7.17.28"}}},
}


@pytest.fixture
def cluster() -> Iterator[tuple[str, list[str]]]:
    """The URL of a 'cluster' that answers `GET /` and `GET /_nodes`, and the paths it was asked, in order."""
    asked: list[str] = []

    def answer(path: str) -> tuple[str, bytes]:
        asked.append(path.split("?")[0])
        return "application/json", json.dumps(ANSWERS[asked[-1]]).encode()

    with canned_server(answer) as url:
        yield url, asked


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
