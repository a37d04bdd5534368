"""Benchmark of many small indices (issue 17, "Scale"): migrator against the minimal hand-written script.

One run, one sandbox (`migrator sandbox up --dir DIR`, Elasticsearch 7.17 -> 8), and for each N
(50, 500, 2,000 by default) N one-shard indices of 100 documents each on the source. For each N the
contenders run interleaved, round by round, in a rotated order (other jobs share the machine):

- migrator: `migrator apply PLAN --yes` (fresh state file, fresh repository folder, new rename prefix),
  with stdout and stderr to a file (no terminal);
- migrator on a terminal: the same inside a pseudo-terminal (pexpect), so that the progress display
  is drawn: its cost is the ratio to the run without one;
- minimal: scripts/bench_speed/minimal_migration.py: one snapshot, ONE restore with a rename for all
  indices, then the counts (two `_count` requests per index).

Printed per N (medians over the rounds): the wall times and the ratio to the minimal script,
migrator's CPU (user + sys of its process, from wait4) per index, the state file's size per index,
migrator's peak RSS, the wall time of `migrator plan` (the dry run, with discovery), `status` and
`report` on the finished run, and the terminal run's ratio. Between runs the restored indices, the
snapshots and the repositories are removed (not timed). The sandbox is left running when it was
running before, else stopped at the end.

    python scripts/bench_scale.py --dir /var/tmp/scale-bench                 # N = 50, 500, 2000, one round
    python scripts/bench_scale.py --dir /var/tmp/scale-bench --sizes 50,500 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect
import yaml

from migrator.clients.es import EsClient, build_path
from migrator.migration.files import default_state_path

HERE = Path(__file__).resolve().parent
MINIMAL_SCRIPT = HERE / "bench_speed" / "minimal_migration.py"
DOCS = 100
INDEX_SETTINGS = {"index.number_of_replicas": 0}
MIGRATOR, TERMINAL, MINIMAL = "migrator", "migrator on a terminal", "minimal script"
TAGS = {MIGRATOR: "m", TERMINAL: "t", MINIMAL: "x"}  # in run ids (index name prefixes)
# Runs the command given and prints the rusage of its children (the command) as JSON: the terminal run's CPU.
RUSAGE = (
    "import json, resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "open(sys.argv[1], 'w').write(json.dumps({'code': code, 'cpu': usage.ru_utime + usage.ru_stime, "
    "'rss_kb': usage.ru_maxrss}))"
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
    """`count` one-shard indices of DOCS documents on the source (kept between runs; made once)."""
    names = [f"scale-{count}-{number:05d}" for number in range(count)]
    existing = {row["index"] for row in bed.source.indices(f"scale-{count}-*")}
    missing = [name for name in names if name not in existing]
    for start in range(0, len(missing), 50):
        group = missing[start : start + 50]
        for name in group:
            settings = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}
            bed.source.request("PUT", build_path(name), settings)
        lines = []
        for name in group:
            for number in range(DOCS):
                lines.append(json.dumps({"index": {"_index": name}}))
                lines.append(json.dumps({"n": number, "message": f"line {number} of {name}", "level": "info"}))
        body = ("\n".join(lines) + "\n").encode()
        bed.source.request("POST", "/_bulk", body)
    bed.source.request("POST", build_path(f"scale-{count}-*", "_refresh"))
    return names


def plan_document(bed: Bed, run_id: str, count: int) -> dict[str, Any]:
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
        "restore": {"rename_pattern": "(.+)", "rename_replacement": f"{run_id}-$1", "index_settings": INDEX_SETTINGS},
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
        started = time.perf_counter()
        child = pexpect.spawn(sys.executable, ["-c", RUSAGE, str(usage_file), *apply], timeout=None)
        child.logfile_read = log.open("wb")
        child.setwinsize(50, 160)
        child.expect(pexpect.EOF)
        child.close()
        run.wall_s = time.perf_counter() - started
        usage = json.loads(usage_file.read_text())
        run.cpu_s, run.rss_kb, code = usage["cpu"], usage["rss_kb"], usage["code"]
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
            f"| {row['terminal_s']:.1f} s ({row['terminal_cpu_ms_per_index']:.1f} ms/index) "
            f"| {row['terminal_ratio']:.2f}x |"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        per_index = [(row["migrator_s"] - row["minimal_s"]) / row["n"] * 1000 for row in (first, last)]
        print(
            f"\nmigrator's extra wall time per index: {per_index[0]:.1f} ms at N={first['n']:,}, "
            f"{per_index[1]:.1f} ms at N={last['n']:,} (flat when the work grows linearly)"
        )
    print(f"load average at the end: {' '.join(f'{value:.1f}' for value in os.getloadavg())} on {os.cpu_count()} cores")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="the sandbox folder (your own)")
    parser.add_argument("--sizes", default="50,500,2000", help="numbers of indices, comma-separated")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-terminal", action="store_true", help="skip the pseudo-terminal runs")
    args = parser.parse_args()
    folder = args.dir.resolve()
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
    rows = []
    contenders = [MIGRATOR, MINIMAL] + ([] if args.no_terminal else [TERMINAL])
    try:
        for count in (int(size) for size in args.sizes.split(",")):
            names = seed(bed, count)
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
            if args.no_terminal:
                runs.append(Run(TERMINAL, wall_s=float("nan")))
            rows.append(report(count, runs))
        print_table(rows)
    finally:
        if not was_running:
            subprocess.run(migrator_command("sandbox", "down", "--dir", str(folder)), capture_output=True, timeout=300)
    return 0


if __name__ == "__main__":
    sys.exit(main())
