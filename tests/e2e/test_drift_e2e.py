"""Drift of many indices on real nodes (7.17 -> 8): 300 restored targets deleted after a finished migration (a
range of names, or scattered among the others) are reported in a few lines with one `--redo` (patterns, or
`drifted`), and that command, run as printed, restores exactly those 300 again."""

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
RANGE = SOURCES[:300]  # targets deleted on the destination (the drift): a range, said by patterns
SCATTERED = [name for number, name in enumerate(SOURCES) if number % 16]  # 300 among the 320: `--redo drifted`
PREFIXES = ("drt", "drs")  # the targets' prefixes, one per case


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
        for prefix in PREFIXES:
            for start in range(0, len(SOURCES), 100):
                names = ",".join(f"{prefix}-{name}" for name in SOURCES[start : start + 100])
                destination.request("DELETE", build_path(names) + "?ignore_unavailable=true", ok=(200, 404))
        destination.close()


@pytest.mark.parametrize(
    ("prefix", "gone", "redo"),
    [("drt", RANGE, "'restore[drt-dr-0*],restore[drt-dr-1*],restore[drt-dr-2*]'"), ("drs", SCATTERED, "'drifted'")],
    ids=["a-range", "scattered"],
)
def test_300_drifted_indices_are_said_in_a_few_lines_and_the_printed_redo_restores_exactly_them(
    drifting, tmp_path, prefix, gone, redo
):
    plan = drifting.write_plan(
        tmp_path,
        "7.17",
        "8",
        name="drift300",
        snapshot={"indices": ["dr-*"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": f"{prefix}-$1"},
    )
    cli(drifting, "apply", str(plan), "--yes", "--poll", "0.5")
    destination = drifting.client("8")
    try:
        for start in range(0, len(gone), 100):
            names = ",".join(f"{prefix}-{name}" for name in gone[start : start + 100])
            destination.request("DELETE", build_path(names))
    finally:
        destination.close()

    drifted = cli(drifting, "resume", str(plan), check=False)
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    report = drifted.stderr.splitlines()
    assert len(report) <= 10, drifted.stderr  # before: two lines per drifted index, 600 here
    assert "drift: 300 done step(s) are no longer as the run left them:" in report
    [kind] = [line for line in report if line.startswith(f"  restore: 300 (restore[{prefix}-dr-")]  # plan's order
    assert f"and 297 more); restore[{prefix}-dr-" in kind and "does not exist on the destination" in kind
    [command] = [line.split(": ", 1)[1] for line in report if line.startswith("  to redo them: ")]
    assert command == f"migrator resume {plan} --redo {redo}"
    status = json.loads(cli(drifting, "status", str(plan), "--json").stdout)
    assert sorted(item["redo"] for item in status["drift"]) == [f"restore[{prefix}-{name}]" for name in gone]

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
    assert sorted(restored) == gone  # exactly the drifted ones, each once
    assert counts(drifting, "8", f"{prefix}-dr-*") == {f"{prefix}-{name}": 1 for name in SOURCES}
    assert cli(drifting, "resume", str(plan)).returncode == 0  # no drift left
