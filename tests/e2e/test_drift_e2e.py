"""Drift of many indices on real nodes (7.17 -> 8): 300 restored targets deleted after a finished migration are
reported in a few lines with one `--redo`, and that command, run as printed, restores exactly those 300 again."""

from __future__ import annotations

import json
import re
import shlex
from concurrent.futures import ThreadPoolExecutor

import pytest

from migrator.clients.es import build_path
from migrator.state import StateStore
from tests.helpers import cli, counts, request_events

pytestmark = pytest.mark.cluster

SOURCES = [f"dr-{number:03d}" for number in range(320)]
GONE = SOURCES[:300]  # their targets deleted on the destination: the drift


@pytest.fixture(scope="module")
def drifting(testbed):
    """320 one-shard indices of one document on 7.17, deleted after this module (with their targets on 8)."""
    client = testbed.client("7.17")
    settings = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda name: client.request("PUT", build_path(name), settings), SOURCES))
        lines = []
        for name in SOURCES:
            lines += [json.dumps({"index": {"_index": name, "_id": "1"}}), json.dumps({"n": 1})]
        client.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), timeout_s=300)
        client.request("POST", build_path("dr-*", "_refresh"))
        yield testbed
    finally:
        client.request("DELETE", build_path("dr-*"), ok=(200, 404))
        client.close()
        destination = testbed.client("8")
        for start in range(0, len(SOURCES), 100):
            names = ",".join(f"drt-{name}" for name in SOURCES[start : start + 100])
            destination.request("DELETE", build_path(names) + "?ignore_unavailable=true", ok=(200, 404))
        destination.close()


def test_300_drifted_indices_are_said_in_a_few_lines_and_the_printed_redo_restores_exactly_them(drifting, tmp_path):
    plan = drifting.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="drift300",
        snapshot={"indices": ["dr-*"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "drt-$1"},
    )
    cli(drifting, "apply", str(plan), "--yes", "--poll", "0.5")
    destination = drifting.client("8")
    try:
        for start in range(0, len(GONE), 100):
            destination.request("DELETE", build_path(",".join(f"drt-{name}" for name in GONE[start : start + 100])))
    finally:
        destination.close()

    drifted = cli(drifting, "resume", str(plan), check=False)
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    report = drifted.stderr.splitlines()
    assert len(report) <= 10, drifted.stderr  # before: two lines per drifted index, 600 here
    assert "drift: 300 done step(s) are no longer as the run left them:" in report
    [kind] = [line for line in report if line.startswith("  restore: 300 (restore[drt-dr-")]  # in the plan's order
    assert "and 297 more); restore[drt-dr-" in kind and "does not exist on the destination" in kind
    [command] = [line.split(": ", 1)[1] for line in report if line.startswith("  to redo them: ")]
    assert command.startswith(f"migrator resume {plan} --redo ")
    status = json.loads(cli(drifting, "status", str(plan), "--json").stdout)
    assert sorted(item["redo"] for item in status["drift"]) == [f"restore[drt-{name}]" for name in GONE]

    store = StateStore(plan.with_name("plan.state.db"))
    before = store.run
    store.close()
    cli(drifting, *shlex.split(command)[1:], "--poll", "0.5")  # the command as printed
    restored = [
        name
        for event in request_events(plan)
        if event.run > before and event.data["method"] == "POST" and re.search(r"/_restore\b", event.data["path"])
        for name in event.data["body"]["indices"].split(",")
    ]
    assert sorted(restored) == GONE  # exactly the drifted ones, each once
    assert counts(drifting, "8", "drt-dr-*") == {f"drt-{name}": 1 for name in SOURCES}
    assert cli(drifting, "resume", str(plan)).returncode == 0  # no drift left
