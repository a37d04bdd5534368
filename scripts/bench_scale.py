"""Benchmark of many small indices (issue 17, "Scale"): migrator against the minimal hand-written script.

(Over ~400 lines: one runnable script whose seeding, contenders, tally and fit share the sandbox and run
folders it sets up; tests/scripts/test_bench_scale.py loads it as one module.)

One run, one sandbox (`migrator sandbox up --dir DIR`, Elasticsearch 7.17 -> 8), and for each N
(50, 500, 2,000 by default) N one-shard indices of 100 documents each on the source. For each N the
contenders run interleaved, round by round, in a rotated order (other jobs share the machine):

- migrator: `migrator apply PLAN --yes` (fresh state file, fresh repository folder, new rename prefix),
  with stdout and stderr to a file (no terminal);
- migrator on a terminal: the same inside a pseudo-terminal (pexpect), so that the progress display
  is drawn: its cost is the ratio to the run without one (wall time taken around migrator's process, inside
  the terminal, as for the run without one);
- minimal: scripts/bench_speed/minimal_migration.py: one snapshot, ONE restore with a rename for all
  indices, then the counts (two `_count` requests per index).

Printed per N (medians over the rounds): the wall times and the ratio to the minimal script,
migrator's CPU (user + sys of its process, from wait4) per index, the state file's size per index,
migrator's peak RSS, the wall time of `migrator plan` (the dry run, with discovery), `status` and
`report` on the finished run, and the terminal run's ratio. Between runs the restored indices, the
snapshots and the repositories are removed (not timed). The sandbox is left running when it was
running before, else stopped at the end. With several sizes it prints the fit of migrator's wall time
and CPU against N: the cost per index between consecutive sizes (flat when the work grows linearly)
and the least-squares fit a + b*N + c*N^2 (c*N^2's share of the largest run: the quadratic term).

The tally (`--tally RUNS`): the same seeded source, RUNS migrator runs at `--parallel P` (fresh state
file, repository folder and rename prefix each, so a fresh destination), each `apply --yes` once and
never resumed; per run whether it completed without resume (exit 0 and `status --json` says done),
its wall time and CPU, its retries (the event log's step.retry and step.reattempt) and, when it did
not complete, the failed steps and their errors from `migrator status --json`. Prints the tally.

migrator's modules are byte-compiled first, as pip does at install (as bench_speed.py does).

Seeding (not timed, kept between runs): the indices are created over SEED_CONNECTIONS connections at
once and filled by bulk requests that each cover SEED_INDICES_PER_BULK indices, also sent at once; the
clusters' `cluster.max_shards_per_node` is raised for the run (one node holds every shard). The
indices of the other sizes are deleted from the source before a size is seeded. After seeding, one
migration by the minimal script warms both clusters up (not timed): the first snapshot and restore
after seeding are slower, and would be charged to whichever contender runs first.

    python scripts/bench_scale.py --dir /var/tmp/scale-bench                 # N = 50, 500, 2000, one round
    python scripts/bench_scale.py --dir /var/tmp/scale-bench --sizes 50,500 --rounds 2
    python scripts/bench_scale.py --dir /var/tmp/scale-bench --sizes 500 --tally 10 --parallel 32
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect
import yaml

import migrator
from migrator.clients.es import EsClient, EsError, build_path
from migrator.migration.files import default_state_path
from migrator.state import StateStore

HERE = Path(__file__).resolve().parent
MINIMAL_SCRIPT = HERE / "bench_speed" / "minimal_migration.py"
DOCS = 100
INDEX_SETTINGS = {"index.number_of_replicas": 0}
SEED_CONNECTIONS = 8  # index creations and bulk requests in flight at once while seeding
SEED_INDICES_PER_BULK = 50  # indices one bulk request fills (DOCS documents each)
MAX_SHARDS = 10_000  # cluster.max_shards_per_node for the run (the default 1,000 is below 2,000 indices)
MIGRATOR, TERMINAL, MINIMAL = "migrator", "migrator on a terminal", "minimal script"
TAGS = {MIGRATOR: "m", TERMINAL: "t", MINIMAL: "x"}  # in run ids (index name prefixes)
# Runs the command given and prints the rusage of its children (the command) as JSON: the terminal run's CPU.
# The terminal run's wrapper inside the pseudo-terminal: migrator's exit code, CPU, peak RSS and wall time, the
# wall time taken around migrator's own process (from its start to its exit, as `timed` takes the run without a
# terminal), not around the wrapper's own interpreter and pexpect's spawn, which are the benchmark's, not migrator's.
RUSAGE = (
    "import json, resource, subprocess, sys, time; started = time.perf_counter(); "
    "code = subprocess.call(sys.argv[2:]); wall = time.perf_counter() - started; "
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "open(sys.argv[1], 'w').write(json.dumps({'code': code, 'cpu': usage.ru_utime + usage.ru_stime, "
    "'rss_kb': usage.ru_maxrss, 'wall': wall}))"
)


@dataclass
class Run:
    contender: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rss_kb: int = 0
    state_bytes: int = 0
    commands: dict[str, float] = field(default_factory=dict)  # plan, status, report: wall seconds


@dataclass
class Bed:
    folder: Path
    work: Path
    document: dict[str, Any]
    source: EsClient
    destination: EsClient

    def location(self, run_id: str) -> Path:
        return self.folder / "buckets" / self.document["oss"]["bucket"] / "scale" / run_id


def migrator_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "migrator", *args]


def timed(command: list[str], log: Path) -> tuple[float, float, int, int]:
    """(wall s, user+sys CPU s, peak RSS KB, exit code) of one command, output to `log`."""
    with log.open("ab") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def seed(bed: Bed, count: int) -> list[str]:
    """`count` one-shard indices of DOCS documents on the source (kept between runs; made once): created
    over SEED_CONNECTIONS connections at once, filled by bulk requests of SEED_INDICES_PER_BULK indices
    each (also at once), refreshed, flushed, then green, then searched once (`warm_up`). Other sizes' indices are
    deleted first (one node's heap)."""
    names = [f"scale-{count}-{number:05d}" for number in range(count)]
    others = [row["index"] for row in bed.source.indices("scale-*") if not row["index"].startswith(f"scale-{count}-")]
    for start in range(0, len(others), 200):  # by name (no wildcard delete), one cluster-state update per request
        bed.source.request("DELETE", build_path(",".join(others[start : start + 200])), ok=(200, 404))
    existing = {row["index"] for row in bed.source.indices(f"scale-{count}-*")}
    missing = [name for name in names if name not in existing]
    if missing:
        fill(bed, count, missing)
    warm_up(bed, count)
    return names


def fill(bed: Bed, count: int, missing: list[str]) -> None:
    """Create and fill the `missing` indices of size `count`, refreshed, flushed, then green."""
    started = time.perf_counter()
    settings = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}
    with ThreadPoolExecutor(SEED_CONNECTIONS) as pool:
        list(pool.map(lambda name: bed.source.request("PUT", build_path(name), settings), missing))
        groups = [
            missing[start : start + SEED_INDICES_PER_BULK] for start in range(0, len(missing), SEED_INDICES_PER_BULK)
        ]
        answers = list(pool.map(lambda group: bulk(bed, group), groups))
    if any(answer.get("errors") for answer in answers):
        raise SystemExit(f"seeding scale-{count}-*: a bulk request reported errors")
    bed.source.request("POST", build_path(f"scale-{count}-*", "_refresh"))
    # Committed now, not by the first contender's snapshot (which flushes every shard it copies): else the
    # round's first run pays for the seeding (68 s against 44 s for the same snapshot at N=2,000).
    bed.source.request("POST", build_path(f"scale-{count}-*", "_flush"), timeout_s=900)
    bed.source.health(wait_for_status="green", timeout="300s")
    print(f"seeded {len(missing)} indices in {time.perf_counter() - started:.1f} s", flush=True)


def bulk(bed: Bed, group: list[str]) -> dict[str, Any]:
    """One seeding `_bulk` of `group`'s documents, sent again after a 429 (the source's small heap trips its
    parent circuit breaker while thousands of new shards start: a 2,000-index seeding stopped so on
    2026-12-01), for up to about two minutes."""
    for attempt in range(11):
        try:
            return bed.source.request("POST", "/_bulk", bulk_body(group))[1]
        except EsError as exc:
            if exc.status != 429:
                raise
            time.sleep(min(2**attempt, 15))
    return bed.source.request("POST", "/_bulk", bulk_body(group))[1]


def warm_up(bed: Bed, count: int) -> None:
    """One counting search over the seeded indices, as discovery sends it (not timed): the first search of freshly
    written shards took 22.1 s at N=500 (0.18 s the next time), and whichever contender searched the source first
    paid for it (migrator's `plan`, 10-26 s, or the minimal script's counts)."""
    started = time.perf_counter()
    body = {"size": 0, "aggs": {"docs": {"terms": {"field": "_index", "size": count}}}}
    bed.source.request("GET", build_path(f"scale-{count}-*", "_search"), body)
    print(f"first search of the seeded indices: {time.perf_counter() - started:.1f} s", flush=True)


def warm_up_migration(bed: Bed, names: list[str], run_id: str) -> None:
    """One migration by the minimal script of the seeded indices, not timed, before the first round: the first
    snapshot and restore after seeding ran 1.5-2 s slower than the next ones (50 indices on 2026-12-01: 5.3 s, then
    3.6 s for the same migrator run; 3.2 s, then 2.8 s for the minimal script), and with `--rounds 1` migrator,
    first in the first round, paid for it alone."""
    run = Run(MINIMAL)
    try:
        run_minimal(bed, run, run_id, names)
    finally:
        clean_up(bed, run_id)
    print(f"warm-up migration (the minimal script, not timed): {run.wall_s:.1f} s", flush=True)


def bulk_body(group: list[str]) -> bytes:
    """One `_bulk` body: DOCS small log-like documents for each index of `group`."""
    lines = []
    for name in group:
        for number in range(DOCS):
            lines.append(json.dumps({"index": {"_index": name}}))
            lines.append(json.dumps({"n": number, "message": f"line {number} of {name}", "level": "info"}))
    return ("\n".join(lines) + "\n").encode()


def plan_document(
    bed: Bed, run_id: str, count: int, parallel: int | None = None, batch_indices: int | None = None
) -> dict[str, Any]:
    oss = bed.document["oss"]
    return {
        "name": run_id,
        "env_file": str(bed.folder / "sandbox.env"),
        "source": {"url": bed.document["source"]["url"]},
        "destination": {"url": bed.document["destination"]["url"]},
        "repository": {"name": f"scale_{run_id}", "type": "fs", "settings": {"location": str(bed.location(run_id))}},
        "storage": {
            "kind": "oss",
            "endpoint": oss["endpoint"],
            "bucket": oss["bucket"],
            "base_path": f"scale/{run_id}",
            "region": oss["region"],
            "access_key_id": "${MIGRATOR_SANDBOX_OSS_ACCESS_KEY_ID}",
            "access_key_secret": "${MIGRATOR_SANDBOX_OSS_ACCESS_KEY_SECRET}",
        },
        "snapshot": {"indices": [f"scale-{count}-*"]},
        "restore": {
            "rename_pattern": "(.+)",
            "rename_replacement": f"{run_id}-$1",
            "index_settings": INDEX_SETTINGS,
            **({"parallel": parallel} if parallel is not None else {}),
            **({"batch_indices": batch_indices} if batch_indices is not None else {}),
        },
    }


def run_migrator(bed: Bed, run: Run, run_id: str, count: int, terminal: bool) -> None:
    folder = bed.work / run_id
    folder.mkdir(parents=True)
    plan = folder / "plan.yaml"
    plan.write_text(yaml.safe_dump(plan_document(bed, run_id, count), sort_keys=False))
    if not terminal:  # the dry run (with discovery) before the run: afterwards the targets exist
        run.commands["plan"] = command_wall("plan", plan, folder)
    log = folder / "apply.log"
    apply = migrator_command("apply", str(plan), "--yes")
    if terminal:
        usage_file = folder / "usage.json"
        child = pexpect.spawn(sys.executable, ["-c", RUSAGE, str(usage_file), *apply], timeout=None)
        child.logfile_read = log.open("wb")
        child.setwinsize(50, 160)
        child.expect(pexpect.EOF)
        child.close()
        usage = json.loads(usage_file.read_text())
        run.wall_s, run.cpu_s, run.rss_kb, code = usage["wall"], usage["cpu"], usage["rss_kb"], usage["code"]
    else:
        run.wall_s, run.cpu_s, run.rss_kb, code = timed(apply, log)
    if code != 0:
        raise SystemExit(f"{run.contender} (N={count}) exited {code}; see {log}")
    state = default_state_path(plan)
    run.state_bytes = sum(path.stat().st_size for path in state.parent.glob(state.name + "*"))
    if not terminal:
        for name in ("status", "report"):
            run.commands[name] = command_wall(name, plan, folder)


def command_wall(name: str, plan: Path, folder: Path) -> float:
    """Wall seconds of `migrator NAME PLAN`."""
    wall, _, _, code = timed(migrator_command(name, str(plan)), folder / f"{name}.log")
    if code != 0:
        raise SystemExit(f"`migrator {name}` exited {code}; see {folder / name}.log")
    return wall


def run_minimal(bed: Bed, run: Run, run_id: str, names: list[str]) -> None:
    folder = bed.work / run_id
    folder.mkdir(parents=True)
    config = {
        "source": bed.document["source"]["url"],
        "destination": bed.document["destination"]["url"],
        "repository": f"scale_{run_id}",
        "settings": {"location": str(bed.location(run_id))},
        "snapshot": f"snap-{run_id}",
        "indices": names,
        "rename_pattern": "(.+)",
        "rename_replacement": f"{run_id}-$1",
        "index_settings": INDEX_SETTINGS,
    }
    (folder / "config.json").write_text(json.dumps(config))
    log = folder / "minimal.log"
    run.wall_s, run.cpu_s, run.rss_kb, code = timed(
        [sys.executable, str(MINIMAL_SCRIPT), str(folder / "config.json")], log
    )
    if code != 0:
        raise SystemExit(f"the minimal script (N={len(names)}) exited {code}; see {log}")


def clean_up(bed: Bed, run_id: str) -> None:
    """Remove what a run left: its restored indices, its snapshots and repositories (not timed)."""
    bed.destination.request("DELETE", build_path(f"{run_id}-*"), ok=(200, 404))
    for client in (bed.source, bed.destination):
        repository = f"scale_{run_id}"
        status, body = client.request("GET", build_path("_snapshot", repository, "_all"), ok=(200, 404))
        if client is bed.source and status == 200:
            for info in body.get("snapshots", []):
                client.request("DELETE", build_path("_snapshot", repository, info["snapshot"]), ok=(200, 404))
        client.request("DELETE", build_path("_snapshot", repository), ok=(200, 404))
    shutil.rmtree(bed.location(run_id), ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(count: int, runs: list[Run]) -> dict[str, float]:
    of = {name: [run for run in runs if run.contender == name] for name in (MIGRATOR, TERMINAL, MINIMAL)}
    migrator, minimal, terminal = of[MIGRATOR], of[MINIMAL], of[TERMINAL]
    figures = {
        "n": count,
        "migrator_s": median([run.wall_s for run in migrator]),
        "minimal_s": median([run.wall_s for run in minimal]),
        "cpu_ms_per_index": 1000 * median([run.cpu_s for run in migrator]) / count,
        "state_kb_per_index": median([run.state_bytes for run in migrator]) / 1024 / count,
        "rss_mb": max(run.rss_kb for run in migrator) / 1024,
        "plan_s": median([run.commands["plan"] for run in migrator]),
        "status_s": median([run.commands["status"] for run in migrator]),
        "report_s": median([run.commands["report"] for run in migrator]),
        "terminal_s": median([run.wall_s for run in terminal]),
        "terminal_cpu_ms_per_index": 1000 * median([run.cpu_s for run in terminal]) / count if terminal else 0.0,
    }
    figures["ratio"] = figures["migrator_s"] / figures["minimal_s"]
    figures["terminal_ratio"] = figures["terminal_s"] / figures["migrator_s"]
    for run in runs:
        print(f"  N={count:<5} {run.contender:<24} {run.wall_s:8.1f} s  CPU {run.cpu_s:6.2f} s", flush=True)
    return figures


def terminal_cells(row: dict[str, float]) -> str:
    """The two terminal columns of a row: `not run` under --no-terminal (no terminal run to take a median of)."""
    if math.isnan(row["terminal_s"]):
        return "not run | not run"
    return f"{row['terminal_s']:.1f} s ({row['terminal_cpu_ms_per_index']:.1f} ms/index) | {row['terminal_ratio']:.2f}x"


def print_table(rows: list[dict[str, float]]) -> None:
    print(
        "\n| indices | migrator | minimal script | ratio | CPU per index | state per index | peak RSS "
        "| plan | status | report | on a terminal | terminal ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['n']:,} | {row['migrator_s']:.1f} s | {row['minimal_s']:.1f} s | {row['ratio']:.2f}x "
            f"| {row['cpu_ms_per_index']:.1f} ms | {row['state_kb_per_index']:.1f} KB | {row['rss_mb']:.0f} MB "
            f"| {row['plan_s']:.1f} s | {row['status_s']:.1f} s | {row['report_s']:.1f} s "
            f"| {terminal_cells(row)} |"
        )
    for row in rows:
        if math.isnan(row["terminal_s"]):
            continue
        print(
            f"N={row['n']:,}: on a terminal {row['terminal_s']:.1f} s against {row['migrator_s']:.1f} s without "
            f"one in the same rounds: {row['terminal_ratio']:.2f}x (target <= 1.05x); CPU "
            f"{row['terminal_cpu_ms_per_index'] / row['cpu_ms_per_index']:.2f}x"
        )
    if len(rows) > 1:
        print()
        print_fit("migrator's wall time", [(row["n"], row["migrator_s"]) for row in rows])
        print_fit("migrator's CPU", [(row["n"], row["cpu_ms_per_index"] * row["n"] / 1000) for row in rows])
        print_fit("the minimal script's wall time", [(row["n"], row["minimal_s"]) for row in rows])
    print(f"load average at the end: {' '.join(f'{value:.1f}' for value in os.getloadavg())} on {os.cpu_count()} cores")


@dataclass
class Outcome:
    """One tally run: `apply --yes` once, never resumed."""

    run_id: str
    code: int
    status: str
    wall_s: float
    cpu_s: float
    retries: list[str]  # the event log's step.retry / step.reattempt messages
    failures: list[str]  # `<step>: <error>` of each failed step, or the log's last line

    @property
    def completed(self) -> bool:
        return self.code == 0 and self.status == "done"


def tally_run(bed: Bed, run_id: str, count: int, parallel: int, batch_indices: int | None) -> Outcome:
    """Run migrator once at `restore.parallel: parallel` (and `restore.batch_indices`, None: the default); what
    `status --json` and the event log say of it."""
    folder = bed.work / run_id
    folder.mkdir(parents=True)
    plan = folder / "plan.yaml"
    plan.write_text(yaml.safe_dump(plan_document(bed, run_id, count, parallel, batch_indices), sort_keys=False))
    log = folder / "apply.log"
    wall, cpu, _, code = timed(migrator_command("apply", str(plan), "--yes"), log)
    answer = subprocess.run(migrator_command("status", str(plan), "--json"), capture_output=True, text=True)
    report = json.loads(answer.stdout) if answer.returncode == 0 else {}
    failures = [
        f"{step['step']}: {(step['detail'] or {}).get('error', '')}"
        for step in report.get("steps", [])
        if step["status"] == "failed"
    ]
    store = StateStore(default_state_path(plan))
    try:
        retries = [f"{e.step}: {e.message}" for e in store.events() if e.kind in ("step.retry", "step.reattempt")]
    finally:
        store.close()
    if code != 0 and not failures:
        lines = log.read_text(errors="replace").strip().splitlines()
        failures = [f"exit {code}: {lines[-1] if lines else '(no output)'}"]
    return Outcome(run_id, code, report.get("status", "unknown"), wall, cpu, retries, failures)


def tally(bed: Bed, count: int, runs: int, parallel: int, batch_indices: int | None, stamp: str) -> int:
    """RUNS runs at `parallel`; prints each and the tally. Returns the number that did not complete."""
    seed(bed, count)
    outcomes = []
    for number in range(runs):
        run_id = f"p{parallel}n{count}r{number}-{stamp}"
        try:
            outcome = tally_run(bed, run_id, count, parallel, batch_indices)
        finally:
            clean_up(bed, run_id)
        outcomes.append(outcome)
        verdict = "completed" if outcome.completed else f"NOT completed (exit {outcome.code}, {outcome.status})"
        print(
            f"  run {number + 1}/{runs}: {verdict}; {outcome.wall_s:.1f} s, CPU {outcome.cpu_s:.2f} s, "
            f"{len(outcome.retries)} retries; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        for line in outcome.failures + outcome.retries[:5]:
            print(f"      {line[:400]}", flush=True)
    done = [outcome for outcome in outcomes if outcome.completed]
    print(
        f"\nrestore.parallel {parallel}, batch_indices {batch_indices or 'default'}, {count} indices: "
        f"{len(done)} of {runs} runs completed with no resume; "
        f"wall median {median([o.wall_s for o in outcomes]):.1f} s (min {min(o.wall_s for o in outcomes):.1f}, "
        f"max {max(o.wall_s for o in outcomes):.1f}), CPU median {median([o.cpu_s for o in outcomes]):.2f} s, "
        f"runs with retries {sum(1 for o in outcomes if o.retries)}"
    )
    return runs - len(done)


def quadratic_fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(a, b, c) of the least-squares fit y = a + b*x + c*x^2 (at least three distinct x)."""
    scale = max(x for x, _ in points)  # solved for x / scale: the normal equations stay well conditioned
    scaled = [(x / scale, y) for x, y in points]
    sums = [sum(x**power for x, _ in scaled) for power in range(5)]
    matrix = [[sums[row + column] for column in range(3)] + [sum(y * x**row for x, y in scaled)] for row in range(3)]
    for pivot in range(3):  # Gauss-Jordan elimination on the normal equations
        best = max(range(pivot, 3), key=lambda row: abs(matrix[row][pivot]))
        matrix[pivot], matrix[best] = matrix[best], matrix[pivot]
        for row in range(3):
            if row != pivot:
                factor = matrix[row][pivot] / matrix[pivot][pivot]
                matrix[row] = [value - factor * top for value, top in zip(matrix[row], matrix[pivot], strict=True)]
    a, b, c = (matrix[row][3] / matrix[row][row] for row in range(3))
    return a, b / scale, c / scale**2


def print_fit(name: str, points: list[tuple[float, float]]) -> None:
    """The cost per index between consecutive sizes and, from three sizes, the quadratic term of the fit."""
    slopes = [
        f"{1000 * (y2 - y1) / (x2 - x1):.1f} ms/index from {x1:,.0f} to {x2:,.0f}"
        for (x1, y1), (x2, y2) in zip(points, points[1:], strict=False)
    ]
    print(f"{name}: {'; '.join(slopes)}")
    if len(points) >= 3:
        a, b, c = quadratic_fit(points)
        largest, seconds = points[-1]
        square = c * largest**2
        print(
            f"  fit {name} = {a:.2f} s + {1000 * b:.2f} ms * N + {c * 1e6:.3f} us * N^2: the N^2 term is "
            f"{square:.1f} s = {100 * square / seconds:.0f} % of the {seconds:.1f} s at N={largest:,.0f}"
        )


def sizes(text: str) -> list[int]:
    return [int(size) for size in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="the sandbox folder (your own)")
    parser.add_argument("--sizes", default="50,500,2000", help="numbers of indices, comma-separated")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-terminal", action="store_true", help="skip the pseudo-terminal runs")
    parser.add_argument("--tally", type=int, metavar="RUNS", help="RUNS migrator runs at --parallel, no resume")
    parser.add_argument("--parallel", type=int, default=32, help="restore.parallel of the tally's runs")
    parser.add_argument("--batch-indices", type=int, help="restore.batch_indices of the tally's runs (1: per index)")
    args = parser.parse_args()
    folder = args.dir.resolve()
    # as pip does at install (and bench_speed.py): else, under PYTHONDONTWRITEBYTECODE, every migrator process of
    # an editable checkout compiles its modules from source first (about 0.13 s of CPU per start on this machine)
    compileall.compile_dir(Path(migrator.__file__).resolve().parent, quiet=1)
    command = migrator_command("sandbox", "up", "--dir", str(folder), "--source-version", "7.17")
    started = subprocess.run([*command, "--destination-version", "8"], capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        raise SystemExit(f"`migrator sandbox up` failed:\n{started.stderr}")
    was_running = "already running" in started.stderr
    document = json.loads(started.stdout)
    stamp = time.strftime("%H%M%S")
    work = folder / "bench-scale" / (time.strftime("%Y%m%d-") + stamp)
    work.mkdir(parents=True)
    bed = Bed(
        folder,
        work,
        document,
        EsClient(document["source"]["url"], label="source", timeout_s=600),
        EsClient(document["destination"]["url"], label="destination", timeout_s=600),
    )
    print(
        f"sandbox {folder}: {document['source']['version']} -> {document['destination']['version']}; "
        f"load average {' '.join(f'{value:.1f}' for value in os.getloadavg())} on {os.cpu_count()} cores"
    )
    for client in (bed.source, bed.destination):
        limit = {"persistent": {"cluster.max_shards_per_node": MAX_SHARDS}}
        client.request("PUT", "/_cluster/settings", limit)
    rows = []
    contenders = [MIGRATOR, MINIMAL] + ([] if args.no_terminal else [TERMINAL])
    try:
        if args.tally:
            batch = args.batch_indices
            failed = sum(tally(bed, count, args.tally, args.parallel, batch, stamp) for count in sizes(args.sizes))
            print(f"load average at the end: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")
            return 1 if failed else 0
        for count in sizes(args.sizes):
            names = seed(bed, count)
            warm_up_migration(bed, names, f"s{count}w-{stamp}")
            runs: list[Run] = []
            for round_number in range(args.rounds):
                shift = round_number % len(contenders)
                for contender in contenders[shift:] + contenders[:shift]:
                    run_id = f"s{count}r{round_number}{TAGS[contender]}-{stamp}"
                    run = Run(contender)
                    try:
                        if contender == MINIMAL:
                            run_minimal(bed, run, run_id, names)
                        else:
                            run_migrator(bed, run, run_id, count, terminal=contender == TERMINAL)
                    finally:
                        clean_up(bed, run_id)
                    runs.append(run)
            rows.append(report(count, runs))
        print_table(rows)
    finally:
        if not was_running:
            subprocess.run(migrator_command("sandbox", "down", "--dir", str(folder)), capture_output=True, timeout=300)
    return 0


if __name__ == "__main__":
    sys.exit(main())
