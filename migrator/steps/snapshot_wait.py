"""Follow the snapshot until it ends, with shards and bytes as progress; ask the source gently.

When this run sent the create request it holds that request open (`wait_for_completion=true`, see
snapshot_create) and waits on its answer, reading `_status` only every few seconds for the
progress bar: the document warns that snapshot status calls share the snapshot thread pool. A run
without the held request (a resume in a new process, or a held request cut) polls every `poll_s`.

A snapshot that ends FAILED, ABORTED, or PARTIAL when the plan does not allow it, stops the run
naming its state, its failed shards and their reasons. Nothing was restored from it (every restore
waits for this step), so the next `migrator resume` deletes it and takes it again under the same
name; a snapshot that went missing is taken again too. The run that saw it fail never takes it
again by itself: the cause (a full or unwritable repository, a broken shard) is most likely still
there. A snapshot whose shards and bytes do not move for `waits.stall_after` stops the step too
(see stall), from the `_status` reads the progress bar makes anyway.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_for_futures
from typing import Any

from migrator.clients.es import build_path
from migrator.dag import StepKind
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepFailed
from migrator.steps.snapshot_create import claim_or_refuse, snapshot_info, take_snapshot
from migrator.steps.stall import StallWatch

PROGRESS_EVERY_S = 5.0  # `_status` while the held request runs: 12 a minute at most
ENDED_BADLY = ("FAILED", "PARTIAL", "ABORTED")
FAILURES_SHOWN = 3


def held_answer(held: Future[Any]) -> dict[str, Any] | None:
    """The snapshot info in the held request's answer; None when it failed or holds none."""
    if held.exception() is not None:
        return None
    answer = held.result()
    info = answer.get("snapshot") if isinstance(answer, dict) else None
    return info if isinstance(info, dict) and info.get("state") else None


def failure_text(info: dict[str, Any]) -> str:
    """The failed shards and reasons a snapshot info names, in one line."""
    shards = info.get("shards") or {}
    parts = []
    if shards:
        parts.append(f"{shards.get('failed', 0)} of {shards.get('total', 0)} shards failed")
    failures = info.get("failures") or []
    for failure in failures[:FAILURES_SHOWN]:
        where = f"{failure.get('index', '?')}[{failure.get('shard_id', '?')}]"
        parts.append(f"{where}: {failure.get('reason', 'no reason given')}")
    if len(failures) > FAILURES_SHOWN:
        parts.append(f"and {len(failures) - FAILURES_SHOWN} more")
    if info.get("reason"):
        parts.append(f"reason: {info['reason']}")
    return "; ".join(parts) or "no reason given"


def copy_stats(status: dict[str, Any]) -> dict[str, Any]:
    """What the snapshot copied against what it holds, from its `_status` statistics: a later snapshot of
    the same indices copies only the files that changed (7.8+ report both; older versions only the copy)."""
    stats = status.get("stats") or {}
    if "incremental" in stats:
        incremental, total = stats.get("incremental") or {}, stats.get("total") or {}
        return {
            "incremental_bytes": incremental.get("size_in_bytes"),
            "incremental_files": incremental.get("file_count"),
            "total_bytes": total.get("size_in_bytes"),
            "total_files": total.get("file_count"),
        }
    if "total_size_in_bytes" in stats:
        return {
            "incremental_bytes": stats.get("total_size_in_bytes"),
            "incremental_files": stats.get("number_of_files"),
        }
    return {}


def index_bytes(status: dict[str, Any]) -> dict[str, int]:
    """Index -> the bytes of all its files in the snapshot (7.8+; older `_status` count only the copy)."""
    sizes = {}
    for index, entry in (status.get("indices") or {}).items():
        total = ((entry.get("stats") or {}).get("total") or {}).get("size_in_bytes")
        if isinstance(total, int):
            sizes[index] = total
    return sizes


class FollowSnapshot(Step):
    kind = StepKind.SNAPSHOT_WAIT
    title = "Follow the snapshot until it succeeds"
    waits_for = "state SUCCESS in the snapshot info (progress: shards done / total, bytes processed / total)"

    def _status_request(self) -> ConsoleRequest:
        """`GET _snapshot/<repo>/<snapshot>/_status`: the poll `_progress` sends and `checks` shows."""
        path = build_path("_snapshot", self.ctx.repository, self.snapshot, "_status")
        return ConsoleRequest("source", "GET", path.lstrip("/"))

    def describe(self) -> list[ConsoleRequest]:
        return []  # it sends nothing: it waits on the create's held request

    def checks(self) -> list[ConsoleRequest]:
        """Its reads: the snapshot's info, and `_status` for the progress (every few seconds while the snapshot
        runs, and once after it for the copy statistics; never, for one that ends before the first poll)."""
        return [
            ConsoleRequest("source", "GET", f"_snapshot/{self.ctx.repository}/{self.snapshot}"),
            self._status_request(),
        ]

    def _succeeded(self, info: dict[str, Any]) -> bool:
        """True when the snapshot ended well; raises StepFailed when it ended badly; False while it runs."""
        state = info.get("state")
        if state == "SUCCESS" or (state == "PARTIAL" and self.ctx.spec.snapshot.partial):
            return True
        if state in ENDED_BADLY:
            raise StepFailed(self._ended_badly(info))
        return False

    def _ended_badly(self, info: dict[str, Any]) -> str:
        partial = " (the plan does not allow a partial snapshot)" if info.get("state") == "PARTIAL" else ""
        return (
            f"snapshot {self.snapshot} in repository {self.ctx.repository} ended {info.get('state')}{partial}: "
            f"{failure_text(info)}. Fix the cause (GET _snapshot/{self.ctx.repository}/{self.snapshot} shows "
            "every failure), then `migrator resume` deletes this snapshot and takes it again"
        )

    def _missing(self, held: Future[Any] | None) -> str:
        error = held.exception() if held is not None and held.done() else None
        what = f"failed ({error})" if error is not None else "went missing (deleted behind our back?)"
        return (
            f"snapshot {self.snapshot} in repository {self.ctx.repository} {what} and is not in the repository. "
            "Fix the cause, then `migrator resume` takes it again"
        )

    def _info(self) -> dict[str, Any]:
        info = snapshot_info(self.ctx, self.snapshot)
        if info is None:
            if self.ctx.cancel_requested():
                raise Cancelled("cancel requested")
            raise StepFailed(self._missing(self.ctx.held_snapshots.get(self.snapshot)))
        return info

    def _progress(self, watch: StallWatch | None = None) -> dict[str, Any]:
        """Read `_status` and show shards and bytes (to `watch` too); returns the status (empty when it is gone)."""
        code, body = self.ctx.source.request("GET", self._status_request().sent_path, ok=(200, 404))
        status = (body.get("snapshots") or [{}])[0] if code == 200 else {}
        shards = status.get("shards_stats", {})
        stats = status.get("stats", {})
        total = stats.get("total", {}).get("size_in_bytes", stats.get("total_size_in_bytes", 0))
        done = stats.get("processed", {}).get("size_in_bytes", stats.get("processed_size_in_bytes", 0))
        text = f"shards {shards.get('done', 0)}/{shards.get('total', 0)}"
        self.ctx.progress.update(self.id, done, total, "bytes", text)
        if watch is not None:
            watch.see((status.get("state"), shards.get("done"), done), f"{text}, {done}/{total} bytes")
        return status

    def _await(self, held: Future[Any], seconds: float) -> bool:
        """Wait up to `seconds` for the held request to end (True when it did); stops early on cancel."""
        deadline = time.monotonic() + seconds
        while True:
            if self.ctx.cancel_requested():
                raise Cancelled("cancel requested")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return held.done()
            if wait_for_futures([held], timeout=min(remaining, 0.5)).done:
                return True

    def observe(self) -> Observation:
        held = self.ctx.held_snapshots.get(self.snapshot)
        if held is not None and not held.done():
            return Observation(False, in_progress=True, summary=f"snapshot {self.snapshot} running (request held open)")
        # The held request's answer is the snapshot's info once finalized: no need to ask again.
        info = held_answer(held) if held is not None else None
        if info is None:
            info = snapshot_info(self.ctx, self.snapshot)
            if info is None:
                return Observation(False, summary=f"snapshot {self.snapshot} is missing: to be taken again")
            claim_or_refuse(self.ctx, self.snapshot, info)
        state = info.get("state")
        if state in ENDED_BADLY and not (state == "PARTIAL" and self.ctx.spec.snapshot.partial):
            return Observation(False, summary=f"snapshot {self.snapshot} ended {state}: to be taken again")
        done = self._succeeded(info)
        return Observation(done, in_progress=not done, summary=f"snapshot {state}")

    def act(self) -> None:
        """Reached when the snapshot ended badly or is missing: stop if this run took it, else take it again."""
        held = self.ctx.held_snapshots.get(self.snapshot)
        info = snapshot_info(self.ctx, self.snapshot)
        if held is not None:
            raise StepFailed(self._missing(held) if info is None else self._ended_badly(info))
        if info is not None:
            claim_or_refuse(self.ctx, self.snapshot, info)  # only a snapshot of ours is deleted
            path = build_path("_snapshot", self.ctx.repository, self.snapshot)
            self.ctx.source.request("DELETE", path, ok=(200, 404))
        take_snapshot(self.ctx, self.id, self.snapshot)

    def wait(self) -> dict[str, Any]:
        held = self.ctx.held_snapshots.get(self.snapshot)
        watch = StallWatch(self.ctx, f"snapshot {self.snapshot} in repository {self.ctx.repository}")
        while True:
            if held is None:
                status = self._progress(watch)
                # `_status` says SUCCESS once every shard is done, before the snapshot is finalized (and
                # also for a PARTIAL one); the snapshot's own info says how it ended, and only afterwards.
                if status.get("state") not in ("IN_PROGRESS", "STARTED", "INIT"):
                    info = self._info()
                    if self._succeeded(info):
                        break
                self.ctx.sleep()
            elif self._await(held, PROGRESS_EVERY_S):
                info = held_answer(held) or self._info()
                if self._succeeded(info):
                    break
                held = None  # answered, yet the snapshot runs on (a cut request): poll from now on
            else:
                self._progress(watch)
        detail = {"state": info.get("state"), "shards": (info.get("shards") or {}).get("total", 0)}
        # One read of the finished snapshot's statistics: what it copied, and what it reused.
        status = self._progress()
        self.ctx.snapshot_index_bytes.record(self.snapshot, index_bytes(status))
        return {**detail, **copy_stats(status)}
