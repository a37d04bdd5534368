"""The restore batch step: one request for the members not yet restored, never a member twice, a foreign
index never overwritten, the dry run showing the request as sent. A fake destination, no cluster."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from migrator.steps.base import StepFailed
from migrator.steps.restore_batch import RestoreBatch
from tests.steps.fakes import Progress

MEMBERS = [{"source": name, "target": f"moved-{name}"} for name in ("a", "b", "c")]
OURS = {"type": "SNAPSHOT", "repository": "repo", "snapshot": "snap"}


class Destination:
    """Indices by name with their recovery source; a restore creates the ones it names, restored from `snap`."""

    def __init__(self, existing: dict[str, dict[str, Any]] | None = None) -> None:
        self.indices = dict(existing or {})
        self.restores: list[tuple[str, dict[str, Any]]] = []
        self.observer = None
        self.lock = threading.Lock()

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        route = urlsplit(path).path
        with self.lock:
            if method == "POST" and route.endswith("/_restore"):
                self.restores.append((path, body))
                for source in body["indices"].split(","):
                    self.indices[f"moved-{source}"] = OURS
                total = len(body["indices"].split(","))
                return 200, {"snapshot": {"shards": {"total": total, "failed": 0, "successful": total}}}
            names = route.split("/")[-1] if route.startswith("/_cluster") else route.split("/")[1]
            wanted = [name for name in names.split(",") if name in self.indices]
            if route.startswith("/_cluster/state/routing_table"):
                started = {name: {"shards": {"0": [{"state": "STARTED"}]}} for name in wanted}
                return 200, {"routing_table": {"indices": started}}
            recovery = {
                name: {
                    "shards": [{"type": self.indices[name].get("type", "EMPTY_STORE"), "source": self.indices[name]}]
                }
                for name in wanted
            }
            return 200, recovery

    def get(self, path: str) -> Any:
        return self.request("GET", path)[1]


def batch_with(destination: Destination) -> RestoreBatch:
    restore = SimpleNamespace(
        rename_pattern="(.+)",
        rename_replacement="moved-$1",
        index_settings={"index.number_of_replicas": 0},
        ignore_index_settings=[],
        include_aliases=False,
    )
    ctx = SimpleNamespace(
        spec=SimpleNamespace(restore=restore),
        destination=destination,
        repository="repo",
        snapshot="snap",
        held_restores={},
        progress=Progress(),
        cancel_requested=lambda: False,
        sleep=lambda seconds=None: None,
    )
    return RestoreBatch("restore.batch[1]", {"members": MEMBERS}, ctx)


def run(step: RestoreBatch) -> dict[str, Any]:
    """What the executor does with a step that is not done: observe, act, wait, observe again."""
    observation = step.observe()
    assert not observation.done and observation.detail == {"members": [m["target"] for m in MEMBERS]}
    step.act()
    detail = step.wait()
    assert step.observe().done
    return detail


def test_one_request_restores_every_member_and_hands_its_answer_to_each_recovery():
    destination = Destination()
    step = batch_with(destination)
    assert run(step) == {"restored": 3, "shards": {"total": 3, "failed": 0, "successful": 3}}
    [(path, body)] = destination.restores
    assert path == "/_snapshot/repo/snap/_restore?wait_for_completion=true" and body["indices"] == "a,b,c"
    assert body["rename_pattern"] == "(.+)" and body["rename_replacement"] == "moved-$1"
    held = step.ctx.held_restores
    assert set(held) == {"moved-a", "moved-b", "moved-c"} and len({id(future) for future in held.values()}) == 1
    [request] = step.describe()  # the dry run shows the request as it is sent
    assert (request.method, "/" + request.path, request.body) == ("POST", path, body)


def test_a_resumed_batch_restores_only_the_members_not_yet_restored_and_a_done_one_nothing():
    destination = Destination({"moved-b": OURS})
    run(batch_with(destination))
    assert [body["indices"] for _, body in destination.restores] == ["a,c"]
    again = batch_with(destination)
    assert again.observe().done  # every member ours now: nothing is sent again
    assert len(destination.restores) == 1


def test_a_foreign_index_with_a_member_name_stops_the_batch_before_anything_is_sent():
    destination = Destination({"moved-c": {}})
    with pytest.raises(StepFailed, match="moved-c exist on the destination and were not restored from snapshot snap"):
        batch_with(destination).observe()
    assert destination.restores == []
