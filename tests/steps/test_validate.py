"""Validation's mapping comparison across versions, on mappings as each version answers `GET <index>/_mapping`."""

from __future__ import annotations

from migrator.steps.validate import differences, normalized_mapping

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
