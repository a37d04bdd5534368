"""Benchmark of a whole migration (issue 7, "Speed"): migrator against doing it by hand and against Curator 8.

One run, one sandbox (`migrator sandbox up`, both clusters on the same version), one data set
generated here with bulk requests (a few hundred MB over several indices), and three contenders
that each move all of it from the source to the destination through a fresh `fs` repository in
the sandbox bucket, with the same repository settings and the same restore settings:

- migrator: `migrator apply PLAN --yes` with a plan of its own (fresh state file, new rename prefix);
- (a) minimal: scripts/bench_speed/minimal_migration.py, the same REST calls with
  `wait_for_completion=true` (register, snapshot, register read-only, restore, count), stdlib only;
- (b) curator: Curator 8 in its own virtual environment (installed under the cache dir when
  missing): `es_repo_mgr create fs` on each cluster, its `snapshot` action on the source and its
  `restore` action on the destination (action files, Curator's defaults otherwise), then the counts.

The contenders run round by round, in a rotated order each round, since other jobs share the
cores; every figure is the median over the rounds. Printed: the machine, the versions, the data
size, every run, the medians, the ratios against the targets (migrator <= 1.05x (a), faster than
(b)), migrator's own CPU seconds as a share of its wall time (<= 2 %, from wait4's rusage of the
migrator process) and the status requests per minute each cluster received while migrator waited
(<= 30, from the timeline of `migrator report --format json`). Between runs the restored indices and the
repositories are removed (not timed). The sandbox is stopped at the end, also on failure.

    python scripts/bench_speed.py                      # 3 rounds, 300 MiB over 6 indices, ES 7.17 on both sides
    python scripts/bench_speed.py --rounds 5 --size-mb 500 --poll 2
    git archive main | tar -x -C /tmp/before && python scripts/bench_speed.py --no-curator --before /tmp/before
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import migrator
from migrator.clients.es import EsClient, EsError, build_path
from migrator.planner import PREFLIGHT, SNAPSHOT_WAIT
from migrator.sandbox.distributions import cache_dir

HERE = Path(__file__).resolve().parent
MINIMAL_SCRIPT = HERE / "bench_speed" / "minimal_migration.py"
SOURCE_PREFIX = "bench-"
MIGRATOR, MINIMAL, CURATOR = "migrator", "minimal (a)", "curator (b)"
BEFORE = "migrator (--before)"  # another source tree of migrator, run in the same rounds (a before/after figure)
SHORT = {MIGRATOR: "m", MINIMAL: "a", CURATOR: "c", BEFORE: "p"}
PAYLOAD_BYTES = 12288  # random bytes per document, stored base64 (LZ4 saves about a fifth)
BULK_DOCS = 250  # about 4 MB per bulk request
REPOSITORY_SETTINGS: dict[str, Any] = {
    "compress": True,
    "max_snapshot_bytes_per_sec": "100mb",
    "max_restore_bytes_per_sec": "100mb",
}
INDEX_SETTINGS: dict[str, Any] = {"index.number_of_replicas": 0}  # migrator's default, given to all three
CURATOR_REQUIREMENT = "elasticsearch-curator<9"
TARGETS = {"vs_minimal": 1.05, "vs_curator": 1.0, "cpu_share": 0.02, "requests_per_minute": 30.0}
MAPPINGS = {
    "properties": {
        "timestamp": {"type": "date"},
        "level": {"type": "keyword"},
        "host": {"type": "keyword"},
        "amount": {"type": "double"},
        "message": {"type": "text"},
        "payload": {"type": "binary"},
    }
}
WORDS = ("alpha", "beta", "gamma", "delta", "shard", "replica", "snapshot", "restore", "bucket", "region", "node")


class ContenderFailed(Exception):
    """A contender's run did not complete; the message says which command and why."""


@dataclass
class Bed:
    """The sandbox and what every contender needs to reach it."""

    folder: Path
    document: dict[str, Any]
    source: EsClient
    destination: EsClient
    indices: list[str]
    poll_s: float
    work: Path
    curator_bin: Path | None = None
    before: Path | None = None  # --before: the source tree whose migrator the BEFORE contender runs

    @property
    def source_url(self) -> str:
        return str(self.document["source"]["url"])

    @property
    def destination_url(self) -> str:
        return str(self.document["destination"]["url"])

    @property
    def bucket_dir(self) -> Path:
        return self.folder / "buckets" / self.document["oss"]["bucket"]


@dataclass(frozen=True)
class WaitLoad:
    """Status requests one cluster received from migrator's wait steps (snapshot.wait, recovery[...])."""

    requests: int
    seconds: float  # time during which at least one wait step ran against this cluster
    peak_minute: int  # the most of them in any 60-second window

    @property
    def per_minute(self) -> float:
        return 60 * self.requests / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class RunResult:
    contender: str
    round: int
    run_id: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    startup_cpu_s: float = float("nan")  # migrator: CPU before its run began (Python, imports, the plan)
    run_cpu_s: float = float("nan")  # migrator: CPU while its run ran (its `run.cpu` event)
    run_wall_s: float = float("nan")
    ok: bool = False
    error: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    waits: dict[str, WaitLoad] = field(default_factory=dict)  # cluster -> what migrator's waits sent it


# -- child processes ------------------------------------------------------------------------------

_current_child: subprocess.Popen[bytes] | None = None


def run_child(
    command: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """Run one command with output to `log` (`env`: added to this environment); returns (wall s, user+sys CPU s
    of that process, exit code)."""
    global _current_child
    with log.open("ab") as out:
        out.write(("$ " + " ".join(command) + "\n").encode())
        out.flush()
        started = time.perf_counter()
        child = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
        )
        _current_child = child
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        _current_child = None
    return wall, usage.ru_utime + usage.ru_stime, child.returncode


def stop_current_child() -> None:
    child = _current_child
    if child is not None and child.returncode is None:
        child.kill()
        with contextlib.suppress(ChildProcessError):
            child.wait(timeout=10)


def tail(path: Path, lines: int = 8) -> str:
    if not path.is_file():
        return "(no output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def migrator_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "migrator", *args]


# -- sandbox and data -----------------------------------------------------------------------------


def sandbox_up(folder: Path, version: str, *, again: bool = True) -> tuple[dict[str, Any], bool]:
    """The sandbox document, and whether it was running already."""
    command = migrator_command("sandbox", "up", "--dir", str(folder), "--source-version", version)
    command += ["--destination-version", version]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"`migrator sandbox up` failed (exit {result.returncode}):\n{result.stderr.strip()}")
    document = json.loads(result.stdout)
    versions = {document["source"]["version"], document["destination"]["version"]}
    if len(versions) != 1 or not next(iter(versions)).startswith(version):
        if not again:
            raise SystemExit(f"`migrator sandbox up` gave Elasticsearch {sorted(versions)}, not {version}")
        sandbox_down(folder)  # a sandbox of other versions was running in this folder: start ours
        return sandbox_up(folder, version, again=False)
    return document, "already running" in result.stderr


def sandbox_down(folder: Path) -> None:
    subprocess.run(migrator_command("sandbox", "down", "--dir", str(folder)), capture_output=True, timeout=300)


def document_line(rng: random.Random, index: str, number: int) -> dict[str, Any]:
    return {
        "timestamp": f"2026-11-{1 + number % 28:02d}T{number % 24:02d}:{number % 60:02d}:00Z",
        "level": rng.choice(("info", "warn", "error", "debug")),
        "host": f"host-{rng.randrange(32)}",
        "amount": round(rng.uniform(0, 1000), 2),
        "message": f"{index} event {number} " + " ".join(rng.choice(WORDS) for _ in range(12)),
        "payload": b64encode(rng.randbytes(PAYLOAD_BYTES)).decode(),
    }


def index_plan(count: int, size_mb: int) -> dict[str, tuple[int, int]]:
    """Index name -> (primary shards, documents): sizes 1x to 2x of each other, 1 or 2 shards."""
    weights = [1.0 + (number % 3) / 2 for number in range(count)]
    doc_bytes = PAYLOAD_BYTES * 4 / 3 * 0.77 + 300  # base64 payload (LZ4 keeps 77 %) and the rest, as stored
    total_docs = size_mb * 2**20 / doc_bytes
    return {
        f"{SOURCE_PREFIX}{number:02d}": (1 + number % 2, int(total_docs * weight / sum(weights)))
        for number, weight in enumerate(weights)
    }


def generate(client: EsClient, wanted: dict[str, tuple[int, int]]) -> float:
    """Create the indices with bulk requests unless they are there already; returns the seconds spent."""
    existing = {row["index"]: row for row in client.indices(f"{SOURCE_PREFIX}*")}
    if set(existing) == set(wanted) and all(
        int(existing[name]["docs.count"] or 0) == docs and int(existing[name]["pri"]) == shards
        for name, (shards, docs) in wanted.items()
    ):
        return 0.0
    started = time.perf_counter()
    for name in existing:
        client.request("DELETE", build_path(name))
    for name, (shards, docs) in wanted.items():
        settings = {
            "number_of_shards": shards,
            "number_of_replicas": 0,
            "refresh_interval": "-1",
            "translog.durability": "async",
        }
        client.request("PUT", build_path(name), {"settings": settings, "mappings": MAPPINGS})
        rng = random.Random(name)
        for start in range(0, docs, BULK_DOCS):
            lines = []
            for number in range(start, min(docs, start + BULK_DOCS)):
                lines.append(json.dumps({"index": {"_index": name, "_id": str(number)}}))
                lines.append(json.dumps(document_line(rng, name, number)))
            _, answer = client.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode(), timeout_s=300)
            if answer.get("errors"):
                failed = next(item["index"]["error"] for item in answer["items"] if item["index"].get("error"))
                raise SystemExit(f"bulk into {name} failed: {failed}")
        reset = {"index": {"refresh_interval": None, "translog.durability": None}}
        client.request("PUT", build_path(name, "_settings"), reset)
        client.request("POST", build_path(name, "_refresh"))
        client.request("POST", build_path(name, "_flush"), timeout_s=300)
    return time.perf_counter() - started


# -- the contenders ---------------------------------------------------------------------------------


def repository_location(bed: Bed, run_id: str) -> Path:
    return bed.bucket_dir / "bench" / run_id


def targets(bed: Bed, run_id: str) -> dict[str, str]:
    return {index: f"{run_id}-{index}" for index in bed.indices}


def compare_counts(bed: Bed, run_id: str) -> None:
    for index, target in targets(bed, run_id).items():
        expected, actual = bed.source.doc_count(index), bed.destination.doc_count(target)
        if expected != actual:
            raise ContenderFailed(f"{target} has {actual} documents, {index} has {expected}")


def migrator_plan(bed: Bed, run_id: str, settings: dict[str, Any] | None = None) -> str:
    oss, env_file = bed.document["oss"], bed.folder / "sandbox.env"
    plan = {
        "name": run_id,
        "env_file": str(env_file),
        "source": {"url": bed.source_url},
        "destination": {"url": bed.destination_url},
        "repository": {
            "name": f"bench_{run_id}",
            "type": "fs",
            "settings": {"location": str(repository_location(bed, run_id)), **(settings or REPOSITORY_SETTINGS)},
        },
        "storage": {
            "kind": "oss",
            "endpoint": oss["endpoint"],
            "bucket": oss["bucket"],
            "base_path": f"bench/{run_id}",
            "region": oss["region"],
            "access_key_id": "${MIGRATOR_SANDBOX_OSS_ACCESS_KEY_ID}",
            "access_key_secret": "${MIGRATOR_SANDBOX_OSS_ACCESS_KEY_SECRET}",
        },
        "snapshot": {"indices": [f"{SOURCE_PREFIX}*"]},
        "restore": {
            "rename_pattern": "(.+)",
            "rename_replacement": f"{run_id}-$1",
            "index_settings": INDEX_SETTINGS,
        },
    }
    return yaml.safe_dump(plan, sort_keys=False)


def run_migrator(
    bed: Bed, result: RunResult, folder: Path, settings: dict[str, Any] | None = None, tree: Path | None = None
) -> None:
    """One `migrator apply`; `tree`: run the migrator of that source tree instead of this one (PYTHONPATH)."""
    plan = folder / "plan.yaml"
    plan.write_text(migrator_plan(bed, result.run_id, settings))
    log = folder / "migrator.log"
    started = time.time()
    command = migrator_command("apply", str(plan), "--yes", "--poll", str(bed.poll_s))
    # from the tree's own folder: `python -m` puts the working folder first on sys.path, before PYTHONPATH
    wall, cpu, code = run_child(command, log, cwd=tree, env={"PYTHONPATH": str(tree)} if tree else None)
    ended = time.time()
    result.wall_s, result.cpu_s = wall, cpu
    if code != 0:
        raise ContenderFailed(f"`migrator apply` exited {code}:\n{tail(log)}")
    report = migrator_report(plan)
    timeline = report["timeline"]
    for cpu in report["cpu"]:
        if cpu["run"] == timeline["run"]:
            result.startup_cpu_s = cpu["startup_cpu_s"]
            result.run_cpu_s = cpu["run_cpu_s"]
            result.run_wall_s = cpu["run_wall_s"]
    info = bed.source.get(build_path("_snapshot", f"bench_{result.run_id}", report["snapshot"]))["snapshots"][0]
    result.phases = migrator_phases(timeline, started, ended, info["end_time_in_millis"] / 1000)
    result.waits = {
        cluster: WaitLoad(wait["requests"], wait["seconds"], wait["peak_per_minute"])
        for cluster, wait in timeline["waits"].items()
    }


def migrator_report(plan: Path) -> dict[str, Any]:
    """`migrator report PLAN --format json`: the run's steps, its timeline (migrator/timeline.py) and its CPU."""
    done = subprocess.run(
        migrator_command("report", str(plan), "--format", "json"), capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise ContenderFailed(f"`migrator report` exited {done.returncode}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


LONG_WAIT_THROTTLE = "10mb"


def long_waits(bed: Bed) -> RunResult:
    """One more migrator run, not timed, with the snapshot and restores throttled so its waits last about a
    minute each: the status request rate of a wait that is long, not dominated by its first and last reads."""
    result = RunResult(MIGRATOR, 0, "rlong")
    folder = bed.work / result.run_id
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    throttled = {
        **REPOSITORY_SETTINGS,
        "max_snapshot_bytes_per_sec": LONG_WAIT_THROTTLE,
        "max_restore_bytes_per_sec": LONG_WAIT_THROTTLE,
    }
    try:
        run_migrator(bed, result, folder, throttled)
        compare_counts(bed, result.run_id)
        result.ok = True
    except (ContenderFailed, EsError) as exc:
        result.error = str(exc)
    finally:
        clean_up(bed, result.run_id, failed=not result.ok)
    return result


def report_long_waits(result: RunResult) -> None:
    print(
        f"\nlong waits (one more migrator run, not timed, snapshot and restores throttled to {LONG_WAIT_THROTTLE}/s; "
        f"wall {result.wall_s:.1f} s, {'ok' if result.ok else 'FAILED: ' + result.error}):"
    )
    print("  " + cpu_line(result.cpu_s, result.wall_s, result.startup_cpu_s, result.run_cpu_s, result.run_wall_s))
    for cluster, wait in sorted(result.waits.items()):
        limit = TARGETS["requests_per_minute"]
        print(
            f"  status requests during waits, {cluster}: {wait.per_minute:.1f} per minute of waiting "
            f"(target <= {limit:.0f}: {verdict(wait.per_minute <= limit)}); {wait.requests} requests over "
            f"{wait.seconds:.1f} s of waiting, at most {wait.peak_minute} in any 60 s window"
        )


def run_minimal(bed: Bed, result: RunResult, folder: Path) -> None:
    config = {
        "source": bed.source_url,
        "destination": bed.destination_url,
        "repository": f"bench_{result.run_id}",
        "settings": {"location": str(repository_location(bed, result.run_id)), **REPOSITORY_SETTINGS},
        "snapshot": f"snapshot-{result.run_id}",
        "indices": bed.indices,
        "rename_pattern": "(.+)",
        "rename_replacement": f"{result.run_id}-$1",
        "index_settings": INDEX_SETTINGS,
    }
    config_path = folder / "minimal.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = folder / "minimal.log"
    result.wall_s, result.cpu_s, code = run_child([sys.executable, str(MINIMAL_SCRIPT), str(config_path)], log)
    if code != 0:
        raise ContenderFailed(f"the minimal script exited {code}:\n{tail(log)}")
    report = json.loads(log.read_text().splitlines()[-1])
    result.phases = dict(report["timings"])
    result.phases["process start and exit"] = result.wall_s - sum(report["timings"].values())


def curator_actions(bed: Bed, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    repository, snapshot = f"bench_{run_id}", f"snapshot-{run_id}"
    snapshot_action = {
        "actions": {
            1: {
                "action": "snapshot",
                "description": "snapshot of the benchmark indices",
                "options": {
                    "repository": repository,
                    "name": snapshot,
                    "include_global_state": False,
                    "wait_for_completion": True,
                },
                "filters": [{"filtertype": "pattern", "kind": "prefix", "value": SOURCE_PREFIX}],
            }
        }
    }
    restore_action = {
        "actions": {
            1: {
                "action": "restore",
                "description": "restore of the benchmark indices under new names",
                "options": {
                    "repository": repository,
                    "name": snapshot,
                    "indices": bed.indices,
                    "include_aliases": False,
                    "include_global_state": False,
                    "rename_pattern": "(.+)",
                    "rename_replacement": f"{run_id}-$1",
                    "extra_settings": INDEX_SETTINGS,
                    "wait_for_completion": True,
                },
                "filters": [{"filtertype": "none"}],
            }
        }
    }
    return snapshot_action, restore_action


def run_curator(bed: Bed, result: RunResult, folder: Path) -> None:
    assert bed.curator_bin is not None
    run_id = result.run_id
    snapshot_action, restore_action = curator_actions(bed, run_id)
    (folder / "snapshot.yml").write_text(yaml.safe_dump(snapshot_action, sort_keys=False))
    (folder / "restore.yml").write_text(yaml.safe_dump(restore_action, sort_keys=False))
    repository_args = ["create", "fs", "--name", f"bench_{run_id}", "--location", str(repository_location(bed, run_id))]
    repository_args += ["--compress", "--max_snapshot_rate", REPOSITORY_SETTINGS["max_snapshot_bytes_per_sec"]]
    repository_args += ["--max_restore_rate", REPOSITORY_SETTINGS["max_restore_bytes_per_sec"]]
    es_repo_mgr, curator = str(bed.curator_bin / "es_repo_mgr"), str(bed.curator_bin / "curator")
    commands = [
        ("es_repo_mgr create (source)", [es_repo_mgr, "--hosts", bed.source_url, *repository_args]),
        ("snapshot action", [curator, "--hosts", bed.source_url, str(folder / "snapshot.yml")]),
        (
            "es_repo_mgr create --readonly",
            [es_repo_mgr, "--hosts", bed.destination_url, *repository_args, "--readonly"],
        ),
        ("restore action", [curator, "--hosts", bed.destination_url, str(folder / "restore.yml")]),
    ]
    log = folder / "curator.log"
    for name, command in commands:
        wall, cpu, code = run_child(command, log, cwd=folder)
        result.wall_s += wall
        result.cpu_s += cpu
        result.phases[name] = wall
        if code != 0:
            raise ContenderFailed(f"Curator's {name} exited {code}:\n{tail(log)}")
    started = time.perf_counter()
    compare_counts(bed, run_id)
    result.phases["count"] = time.perf_counter() - started
    result.wall_s += result.phases["count"]


def run_before(bed: Bed, result: RunResult, folder: Path) -> None:
    run_migrator(bed, result, folder, tree=bed.before)


RUNNERS = {MIGRATOR: run_migrator, MINIMAL: run_minimal, CURATOR: run_curator, BEFORE: run_before}


def run_once(bed: Bed, contender: str, round_number: int) -> RunResult:
    run_id = f"r{round_number}{SHORT[contender]}"
    result = RunResult(contender, round_number, run_id)
    folder = bed.work / run_id
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        RUNNERS[contender](bed, result, folder)
        compare_counts(bed, run_id)  # every contender's result checked the same way (not timed)
        result.ok = True
    except (ContenderFailed, EsError) as exc:
        result.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken run is reported, the others still run
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        clean_up(bed, run_id, failed=not result.ok)
    return result


def clean_up(bed: Bed, run_id: str, *, failed: bool) -> None:
    """Remove what one run left (restored indices, snapshot, repositories) so the next starts alike."""
    repository = f"bench_{run_id}"
    for target in targets(bed, run_id).values():
        bed.destination.request("DELETE", build_path(target), ok=(200, 404))
    if failed:  # a snapshot may still be running: stop it before its folder goes
        bed.source.request(
            "DELETE", build_path("_snapshot", repository, f"snapshot-{run_id}"), ok=(200, 404, 500), timeout_s=300
        )
    for client in (bed.source, bed.destination):
        client.request("DELETE", build_path("_snapshot", repository), ok=(200, 404))
    shutil.rmtree(repository_location(bed, run_id), ignore_errors=True)
    for client in (bed.source, bed.destination):
        client.health(wait_for_status="green", timeout="60s")


# -- reading migrator's report ---------------------------------------------------------------------


def migrator_phases(timeline: dict[str, Any], started: float, ended: float, snapshot_end: float) -> dict[str, float]:
    """Where migrator's wall time went, from its report's timeline; `started`/`ended` bound the process and
    `snapshot_end` is when the source says the snapshot ended (epoch s)."""
    spans = {step["step"]: (step["started"], step["finished"]) for step in timeline["steps"] if step["finished"]}
    if timeline["first_event"] is None or SNAPSHOT_WAIT not in spans:
        return {}
    first, last = timeline["first_event"], max(end for _, end in spans.values())
    snapshot_done = spans[SNAPSHOT_WAIT][1]
    restores_start = min((start for step, (start, _) in spans.items() if step.startswith("restore")), default=last)
    preflight = spans.get(PREFLIGHT, (first, first))[0]
    return {
        "process start to first event": first - started,
        "preflight, repository, snapshot": snapshot_done - first,
        "of which discovery and planning (first request to preflight's)": preflight - first,
        "of which the snapshot's end to snapshot.wait done": snapshot_done - snapshot_end,
        "verify in storage, destination repository": restores_start - snapshot_done,
        "restores, recoveries, counts": last - restores_start,
        "last step to exit": ended - last,
    }


# -- Curator ----------------------------------------------------------------------------------------


def prepare_curator(venv: Path, bed: Bed) -> tuple[Path | None, str]:
    """Curator's bin folder and a description, or None and exactly what failed."""
    curator = venv / "bin" / "curator"
    if not curator.is_file():
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "pip"), "install", "-q", CURATOR_REQUIREMENT],
        ]
        for command in steps:
            result = subprocess.run(command, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip().splitlines()[-6:]
                return None, f"`{' '.join(command)}` exited {result.returncode}: " + " | ".join(output)
    version = subprocess.run([str(curator), "--version"], capture_output=True, text=True, timeout=120)
    text = (version.stdout + version.stderr).strip()
    number = text.split()[-1] if text else ""
    if version.returncode != 0 or not number.startswith("8."):
        return None, f"`{curator} --version` gave {text!r} (exit {version.returncode}); Curator 8 is needed"
    for url in (bed.source_url, bed.destination_url):  # Curator's client starts with GET /
        probe = subprocess.run(
            [str(venv / "bin" / "es_repo_mgr"), "--hosts", url, "info"], capture_output=True, text=True, timeout=120
        )
        if probe.returncode != 0 or "number" not in probe.stdout:
            output = (probe.stdout + probe.stderr).strip().splitlines()[-4:]
            return None, f"`es_repo_mgr --hosts {url} info` exited {probe.returncode}: " + " | ".join(output)
    return venv / "bin", f"elasticsearch-curator {number} in {venv}"


# -- report -----------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine_line() -> str:
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    model, memory = "", ""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    with contextlib.suppress(OSError, StopIteration, ValueError):
        lines = Path("/proc/meminfo").read_text().splitlines()
        kib = int(next(line.split()[1] for line in lines if line.startswith("MemTotal")))
        memory = f", {kib / 2**20:.1f} GiB RAM"
    return f"{cores} cores ({usable} usable), {model or platform.machine()}{memory}, Python {platform.python_version()}"


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(results: list[RunResult], contenders: list[str], poll_s: float, missing: dict[str, str]) -> None:
    """Print every run, the medians and the ratios; `missing` names the contenders left out and why."""
    print("\nruns (wall = the contender's whole run; cpu = user+sys of its own processes):")
    print(f"  {'round':>5}  {'contender':<19} {'wall s':>8} {'cpu s':>7}  result")
    for r in results:
        print(f"  {r.round:>5}  {r.contender:<19} {r.wall_s:>8.2f} {r.cpu_s:>7.2f}  {'ok' if r.ok else 'FAILED'}")
        if r.error:
            print("         " + r.error.replace("\n", "\n         "))
    ok = {name: [r for r in results if r.contender == name and r.ok] for name in contenders}
    walls = {name: median([r.wall_s for r in runs]) for name, runs in ok.items()}
    print("\nmedians over the successful rounds:")
    print(f"  {'contender':<19} {'wall s':>8} {'min':>7} {'max':>7} {'cpu s':>7}  rounds")
    for name, runs in ok.items():
        if runs:
            w = [r.wall_s for r in runs]
            cpu = median([r.cpu_s for r in runs])
            print(f"  {name:<19} {walls[name]:>8.2f} {min(w):>7.2f} {max(w):>7.2f} {cpu:>7.2f}  {len(runs)}")
        else:
            print(f"  {name:<19} {'-':>8} {'-':>7} {'-':>7} {'-':>7}  0 (every run failed)")
    for name, runs in ok.items():
        if not runs:
            continue
        keys = list(runs[0].phases)
        parts = ", ".join(f"{key} {median([r.phases.get(key, 0.0) for r in runs]):.2f}" for key in keys)
        print(f"  {name} phases (median s): {parts}")

    print("\nratios and targets:")
    if ok.get(BEFORE) and ok.get(MINIMAL):
        print(f"  {BEFORE} / {MINIMAL}: {walls[BEFORE] / walls[MINIMAL]:.3f}x (the same rounds, for comparison)")
    mig = walls.get(MIGRATOR, float("nan"))
    for name, key, label in ((MINIMAL, "vs_minimal", "<="), (CURATOR, "vs_curator", "<")):
        if name in missing:
            print(f"  migrator / {name}: NOT MEASURED ({missing[name]})")
            continue
        if not ok.get(name) or not ok.get(MIGRATOR):
            print(f"  migrator / {name}: n/a (no successful run of both)")
            continue
        ratio = mig / walls[name]
        met = ratio <= TARGETS[key] if label == "<=" else ratio < TARGETS[key]
        print(f"  migrator / {name:<12} {ratio:.3f}x  (target {label} {TARGETS[key]:.2f}x: {verdict(met)})")
    runs = ok.get(MIGRATOR, [])
    if runs:
        print(
            "  "
            + cpu_line(
                median([r.cpu_s for r in runs]),
                median([r.wall_s for r in runs]),
                median([r.startup_cpu_s for r in runs]),
                median([r.run_cpu_s for r in runs]),
                median([r.run_wall_s for r in runs]),
            )
        )
        clusters = sorted({cluster for r in runs for cluster in r.waits})
        print(
            "  (status requests = those migrator's snapshot.wait and recovery[...] steps sent to a cluster, "
            f"per minute of the time those steps ran; polling every {poll_s:g} s)"
        )
        for cluster in clusters:
            waits = [r.waits[cluster] for r in runs if cluster in r.waits]
            rate = median([wait.per_minute for wait in waits])
            count = median([float(wait.requests) for wait in waits])
            seconds = median([wait.seconds for wait in waits])
            peak = max(wait.peak_minute for wait in waits)
            limit = TARGETS["requests_per_minute"]
            print(
                f"  status requests during waits, {cluster}: {rate:.1f} per minute of waiting "
                f"(target <= {limit:.0f}: {verdict(rate <= limit)}); median {count:.0f} requests over "
                f"{seconds:.1f} s of waiting, at most {peak} in any 60 s window"
            )


def cpu_line(cpu_s: float, wall_s: float, startup_cpu_s: float, run_cpu_s: float, run_wall_s: float) -> str:
    """migrator's CPU against the target, split into starting (until its run begins) and running."""
    share = cpu_s / wall_s
    return (
        f"migrator CPU: {cpu_s:.2f} s user+sys = {share:.1%} of its wall time "
        f"(target <= {TARGETS['cpu_share']:.0%}: {verdict(share <= TARGETS['cpu_share'])}); "
        f"{startup_cpu_s:.2f} s of it starting (Python, imports, reading the plan: before its first request), "
        f"{run_cpu_s:.2f} s running = {run_cpu_s / run_wall_s:.1%} of the {run_wall_s:.1f} s its run took"
    )


IMPORT_PROBES = {
    "typer": "import typer",
    "rich (console, live, progress, table)": "import rich.console, rich.live, rich.progress, rich.table",
    "pydantic": "import pydantic",
    "PyYAML": "import yaml",
    "networkx": "import networkx",
    "elastic-transport": "import elastic_transport",
    "oss2 (plain import)": "import oss2",
    "oss2 (as migrator imports it)": "import migrator.clients.oss_sdk",
    "all the packages above, GC paused as the CLI does": (
        "import gc; gc.disable(); import typer, rich.console, rich.live, rich.progress, rich.table, pydantic, yaml, "
        "networkx, elastic_transport, migrator.clients.oss_sdk; gc.freeze()"
    ),
    # since 2026-11-30 (speed2) the command line does not load rich (a terminal's view only); since 2026-12-01
    # (startup) each command imports its work when it runs: the command line alone, then what apply imports
    "migrator's command line alone (any command, --help)": "import migrator.cli",
    "what apply imports (before its first request)": (
        "import migrator.cli\nfrom migrator.cli.loading import frozen_imports\n"
        "with frozen_imports():\n    from migrator.cli.apply import run"
    ),
}


def import_costs(times: int = 5) -> dict[str, float]:
    """CPU seconds (user+sys, median of `times` fresh interpreters) each import adds to an empty Python."""

    def cpu_of(code: str) -> float:
        samples = []
        for _ in range(times):
            child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
            _, _, usage = os.wait4(child.pid, 0)
            samples.append(usage.ru_utime + usage.ru_stime)
        return median(samples)

    empty = cpu_of("pass")
    return {"Python itself (empty program)": empty} | {
        name: cpu_of(code) - empty for name, code in IMPORT_PROBES.items()
    }


def report_import_costs(wall_s: float) -> None:
    print(
        "\nwhere migrator's start-up CPU goes (fresh interpreter per import, median of 5; share = of the median "
        "migrator wall time above; the packages share dependencies, so the lines do not add up):"
    )
    for name, cpu in import_costs().items():
        print(f"  {name:<50} {cpu:6.3f} s  {cpu / wall_s:5.1%}")


# -- main -------------------------------------------------------------------------------------------


def byte_compile_migrator(before: Path | None = None) -> str:
    """Compile migrator's modules to bytecode, as pip does when it installs a package: in an editable checkout
    under PYTHONDONTWRITEBYTECODE, Python would compile them from source at every start (about 60 ms of CPU).
    `before`: the --before tree, compiled alike."""
    package = Path(migrator.__file__).resolve().parent
    compileall.compile_dir(package, quiet=1)
    if before is not None:
        compileall.compile_dir(before / "migrator", quiet=1)
    why = " (this environment sets PYTHONDONTWRITEBYTECODE)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    return f"migrator's modules byte-compiled first, as pip does at install{why}: {package}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three contenders (default 3)")
    parser.add_argument("--size-mb", type=int, default=300, help="data to generate, MiB on disk (default 300)")
    parser.add_argument("--indices", type=int, default=6, help="indices to spread it over (default 6)")
    parser.add_argument("--poll", type=float, default=2.0, help="migrator apply --poll seconds (default 2, its own)")
    parser.add_argument("--es-version", default="7.17", help="Elasticsearch on both sides (default 7.17 = 7.17.29)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("/var/tmp/migrator-bench"),
        help="parent of the sandbox folders, one per version (a folder once run by 8.x cannot start 7.x)",
    )
    parser.add_argument("--curator-venv", type=Path, default=cache_dir() / "curator-venv")
    parser.add_argument("--no-curator", action="store_true", help="leave Curator out")
    parser.add_argument("--keep-sandbox", action="store_true", help="leave the sandbox running at the end")
    parser.add_argument(
        "--no-long-waits", action="store_true", help="leave out the throttled run that measures long waits"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="a source tree of another migrator (e.g. `git archive main`), run as one more contender in the same "
        "rounds (its package on PYTHONPATH): before and after figures of a change under the same load",
    )
    return parser.parse_args()


@contextlib.contextmanager
def terminated_as_exit() -> Iterator[None]:
    """SIGTERM/SIGHUP end the benchmark like Ctrl-C: children stopped, sandbox down."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main() -> int:
    args = parse_args()
    began = time.perf_counter()
    folder = args.dir.resolve() / f"es-{args.es_version}"
    print("bench_speed: migrator apply vs (a) a minimal script of the same REST calls vs (b) Curator 8")
    print(f"machine: {machine_line()}; load average at start {os.getloadavg()[0]:.2f} (other jobs share the cores)")
    print(byte_compile_migrator(args.before))
    with terminated_as_exit():
        try:
            return bench(args, folder, began)
        finally:
            stop_current_child()
            if not args.keep_sandbox:
                sandbox_down(folder)
                print(f"sandbox in {folder} stopped")


def bench(args: argparse.Namespace, folder: Path, began: float) -> int:
    started = time.perf_counter()
    document, running = sandbox_up(folder, args.es_version)
    how = "already running" if running else f"up in {time.perf_counter() - started:.1f} s"
    print(
        f"clusters: Elasticsearch {document['source']['version']} -> {document['destination']['version']} "
        f"(`migrator sandbox up --dir {folder}`, one node each, 512 MB heap; {how}); one version on both "
        "sides, 7.17 by default so that Curator 8 can take part: its client starts with GET /, which the 8.19.21 "
        "integ-test zip lacks (no rest-root module)"
    )
    source = EsClient(document["source"]["url"], label="source", timeout_s=120)
    destination = EsClient(document["destination"]["url"], label="destination", timeout_s=120)
    wanted = index_plan(args.indices, args.size_mb)
    bed = Bed(folder, document, source, destination, sorted(wanted), args.poll, folder / "bench-runs")
    bed.before = args.before.resolve() if args.before else None
    try:
        for stale in destination.indices(f"*-{SOURCE_PREFIX}*"):
            destination.request("DELETE", build_path(stale["index"]), ok=(200, 404))
        for client in (source, destination):
            for name in client.get("/_snapshot"):
                if name.startswith("bench_"):
                    client.request("DELETE", build_path("_snapshot", name), ok=(200, 404))
        shutil.rmtree(bed.bucket_dir / "bench", ignore_errors=True)
        seconds = generate(source, wanted)
        rows = source.indices(f"{SOURCE_PREFIX}*")
        store = sum(int(row["pri.store.size"] or 0) for row in rows)
        docs = sum(int(row["docs.count"] or 0) for row in rows)
        shards = sum(int(row["pri"]) for row in rows)
        how = f"generated with bulk requests in {seconds:.1f} s" if seconds else "already there from an earlier run"
        print(
            f"data: {len(rows)} indices, {shards} primary shards, {docs:,} documents, {store / 2**20:.1f} MiB "
            f"on disk (no replicas), {how}"
        )
        print(
            "same for all three: an fs repository in the sandbox bucket, new for each run, settings "
            + ", ".join(f"{k} {v}" for k, v in REPOSITORY_SETTINGS.items())
            + f"; restore index_settings {INDEX_SETTINGS}, new name prefix per run; counts compared"
        )
        contenders = [MIGRATOR, MINIMAL, *([BEFORE] if bed.before else [])]
        missing: dict[str, str] = {}
        if args.no_curator:
            missing[CURATOR] = "left out with --no-curator"
            print("curator: left out (--no-curator)")
        else:
            bed.curator_bin, described = prepare_curator(args.curator_venv, bed)
            if bed.curator_bin is None:
                missing[CURATOR] = "Curator could not be used, see the curator line above"
                print(f"curator: COULD NOT BE USED, so (b) is not measured: {described}")
            else:
                contenders.append(CURATOR)
                print(
                    f"curator: {described}: es_repo_mgr create fs on each cluster (read-only on the destination), "
                    "its snapshot action then its restore action (action files, wait_for_completion true, its "
                    "default wait_interval 9 s), then the counts"
                )
        print(
            f"migrator: `migrator apply PLAN --yes --poll {args.poll:g}` (fresh plan and state file per run; "
            "restore.parallel 2, its default; the snapshot verified in the bucket through the OSS server)"
        )
        print(f"minimal (a): python {MINIMAL_SCRIPT.relative_to(HERE.parent)} (stdlib, wait_for_completion=true)")
        if bed.before:
            print(f"{BEFORE}: the same `migrator apply` with the package of {bed.before} (PYTHONPATH)")
        print(f"rounds: {args.rounds}, contenders interleaved, order rotated each round", flush=True)

        # One untimed run first: the first migration after the nodes start tends to be slow (their JIT warm-up),
        # and it was always round 1's first contender's, migrator's (its slowest run in 3 of 4 benchmarks on
        # 2026-11-30: 16.4, 19.0, 17.4 s against 15.4, 15.0, 15.6 s in round 2).
        warm = run_once(bed, MINIMAL, 0)
        print(f"  warm-up (not counted): minimal (a) {warm.wall_s:.2f} s {'ok' if warm.ok else 'FAILED'}", flush=True)
        results: list[RunResult] = []
        for round_number in range(1, args.rounds + 1):
            shift = (round_number - 1) % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                result = run_once(bed, contender, round_number)
                results.append(result)
                lines = result.error.splitlines() or [""]
                state = "ok" if result.ok else "FAILED: " + " ... ".join(dict.fromkeys([lines[0], lines[-1]]))
                print(f"  round {round_number} {contender:<19} {result.wall_s:7.2f} s  {state}", flush=True)
                if contender == CURATOR and not result.ok and not any(r.ok for r in results if r.contender == CURATOR):
                    contenders.remove(CURATOR)
                    print("  curator failed on its first run: left out of the remaining rounds", flush=True)
        measured = [MIGRATOR, MINIMAL, *([BEFORE] if bed.before else []), *([CURATOR] if bed.curator_bin else [])]
        report(results, measured, args.poll, missing)
        if not args.no_long_waits:
            report_long_waits(long_waits(bed))
        migrator_runs = [r.wall_s for r in results if r.contender == MIGRATOR and r.ok]
        if migrator_runs:
            report_import_costs(median(migrator_runs))
        print(f"\nload average at end {os.getloadavg()[0]:.2f}; benchmark took {time.perf_counter() - began:.0f} s")
        return 0 if all(r.ok for r in results) else 1
    finally:
        source.close()
        destination.close()


if __name__ == "__main__":
    sys.exit(main())
