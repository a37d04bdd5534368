"""The validation's joined reads (migrator.steps.validation_reads): many indices' counts, mappings and settings in
a few requests, each index still validated alone, never from a read made before its recovery ended. No cluster:
a fake one answers the reads as Elasticsearch does (`ignore_unavailable` leaves out what is missing)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import networkx as nx
import pytest

import migrator.steps.validate as validate_module
from migrator.clients.es import EsError, Request
from migrator.clients.tap import RequestTap
from migrator.planner import SMALLEST_WAVE, restore_id, validation_waves
from migrator.steps.base import StepFailed
from migrator.steps.validate import ValidateIndex
from migrator.steps.validation_reads import ValidationReads

BATCH = "restore.batch[1]"
MAPPING = {"properties": {"message": {"type": "text"}}}


class Cluster:
    """Indices (name -> documents) answering `_count`, the joined `_search`, `_mapping`, `_settings`, `_refresh`."""

    def __init__(self, label: str, docs: dict[str, int]) -> None:
        self.label, self.docs = label, docs
        self.sent: list[tuple[str, str]] = []

    def _names(self, path: str) -> tuple[list[str], bool]:
        split = urlsplit(path)
        tolerant = parse_qs(split.query).get("ignore_unavailable") == ["true"]
        names = unquote(split.path.strip("/").split("/")[0]).split(",")
        missing = [name for name in names if name not in self.docs]
        if missing and not tolerant:
            raise EsError(self.label, Request("GET", path), 404, f"no such index [{missing[0]}]")
        return [name for name in names if name in self.docs], tolerant

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        self.sent.append((method, path))
        names, _ = self._names(path)
        if path.split("?")[0].endswith("/_count"):
            return 200, {"count": self.docs[names[0]]}
        if path.split("?")[0].endswith("/_refresh"):
            return 200, {}
        assert body["size"] == 0 and body["aggs"]["indices"]["terms"] == {
            "field": "_index",
            "size": len(body_names(path)),
        }
        buckets = [{"key": name, "doc_count": self.docs[name]} for name in names if self.docs[name]]
        return 200, {
            "hits": {"total": {"value": 10000, "relation": "gte"}},
            "aggregations": {"indices": {"buckets": buckets}},
        }

    def doc_count(self, index: str) -> int:
        return int(self.request("GET", f"/{index}/_count")[1]["count"])

    def get(self, path: str, **_: Any) -> Any:
        self.sent.append(("GET", path))
        names, _ = self._names(path)
        if "/_mapping" in path:
            return {name: {"mappings": MAPPING} for name in names}
        return {name: {"settings": {"index.number_of_shards": "1"}} for name in names}


def body_names(path: str) -> list[str]:
    return unquote(urlsplit(path).path.strip("/").split("/")[0]).split(",")


def context(source: Cluster, destination: Cluster, batch: list[str]) -> SimpleNamespace:
    """Both clusters, and a plan whose one restore batch holds `batch` (source names; targets `new-<name>`)."""
    validate = SimpleNamespace(doc_counts=True, mappings=True, settings=True, sample_docs=0)
    restore = SimpleNamespace(index_settings={}, ignore_index_settings=[])
    graph = nx.DiGraph()
    graph.add_node(BATCH, params={"members": [{"source": name, "target": f"new-{name}"} for name in batch]})
    for name in batch:
        graph.add_node(restore_id(f"new-{name}"), params={"source": name, "target": f"new-{name}"})
    return SimpleNamespace(
        spec=SimpleNamespace(validate=validate, restore=restore),
        plan=SimpleNamespace(graph=graph),
        source=source,
        destination=destination,
        requests=RequestTap(),
        validation_reads=ValidationReads(),
    )


def validate(ctx: SimpleNamespace, name: str, **params: Any) -> ValidateIndex:
    params = {"batch": BATCH, **params}
    return ValidateIndex(f"validate[new-{name}]", {"source": name, "target": f"new-{name}", **params}, ctx)


def recovered(ctx: SimpleNamespace, names: str | list[str]) -> None:
    for name in names:
        ctx.validation_reads.recovered(f"new-{name}")


def test_200_indices_recovered_together_are_validated_in_a_few_requests_not_six_each():
    # Before: `_count`, `_mapping` and `_settings` of each index on each side: 6 x 200 = 1,200 requests.
    names = [f"logs-2026.01.{number:03d}" for number in range(200)]
    source = Cluster("source", {name: 100 + n for n, name in enumerate(names)})
    destination = Cluster("destination", {f"new-{name}": 100 + n for n, name in enumerate(names)})
    ctx = context(source, destination, names)
    recovered(ctx, names)
    summaries = [validate(ctx, name).observe() for name in names]
    assert all(observation.done for observation in summaries)
    assert summaries[7].summary.startswith("107 documents, counts, mappings, settings equal")
    # One joined read of each kind per wave of the batch (planner.validation_waves: each wave is validated while
    # the batch's later indices still restore; a wave's names fit one request line): 3 x 10, not 1,200.
    waves = len(validation_waves(names))
    assert len(source.sent) == len(destination.sent) == 3 * waves == 30
    assert all("ignore_unavailable=true" in path for _, path in source.sent + destination.sent)


def test_each_index_still_passes_or_fails_alone_with_its_own_message():
    source = Cluster("source", {"a": 5, "b": 6, "c": 7})
    destination = Cluster("destination", {"new-a": 5, "new-b": 4, "new-c": 7})
    ctx = context(source, destination, list("abc"))
    recovered(ctx, "abc")
    assert validate(ctx, "a").observe().done
    with pytest.raises(StepFailed, match=r"new-b has 4 documents on the destination but b has 6 on the source"):
        validate(ctx, "b").observe()
    assert validate(ctx, "c").observe().done
    assert len(destination.sent) == 3  # one joined read of each kind for the three


def test_an_index_recovered_again_after_a_joined_read_is_read_again():
    source = Cluster("source", {"a": 5, "b": 6})
    destination = Cluster("destination", {"new-a": 5, "new-b": 0})  # b read while its restore was lost
    ctx = context(source, destination, list("ab"))
    recovered(ctx, "ab")
    assert validate(ctx, "a").observe().done
    destination.docs["new-b"] = 6  # restored again; its recovery ends again: the answer read before is stale
    recovered(ctx, "b")
    assert validate(ctx, "b").observe().summary.startswith("6 documents")


def test_an_index_a_joined_answer_leaves_out_is_read_alone_an_empty_one_counts_zero_a_missing_one_fails():
    source = Cluster("source", {"empty": 0, "gone": 3, "full": 2})
    destination = Cluster("destination", {"new-empty": 0, "new-full": 2})
    ctx = context(source, destination, ["empty", "gone", "full"])
    recovered(ctx, ["empty", "gone", "full"])
    assert validate(ctx, "empty").observe().summary.startswith("0 documents")
    assert ("GET", "/new-empty/_search") in destination.sent  # no bucket in the joined answer: asked alone
    with pytest.raises(EsError, match=r"no such index \[new-gone\]"):
        validate(ctx, "gone").observe()
    assert validate(ctx, "full").observe().done


def test_a_batch_with_a_member_still_recovering_or_a_resumed_run_reads_each_index_alone():
    source = Cluster("source", {"a": 5, "b": 6})
    destination = Cluster("destination", {"new-a": 5, "new-b": 6})
    ctx = context(source, destination, ["a", "b"])
    recovered(ctx, "a")  # b's recovery has not ended (or ended in an earlier run): the batch is not read
    assert validate(ctx, "a").observe().done
    assert [path for _, path in destination.sent] == [
        "/new-a/_search",
        "/new-a/_mapping",
        "/new-a/_settings?flat_settings=true",
    ]


def test_once_the_last_member_recovered_the_next_validate_step_reads_the_whole_batch():
    # Before: a member read alone (while another still recovered) counted as read, so no later step of its
    # batch could read the batch: in a real run 3 batches of 5 were read index by index.
    docs = {"a": 1, "b": 2, "c": 3}
    source = Cluster("source", dict(docs))
    destination = Cluster("destination", {f"new-{name}": count for name, count in docs.items()})
    ctx = context(source, destination, list("abc"))
    recovered(ctx, "ab")
    assert validate(ctx, "a").observe().done  # c still recovering: a alone
    recovered(ctx, "c")
    assert validate(ctx, "b").observe().done
    assert validate(ctx, "c").observe().done
    assert [path for _, path in destination.sent][3:] == [
        "/new-a,new-b,new-c/_search?ignore_unavailable=true",
        "/new-a,new-b,new-c/_mapping?ignore_unavailable=true",
        "/new-a,new-b,new-c/_settings?flat_settings=true&ignore_unavailable=true",
    ]


def test_the_runbook_lists_the_batch_reads_once_as_sent_and_each_index_alone():
    ctx = context(Cluster("source", {}), Cluster("destination", {}), ["a", "b"])
    first, second = validate(ctx, "a"), validate(ctx, "b")
    assert [r.path for r in first.describe()] == [] == [r.path for r in second.describe()]
    assert [(r.cluster, r.path) for r in second.checks()] == [
        ("source", "b/_search"),
        ("source", "b/_mapping"),
        ("source", "b/_settings?flat_settings=true"),
        ("destination", "new-b/_search"),
        ("destination", "new-b/_mapping"),
        ("destination", "new-b/_settings?flat_settings=true"),
    ]
    assert len(first.checks()) == 6  # its own reads alone; the joined ones are the batch step's (restore_batch)


def test_the_joined_reads_are_sent_for_the_batch_whichever_member_asks_first():
    ctx = context(Cluster("source", {"a": 1, "b": 2}), Cluster("destination", {"new-a": 1, "new-b": 2}), ["a", "b"])
    seen: list[str | None] = []  # the step each request is sent for (what the event log names)
    for cluster in (ctx.source, ctx.destination):
        send = cluster.request

        def request(*args: Any, _send: Any = send, **options: Any) -> Any:
            seen.append(ctx.requests.step)
            return _send(*args, **options)

        cluster.request = request
    recovered(ctx, ["a", "b"])
    ctx.requests.working_on("validate[new-b]")  # the second member asks first
    assert validate(ctx, "b").observe().done
    assert set(seen) == {BATCH}  # logged under the batch, whose checks list the joined reads
    ctx.requests.working_on("validate[new-a]")
    assert validate(ctx, "a").observe().done  # takes its answer from the joined read
    assert set(seen) == {BATCH}


def test_the_cutover_refreshes_its_source_and_reads_its_index_alone():
    source = Cluster("source", {"a": 5, "b": 5})
    destination = Cluster("destination", {"new-a": 5, "new-b": 5})
    ctx = context(source, destination, ["a", "b"])
    recovered(ctx, "ab")
    step = ValidateIndex("cutover.validate[new-a]", {"source": "a", "target": "new-a", "cutover": True}, ctx)
    assert step.observe().done
    assert source.sent[0] == ("POST", "/a/_refresh")
    assert [path for _, path in destination.sent] == [
        "/new-a/_search",
        "/new-a/_mapping",
        "/new-a/_settings?flat_settings=true",
    ]
    assert [r.console().split("\n")[0] for r in step.describe()][:2] == ["POST a/_refresh", "GET a/_search"]


def test_a_batch_s_open_indices_are_found_once_however_often_its_members_are_described(monkeypatch):
    # Before: each member's describe, checks and observe scanned the whole batch again (100 x 100 lookups per
    # pass over a batch of 100; a 500-index runbook spent 1 s of its 2 s there).
    scans: list[str] = []
    scan = validate_module.batch_group

    def counted(graph: nx.DiGraph, batch: str) -> list[tuple[str, str]]:
        scans.append(batch)
        return scan(graph, batch)

    monkeypatch.setattr(validate_module, "batch_group", counted)
    names = [f"logs-{number:03d}" for number in range(100)]
    ctx = context(Cluster("source", {}), Cluster("destination", {}), names)
    for name in names:
        step = validate(ctx, name)
        assert step.describe() == [] and len(step.checks()) == 6
    assert scans == [BATCH]
    assert validate(ctx, names[0])._group() == [(name, f"new-{name}") for name in names[:SMALLEST_WAVE]]
    assert validate(ctx, names[-1])._group() == [(name, f"new-{name}") for name in names[-SMALLEST_WAVE:]]
    assert scans == [BATCH]
