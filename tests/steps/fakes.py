"""A fake source cluster for the snapshot steps: one repository, snapshots whose end the test decides."""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from migrator.clients.es import EsError, Request
from migrator.ownership import Ledger

REPOSITORY = "repo"


class FakeSource:
    """Answers the snapshot requests the steps send; a held create request blocks until `end()`."""

    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, step tag of the sending thread
        self.current = threading.local()  # like the executor's RequestLog
        self.observer = self
        self.ended = threading.Event()
        self.create_error: EsError | None = None
        self.status_state = "IN_PROGRESS"

    def __call__(self, cluster: str, request: Request, status: int | None) -> None:
        if status is None:
            self.requests.append((request.method, request.path, getattr(self.current, "step", None)))

    @staticmethod
    def snapshot_entry(name: str, state: str = "IN_PROGRESS", start_ms: int | None = None) -> dict[str, Any]:
        """A snapshot as `GET _snapshot/<repo>/<name>` shows it (uuid and start time as 7.x+ give them)."""
        start = int(time.time() * 1000) if start_ms is None else start_ms
        return {"snapshot": name, "uuid": uuid.uuid4().hex, "state": state, "start_time_in_millis": start}

    def taken_earlier(self, ctx: Any, name: str, state: str, **extra: Any) -> None:
        """A snapshot an earlier run of this migration took: its intent and uuid are in the ledger."""
        ctx.ledger.intend_snapshot(ctx.repository, name)
        self.snapshots[name] = {**self.snapshot_entry(name, state), **extra}
        assert ctx.ledger.claim_snapshot(ctx.repository, name, self.snapshots[name])

    def end(self, state: str, failures: list[dict[str, Any]] | None = None, *, shards: int = 2) -> None:
        for info in self.snapshots.values():
            if info["state"] == "IN_PROGRESS":
                failed = len(failures or [])
                info.update(state=state, failures=failures or [])
                info["shards"] = {"total": shards, "failed": failed, "successful": shards - failed}
        self.status_state = "SUCCESS"
        self.ended.set()

    def count(self, method: str, suffix: str = "") -> int:
        return sum(1 for m, path, _ in self.requests if m == method and urlsplit(path).path.endswith(suffix))

    def request(
        self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,), timeout_s: float | None = None
    ) -> tuple[int, Any]:
        request = Request(method, path, body)
        self.observer(REPOSITORY, request, None)
        parts = urlsplit(path).path.strip("/").split("/")
        name = parts[2]
        if method == "PUT":
            if self.create_error is not None:
                raise self.create_error
            self.snapshots[name] = self.snapshot_entry(name)
            if "wait_for_completion=true" in path:
                self.ended.wait(30)
                return 200, {"snapshot": self.snapshots.get(name, {})}
            return 200, {"accepted": True}
        if method == "DELETE":
            self.ended.clear()
            return (200, {}) if self.snapshots.pop(name, None) else (404, {})
        if name not in self.snapshots:
            if 404 not in ok:
                raise EsError(REPOSITORY, request, 404, "snapshot_missing_exception")
            return 404, {}
        if parts[-1] == "_status":
            stats = {"total": {"size_in_bytes": 1000}, "processed": {"size_in_bytes": 400}}
            indices = {
                "orders": {"stats": {"total": {"file_count": 4, "size_in_bytes": 600}}},
                "logs": {"stats": {"total": {"file_count": 2, "size_in_bytes": 400}}},
            }
            status = {
                "state": self.status_state,
                "shards_stats": {"done": 1, "total": 2},
                "stats": stats,
                "indices": indices,
            }
            return 200, {"snapshots": [status]}
        return 200, {"snapshots": [dict(self.snapshots[name])]}


class Progress:
    def __init__(self) -> None:
        self.updates: list[tuple[float, float]] = []

    def update(self, step: str, completed: float, total: float, unit: str, text: str = "") -> None:
        self.updates.append((completed, total))

    def message(self, step: str | None, text: str) -> None:
        return None


def context(
    source: FakeSource, *, partial: bool = False, poll_s: float = 0.01, stall_after: float = 900.0
) -> SimpleNamespace:
    """What the snapshot steps use of a StepContext."""
    ctx = SimpleNamespace(
        spec=SimpleNamespace(
            snapshot=SimpleNamespace(include_global_state=False, partial=partial, ignore_unavailable=False),
            waits=SimpleNamespace(stall_after=stall_after),
        ),
        plan=SimpleNamespace(moves=[SimpleNamespace(source="orders"), SimpleNamespace(source="logs")]),
        source=source,
        repository=REPOSITORY,
        snapshot="snap-1",
        held_snapshots={},
        snapshot_index_bytes={},
        ledger=Ledger(),
        progress=Progress(),
        cancelled=False,
        poll_s=poll_s,
    )
    ctx.cancel_requested = lambda: ctx.cancelled
    ctx.sleep = lambda seconds=None: None
    return ctx
