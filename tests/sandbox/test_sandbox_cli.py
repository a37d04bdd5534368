"""`migrator sandbox` end to end: real nodes, the OSS server, a snapshot seen through oss2, down."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import oss2
import pytest

from migrator.clients.es import EsClient
from migrator.clients.replication import BucketReplication
from migrator.sandbox.distributions import KNOWN_VERSIONS
from migrator.sandbox.sandbox_plans import printable


def migrator(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "migrator", *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"migrator {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def registration(document: dict, entry: str = "repository", **extra: object) -> dict:
    """A registration of the sandbox's repository (or its replica) as sandbox.json describes it, with the
    key pair the document keeps apart (an `oss` repository needs it; `fs` ignores it)."""
    repository = document[entry]
    settings = {**repository["settings"], **extra}
    if repository["type"] == "oss":
        settings.update(
            access_key_id=document["oss"]["access_key_id"], secret_access_key=document["oss"]["access_key_secret"]
        )
    return {"type": repository["type"], "settings": settings}


def test_unknown_version_names_the_known_ones(tmp_path):
    result = migrator("sandbox", "up", "--source-version", "6.2", "--dir", str(tmp_path), check=False)
    assert result.returncode == 2
    assert "unknown version '6.2'" in result.stderr
    for version in KNOWN_VERSIONS.values():
        assert version in result.stderr


def test_a_folder_of_other_cluster_sizes_is_bad_input_exit_2(tmp_path):
    """SandboxError carries its exit code (errors.SandboxRefused: 2) and cli/errors.py maps it; the size
    check refuses before anything starts, so no node is needed."""
    (tmp_path / "destination").mkdir()
    (tmp_path / "destination" / "nodes").write_text("3")
    result = migrator("sandbox", "up", "--dir", str(tmp_path), "--destination-nodes", "1", check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ")
    assert "cluster of 3 node(s), not 1; start it with --destination-nodes 3" in result.stderr
    assert "Traceback" not in result.stderr


def test_seed_without_a_sandbox_needs_attention_exit_3(tmp_path):
    result = migrator("sandbox", "seed", "--dir", str(tmp_path), check=False)
    assert result.returncode == 3, result.stderr
    assert f"error: no sandbox in {tmp_path.resolve()}; start one with `migrator sandbox up`" in result.stderr


@pytest.mark.cluster
def test_sandbox_up_seed_snapshot_through_oss_and_down():
    folder = Path("/var/tmp/migrator-tests") / f"sandbox-{uuid.uuid4().hex[:8]}"
    try:
        up = migrator("sandbox", "up", "--dir", str(folder))
        document = json.loads((folder / "sandbox.json").read_text())  # the secret in full, mode 600
        assert oct(os.stat(folder / "sandbox.json").st_mode & 0o777) == "0o600"
        assert document["oss"]["access_key_secret"] not in up.stdout + up.stderr  # printed as its variable
        assert json.loads(up.stdout) == printable(document)
        assert document["source"]["version"] == KNOWN_VERSIONS["7.17"]
        assert document["destination"]["version"] == KNOWN_VERSIONS["8"]
        assert Path(document["plan"]).is_file()

        again = migrator("sandbox", "up", "--dir", str(folder))
        assert "already running" in again.stderr
        assert json.loads(again.stdout) == printable(document)

        counts = json.loads(migrator("sandbox", "seed", "--docs", "300", "--dir", str(folder)).stdout)
        assert counts["orders"] == 300 and counts[".sandbox-settings"] == 30

        status = json.loads(migrator("sandbox", "status", "--json", "--dir", str(folder)).stdout)
        assert status["source"]["health"] == "green" and status["destination"]["health"] == "green"

        source = EsClient(document["source"]["url"], label="source")
        destination = EsClient(document["destination"]["url"], label="destination")
        assert document["repository"]["type"] == "oss"
        assert "access_key_id" not in document["repository"]["settings"]
        source.request("PUT", "/_snapshot/cli_test", registration(document))
        source.request(
            "PUT",
            "/_snapshot/cli_test/snap-1?wait_for_completion=true",
            {"indices": "orders,logs-*", "include_global_state": False},
        )

        oss = document["oss"]
        bucket = oss2.Bucket(
            oss2.AuthV4(oss["access_key_id"], oss["access_key_secret"]),
            oss["endpoint"],
            oss["bucket"],
            region=oss["region"],
        )
        prefix = oss["base_path"] + "/"
        keys = [obj.key[len(prefix) :] for obj in oss2.ObjectIteratorV2(bucket, prefix=prefix)]
        assert any(key.startswith("index-") and key[6:].isdigit() for key in keys), keys
        assert any(key.startswith("snap-") and key.endswith(".dat") for key in keys), keys
        assert any(key.startswith("indices/") and "/0/" in key for key in keys), keys

        faulty = json.loads(migrator("sandbox", "faults", "--error-rate", "1", "--dir", str(folder)).stdout)
        assert faulty["error_rate"] == 1.0
        with pytest.raises(oss2.exceptions.ServerError) as refused:
            bucket.get_bucket_info()
        assert refused.value.status == 503
        migrator("sandbox", "faults", "--dir", str(folder))
        assert bucket.get_bucket_info().name == oss["bucket"]

        destination.request("PUT", "/_snapshot/cli_test", registration(document, readonly=True))
        listed = destination.get("/_snapshot/cli_test/_all")["snapshots"]
        assert [snap["snapshot"] for snap in listed] == ["snap-1"]

        # cross-region: the repository replicated to the replica bucket, read there by the destination
        replication = BucketReplication(
            oss["endpoint"], oss["bucket"], oss["access_key_id"], oss["access_key_secret"], region=oss["region"]
        )
        replication.ensure_rule("sandbox-crr", prefix, oss["replica_bucket"], oss["replica_region"])
        written = datetime.now(UTC)
        deadline = time.monotonic() + 60
        while not replication.progress("sandbox-crr").covers(written):
            assert time.monotonic() < deadline, replication.progress("sandbox-crr")
            time.sleep(0.2)
        replica = registration(document, "replica_repository", readonly=True)
        destination.request("PUT", "/_snapshot/cli_replica", replica)
        listed = destination.get("/_snapshot/cli_replica/_all")["snapshots"]
        assert [snap["snapshot"] for snap in listed] == ["snap-1"]
        assert replication.delete_rule("sandbox-crr")

        # the plans `up` wrote beside plan.yaml: a dry run of the cutover, a real cross-region migration
        assert "phase two" in migrator("plan", str(folder / "cutover.yaml")).stdout
        migrator("apply", str(folder / "cross-region.yaml"), "--yes", "--poll", "0.5")
        assert destination.doc_count("replica-orders") == 300
        assert [rule.rule_id for rule in replication.rules() if rule.status != "closing"] == []

        # an index left without primaries (red) does not keep the sandbox down: `up` names it and the fix
        unplaceable = {"settings": {"number_of_replicas": 0, "index.routing.allocation.require._name": "nowhere"}}
        destination.request("PUT", "/left-red?wait_for_active_shards=0", unplaceable)
        source.close()
        destination.close()
        migrator("sandbox", "down", "--dir", str(folder))
        restarted = migrator("sandbox", "up", "--dir", str(folder))
        assert "left-red" in restarted.stderr and "DELETE" in restarted.stderr
        assert json.loads(restarted.stdout)["warnings"]
    finally:
        stopped = migrator("sandbox", "down", "--dir", str(folder), check=False)
        leftovers = processes_mentioning(str(folder))
        shutil.rmtree(folder, ignore_errors=True)
    assert stopped.returncode == 0
    assert "source" in stopped.stdout and "oss" in stopped.stdout
    assert leftovers == []
    assert migrator("sandbox", "status", "--dir", str(folder), check=False).returncode == 3


def test_a_folder_with_data_of_another_version_is_refused(tmp_path):
    folder = tmp_path / "sandbox"
    (folder / "source").mkdir(parents=True)
    (folder / "source" / "es-version").write_text("8.19.21")
    result = migrator("sandbox", "up", "--source-version", "7.17", "--dir", str(folder), check=False)
    assert result.returncode == 1
    assert "holds the data of Elasticsearch 8.19.21, not 7.17.29" in result.stderr
    assert "use another --dir" in result.stderr


@pytest.mark.parametrize("engine", ["process", "docker"])
def test_an_oss_repository_for_a_version_without_the_plugin_is_refused_on_either_engine(tmp_path, engine):
    result = migrator(
        "sandbox", "up", "--engine", engine, "--repository", "oss", "--source-version", "7.10",
        "--destination-version", "opensearch-2.19", "--dir", str(tmp_path), check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "oss repository plugin exists for Elasticsearch 5.6, 6.8 and 7.10 or later only" in result.stderr
    assert "use --repository fs" in result.stderr
