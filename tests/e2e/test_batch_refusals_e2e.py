"""A restore batch the destination refuses as a whole, on real nodes (7.17 -> 8): the run stops naming the
batch's indices and the reason, and a resume once the cause is gone restores them (migrator/steps/restore_batch.py).
The limit is lowered after the dry run and preflight passed, as another tenant's indices would use it up."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from migrator.clients.es import build_path
from migrator.state import StateStore
from tests.e2e.test_dry_run_e2e import make_index, unique
from tests.helpers import cli, request_events

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("leave_the_clusters_as_found")]
LIMIT = "cluster.max_shards_per_node"


def test_a_batch_refused_by_the_shard_limit_names_its_indices_and_resumes(testbed, tmp_path):
    source, destination = testbed.client("7.17"), testbed.client("8")
    names = [unique("bref") for _ in range(3)]
    for name in names:
        make_index(source, name, 5)
    plan = testbed.write_plan(
        tmp_path, "7.17", "8", snapshot={"indices": names},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1", "batch_indices": 10},
    )  # fmt: skip
    stopped = cli(
        testbed, "apply", str(plan), "--yes", env={"MIGRATOR_FAILPOINT": "restore.batch[1]:acting"}, check=False
    )
    assert stopped.returncode != 0, stopped.stdout + stopped.stderr
    open_shards = destination.get("/_cluster/health")["active_shards"]
    destination.request("PUT", "/_cluster/settings", {"persistent": {LIMIT: max(open_shards, 1)}})
    try:
        refused = cli(testbed, "resume", str(plan), check=False)
        output = refused.stdout + refused.stderr
        assert refused.returncode == 1, output
        targets = sorted(f"moved-{name}" for name in names)
        refusals = [line for line in output.splitlines() if "(in restore.batch[1]) was refused" in line]
        assert refusals and all(target in refusals[0] for target in targets), output
        assert "maximum normal shards open" in output, output
    finally:
        destination.request("PUT", "/_cluster/settings", {"persistent": {LIMIT: None}})
    cli(testbed, "resume", str(plan), "--poll", "0.5")
    report = json.loads(cli(testbed, "report", str(plan), "--format", "json").stdout)
    assert report["status"] == "done", report
    assert sorted(i["target"] for i in report["indices"] if i["destination_docs"] == 5) == targets
    assert all(destination.get(build_path(target, "_count"))["count"] == 5 for target in targets)


def test_a_batch_whose_shards_all_failed_is_not_reported_restored_and_heals_on_resume(testbed, tmp_path):
    source, destination = testbed.client("7.17"), testbed.client("8")
    names = [unique("bfail") for _ in range(2)]
    for name in names:
        make_index(source, name, 4)
    plan = testbed.write_plan(
        tmp_path, "7.17", "8", snapshot={"indices": names},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
    )  # fmt: skip
    failpoint = {"MIGRATOR_FAILPOINT": "restore.batch[1]:acting"}
    assert cli(testbed, "apply", str(plan), "--yes", env=failpoint, check=False).returncode != 0
    destination.request("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.enable": "none"}})
    try:
        failed = cli(testbed, "resume", str(plan), check=False)
        output = failed.stdout + failed.stderr
        assert failed.returncode == 1, output
        assert "indices restored (the batch's request answered)" not in output, output
        assert "answered with 2 failed shard(s)" in output, output
        assert "cluster.routing.allocation.enable" in output, output  # a member's recovery step says why
    finally:
        destination.request("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.enable": None}})
    cli(testbed, "resume", str(plan), "--poll", "0.5")
    report = json.loads(cli(testbed, "report", str(plan), "--format", "json").stdout)
    assert report["status"] == "done" and all(i["destination_docs"] == 4 for i in report["indices"]), report


def test_failed_restores_of_batches_are_restored_again_in_one_request_per_batch_on_resume(testbed, tmp_path):
    # Reported on 6.8 -> 7.10 and 7.17 -> 8: after an allocation exclude failed the batches' restores, the resumed
    # run's recovery steps each deleted and restored their own index (one DELETE and one restore per index).
    source, destination = testbed.client("7.17"), testbed.client("8")
    names = [unique("bheal") for _ in range(30)]
    for name in names:
        make_index(source, name, 3)
    plan = testbed.write_plan(
        tmp_path, "7.17", "8", snapshot={"indices": names},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1", "batch_indices": 10},
    )  # fmt: skip
    cli(testbed, "apply", str(plan), "--yes", "--until", "restore.batch[1]", "--poll", "0.5")  # batch 1 answered
    [node] = [row["name"] for row in destination.get("/_cat/nodes?format=json&h=name")]
    exclude = "cluster.routing.allocation.exclude._name"
    destination.request("PUT", "/_cluster/settings", {"persistent": {exclude: node}})
    try:
        failed = cli(testbed, "resume", str(plan), "--poll", "0.5", check=False)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "failed" in failed.stderr, failed.stderr
    finally:
        destination.request("PUT", "/_cluster/settings", {"persistent": {exclude: None}})
    store = StateStore(plan.with_name("plan.state.db"))
    failed_run = store.run
    store.close()
    cli(testbed, "resume", str(plan), "--poll", "0.5")
    store = StateStore(plan.with_name("plan.state.db"))
    healing_run = store.run
    store.close()
    assert healing_run != failed_run
    sent = [e for e in request_events(plan, healing_run) if e.data["method"] in ("POST", "DELETE")]
    restores = [e for e in sent if e.data["path"].split("?")[0].endswith("/_restore")]
    by_step = Counter(e.step for e in restores)
    # one restore request per batch (its failed members restored again together, or its members first restored)
    assert restores and all(step.startswith("restore.batch[") for step in by_step), by_step
    assert max(by_step.values()) == 1, by_step
    deletes = [e for e in sent if e.data["method"] == "DELETE"]
    # the failed members a batch owns, one DELETE per batch, logged under the batch (its runbook entry)
    assert 1 <= len(deletes) <= len(restores), [e.data["path"] for e in deletes]
    assert all(e.step.startswith("restore.batch[") for e in deletes), [e.step for e in deletes]
    report = json.loads(cli(testbed, "report", str(plan), "--format", "json").stdout)
    assert report["status"] == "done", report["status"]
    assert len(report["indices"]) == 30 and all(i["destination_docs"] == 3 for i in report["indices"]), report
