"""The test bed's `oss` repository type on real nodes: Alibaba Cloud's document's own requests, and a
migration whose chunked blobs (`.partN`) migrator verifies byte for byte through the OSS server."""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrator.clients.es import EsClient
from migrator.sandbox import nodes
from migrator.sandbox.distributions import Distribution, DistributionError, resolve_version
from migrator.sandbox.repository_plugin import PLUGIN_NAME, generation, plugin_dir
from tests.conftest import BUCKET, TESTS_ROOT
from tests.helpers import cli, counts

DOCUMENT = Path(__file__).with_name("document_requests.console")
NODE = "8"


def document_requests() -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, body) of each request in document_requests.console, in order."""
    text = "\n".join(line for line in DOCUMENT.read_text().splitlines() if not line.startswith("#"))
    requests = []
    for block in re.split(r"\n\s*\n", text.strip()):
        first, _, body = block.partition("\n")
        method, path = first.split(maxsplit=1)
        requests.append((method, "/" + path.lstrip("/"), json.loads(body) if body.strip() else None))
    return requests


def on_test_bed(body: dict[str, Any] | None, bed: Any, base_path: str) -> dict[str, Any] | None:
    """The document's placeholders replaced by the test bed's endpoint, keys and bucket."""
    if body is None or "settings" not in body:
        return body
    placeholders = {
        "endpoint": bed.oss.endpoint,
        "access_key_id": bed.key_id,
        "secret_access_key": bed.secret,
        "bucket": BUCKET,
        "base_path": base_path,
    }
    return {**body, "settings": {**body["settings"], **placeholders}}


def wait_for(client: EsClient, path: str, done: Any, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = client.get(path)
        if done(answer):
            return answer
        time.sleep(0.5)
    raise AssertionError(f"GET {path} did not reach the expected state in {timeout_s:.0f} s")


def test_each_version_has_its_interface_generation() -> None:
    assert [generation(resolve_version(v)) for v in ("5.6", "6.8", "7.10", "7.17", "8", "9")] == [
        ("es5_6", 11),
        ("es6_8", 11),
        ("es7_10", 11),
        ("es7_17", 11),
        ("es8_19", 17),
        ("es9_5", 21),
    ]
    with pytest.raises(DistributionError, match="no sources for Elasticsearch 6.7.0"):
        generation(Distribution("6.7.0"))


def test_a_built_plugin_describes_itself_for_its_node(tmp_path: Path) -> None:
    for alias, policy in (
        ("5.6", "plugin-security.policy"),
        ("6.8", "plugin-security.policy"),
        ("7.17", "plugin-security.policy"),
        ("8", "entitlement-policy.yaml"),
    ):
        dist = resolve_version(alias)
        built = plugin_dir(dist, TESTS_ROOT / "dist" / f"elasticsearch-{dist.version}")
        descriptor = dict(
            line.split("=", 1) for line in (built / "plugin-descriptor.properties").read_text().splitlines()
        )
        assert (descriptor["name"], descriptor["elasticsearch.version"]) == (PLUGIN_NAME, dist.version)
        assert (built / policy).is_file() and (built / "aliyun-sdk-oss-3.18.5.jar").is_file()
        assert plugin_dir(dist, TESTS_ROOT / "dist" / f"elasticsearch-{dist.version}") == built  # cached


def test_a_node_with_plugins_runs_from_a_home_of_its_own(tmp_path: Path) -> None:
    shared = tmp_path / "dist" / "elasticsearch-x"
    (shared / "lib").mkdir(parents=True)
    (shared / "lib" / "core.jar").write_bytes(b"jar")
    (shared / "plugins").mkdir()
    plugin = tmp_path / "built" / PLUGIN_NAME
    plugin.mkdir(parents=True)
    (plugin / "plugin-descriptor.properties").write_text("name=x\n")
    layout = nodes.NodeLayout(
        "source", resolve_version("7.17"), shared, tmp_path / "sandbox" / "source", 1, 2, [], plugins=[plugin]
    )
    home = nodes.prepare_home(layout)
    assert home == tmp_path / "sandbox" / "homes" / "source"
    assert (home / "lib" / "core.jar").stat().st_ino == (shared / "lib" / "core.jar").stat().st_ino  # a hard link
    assert (home / "plugins" / PLUGIN_NAME / "plugin-descriptor.properties").is_file()
    assert list((shared / "plugins").iterdir()) == []  # the shared distribution is unchanged
    assert nodes.prepare_home(layout) == home  # again: same home, plugins installed afresh


@pytest.mark.cluster
def test_the_documents_requests_on_an_oss_repository(testbed):
    client = testbed.client(NODE)
    base_path = f"doc-{uuid.uuid4().hex[:8]}/"
    writes_before = testbed.oss.stats()["requests_by_op"].get("PutObject", 0)
    for index, docs in (("index_1", 30), ("index_2", 20)):
        client.request("PUT", f"/{index}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
        lines = "".join(f'{{"index":{{}}}}\n{{"n":{n}}}\n' for n in range(docs))
        client.request("POST", f"/{index}/_bulk?refresh=true", lines.encode())
    answers = {}
    try:
        for method, path, body in document_requests():
            # the document restores index_1 as restored_index_1 and then follows "restored_index_3"
            path = path.replace("restored_index_3", "restored_index_1")
            status, answer = client.request(method, path, on_test_bed(body, testbed, base_path))
            assert status == 200, (method, path, answer)
            answers[f"{method} {path}"] = answer
            if path == "/_snapshot/my_backup/snapshot_2" and method == "PUT":  # taken in the background
                wait_for(client, path, lambda a: a["snapshots"][0]["state"] == "SUCCESS")
                status_answer = client.get("/_snapshot/my_backup/snapshot_2/_status")
                assert status_answer["snapshots"][0]["state"] == "SUCCESS"
            if method == "POST" and path.endswith("/_restore"):  # restored in the background
                client.get("/_cluster/health/restored_index_1?wait_for_status=green&timeout=120s")
                assert counts(testbed, NODE, "restored_index_1") == {"restored_index_1": 30}

        registered = answers["GET /_snapshot/my_backup"]["my_backup"]
        assert registered["type"] == "oss"
        assert registered["settings"]["chunk_size"] == "500mb"  # the POST updated the registration
        assert not registered["settings"].keys() & {"access_key_id", "secret_access_key", "security_token"}
        for answer in answers.values():
            assert testbed.secret not in json.dumps(answer)
        snapshot_1 = answers["PUT /_snapshot/my_backup/snapshot_1?wait_for_completion=true"]["snapshot"]
        assert snapshot_1["state"] == "SUCCESS" and "index_1" in snapshot_1["indices"]
        assert {s["snapshot"] for s in answers["GET /_snapshot/my_backup/_all"]["snapshots"]} >= {"snapshot_1"}
        recovery = answers["GET /restored_index_1/_recovery"]["restored_index_1"]["shards"][0]
        assert recovery["type"] == "SNAPSHOT" and recovery["source"]["repository"] == "my_backup"
        status, _ = client.request("GET", "/_snapshot/my_backup/snapshot_2", ok=(200, 404))
        assert status == 404
        # a setting out of range is refused, naming it and the range
        too_big = on_test_bed(document_requests()[0][2], testbed, "bad/")
        too_big["settings"]["chunk_size"] = "2gb"
        status, refused = client.request("PUT", "/_snapshot/bad_backup", too_big, ok=(400, 500))
        assert "chunk_size must be between 1mb and 1gb" in json.dumps(refused)
        # Elasticsearch wrote the repository through the OSS server, into the bucket's base_path
        assert (testbed.bucket_dir / base_path / "index.latest").is_file()
        assert testbed.oss.stats()["requests_by_op"].get("PutObject", 0) > writes_before
    finally:
        for index in ("index_1", "index_2", "restored_index_1"):
            client.request("DELETE", f"/{index}", ok=(200, 404))
        client.request("DELETE", "/_snapshot/my_backup/snapshot_1", ok=(200, 404))
        client.request("DELETE", "/_snapshot/my_backup", ok=(200, 404))
        client.request("DELETE", "/_snapshot/bad_backup", ok=(200, 404))
        client.close()


@pytest.mark.cluster
def test_chunked_blobs_migrate_and_verify_in_full(testbed, tmp_path):
    index = f"chunky-{uuid.uuid4().hex[:6]}"
    source = testbed.client("7.17")
    source.request("PUT", f"/{index}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    lines = "".join(f'{{"index":{{}}}}\n{{"text":"{secrets.token_hex(300)}"}}\n' for _ in range(8000))
    source.request("POST", f"/{index}/_bulk?refresh=true", lines.encode(), timeout_s=120)  # ~5 MB, incompressible
    source.request("POST", f"/{index}/_forcemerge?max_num_segments=1", timeout_s=300)
    plan = testbed.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="chunked",
        snapshot={"indices": [index], "name": "chunked-snapshot"},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
    )
    document = yaml.safe_load(plan.read_text())
    document["repository"]["settings"]["chunk_size"] = "1mb"  # the plugin's smallest, as Alibaba's
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        cli(testbed, "apply", str(plan), "--yes", "--poll", "0.5")

        assert counts(testbed, "8", f"moved-{index}") == {f"moved-{index}": 8000}
        repository_dir = testbed.bucket_dir / document["storage"]["base_path"]
        parts = sorted(p.name for p in repository_dir.glob("indices/*/*/__*.part*"))
        assert any(name.endswith(".part1") for name in parts), parts  # files over 1 MB were cut into chunks
        verified = cli(testbed, "verify", "--plan", str(plan), "--snapshot", "chunked-snapshot", "--full", "--json")
        assert json.loads(verified.stdout)["restorable"] is True, verified.stdout
    finally:
        source.request("DELETE", f"/{index}", ok=(200, 404))
        source.close()
        destination = testbed.client("8")
        destination.request("DELETE", f"/moved-{index}", ok=(200, 404))
        destination.close()


@pytest.mark.cluster
def test_blobs_over_a_part_go_up_as_multipart_uploads(testbed):
    """The plugin writes a blob over OssStore.PART_BYTES (8 MB) as an OSS multipart upload."""
    index = f"large-{uuid.uuid4().hex[:6]}"
    client = testbed.client("8")
    before = testbed.oss.stats()["requests_by_op"]
    registration = {"type": "oss", "settings": testbed.repository_settings(f"multipart-{index}")}
    registration["settings"].update(registration["settings"].pop("extra"), access_key_id=testbed.key_id)
    registration["settings"]["secret_access_key"] = testbed.secret
    try:
        client.request("PUT", f"/{index}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
        for _ in range(4):  # 4 x 4,000 documents of 800 random characters: about 13 MB that LZ4 cannot shrink
            lines = "".join(f'{{"index":{{}}}}\n{{"text":"{secrets.token_urlsafe(600)}"}}\n' for _ in range(4000))
            client.request("POST", f"/{index}/_bulk", lines.encode(), timeout_s=120)
        client.request("POST", f"/{index}/_forcemerge?max_num_segments=1", timeout_s=300)
        client.request("PUT", "/_snapshot/multipart_backup", registration)
        taken = client.request(
            "PUT", "/_snapshot/multipart_backup/large?wait_for_completion=true", {"indices": index}, timeout_s=300
        )[1]
        assert taken["snapshot"]["state"] == "SUCCESS"
        after = testbed.oss.stats()["requests_by_op"]
        assert after.get("CompleteMultipartUpload", 0) > before.get("CompleteMultipartUpload", 0)
        restore = {"indices": index, "rename_pattern": "(.+)", "rename_replacement": "back-$1"}
        client.request("POST", "/_snapshot/multipart_backup/large/_restore?wait_for_completion=true", restore)
        assert counts(testbed, "8", f"back-{index}") == {f"back-{index}": 16000}
    finally:
        for name in (index, f"back-{index}"):
            client.request("DELETE", f"/{name}", ok=(200, 404))
        client.request("DELETE", "/_snapshot/multipart_backup/large", ok=(200, 404))
        client.request("DELETE", "/_snapshot/multipart_backup", ok=(200, 404))
        client.close()
