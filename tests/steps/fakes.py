"""A fake source cluster for the snapshot steps: one repository, snapshots whose end the test decides."""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from migrator.clients.es import EsError, Request
from migrator.clients.tap import RequestTap
from migrator.discovery import IndexFacts
from migrator.ownership import Ledger
from migrator.steps.handoffs import HeldRequests, SnapshotSizes

REPOSITORY = "repo"


class FakeSource:
    """Answers the snapshot requests the steps send; a held create request blocks until `end()`."""

    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, step tag of the sending thread
        self.tap = RequestTap()  # tells which step the sending thread works on, as a migration's does
        self.observer = self
        self.ended = threading.Event()
        self.create_error: EsError | None = None
        self.status_state = "IN_PROGRESS"

    def __call__(self, cluster: str, request: Request, status: int | None) -> None:
        if status is None:
            self.requests.append((request.method, request.path, self.tap.step))

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
        self.messages: list[tuple[str | None, str]] = []

    def update(self, step: str, completed: float, total: float, unit: str, text: str = "") -> None:
        self.updates.append((completed, total))

    def message(self, step: str | None, text: str) -> None:
        self.messages.append((step, text))


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
        held_snapshots=HeldRequests(source.tap),
        snapshot_index_bytes=SnapshotSizes(),
        ledger=Ledger(),
        progress=Progress(),
        cancelled=False,
        poll_s=poll_s,
    )
    ctx.cancel_requested = lambda: ctx.cancelled
    ctx.sleep = lambda seconds=None: None
    return ctx


class FakeIndices:
    """A cluster of named indices with blocks and aliases, answering what the block and alias code sends:
    the filtered cluster state, `_cat/indices`, `PUT <names>/_settings` of blocks, `GET _alias/<alias>`,
    `POST _aliases`."""

    def __init__(self, blocks: dict[str, dict[str, str]], aliases: dict[str, set[str]] | None = None) -> None:
        self.blocks = {name: dict(carried) for name, carried in blocks.items()}
        self.aliases = {alias: set(names) for alias, names in (aliases or {}).items()}
        self.sent: list[tuple[str, str, Any]] = []  # the mutating requests, in order

    def get(self, path: str, *, ok: tuple[int, ...] = (200,)) -> Any:
        return self.request("GET", path, ok=ok)[1]

    def request(
        self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,), timeout_s: float | None = None
    ) -> tuple[int, Any]:
        parts = urlsplit(path).path.strip("/").split("/")
        if method == "GET" and parts[:3] == ["_cluster", "state", "metadata"]:
            names = parts[3].split(",") if len(parts) > 3 else list(self.blocks)
            indices = {
                name: {"settings": {"index": {"blocks": {k.split(".")[-1]: v for k, v in self.blocks[name].items()}}}}
                for name in names
                if self.blocks.get(name)
            }
            return 200, ({"metadata": {"indices": indices}} if indices else {})
        if method == "HEAD":
            return (200 if parts[0] in self.blocks else 404), {}
        if method == "GET" and parts == ["_cat", "indices"]:
            return 200, [{"index": name} for name in self.blocks]
        if method == "GET" and parts[0] == "_alias":
            holders = self.aliases.get(parts[1], set())
            if not holders:
                return 404, {}
            return 200, {name: {"aliases": {parts[1]: {}}} for name in holders}
        self.sent.append((method, path, body))
        if method == "PUT" and parts[-1] == "_settings":
            for name in parts[0].split(","):
                for setting, value in body.items():
                    if value is None:
                        self.blocks[name].pop(setting, None)
                    else:
                        self.blocks[name][setting] = str(value).lower()
            return 200, {"acknowledged": True}
        if method == "POST" and parts == ["_aliases"]:
            for action in body["actions"]:
                ((kind, target),) = action.items()
                holders = self.aliases.setdefault(target["alias"], set())
                (holders.add if kind == "add" else holders.discard)(target["index"])
            return 200, {"acknowledged": True}
        raise AssertionError(f"unexpected request {method} {path}")


def indices_with_aliases(aliases: dict[str, list[str]]) -> dict[str, IndexFacts]:
    """Discovered destination indices holding the given aliases (alias -> index names)."""
    holders: dict[str, list[str]] = {}
    for alias, names in aliases.items():
        for name in names:
            holders.setdefault(name, []).append(alias)
    return {name: IndexFacts(name, "open", "green", 0, 0, 0, 1, aliases=sorted(held)) for name, held in holders.items()}
