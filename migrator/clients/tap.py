"""clients -> tap -> listeners: the one way a migration sees the requests its cluster clients send.

Place in the flow: clients -> tap -> listeners. A migration builds both `EsClient`s with its tap as their
observer, once; nothing reassigns it. Whoever wants to see the requests listens for a scope:

    with migration.requests.listening(RequestLog(state, redactor)):  # the event log: apply, cancel, rollback
        ...

(the dry run listens the same way to keep discovery's reads for the runbook). The step a request is
sent for is the sending thread's: the executor says which step a thread works on (`working_on`), and
`steps.handoffs.HeldRequests` carries it into the thread that holds a request open, `at_once` into the
threads of reads sent together. Each listener is
called twice per request: with status None just before it is sent, then with the HTTP status of its answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from migrator.clients.es import Request

# (cluster label "source" | "destination", the request, its HTTP status or None before it is sent, the step id)
T = TypeVar("T")
Listener = Callable[[str, Request, "int | None", "str | None"], None]


class RequestTap:
    """The clients' observer: passes each request, with the step of the sending thread, to every listener."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def __call__(self, cluster: str, request: Request, status: int | None) -> None:
        step = self.step
        with self._lock:
            listeners = tuple(self._listeners)
        for listener in listeners:
            listener(cluster, request, status, step)

    @property
    def step(self) -> str | None:
        """The step this thread sends requests for (None: none, e.g. discovery)."""
        return getattr(self._local, "step", None)

    def working_on(self, step: str | None) -> None:
        """From now on, this thread's requests are sent for `step`."""
        self._local.step = step

    def at_once(self, *reads: Callable[[], T]) -> list[T]:
        """The results of independent `reads`, in order, sent at once from as many threads (one round trip
        instead of several), each thread working on the calling thread's step; a read's error is raised."""
        step = self.step

        def tagged(read: Callable[[], T]) -> T:
            self.working_on(step)
            return read()

        with ThreadPoolExecutor(len(reads), thread_name_prefix="read") as pool:
            return [answer.result() for answer in [pool.submit(tagged, read) for read in reads]]

    @contextmanager
    def listening(self, listener: Listener) -> Iterator[None]:
        """Call `listener` for every request sent (by any thread) until the block ends."""
        with self._lock:
            self._listeners.append(listener)
        try:
            yield
        finally:
            with self._lock:
                self._listeners.remove(listener)
