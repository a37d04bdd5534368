"""The request tap: listeners see every request for the scope they listen, tagged with the sending thread's step."""

from __future__ import annotations

import threading

from migrator.clients.es import Request
from migrator.clients.tap import RequestTap
from migrator.executor import RequestLog
from migrator.redact import Redactor
from migrator.state import StateStore


def test_listeners_see_requests_only_while_they_listen_with_the_step_of_the_sending_thread():
    tap = RequestTap()
    seen: list[tuple[str, str, int | None, str | None]] = []
    tap("source", Request("GET", "/before"), None)  # nobody listens yet
    with tap.listening(lambda cluster, request, status, step: seen.append((cluster, request.path, status, step))):
        tap.working_on("snapshot.create")
        tap("source", Request("PUT", "/_snapshot/repo/snap"), None)

        def held() -> None:  # another thread: its own step, as HeldRequests sets it
            tap.working_on("restore[orders]")
            tap("destination", Request("POST", "/_snapshot/repo/snap/_restore"), 200)

        thread = threading.Thread(target=held)
        thread.start()
        thread.join()
        tap("source", Request("GET", "/_snapshot/repo/snap"), 200)
    tap("source", Request("GET", "/after"), None)
    assert seen == [
        ("source", "/_snapshot/repo/snap", None, "snapshot.create"),
        ("destination", "/_snapshot/repo/snap/_restore", 200, "restore[orders]"),
        ("source", "/_snapshot/repo/snap", 200, "snapshot.create"),
    ]


def test_the_request_log_records_each_request_under_its_step_redacted(tmp_path):
    state = StateStore(tmp_path / "plan.state.db")
    tap = RequestTap()
    with tap.listening(RequestLog(state, Redactor(["hunter2-secret"]))):
        tap.working_on("repository.source")
        tap("source", Request("PUT", "/_snapshot/repo", {"settings": {"secret": "hunter2-secret"}}), None)
        tap("source", Request("PUT", "/_snapshot/repo"), 200)
    events = [(e.kind, e.step, e.data) for e in state.events()]
    state.close()
    assert events == [
        (
            "request",
            "repository.source",
            {
                "cluster": "source",
                "method": "PUT",
                "path": "/_snapshot/repo",
                "body": {"settings": {"secret": "******"}},
            },
        ),
        (
            "response",
            "repository.source",
            {"cluster": "source", "method": "PUT", "path": "/_snapshot/repo", "status": 200},
        ),
    ]
