"""Two-phase migrations on real nodes: documents written continuously during phase one, the cutover
(write block, incremental snapshot, restore over the closed destination indices, exact counts,
alias switch), its figures, rollback, and kill -9 during phase two followed by resume or rollback.

Each test creates source indices of its own on 7.17: a cutover blocks writes on its sources, which
must not touch the indices other tests share."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from migrator.clients.es import EsError, build_path
from migrator.state import StateStore
from tests.helpers import background, cli, counts, wait_for_checkpoint

pytestmark = pytest.mark.cluster

SOURCE, DESTINATION = "7.17", "8"
CREATED: list[str] = []  # source indices the tests made: removed after each test


@pytest.fixture(autouse=True)
def remove_created_sources(seeded):
    """The shared source keeps only the seeded indices (other tests select `*`)."""
    yield
    client = seeded.client(SOURCE)
    try:
        while CREATED:
            client.request("DELETE", build_path(CREATED.pop()), ok=(200, 404))
    finally:
        client.close()


class Writer(threading.Thread):
    """Indexes documents into the source indices, one small bulk every few milliseconds, until stopped;
    counts what the source accepted and what it refused because of the write block."""

    def __init__(self, bed, indices: list[str]) -> None:
        super().__init__(daemon=True)
        self.client = bed.client(SOURCE)
        self.indices = indices
        self.accepted = 0
        self.blocked = 0
        self.stop = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            index = self.indices[number % len(self.indices)]
            try:
                self.client.request(
                    "POST", build_path(index, "_doc"), {"n": number, "text": f"live {number}"}, ok=(200, 201)
                )
                self.accepted += 1
            except EsError as exc:
                if "cluster_block_exception" not in str(exc) and "blocked" not in str(exc):
                    raise
                self.blocked += 1
            number += 1
            time.sleep(0.01)

    def finish(self) -> None:
        self.stop.set()
        self.join(30)
        self.client.close()


def make_sources(bed, prefix: str, docs: int = 3000) -> list[str]:
    """Two source indices of this test (2 shards and 1 shard), with some documents each."""
    client = bed.client(SOURCE)
    names = [f"{prefix}-events", f"{prefix}-audit"]
    CREATED.extend(names)
    for shards, name in zip((2, 1), names, strict=True):
        client.request("PUT", build_path(name), {"settings": {"number_of_shards": shards, "number_of_replicas": 0}})
        lines = []
        for number in range(docs):
            lines.append(json.dumps({"index": {"_index": name, "_id": f"seed-{number}"}}))
            lines.append(json.dumps({"n": number, "text": "seeded document " * 10 + str(number)}))
        client.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), timeout_s=120)
        client.request("POST", build_path(name, "_refresh"))
    client.close()
    return names


def cutover_plan(bed, tmp_path: Path, prefix: str, names: list[str]) -> Path:
    return bed.write_plan(
        tmp_path,
        SOURCE,
        DESTINATION,
        name=prefix,
        snapshot={"indices": names},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
        cutover={"enabled": True},
        finish={"aliases": {f"{prefix}-live": [names[0]], f"{prefix}-all": names}},
    )


def write_blocked(bed, names: list[str]) -> dict[str, bool]:
    client = bed.client(SOURCE)
    try:
        body = client.get(
            build_path(",".join(names), "_settings", "index.blocks.write", params={"flat_settings": True})
        )
        return {
            name: str(body.get(name, {}).get("settings", {}).get("index.blocks.write")).lower() == "true"
            for name in names
        }
    finally:
        client.close()


def aliases_on_destination(bed, prefix: str) -> dict[str, list[str]]:
    client = bed.client(DESTINATION)
    try:
        status, body = client.request("GET", build_path("_alias", f"{prefix}-*"), ok=(200, 404))
        found: dict[str, list[str]] = {}
        for index, entry in (body if status == 200 else {}).items():
            for alias in entry.get("aliases", {}):
                found.setdefault(alias, []).append(index)
        return {alias: sorted(indices) for alias, indices in found.items()}
    finally:
        client.close()


def exact_counts(bed, prefix: str, names: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    client = bed.client(SOURCE)
    client.request("POST", build_path(",".join(names), "_refresh"))
    client.close()
    source = {f"moved-{name}": count for name, count in counts(bed, SOURCE, ",".join(names)).items()}
    return source, counts(bed, DESTINATION, f"moved-{prefix}-*")


def test_cutover_with_continuous_writes_then_rollback(seeded, tmp_path):
    prefix = "cut1"
    names = make_sources(seeded, prefix)
    plan = cutover_plan(seeded, tmp_path, prefix, names)
    writer = Writer(seeded, names)
    writer.start()
    try:
        phase_one = cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
        assert "phase one done" in phase_one.stdout
        assert f"migrator apply {plan} --phase cutover" in phase_one.stdout
        assert not any(write_blocked(seeded, names).values())
        accepted_before_cutover = writer.accepted
        time.sleep(1.0)  # the source keeps taking writes between the phases
        assert writer.accepted > accepted_before_cutover
        assert aliases_on_destination(seeded, prefix) == {}

        cli(seeded, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.5")
        blocked_then = writer.blocked
        time.sleep(0.5)
        assert writer.blocked > blocked_then, "writes to the source must be refused after the cutover"
    finally:
        writer.finish()

    source, destination = exact_counts(seeded, prefix, names)
    assert destination == source
    assert sum(source.values()) == 2 * 3000 + writer.accepted
    assert all(write_blocked(seeded, names).values())
    assert aliases_on_destination(seeded, prefix) == {
        f"{prefix}-all": sorted(f"moved-{name}" for name in names),
        f"{prefix}-live": [f"moved-{names[0]}"],
    }

    report = json.loads(cli(seeded, "report", str(plan), "--format", "json").stdout)
    cutover = report["cutover"]
    print("cutover figures:", json.dumps(cutover, indent=2))
    full, incremental = cutover["full_snapshot"], cutover["incremental_snapshot"]
    assert incremental["incremental_bytes"] < full["incremental_bytes"]
    # No bound on the totals: merges during the continuous writes can make the later snapshot's smaller.
    assert incremental["total_bytes"] > 0
    assert 0 < cutover["restore_over"]["reused_bytes"] < cutover["restore_over"]["bytes"]
    assert cutover["write_block"]["ended_by"] == "cutover"
    assert 0 < cutover["write_block"]["seconds"] < 120
    assert {i["destination_docs"] for i in report["indices"]} == set(source.values())
    markdown = cli(seeded, "report", str(plan)).stdout
    assert "Writes blocked on the source" in markdown and "Incremental snapshot" in markdown

    rolled = cli(seeded, "rollback", str(plan))
    assert "writes allowed again on the source" in rolled.stdout
    assert not any(write_blocked(seeded, names).values())
    assert aliases_on_destination(seeded, prefix) == {}
    client = seeded.client(SOURCE)
    client.request("POST", build_path(names[0], "_doc"), {"n": -1, "text": "after the rollback"}, ok=(201,))
    client.close()
    status = json.loads(cli(seeded, "status", str(plan), "--json").stdout)
    assert status["status"] == "rolled back"

    # A second cutover takes a new incremental snapshot and ends equal again.
    cli(seeded, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.5")
    source, destination = exact_counts(seeded, prefix, names)
    assert destination == source


def test_cutover_refused_before_the_bulk_copy(seeded, tmp_path):
    names = make_sources(seeded, "cut2", docs=10)
    plan = cutover_plan(seeded, tmp_path, "cut2", names)
    early = cli(seeded, "apply", str(plan), "--phase", "cutover", "--yes", check=False)
    assert early.returncode == 3
    assert "bulk copy is not finished" in early.stderr
    assert not any(write_blocked(seeded, names).values())
    plain = seeded.write_plan(tmp_path / "plain", SOURCE, DESTINATION, name="cut2p", snapshot={"indices": names})
    refused = cli(seeded, "apply", str(plain), "--phase", "cutover", "--yes", check=False)
    assert refused.returncode == 2
    assert "cutover.enabled" in refused.stderr


def cut_over_killed_at(bed, plan: Path, failpoint: str) -> None:
    """`apply --phase cutover`, killed with SIGKILL at the failpoint (`<step>:<acting|acted|done>`)."""
    killed = cli(
        bed,
        "apply",
        str(plan),
        "--phase",
        "cutover",
        "--yes",
        "--poll",
        "0.3",
        check=False,
        env={"MIGRATOR_FAILPOINT": failpoint},
    )
    assert killed.returncode == -signal.SIGKILL, f"failpoint {failpoint} never hit:\n{killed.stderr}"


KILL_POINTS = [
    ("cutover.block", "acted"),
    ("cutover.snapshot.create", "acted"),
    ("cutover.restore[{t}]", "acted"),
    ("cutover.recovery[{t}]", "done"),
    ("cutover.validate[{t}]", "done"),
    ("cutover.switch", "acting"),
]


@pytest.mark.parametrize(("step", "point"), KILL_POINTS, ids=[f"{s}:{p}" for s, p in KILL_POINTS])
def test_kill_during_cutover_then_resume(seeded, tmp_path, step, point):
    prefix = f"cutk{KILL_POINTS.index((step, point))}"
    names = make_sources(seeded, prefix, docs=500)
    plan = cutover_plan(seeded, tmp_path, prefix, names)
    writer = Writer(seeded, names)
    writer.start()
    try:
        cli(seeded, "apply", str(plan), "--yes", "--poll", "0.3")
        failpoint = step.format(t=f"moved-{names[0]}") + ":" + point
        cut_over_killed_at(seeded, plan, failpoint)
        # Killed in phase two: the source is blocked and no alias points at the destination yet, or the
        # aliases were switched while the source stays blocked; never both writable with the aliases moved.
        if aliases_on_destination(seeded, prefix):
            assert all(write_blocked(seeded, names).values())
        cli(seeded, "resume", str(plan), "--poll", "0.3")
    finally:
        writer.finish()
    source, destination = exact_counts(seeded, prefix, names)
    assert destination == source
    assert all(write_blocked(seeded, names).values())
    assert aliases_on_destination(seeded, prefix)[f"{prefix}-live"] == [f"moved-{names[0]}"]


def test_kill_during_cutover_then_rollback(seeded, tmp_path):
    prefix = "cutr"
    names = make_sources(seeded, prefix, docs=500)
    plan = cutover_plan(seeded, tmp_path, prefix, names)
    cli(seeded, "apply", str(plan), "--yes", "--poll", "0.3")
    cut_over_killed_at(seeded, plan, "cutover.switch:acted")
    assert all(write_blocked(seeded, names).values())
    assert aliases_on_destination(seeded, prefix)  # switched just before the kill
    cancelled = cli(seeded, "cancel", str(plan), check=False)
    assert cancelled.returncode == 3 and "migrator rollback" in cancelled.stderr
    assert all(write_blocked(seeded, names).values())

    # as if killed between closing a destination index and restoring over it
    client = seeded.client(DESTINATION)
    client.request("POST", build_path(f"moved-{names[1]}", "_close"))
    client.close()
    # the dry run lists what the rollback then sends (the event log's mutating requests), and changes nothing
    would = json.loads(cli(seeded, "rollback", "--dry-run", "--json", str(plan)).stdout)
    assert {(r["cluster"], r["method"], r["path"]) for r in would} >= {
        ("destination", "POST", "_aliases"),
        ("destination", "POST", f"moved-{names[1]}/_open"),
    }
    assert all(write_blocked(seeded, names).values()) and aliases_on_destination(seeded, prefix)
    store = StateStore(plan.with_name("plan.state.db"))
    logged = len(store.events(kind="request"))
    store.close()
    rolled = json.loads(cli(seeded, "rollback", str(plan), "--json").stdout)
    store = StateStore(plan.with_name("plan.state.db"))
    sent = [e.data for e in store.events(kind="request")[logged:] if e.data["method"] in ("PUT", "POST", "DELETE")]
    store.close()
    assert [(r["cluster"], r["method"], r["path"].lstrip("/"), r["body"]) for r in would] == [
        (r["cluster"], r["method"], r["path"].lstrip("/"), r.get("body")) for r in sent
    ]
    assert rolled["reopened"] == [f"moved-{names[1]}"]
    assert sorted(rolled["writes_unblocked"]) == sorted(names)
    assert {a["alias"] for a in rolled["aliases_removed"]} == {f"{prefix}-live", f"{prefix}-all"}
    assert {d["index"]: d["status"] for d in rolled["destination"]} == {f"moved-{n}": "open" for n in names}
    assert not any(write_blocked(seeded, names).values())
    assert aliases_on_destination(seeded, prefix) == {}
    store = StateStore(plan.with_name("plan.state.db"))
    try:
        assert store.get_meta("status") == "rolled back"
        assert not [step for step in store.checkpoints() if step.startswith("cutover.")]
    finally:
        store.close()
    again = cli(seeded, "rollback", "--dry-run", str(plan)).stdout
    assert "rollback would send no request" in again  # nothing of the cutover is left to undo


def test_kill_mid_incremental_snapshot_then_resume(seeded, tmp_path):
    """kill -9 while the cutover follows its incremental snapshot (throttled so the kill lands mid-wait)."""
    prefix = "cutw"
    names = make_sources(seeded, prefix, docs=500)
    plan = cutover_plan(seeded, tmp_path, prefix, names)
    cli(seeded, "apply", str(plan), "--yes", "--poll", "0.3")
    client = seeded.client(SOURCE)
    lines = []
    for number in range(20000):
        lines.append(json.dumps({"index": {"_index": names[0]}}))
        lines.append(json.dumps({"n": number, "text": "late document " * 30 + str(number)}))
    client.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), timeout_s=120)
    client.request("POST", build_path(names[0], "_flush"))
    client.close()
    document = plan.read_text().replace("compress: true", "compress: true\n    max_snapshot_bytes_per_sec: 300kb")
    plan.write_text(document)
    state_file = plan.with_name("plan.state.db")
    process = background(seeded, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.3", "--replan")
    wait_for_checkpoint(state_file, lambda cps: getattr(cps.get("cutover.snapshot.wait"), "status", "") == "acting")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    cli(seeded, "resume", str(plan), "--poll", "0.3", "--replan")
    source, destination = exact_counts(seeded, prefix, names)
    assert destination == source
    assert all(write_blocked(seeded, names).values())


def phase_one_of_a_daily_selection(seeded, tmp_path: Path, prefix: str) -> tuple[list[str], Path]:
    """Two source indices of this test selected by `<prefix>-*`, migrated by phase one of a cutover plan (the
    alias `<prefix>-live` on the first): their names and the plan."""
    names = make_sources(seeded, prefix, docs=50)
    plan = seeded.write_plan(
        tmp_path,
        SOURCE,
        DESTINATION,
        name=prefix,
        snapshot={"indices": [f"{prefix}-*"]},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
        cutover={"enabled": True},
        finish={"aliases": {f"{prefix}-live": [names[0]]}},
    )
    cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
    return names, plan


def exclude_and_replan(seeded, plan: Path, index: str) -> None:
    """The cure a stopped cutover names: `index` added to snapshot.exclude, then `resume --replan`."""
    document = yaml.safe_load(plan.read_text())
    document["snapshot"]["exclude"] = [index]
    plan.write_text(yaml.safe_dump(document, sort_keys=False))
    cli(seeded, "resume", str(plan), "--replan", "--poll", "0.5")


def test_an_index_created_after_phase_one_stops_the_cutover_before_the_write_block(seeded, tmp_path):
    """Reported by breaker5 (6.8 -> 7.10): a daily index matching `snapshot.indices`, created between phase
    one and the cutover, stayed writable and uncopied while the cutover reported success. Now the cutover
    stops before blocking anything, naming it; excluding it and `resume --replan` finishes the cutover."""
    prefix = "newday"
    names, plan = phase_one_of_a_daily_selection(seeded, tmp_path, prefix)
    late = f"{prefix}-late"
    CREATED.append(late)
    client = seeded.client(SOURCE)
    client.request("POST", build_path(late, "_doc", params={"refresh": "true"}), {"n": 1}, ok=(201,))
    client.close()

    stopped = cli(seeded, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.5", check=False)
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert f"{late} match snapshot.indices but did not exist when the plan was made" in stopped.stdout + stopped.stderr
    assert write_blocked(seeded, [*names, late]) == {name: False for name in [*names, late]}
    assert aliases_on_destination(seeded, prefix) == {}

    exclude_and_replan(seeded, plan, late)
    assert write_blocked(seeded, [*names, late]) == {names[0]: True, names[1]: True, late: False}
    assert aliases_on_destination(seeded, prefix) == {f"{prefix}-live": [f"moved-{names[0]}"]}
    source, destination = exact_counts(seeded, prefix, names)
    assert destination == source


def test_a_source_index_deleted_after_phase_one_stops_the_cutover_before_the_write_block(seeded, tmp_path):
    """Reported by breaker5 (6.8 -> 7.10): a source copied in phase one and deleted before the cutover made the
    cutover fail on a raw 404 after blocking the others, with `resume` as the cure, which failed the same way.
    Now it stops before blocking anything, naming the index; excluding it and `resume --replan` finishes."""
    prefix = "goneday"
    names, plan = phase_one_of_a_daily_selection(seeded, tmp_path, prefix)
    gone = names[1]
    client = seeded.client(SOURCE)
    client.request("DELETE", build_path(gone), ok=(200,))
    client.close()

    stopped = cli(seeded, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.5", check=False)
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert f"{gone} (copied in phase one) no longer exist on the source" in stopped.stdout + stopped.stderr
    assert write_blocked(seeded, [names[0]]) == {names[0]: False}
    assert aliases_on_destination(seeded, prefix) == {}

    exclude_and_replan(seeded, plan, gone)
    assert write_blocked(seeded, [names[0]]) == {names[0]: True}
    assert aliases_on_destination(seeded, prefix) == {f"{prefix}-live": [f"moved-{names[0]}"]}
    source, destination = exact_counts(seeded, prefix, [names[0]])
    kept = f"moved-{names[0]}"
    assert destination[kept] == source[kept]
    assert f"moved-{gone}" in destination  # its phase-one copy stays, as the message says
