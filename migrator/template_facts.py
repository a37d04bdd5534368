"""Discovery of the metadata that travels beside the data: index templates, and what the indices name.

Place in the flow: discovery -> (this module's read-only GETs) -> `ClusterFacts.metadata` -> the
planner's `migrator.templates`. Everything here is plain JSON so it is stored with the facts in the
state file, and `resume` re-plans from exactly what the run began with.

The shape of `MetadataFacts`:
- `templates`: {"legacy": {name: body of GET _template}, "composable": {name: the `index_template` of
  GET _index_template}, "component": {name: the `component_template` of GET _component_template}};
  composable and component templates exist from Elasticsearch 7.8 on, and on OpenSearch (their API
  answers 400/404 before);
- `index_settings`: {index: {"index.default_pipeline" | "index.final_pipeline" | "index.lifecycle.name":
  value}} for the indices that set one of those (none before 6.x: the settings came with 6.5 and later,
  and 5.x refuses `flat_settings` on that request, so it is not sent);
- `pipelines`: {name: body of GET _ingest/pipeline}; `policies`: {name: the entry of GET _ilm/policy
  (`{"version", "modified_date", "policy"}`)}; each None where the cluster has no such API (the integ-test
  distributions have no ILM: 7.10 and 7.17 answer 405, 8.x and 9.x 400; OpenSearch and Elasticsearch
  before 6.6 are not asked). State files written before the bodies were read hold a list of names instead;
- `processors`: the ingest processor types every node has (GET _nodes/ingest), None where unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from migrator.clients.es import EsClient, EsError, Version, build_path

COMPOSABLE_SINCE = Version(7, 8, 0)
# ILM came with Elasticsearch 6.6; OpenSearch has none (its index state management is another API, and
# `_ilm/policy` is not in its REST specification): neither is asked.
ILM_SINCE = Version(6, 6, 0)
NAMED_SETTINGS = ("index.default_pipeline", "index.final_pipeline", "index.lifecycle.name")
# What a cluster without the feature answers: no handler (400), not found (404) or a method not allowed.
MISSING_API = (400, 404, 405, 410)


def _listing(client: EsClient, path: str, key: str, body_key: str) -> dict[str, Any]:
    """{name: body} from the 7.8+ listing answers (`{"index_templates": [{"name", "index_template"}]}`)."""
    status, answer = client.request("GET", path, ok=(200, *MISSING_API))
    if status != 200:
        return {}
    return {item["name"]: item[body_key] for item in answer.get(key, [])}


def _bodies(client: EsClient, path: str) -> dict[str, Any] | None:
    """{name: body} of what an API lists (an empty listing may answer 404), or None where the API is missing."""
    try:
        status, answer = client.request("GET", path, ok=(200, 404))
    except EsError as exc:
        if exc.status in MISSING_API:
            return None
        raise
    return dict(sorted(answer.items())) if status == 200 and isinstance(answer, dict) else {}


def _processors(client: EsClient) -> list[str] | None:
    """The ingest processor types every node has (a pipeline is put only when all of them know its
    processors), or None when the answer does not say."""
    nodes = client.get("/_nodes/ingest?filter_path=nodes.*.ingest").get("nodes") or {}
    kinds = [{item["type"] for item in node.get("ingest", {}).get("processors", [])} for node in nodes.values()]
    return sorted(set.intersection(*kinds)) if kinds else None


def metadata_reads(client: EsClient, version: Version) -> dict[str, Callable[[], Any]]:
    """The reads `metadata_from` composes, by name; independent of one another (discovery sends them at once).
    The APIs a version lacks are left out (see the module docstring)."""
    params = {"flat_settings": True, "expand_wildcards": "all"}
    reads: dict[str, Callable[[], Any]] = {
        "legacy": lambda: client.request("GET", "/_template", ok=(200, 404)),
        "pipelines": lambda: _bodies(client, "/_ingest/pipeline"),
        "processors": lambda: _processors(client),
    }
    if version.opensearch or version >= COMPOSABLE_SINCE:
        reads["composable"] = lambda: _listing(client, "/_index_template", "index_templates", "index_template")
        reads["component"] = lambda: _listing(
            client, "/_component_template", "component_templates", "component_template"
        )
    if version.es_major >= 6:
        reads["settings"] = lambda: client.get(build_path("_all", "_settings", ",".join(NAMED_SETTINGS), params=params))
    if not (version.opensearch or version < ILM_SINCE):
        reads["policies"] = lambda: _bodies(client, "/_ilm/policy")
    return reads


def metadata_from(answers: dict[str, Any]) -> dict[str, Any]:
    """The MetadataFacts (module docstring) from the answers of `metadata_reads`, by the same names."""
    status, legacy = answers["legacy"]
    index_settings = {
        index: {key: str(value) for key, value in body.get("settings", {}).items() if key in NAMED_SETTINGS}
        for index, body in answers.get("settings", {}).items()
    }
    return {
        "templates": {
            "legacy": legacy if status == 200 else {},
            "composable": answers.get("composable", {}),
            "component": answers.get("component", {}),
        },
        "index_settings": {index: named for index, named in index_settings.items() if named},
        "pipelines": answers["pipelines"],
        "policies": answers.get("policies"),
        "processors": answers["processors"],
    }


def metadata_facts(client: EsClient, version: Version) -> dict[str, Any]:
    """The templates, the pipelines/policies, the settings naming them and the ingest processors (see the module
    docstring), read one after the other.
    Raises EsError when a cluster answers an error other than a missing API."""
    return metadata_from({name: read() for name, read in metadata_reads(client, version).items()})
