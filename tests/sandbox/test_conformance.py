"""The check of one request against a REST API specification, on canned API files in both layouts
(5.x/6.x and 7.x+): paths routed literal-first, methods, parameters (own and common), options, bodies,
reserved `_` names and the x-pack fallback."""

from __future__ import annotations

from migrator.sandbox.conformance import Checked, violations
from migrator.sandbox.rest_spec import RestSpec, SpecChoice, parse

COMMON = {"params": {"filter_path": {"type": "list"}, "pretty": {"type": "boolean"}}}
CAT_INDICES = {  # the 7.x+ layout
    "cat.indices": {
        "url": {"paths": [{"path": "/_cat/indices/{index}", "methods": ["GET"], "parts": {"index": {"type": "list"}}}]},
        "params": {
            "format": {"type": "string"},
            "expand_wildcards": {"type": "enum", "options": ["open", "closed", "hidden", "all"]},
        },
    }
}
GET_DOC = {  # the 5.x/6.x layout
    "get": {
        "methods": ["GET"],
        "url": {"paths": ["/{index}/{type}/{id}"], "parts": {"index": {}, "type": {}, "id": {}}, "params": {}},
        "body": None,
    }
}
SNAPSHOT_CREATE = {
    "snapshot.create": {
        "url": {"paths": [{"path": "/_snapshot/{repository}/{snapshot}", "methods": ["PUT", "POST"]}]},
        "params": {"wait_for_completion": {"type": "boolean"}},
        "body": {"description": "the snapshot definition"},
    }
}
ILM = {"ilm.get_lifecycle": {"url": {"paths": [{"path": "/_ilm/policy", "methods": ["GET"]}]}, "params": {}}}


def spec(fallback: RestSpec | None = None) -> RestSpec:
    files = {"_common": COMMON, "cat.indices": CAT_INDICES, "get": GET_DOC, "snapshot.create": SNAPSHOT_CREATE}
    found = parse(files, SpecChoice("elasticsearch", "7.10.2", ""))
    return RestSpec(found.choice, found.endpoints, found.common, fallback)


def check(method: str, path: str, body: object = None, on: RestSpec | None = None) -> list[str]:
    return violations(Checked("source", method, path, body), on or spec())


def test_a_documented_request_conforms_with_its_own_and_the_common_parameters():
    assert check("GET", "_cat/indices/a,b?format=json&expand_wildcards=open,hidden&filter_path=x") == []
    assert check("PUT", "/_snapshot/repo/snap?wait_for_completion=true", {"indices": "a"}) == []


def test_a_parameter_the_api_does_not_have_is_named():
    (problem,) = check("GET", "_cat/indices/a?ignore_unavailable=true")
    assert "parameter ignore_unavailable is not one of cat.indices's" in problem


def test_a_value_outside_the_options_a_method_the_path_does_not_take_and_an_unwanted_body():
    (options,) = check("GET", "_cat/indices/a?expand_wildcards=open,nothing")
    assert "nothing not among open, closed, hidden, all" in options
    (method,) = check("DELETE", "_snapshot/repo/snap")
    assert "/_snapshot/{repository}/{snapshot} takes POST, PUT, not DELETE" in method
    (body,) = check("GET", "idx/doc/1", {"query": {}})
    assert "get takes no body" in body


def test_literal_segments_route_first_and_reserved_names_only_fill_parts():
    # `/_cat/indices/a` is cat.indices, not get `/{index}/{type}/{id}`, which would take no `format`
    assert check("GET", "_cat/indices/a?format=json") == []
    assert check("GET", "_all/doc/1") == []  # `_all` is reserved: it fills {index}
    (problem,) = check("GET", "_ilm/policy/x")  # `_ilm` is no index name
    assert "no API of elasticsearch-rest-api-spec-7.10.2 has this path" in problem


def test_a_path_the_open_source_jar_lacks_is_checked_against_the_fallback_naming_it():
    xpack = parse({"ilm": ILM}, SpecChoice("elasticsearch", "9.5.3", "x-pack APIs: checked against 9.5.3"))
    assert check("GET", "_ilm/policy", on=spec(xpack)) == []
    (problem,) = check("GET", "_ilm/policies", on=spec(xpack))
    assert "elasticsearch-rest-api-spec-9.5.3" in problem and "(x-pack APIs: checked against 9.5.3)" in problem
