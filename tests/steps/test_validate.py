"""Validation's mapping comparison across versions, on mappings as each version answers `GET <index>/_mapping`;
its reads of both clusters sent at once."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from migrator.clients.tap import RequestTap
from migrator.steps.validate import ValidateIndex, differences, normalized_mapping
from migrator.steps.validation_reads import ValidationReads
from tests.steps.listed import sends_only_listed

FIELDS = {"properties": {"title": {"type": "text"}}}
MINUTES = {"properties": {"minutes": {"type": "integer"}}}


def compared(source: dict, destination: dict) -> list[str]:
    return differences(normalized_mapping(source), normalized_mapping(destination))


def test_a_two_type_5x_index_restored_on_6x_is_equal_though_6x_writes_out_all():
    source = {"book": FIELDS, "film": MINUTES}  # 5.6 omits its default _all
    destination = {"book": {"_all": {"enabled": True}, **FIELDS}, "film": {"_all": {"enabled": True}, **MINUTES}}
    assert compared(source, destination) == []


def test_typed_mappings_equal_the_typeless_mapping_of_the_restored_copy():
    assert compared({"_doc": FIELDS}, FIELDS) == []
    assert compared({"doc": {"_all": {"enabled": True}, **FIELDS}}, FIELDS) == []  # 5.x custom type, via 6.x


def test_a_disabled_all_or_a_changed_field_is_still_a_difference():
    assert compared({"doc": {"_all": {"enabled": False}, **FIELDS}}, {"doc": FIELDS}) == ["_all (only on the source)"]
    changed = {"book": {"properties": {"title": {"type": "keyword"}}}, "film": MINUTES}
    assert compared({"book": FIELDS, "film": MINUTES}, changed) == ["book.properties.title.type ('text' != 'keyword')"]


class Side:
    """One cluster's answers to the validation reads; each read waits (up to 5 s) until the other side's read
    of the same kind has arrived too, and notes whether it had: sent at once, or one after the other."""

    def __init__(self, arrived: dict[str, threading.Barrier], tap: RequestTap) -> None:
        self.arrived, self.tap = arrived, tap
        self.met: list[tuple[str, bool, str | None]] = []

    def _meet(self, kind: str) -> None:
        try:
            self.arrived[kind].wait(timeout=5)
            self.met.append((kind, True, self.tap.step))
        except threading.BrokenBarrierError:
            self.met.append((kind, False, self.tap.step))

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        assert path.startswith("/x/_search")
        self._meet("count")
        return 200, {"aggregations": {"indices": {"buckets": [{"key": "x", "doc_count": 7}]}}}

    def get(self, path: str) -> dict[str, Any]:
        if path.endswith("/_mapping"):
            self._meet("mapping")
            return {"x": {"mappings": FIELDS}}
        self._meet("settings")
        return {"x": {"settings": {"index.number_of_shards": "1"}}}


def test_each_pair_of_reads_goes_to_both_clusters_at_once_and_is_logged_under_the_step():
    # Before: source, then destination, each read waiting for the previous answer (6 round trips, not 3).
    arrived = {kind: threading.Barrier(2) for kind in ("count", "mapping", "settings")}
    tap = RequestTap()
    source, destination = Side(arrived, tap), Side(arrived, tap)
    validate = SimpleNamespace(doc_counts=True, mappings=True, settings=True, sample_docs=0)
    ctx = SimpleNamespace(
        spec=SimpleNamespace(validate=validate, restore=SimpleNamespace(index_settings={}, ignore_index_settings=[])),
        source=source,
        destination=destination,
        requests=tap,
        validation_reads=ValidationReads(),
    )
    tap.working_on("validate[moved-orders]")
    step = ValidateIndex("validate[moved-orders]", {"source": "x", "target": "x"}, ctx)
    with sends_only_listed(step):
        assert step.observe().done
    for side in (source, destination):
        assert side.met == [(kind, True, "validate[moved-orders]") for kind in ("count", "mapping", "settings")]
