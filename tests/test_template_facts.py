"""The template facts' reads on canned answers: each is an API the cluster's version has (its REST
specification), so OpenSearch, which has no ILM, is not asked for ILM policies."""

from __future__ import annotations

from typing import Any

import pytest

from migrator.clients.es import Version
from migrator.sandbox.conformance import Checked
from migrator.template_facts import metadata_facts
from tests.rest_conformance import nonconforming


class Empty:
    """A cluster with nothing to list: every GET answers 200 with an empty object; records each request."""

    def __init__(self) -> None:
        self.sent: list[Checked] = []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        self.sent.append(Checked("source", method, path, body))
        return 200, {}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)[1]


@pytest.mark.parametrize(
    ("version", "policies"),
    [("opensearch-2.19.0", None), ("opensearch-1.3.20", None), ("7.17.29", {}), ("8.19.21", {}), ("6.8.23", {})],
)
def test_every_read_is_in_the_specification_and_opensearch_is_not_asked_for_ilm(version, policies):
    cluster = Empty()
    facts = metadata_facts(cluster, Version.parse(version))  # type: ignore[arg-type]
    assert facts["policies"] == policies
    assert any(r.path.startswith("/_ilm") for r in cluster.sent) is (policies is not None)
    assert nonconforming(cluster.sent, {"source": version}) == []
