"""The compatibility table pair by pair: each pair's verdict written out here from the restore rules
(Elasticsearch's and OpenSearch's documented index compatibility, and `GET /` of the sandbox's nodes), so a
change of RULES that moves any pair fails here; and the README shows the table as the code builds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.clients.es import Version
from migrator.compatibility import LINES, PROOFS, markdown_table, oldest_index_major, pairs, refusal

SKIP = "skipping-a-major"
OLDER = "newer-to-older"
FORK = "elasticsearch-after-the-fork-to-opensearch"
TO_ES = "opensearch-to-elasticsearch"
OLD_OS = "too-old-for-opensearch"
OK = None
# Rows: source; columns: 5.6, 6.8, 7.10, 7.17, 8, 9, OpenSearch 1.3, OpenSearch 2.19.
EXPECTED = {
    "5.6": [OK, OK, SKIP, SKIP, SKIP, SKIP, OLD_OS, OLD_OS],
    "6.8": [OLDER, OK, OK, OK, SKIP, SKIP, OK, OLD_OS],
    "7.10": [OLDER, OLDER, OK, OK, OK, SKIP, OK, OK],
    "7.17": [OLDER, OLDER, OLDER, OK, OK, SKIP, FORK, FORK],
    "8": [OLDER, OLDER, OLDER, OLDER, OK, OK, FORK, FORK],
    "9": [OLDER, OLDER, OLDER, OLDER, OLDER, OK, FORK, FORK],
    "OpenSearch 1.3": [TO_ES, TO_ES, TO_ES, TO_ES, TO_ES, TO_ES, OK, OK],
    "OpenSearch 2.19": [TO_ES, TO_ES, TO_ES, TO_ES, TO_ES, TO_ES, OLDER, OK],
}


@pytest.mark.parametrize("pair", pairs(), ids=lambda pair: f"{pair.source}->{pair.destination}")
def test_each_pair_gets_its_verdict(pair):
    expected = EXPECTED[pair.source][list(LINES).index(pair.destination)]
    assert pair.rule == expected
    message = refusal(LINES[pair.source], LINES[pair.destination])
    if expected is None:
        assert message is None
    else:
        assert f"rule {expected!r}" in message and "; way out: " in message


def test_every_proven_pair_is_an_allowed_one():
    assert len(pairs()) == len(LINES) ** 2
    allowed = {(pair.source, pair.destination) for pair in pairs() if pair.rule is None}
    assert set(PROOFS) <= allowed


def test_a_refusal_names_the_intermediate_version():
    message = refusal("5.6.16", "7.17.29")
    assert message is not None and "restore on 6.x first, reindex there" in message


@pytest.mark.parametrize(
    ("destination", "oldest"),
    [("6.8.23", 5), ("8.19.21", 7), ("opensearch-1.3.20", 6), ("opensearch-2.19.0", 7)],
)
def test_the_oldest_index_major_each_destination_reads(destination, oldest):
    assert oldest_index_major(Version.parse(destination)) == oldest


def test_opensearch_versions_round_trip_with_their_distribution():
    version = Version.parse("opensearch-2.19.0")
    assert (version.opensearch, version.major, version.es_major, str(version)) == (True, 2, 7, "opensearch-2.19.0")
    assert str(Version.parse("6.8.23")) == "6.8.23" and not Version.parse("6.8.23").opensearch


def test_the_readme_shows_the_table_the_code_builds():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert markdown_table() in readme
