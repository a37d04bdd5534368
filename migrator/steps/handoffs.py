"""executor -> steps: what one step hands to another within a run (held requests, a snapshot's sizes).

Place in the flow: executor -> steps. Each handoff is a typed service with one producer and its
consumers, kept for the run in the `StepContext` (a new run starts with empty ones: a step that finds
nothing handed over falls back to reading the cluster):

- `HeldRequests` of snapshots: `snapshot.create` sends `PUT _snapshot/<repo>/<snapshot>?wait_for_completion=true`
  and `snapshot.wait` waits on its answer (keyed by snapshot name);
- `HeldRequests` of restores: `restore` sends `POST _snapshot/<repo>/<snapshot>/_restore?wait_for_completion=true`
  and `recovery` waits on its answer (keyed by destination index); a restore batch's request is held under
  every member's key, and the batch marks the members it saw restored while it still runs (`mark_done`:
  their primaries started, steps/batch_watch); their `restore` and `recovery` steps take that as restored
  (`marked_done`) without waiting for the answer;
- `BatchHeals`: `recovery` hands a batch member whose restore was given up back to its batch (batch_heal);
- `EarlyReleases`: a running step (`restore.batch`) tells the executor which of its successors may start
  before it is done (the members it saw restored); the executor reads them (migrator.executor);
- `SnapshotSizes`: `snapshot.wait` records, once the snapshot ended, the bytes of each source index's files
  in it (7.8+'s `_status` totals); `recovery` reports them as what restoring into a new index copies.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from typing import Any

from migrator.clients.es import EsClient
from migrator.clients.tap import RequestTap

# A snapshot or restore may run for hours; should a held request time out (or a proxy cut it), the
# step that waits on it falls back to polling, so this bound only keeps a thread from waiting forever.
HELD_TIMEOUT_S = 24 * 3600.0


class HeldRequests(Mapping[str, "Future[Any]"]):
    """Requests sent with `wait_for_completion=true` from a background thread, by key; each answer (the
    response body, or the request's error) lands in its future. Read-only as a mapping."""

    def __init__(self, tap: RequestTap | None = None) -> None:
        self._tap = tap  # the clients' tap, told which step the holding thread sends for (None: not logged)
        self._held: dict[str, Future[Any]] = {}
        self._done: set[str] = set()  # keys whose part of their held request is over, though it still runs
        self._lock = threading.Lock()

    def send(self, client: EsClient, step_id: str, method: str, path: str, body: Any) -> Future[Any]:
        """Send the request from a background thread (logged under `step_id` like any other); its future, to
        `keep` once the request is under way."""
        answer: Future[Any] = Future()

        def hold() -> None:
            if self._tap is not None:
                self._tap.working_on(step_id)
            try:
                answer.set_result(client.request(method, path, body, timeout_s=HELD_TIMEOUT_S)[1])
            except Exception as exc:  # noqa: BLE001 - handed to the step that waits on it
                answer.set_exception(exc)

        threading.Thread(target=hold, name=f"held-{step_id}", daemon=True).start()
        return answer

    def keep(self, key: str, answer: Future[Any]) -> None:
        """Hand `answer` over under `key` (replacing one held before) to the step that waits on it."""
        with self._lock:
            self._held[key] = answer
            self._done.discard(key)

    def release(self, key: str) -> Future[Any] | None:
        """Forget the request held under `key` (its waiter follows by polling from now on); returns it."""
        with self._lock:
            self._done.discard(key)
            return self._held.pop(key, None)

    def mark_done(self, keys: Iterable[str]) -> None:
        """The part of their held request these keys stand for is over, though the request still runs (a batch
        member restored: its primaries started); until another request is kept for one of them, or it is
        released."""
        with self._lock:
            self._done.update(key for key in keys if key in self._held)

    def marked_done(self, key: str) -> bool:
        """Whether `key`'s part of its held request was marked over (`mark_done`)."""
        with self._lock:
            return key in self._done

    def __getitem__(self, key: str) -> Future[Any]:
        with self._lock:
            return self._held[key]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._held))

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)


class SnapshotSizes(Mapping[str, Mapping[str, int]]):
    """Snapshot name -> source index -> bytes of its files in the snapshot, as `snapshot.wait` read them."""

    def __init__(self) -> None:
        self._sizes: dict[str, dict[str, int]] = {}

    def record(self, snapshot: str, index_bytes: Mapping[str, int]) -> None:
        self._sizes[snapshot] = dict(index_bytes)

    def of(self, snapshot: str, index: str) -> int | None:
        """The bytes of `index` in `snapshot`, or None when this run did not read them."""
        return self._sizes.get(snapshot, {}).get(index)

    def __getitem__(self, snapshot: str) -> Mapping[str, int]:
        return self._sizes[snapshot]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sizes)

    def __len__(self) -> int:
        return len(self._sizes)


class BatchHeals:
    """recovery -> restore batch (see batch_heal): the batch members restored again in this run (target names),
    and one lock per batch, so that members whose restores were given up at once are restored in one request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[str, threading.Lock] = {}
        self.restored_again: set[str] = set()

    def lock(self, batch: str) -> threading.Lock:
        """The lock of `batch` (made on first use)."""
        with self._lock:
            return self._batches.setdefault(batch, threading.Lock())


class EarlyReleases:
    """step -> executor: the successors a running step lets start before it is done (an edge of the DAG
    satisfied early; the step's own checkpoint is recorded as before, when it ends). Thread-safe: the step
    calls `release` from its worker thread; the executor waits on `signal()` beside the running steps and
    takes the edges with `take()`. An edge that is not one of the graph's, or whose step is not running any
    more, is ignored by the executor."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._edges: list[tuple[str, str]] = []
        self._signal: Future[None] = Future()

    def release(self, step: str, successors: Iterable[str]) -> None:
        """`step` (running) lets these of its successors start now (they still wait for their other predecessors)."""
        with self._lock:
            self._edges.extend((step, successor) for successor in successors)
            if self._edges and not self._signal.done():
                self._signal.set_result(None)

    def signal(self) -> Future[None]:
        """A future done once an edge is released and not yet taken (to wait on beside the steps' futures)."""
        with self._lock:
            return self._signal

    def take(self) -> list[tuple[str, str]]:
        """The (step, successor) edges released since the last take, in order; the signal is reset."""
        with self._lock:
            edges, self._edges = self._edges, []
            if self._signal.done():
                self._signal = Future()
            return edges
