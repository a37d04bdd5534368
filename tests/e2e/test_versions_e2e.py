"""Pairs of versions beyond the shared test bed, migrated end to end on real nodes: Elasticsearch 5.6 and
6.8 sources (mapping types), OpenSearch destinations (its own `GET /`), through an `fs` repository whose
bucket the OSS server serves to migrator's verifier, and 6.8 -> 7.17 and 5.6 -> 6.8 through the test bed's
`oss` plugin (installed on every node whose version it serves: all but OpenSearch).

These nodes are this module's own (session-scoped, started in parallel, one per version however many
pairs use it), not the shared `testbed`'s: they cost memory and CI time only where this marker runs.
MIGRATOR_VERSIONS_NODES=6.8,7.17 starts only those (a developer's targeted run); a pair whose node was
left out fails on its missing alias.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import uuid
from collections.abc import Iterator

import pytest
import yaml

from migrator.clients.es import build_path
from migrator.sandbox import nodes
from migrator.sandbox.clusters import start_all
from migrator.sandbox.distributions import KNOWN_VERSIONS, resolve_version, unpack
from migrator.sandbox.oss_server import BucketConfig, OssServer
from migrator.sandbox.processes import hand_over, pick_port, run_as, stop_group
from migrator.sandbox.repository_plugin import has_plugin, plugin_dir
from migrator.sandbox.seed_data import seed_cluster
from tests import conftest
from tests.conftest import BUCKET, REGION, TESTS_ROOT
from tests.helpers import cli, counts, request_events
from tests.rest_conformance import document_requests, log_requests, nonconforming

pytestmark = [pytest.mark.cluster, pytest.mark.versions]

PAIRS = [
    ("6.8", "7.17"),
    ("7.10", "opensearch-2.19"),
    ("5.6", "6.8"),
    ("6.8", "opensearch-1.3"),
    ("6.8", "7.10"),
]
NODES = ["5.6", "6.8", "7.10", "7.17", "opensearch-1.3", "opensearch-2.19"]
if os.environ.get("MIGRATOR_VERSIONS_NODES"):
    NODES = [alias for alias in NODES if alias in os.environ["MIGRATOR_VERSIONS_NODES"].split(",")]
SOURCES = sorted({source for source, _ in PAIRS if source in NODES})
DOCS = 300
# A 5.x index may hold several mapping types; 6.x reads it as it is (and refuses a second type only in
# indices it creates itself).
MULTI_TYPE = "catalog"
TEMPLATE = "logs-typed"
# The mapping type of each major's template: a custom one on 6.x too (6.x takes any one name, not only `_doc`).
CUSTOM_TYPE = {5: "doc", 6: "event"}
PIPELINE = "orders-enrich"


@pytest.fixture(scope="session")
def versions_bed() -> Iterator[conftest.TestBed]:
    folder = TESTS_ROOT / f"versions-{uuid.uuid4().hex[:8]}"
    (folder / "buckets" / BUCKET).mkdir(parents=True)
    os.chmod(folder, 0o755)
    owner = run_as()
    hand_over(folder / "buckets", owner)
    port_base = 30000 + (os.getpid() % 500) * 20

    def pick(taken: set[int]) -> dict[str, nodes.NodeLayout]:
        layouts = {}
        for number, alias in enumerate(NODES):
            dist = resolve_version(KNOWN_VERSIONS[alias])
            home = unpack(dist, TESTS_ROOT / "dist")
            layouts[alias] = nodes.NodeLayout(
                role=f"v{alias.replace('.', '').replace('-', '')}",
                dist=dist,
                home=home,
                folder=folder / f"node-{alias}",
                http_port=pick_port(port_base + number, taken),
                transport_port=pick_port(port_base + 10 + number, taken),
                repo_paths=[folder / "buckets"],
                plugins=[plugin_dir(dist, home)] if has_plugin(dist) else [],
            )
        return layouts

    key_id, secret = f"versions{secrets.token_hex(6)}", secrets.token_urlsafe(18)
    server = OssServer(folder / "buckets", [BucketConfig(BUCKET, region=REGION)], key_id, secret)
    groups: dict[str, int] = {}
    try:
        layouts, groups, _ = start_all(pick, owner, timeout_s=420)
        server.start()
        bed = conftest.TestBed(
            folder=folder,
            urls={alias: layout.url for alias, layout in layouts.items()},
            versions={alias: layout.dist.label for alias, layout in layouts.items()},
            oss=server,
            key_id=key_id,
            secret=secret,
            groups=groups,
            layouts=layouts,
            owner=owner,
        )
        for alias in SOURCES:
            seed(bed, alias)
        yield bed
    finally:
        server.stop()
        for pgid in groups.values():
            stop_group(pgid)
        shutil.rmtree(folder, ignore_errors=True)


def seed(bed: conftest.TestBed, alias: str) -> None:
    """The sandbox's example indices (typed before 7.0), a legacy template for `logs-*` in the version's
    own shape (`template` on 5.x, a custom mapping type before 7.0), and on 5.x an index with two mapping
    types; on 6.x `orders` names an ingest pipeline."""
    client = bed.client(alias)
    try:
        seed_cluster(client, DOCS)
        major = client.version().major
        patterns = {"template": "logs-*"} if major == 5 else {"index_patterns": ["logs-*"]}
        fields = {"properties": {"tag": {"type": "keyword"}}}
        mappings = fields if major >= 7 else {CUSTOM_TYPE[major]: fields}
        body = {**patterns, "order": 3, "mappings": mappings}
        client.request("PUT", build_path("_template", f"{TEMPLATE}-{alias}"), body)
        if major == 6:  # index.default_pipeline exists from 6.5: `orders` names an (empty) ingest pipeline
            client.request("PUT", build_path("_ingest", "pipeline", PIPELINE), {"processors": []})
            client.request("PUT", build_path("orders", "_settings"), {"index.default_pipeline": PIPELINE})
        if client.version().major == 5:
            client.request(
                "PUT",
                build_path(MULTI_TYPE),
                {
                    "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                    "mappings": {
                        "book": {"properties": {"title": {"type": "text"}}},
                        "film": {"properties": {"minutes": {"type": "integer"}}},
                    },
                },
            )
            for number in range(10):
                doc_type, body = ("book", {"title": f"t{number}"}) if number % 2 else ("film", {"minutes": number})
                client.request("PUT", build_path(MULTI_TYPE, doc_type, str(number)), body, ok=(200, 201))
            client.request("POST", build_path(MULTI_TYPE, "_refresh"))
    finally:
        client.close()


@pytest.mark.parametrize(("source", "destination"), PAIRS, ids=[f"{s}-{d}" for s, d in PAIRS])
def test_pair_migrates(versions_bed, tmp_path, source, destination):
    prefix = f"m{source.replace('.', '')}-{destination.replace('.', '').replace('opensearch-', 'os')}"
    selected = ["logs-*", "orders"] + ([MULTI_TYPE] if source == "5.6" else [])
    plan = versions_bed.write_plan(
        tmp_path,
        source,
        destination,
        repository_type="fs",  # every pair, OpenSearch too (no oss build); the oss pairs are below
        name=prefix,
        snapshot={"indices": selected, "exclude": ["logs-debug"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": f"{prefix}-$1"},
    )
    dry = cli(versions_bed, "plan", str(plan))
    assert f"orders -> {prefix}-orders" in dry.stdout
    document = json.loads(cli(versions_bed, "plan", str(plan), "--format", "json").stdout)
    if source == "6.8":  # the 6.8 template's custom type is named in the dry run as it goes (typeless on 7.x+)
        warnings = document["warnings"]
        removed = f"_template/{TEMPLATE}-6.8: mapping type 'event' removed (typeless on "
        assert any(w.startswith(removed) for w in warnings), warnings

    cli(versions_bed, "apply", str(plan), "--yes", "--poll", "0.5")
    # every request of the dry run and of the run is in the REST specification of its cluster's version
    versions = {side: document[side]["version"] for side in ("source", "destination")}
    sent = log_requests(request_events(plan))
    problems = nonconforming(document_requests(document), versions) + nonconforming(sent, versions)
    assert problems == [], "\n".join(problems)

    expected = {
        f"{prefix}-{name}": count
        for name, count in counts(versions_bed, source, ",".join(selected)).items()
        if name != "logs-debug"
    }
    assert counts(versions_bed, destination, f"{prefix}-*") == expected
    assert len(expected) == len(selected) + 1  # two logs-* indices
    client = versions_bed.client(destination)
    try:
        mapping = client.get(build_path(f"{prefix}-orders", "_mapping"))[f"{prefix}-orders"]["mappings"]
        name = f"{TEMPLATE}-{source}"
        template = client.get(build_path("_template", name))[name]
    finally:
        client.close()
    fields = next(iter(mapping.values()))["properties"] if "properties" not in mapping else mapping["properties"]
    assert fields["amount"] == {"type": "double"}
    # the template travelled in the destination's shape: typed on 6.x, typeless from 7.x (OpenSearch included)
    assert template["index_patterns"] == ["logs-*"]
    typed = "doc" in template["mappings"] or "event" in template["mappings"]
    assert typed == (destination == "6.8"), template["mappings"]
    if destination != "6.8":  # after the cutover, a new daily index gets the source template's mapping
        client = versions_bed.client(destination)
        try:
            if source == "6.8":  # the pipeline `orders` names moved with it: the restored index takes writes
                doc = build_path(f"{prefix}-orders", "_doc", params={"refresh": "true"})
                status, answer = client.request("POST", doc, {"amount": 2.5}, ok=(201, 400))
                assert status == 201, answer
            index = f"logs-{prefix}-new"
            client.request("POST", build_path(index, "_doc", params={"refresh": "true"}), {"tag": "a"}, ok=(201,))
            fields = client.get(build_path(index, "_mapping"))[index]["mappings"]["properties"]
            client.request("DELETE", build_path(index))
        finally:
            client.close()
        assert fields["tag"] == {"type": "keyword"}


OSS_PAIRS = [("6.8", "7.17"), ("5.6", "6.8")]


@pytest.mark.parametrize(("source", "destination"), OSS_PAIRS, ids=[f"{s}-{d}" for s, d in OSS_PAIRS])
def test_pair_migrates_through_an_oss_repository(versions_bed, tmp_path, source, destination):
    """The source writes its snapshot through its build of the oss plugin (5.6's moves blobs into place,
    6.8's writes them once) into the OSS server; the destination reads it back through its own build;
    migrator verifies the blobs through the OSS API."""
    prefix = f"oss{source.replace('.', '')}-{destination.replace('.', '')}"
    plan = versions_bed.write_plan(
        tmp_path,
        source,
        destination,
        name=prefix,
        snapshot={"indices": ["orders"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": f"{prefix}-$1"},
    )
    writes_before = versions_bed.oss.stats()["requests_by_op"].get("PutObject", 0)
    cli(versions_bed, "apply", str(plan), "--yes", "--poll", "0.5")

    assert counts(versions_bed, destination, f"{prefix}-orders") == {
        f"{prefix}-orders": counts(versions_bed, source, "orders")["orders"]
    }
    assert versions_bed.oss.stats()["requests_by_op"].get("PutObject", 0) > writes_before
    repository = yaml.safe_load(plan.read_text())["repository"]["name"]
    for alias in (source, destination):
        client = versions_bed.client(alias)
        try:
            assert client.get(build_path("_snapshot", repository))[repository]["type"] == "oss", alias
        finally:
            client.close()


REFUSED = [
    ("5.6", "7.17", "skipping-a-major"),
    ("7.17", "opensearch-2.19", "elasticsearch-after-the-fork-to-opensearch"),
    ("6.8", "opensearch-2.19", "too-old-for-opensearch"),
    ("opensearch-1.3", "7.17", "opensearch-to-elasticsearch"),
]


@pytest.mark.parametrize(("source", "destination", "rule"), REFUSED, ids=[f"{s}-{d}" for s, d, _ in REFUSED])
def test_refused_pair_stops_the_dry_run_naming_the_rule(versions_bed, tmp_path, source, destination, rule):
    plan = versions_bed.write_plan(tmp_path, source, destination, repository_type="fs", snapshot={"indices": ["*"]})
    result = cli(versions_bed, "plan", str(plan), check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"rule '{rule}'" in result.stderr and "way out:" in result.stderr


@pytest.mark.parametrize(
    ("source", "destination", "created"), [("6.8", "opensearch-2.19", "6.8.23"), ("5.6", "opensearch-1.3", "5.6.16")]
)
def test_opensearch_really_cannot_restore_an_index_created_too_early(
    versions_bed, tmp_path, source, destination, created
):
    """The fact behind `too-old-for-opensearch`, shown without migrator: the source's snapshot of an index
    it created fails to restore on OpenSearch (2.x reads 7.x+ indices, 1.x 6.x+)."""
    location = str(versions_bed.bucket_dir / f"raw-{uuid.uuid4().hex[:8]}")
    writer, reader = versions_bed.client(source), versions_bed.client(destination)
    try:
        writer.request("PUT", "/_snapshot/raw", {"type": "fs", "settings": {"location": location}})
        writer.request("PUT", "/_snapshot/raw/one?wait_for_completion=true", {"indices": "orders"})
        reader.request("PUT", "/_snapshot/raw", {"type": "fs", "settings": {"location": location, "readonly": True}})
        body = {"indices": "orders", "rename_pattern": "(.+)", "rename_replacement": "raw-$1"}
        status, answer = reader.request("POST", "/_snapshot/raw/one/_restore", body, ok=(200, 400, 500))
    finally:
        writer.close()
        reader.close()
    assert status != 200, answer
    assert "created" in str(answer) and created in str(answer)


def test_old_sources_validate_a_sample_in_batches_and_plan_beside_a_closed_index(versions_bed, tmp_path):
    """Reported by breaker5. 5.6 -> 6.8 in batches of two with `validate.sample_docs`: 5.6's `random_score`
    knows no `field` (the dry run passed, every validation failed "random_score query does not support
    [field]"). 6.8 -> 7.10 beside a closed index on the source: discovery read the closed indices' statistics
    with `forbid_closed_indices`, which 6.8 refuses (400: the plan of any other index failed too), and a
    closed index selected with `restore_closed` passed the dry run though 6.8 cannot snapshot it."""
    prefix = "b5old"
    plan = versions_bed.write_plan(
        tmp_path,
        "5.6",
        "6.8",
        name=prefix,
        snapshot={"indices": ["logs-*", "orders"], "exclude": ["logs-debug"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": f"{prefix}-$1", "batch_indices": 2},
        validate={"sample_docs": 5},
    )
    cli(versions_bed, "apply", str(plan), "--yes", "--poll", "0.5")
    sent = request_events(plan)
    assert {e.step for e in sent if e.data["path"].startswith("/_snapshot/")} >= {
        "restore.batch[1]",
        "restore.batch[2]",
    }
    assert len([e for e in sent if e.data["path"].endswith("/_mget")]) == 3  # each index's sample compared
    expected = {f"{prefix}-{name}": n for name, n in counts(versions_bed, "5.6", "logs-*,orders").items()}
    assert counts(versions_bed, "6.8", f"{prefix}-*") == {k: v for k, v in expected.items() if "debug" not in k}

    closed = "b5-closed"
    client = versions_bed.client("6.8")
    client.request("PUT", build_path(closed), {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    client.request("POST", build_path(closed, "_close"))
    try:
        beside = versions_bed.write_plan(
            tmp_path / "beside",
            "6.8",
            "7.10",
            name="b5beside",
            snapshot={"indices": ["orders"]},
            restore={"rename_pattern": "(.+)", "rename_replacement": "b5beside-$1"},
        )
        assert "orders -> b5beside-orders" in cli(versions_bed, "plan", str(beside)).stdout
        selected = versions_bed.write_plan(
            tmp_path / "selected",
            "6.8",
            "7.10",
            name="b5closed",
            snapshot={"indices": [closed], "closed_indices": "restore_closed"},
        )
        refused = cli(versions_bed, "plan", str(selected), check=False)
    finally:
        client.request("DELETE", build_path(closed))
        client.close()
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "snapshot.closed_indices" in refused.stderr and "cannot snapshot a closed index" in refused.stderr
    assert "POST <index>/_open" in refused.stderr
