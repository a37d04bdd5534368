"""Which snapshot restores work between two clusters: the one compatibility table.

Place in the flow: discovery reads each cluster's version and distribution (`EsClient.version`); the
planner (and so the dry run, `migrator plan`) and the preflight step ask `refusal(source, destination)`
and stop on its answer; the README's compatibility table is `markdown_table()` of PAIRS.

Facts, from the clusters' own answers (`GET /` on the sandbox's nodes: `minimum_index_compatibility_version`)
and the Elasticsearch and OpenSearch upgrade documentation: a cluster restores indices created by its own
major or the one before (Elasticsearch 6.8 reads 5.x, 7.x reads 6.x, ...); never a snapshot of a newer
version; OpenSearch forked from Elasticsearch 7.10.2: OpenSearch 1.x reads indices of Elasticsearch 6.0+
(`6.0.0-beta1`), 2.x of 7.0+ (`7.0.0`), and neither reads the snapshot format of Elasticsearch 7.11 or
later; Elasticsearch reads no OpenSearch snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from migrator.clients.es import Version

LAST_FORKED = Version(7, 10, 2)  # the Elasticsearch release OpenSearch forked from
# Per OpenSearch major: the oldest Elasticsearch major whose indices it reads (its GET / answer).
OPENSEARCH_OLDEST_INDEX_MAJOR = {1: 6, 2: 7}


def oldest_index_major(destination: Version) -> int:
    """The oldest Elasticsearch major whose indices `destination` restores (the major that created them,
    not the version that took the snapshot): its own major minus one; OpenSearch 1.x: 6, 2.x and later: 7."""
    if destination.opensearch:
        return OPENSEARCH_OLDEST_INDEX_MAJOR.get(destination.major, 7)
    return destination.major - 1


@dataclass(frozen=True)
class Rule:
    """One refusal: `name` (quoted in messages, tests and the README), when it applies, why, the way out."""

    name: str
    applies: Callable[[Version, Version], bool]
    reason: Callable[[Version, Version], str]
    way_out: Callable[[Version, Version], str]


def _es(version: Version) -> bool:
    return not version.opensearch


RULES: tuple[Rule, ...] = (
    Rule(
        "opensearch-to-elasticsearch",
        lambda s, d: s.opensearch and _es(d),
        lambda s, d: f"Elasticsearch {d} cannot read snapshots taken by {s}",
        lambda s, d: "stay on OpenSearch, or reindex from remote into Elasticsearch",
    ),
    Rule(
        "newer-to-older",
        lambda s, d: s.distribution == d.distribution and d < s,
        lambda s, d: f"a snapshot taken on {s} cannot be restored on the older {d}",
        lambda s, d: f"upgrade the destination to {s} or later",
    ),
    Rule(
        "elasticsearch-after-the-fork-to-opensearch",
        lambda s, d: _es(s) and d.opensearch and s > LAST_FORKED,
        lambda s, d: f"{d} reads the snapshot format of Elasticsearch up to {LAST_FORKED} only, not of {s}",
        lambda s, d: "reindex from remote into OpenSearch (a snapshot of 7.10.2 or older restores on it)",
    ),
    Rule(
        "skipping-a-major",
        lambda s, d: _es(d) and s.major < oldest_index_major(d),
        lambda s, d: f"{d} restores indices created by {oldest_index_major(d)}.x or later, not by {s.major}.x",
        lambda s, d: (
            f"restore on {s.major + 1}.x first, reindex there into new indices, snapshot those and migrate them to {d}"
        ),
    ),
    Rule(
        "too-old-for-opensearch",
        lambda s, d: _es(s) and d.opensearch and s.major < oldest_index_major(d),
        lambda s, d: (
            f"{d} restores indices created by Elasticsearch {oldest_index_major(d)}.x or later, not by {s.major}.x"
        ),
        lambda s, d: (
            f"restore on Elasticsearch {oldest_index_major(d)}.x or on an older OpenSearch first, reindex there "
            "into new indices, snapshot those and migrate them"
        ),
    ),
)


def refusing_rule(source: Version, destination: Version) -> Rule | None:
    """The first rule of RULES that refuses restoring a snapshot of `source` on `destination`, or None."""
    return next((rule for rule in RULES if rule.applies(source, destination)), None)


def refusal(source: str, destination: str) -> str | None:
    """Why a snapshot of `source` cannot be restored on `destination` (versions as `str(Version)`:
    `6.8.23`, `opensearch-2.19.0`), naming the rule and the way out; None when it can."""
    src, dst = Version.parse(source), Version.parse(destination)
    rule = refusing_rule(src, dst)
    if rule is None:
        return None
    return f"versions refused by rule {rule.name!r}: {rule.reason(src, dst)}; way out: {rule.way_out(src, dst)}"


@dataclass(frozen=True)
class Pair:
    """One row of the README's table: sandbox versions, the rule that refuses it (None: allowed), and for
    an allowed pair the real-node test that migrates it (None: allowed by the rules, not run here)."""

    source: str
    destination: str
    rule: str | None
    proof: str | None = None


# Every pair of the sandbox's versions (migrator.sandbox.distributions.KNOWN_VERSIONS).
LINES = {
    "5.6": "5.6.16",
    "6.8": "6.8.23",
    "7.10": "7.10.2",
    "7.17": "7.17.29",
    "8": "8.19.21",
    "9": "9.5.4",
    "OpenSearch 1.3": "opensearch-1.3.20",
    "OpenSearch 2.19": "opensearch-2.19.0",
}
PROOFS = {
    ("5.6", "6.8"): "tests/e2e/test_versions_e2e.py::test_pair_migrates[5.6-6.8]",
    ("6.8", "7.10"): "tests/e2e/test_versions_e2e.py::test_pair_migrates[6.8-7.10]",
    ("6.8", "7.17"): "tests/e2e/test_versions_e2e.py::test_pair_migrates[6.8-7.17]",
    ("6.8", "OpenSearch 1.3"): "tests/e2e/test_versions_e2e.py::test_pair_migrates[6.8-opensearch-1.3]",
    ("7.10", "OpenSearch 2.19"): "tests/e2e/test_versions_e2e.py::test_pair_migrates[7.10-opensearch-2.19]",
    ("7.10", "8"): "tests/e2e/test_migration_e2e.py::test_migration_with_wildcard_exclusion_and_rename[7.10-8-a710]",
    ("7.17", "8"): "tests/e2e/test_migration_e2e.py::test_migration_with_wildcard_exclusion_and_rename[7.17-8-a717]",
    ("8", "9"): "tests/e2e/test_migration_e2e.py::test_migration_with_wildcard_exclusion_and_rename[8-9-a8]",
}


def pairs() -> list[Pair]:
    """Every (source, destination) of LINES with its verdict from RULES and its proof from PROOFS."""
    rows = []
    for source, source_version in LINES.items():
        for destination, destination_version in LINES.items():
            rule = refusing_rule(Version.parse(source_version), Version.parse(destination_version))
            rows.append(Pair(source, destination, rule.name if rule else None, PROOFS.get((source, destination))))
    return rows


def markdown_table() -> str:
    """The README's table: one row per source, one column per destination; a cell is the proving test's
    number (listed under the table), `allowed` (by the rules, not run here) or the refusing rule."""
    rows = pairs()
    proofs = sorted({row.proof for row in rows if row.proof})
    header = "| source \\ destination | " + " | ".join(LINES) + " |"
    lines = [header, "|" + "---|" * (len(LINES) + 1)]
    for source in LINES:
        cells = []
        for row in (row for row in rows if row.source == source):
            if row.rule:
                cells.append(f"✗ {row.rule}")
            elif row.proof:
                cells.append(f"✓ [{proofs.index(row.proof) + 1}]")
            else:
                cells.append("allowed")
        lines.append(f"| **{source}** | " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(f"{number}. `{proof}`" for number, proof in enumerate(proofs, start=1))
    return "\n".join(lines) + "\n"
