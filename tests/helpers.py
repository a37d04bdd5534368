"""Helpers for tests that drive the CLI against the shared test bed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import yaml

from migrator.state import StateStore

BIG_INDEX = "big-events"


def cli(
    bed, *args: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **bed.environment(), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "migrator", *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"migrator {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def background(bed, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **bed.environment()}
    return subprocess.Popen(
        [sys.executable, "-m", "migrator", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def repository_of(plan: Path) -> str:
    return yaml.safe_load(plan.read_text())["repository"]["name"]


def counts(bed, alias: str, pattern: str) -> dict[str, int]:
    client = bed.client(alias)
    try:
        rows = client.indices(pattern)
        return {row["index"]: client.doc_count(row["index"]) for row in rows}
    finally:
        client.close()


def request_events(plan: Path, run: int | None = None) -> list:
    store = StateStore(plan.with_name("plan.state.db"))
    try:
        return [event for event in store.events(kind="request", run=run)]
    finally:
        store.close()


def restore_requests(plan: Path) -> list[dict]:
    """The restore requests sent (held open with `wait_for_completion=true` or not), as logged."""
    return [
        e.data
        for e in request_events(plan)
        if e.data["method"] == "POST" and e.data["path"].split("?")[0].endswith("/_restore")
    ]


def snapshot_waiting(checkpoints) -> bool:
    return bool(checkpoints.get("snapshot.wait")) and checkpoints["snapshot.wait"].status == "acting"


def wait_for_checkpoint(state_file: Path, predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state_file.exists():
            store = StateStore(state_file)
            try:
                if predicate(store.checkpoints()):
                    return
            finally:
                store.close()
        time.sleep(0.2)
    raise AssertionError(f"checkpoint never reached in {state_file}")


def throttle(plan: Path, snapshot: str = "400kb", restore: str = "400kb") -> None:
    document = yaml.safe_load(plan.read_text())
    document["repository"]["settings"]["max_snapshot_bytes_per_sec"] = snapshot
    document["repository"]["destination_settings"] = {"max_restore_bytes_per_sec": restore}
    plan.write_text(yaml.safe_dump(document, sort_keys=False))


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py as a module (scripts/ is not a package), loaded once per test session."""
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while they are made
    spec.loader.exec_module(module)
    return module
