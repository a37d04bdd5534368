"""Whether a request is one the official REST API specification documents (migrator.sandbox.rest_spec):
the conformance tests put every request of the dry run, the runbook and a real run's event log through
`violations`, against the specification of the cluster the request goes to.

A path is matched as Elasticsearch routes it: segment by segment, a literal segment before a `{part}`;
among the endpoints of the most literal match, one must take the method, every query parameter (its
own, or one of `_common.json`'s: `pretty`, `human`, `error_trace`, `source`, `filter_path`), every value
of an `enum` parameter or part among its options, and a body only when its API has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from migrator.sandbox.rest_spec import Endpoint, RestSpec

# Part values starting with `_` that stand for something other than an endpoint: every index or node,
# the local or master node, the 6.x document type, no metric.
RESERVED = frozenset({"_all", "_local", "_master", "_doc", "_none"})

# Parameters a version's specification leaves out though its server takes them, each with the evidence.
# `indices.recovery` reads its indices options from the request in every version (RestRecoveryAction:
# `IndicesOptions.fromRequest`); the specification documents them from 8.x (9.5.3 has
# `ignore_unavailable`), and real runs on 5.6, 6.8, 7.10, 7.17 and OpenSearch, which answer 400 to a
# parameter they do not take, accept it. Nothing else is excused.
UNDOCUMENTED_BUT_TAKEN = frozenset({("indices.recovery", "ignore_unavailable")})


@dataclass(frozen=True)
class Checked:
    """One request as the conformance tests see it: where it goes and its console form."""

    cluster: str
    method: str
    path: str  # with or without the leading slash, with its query string
    body: Any = None

    def __str__(self) -> str:
        return f"{self.cluster}: {self.method} /{self.path.lstrip('/')}"


def _segments(path: str) -> tuple[str, ...]:
    return tuple(unquote(part) for part in urlsplit("/" + path.lstrip("/")).path.strip("/").split("/") if part)


def _binds(endpoint: Endpoint, segments: tuple[str, ...]) -> dict[str, str] | None:
    """The path parts the request gives the endpoint (`{"repository": "repo"}`), or None when it does not
    match. A part takes no value starting with `_` (Elasticsearch keeps those for endpoints: `_ilm` is no
    index name) except the reserved ones (`_all`, `_local`, ...) and those among the part's options."""
    if len(endpoint.segments) != len(segments):
        return None
    bound: dict[str, str] = {}
    for pattern, value in zip(endpoint.segments, segments, strict=True):
        if pattern.startswith("{") and pattern.endswith("}"):
            name = pattern[1:-1]
            if (
                value.startswith("_")
                and value not in RESERVED
                and value not in endpoint.parts.get(name, {}).get("options", [])
            ):
                return None
            bound[name] = value
        elif pattern != value:
            return None
    return bound


def _literal_rank(endpoint: Endpoint) -> tuple[bool, ...]:
    """Literal segments first, from the left: how the router prefers `/_cat/indices` to `/{index}/{type}`."""
    return tuple(not segment.startswith("{") for segment in endpoint.segments)


def _bad_options(kind: str, name: str, value: str, definition: dict[str, Any]) -> list[str]:
    options = definition.get("options")
    if definition.get("type") not in ("enum", "list") or not options:
        return []
    wrong = [part for part in value.split(",") if part not in options]
    return [f"{kind} {name}={value}: {', '.join(wrong)} not among {', '.join(options)}"] if wrong else []


def _problems(
    endpoint: Endpoint, bound: dict[str, str], query: list[tuple[str, str]], body: Any, spec: RestSpec
) -> list[str]:
    found: list[str] = []
    for name, value in bound.items():
        found += _bad_options("part", name, value, endpoint.parts.get(name, {}))
    for name, value in query:
        definition = endpoint.params.get(name) or spec.common.get(name)
        if definition is None and (endpoint.api, name) in UNDOCUMENTED_BUT_TAKEN:
            continue
        if definition is None:
            found.append(f"parameter {name} is not one of {endpoint.api}'s")
        else:
            found += _bad_options("parameter", name, value, definition)
    if body is not None and not endpoint.body:
        found.append(f"{endpoint.api} takes no body")
    return found


def violations(request: Checked, spec: RestSpec) -> list[str]:
    """What `spec` does not document of `request` (empty: it conforms). Each line names the API and what
    is wrong: no such path, a method the path does not take, an unknown parameter, a value outside the
    options, a body the API does not take."""
    segments = _segments(request.path)
    query = parse_qsl(urlsplit("/" + request.path.lstrip("/")).query, keep_blank_values=True)
    matching = [(endpoint, bound) for endpoint in spec.endpoints if (bound := _binds(endpoint, segments)) is not None]
    if not matching:
        if spec.fallback is not None:
            return [f"{line} ({spec.fallback.choice.note})" for line in violations(request, spec.fallback)]
        return [f"{request}: no API of {spec.choice.name} has this path"]
    best = max(_literal_rank(endpoint) for endpoint, _ in matching)
    matching = [(endpoint, bound) for endpoint, bound in matching if _literal_rank(endpoint) == best]
    taking = [(endpoint, bound) for endpoint, bound in matching if request.method in endpoint.methods]
    if not taking:
        allowed = sorted({method for endpoint, _ in matching for method in endpoint.methods})
        return [f"{request}: {matching[0][0].pattern} takes {', '.join(allowed)}, not {request.method}"]
    reports = [_problems(endpoint, bound, query, request.body, spec) for endpoint, bound in taking]
    if any(not report for report in reports):
        return []
    return [f"{request}: {problem}" for problem in reports[0]]
