"""Which published REST API specification each cluster version is checked against, and the real jars
fetched from Maven Central: one API file per API, in the layout of their version."""

from __future__ import annotations

import pytest

from migrator.clients.es import Version
from migrator.sandbox.distributions import DistributionError
from migrator.sandbox.rest_spec import choose
from tests.rest_conformance import spec_for


@pytest.mark.parametrize(
    ("cluster", "published", "own"),
    [
        ("7.10.2", "7.10.2", True),
        ("9.5.4", "9.5.3", True),
        ("opensearch-2.19.0", "2.19.0", True),
        ("7.17.29", "7.10.2", False),
        ("8.19.21", "9.5.3", False),
        ("6.8.23", "6.6.0", False),
        ("5.6.16", "5.6.4", True),  # the same minor line
        ("opensearch-1.3.20", "2.19.0", False),
    ],
)
def test_each_version_has_its_own_specification_or_a_note_naming_the_nearest(cluster, published, own):
    choice = choose(Version.parse(cluster))
    assert choice.version == published
    assert (choice.note == "") is own
    if not own:
        assert "Maven Central publishes no rest-api-spec" in choice.note and published in choice.note


def test_a_major_without_a_known_specification_is_refused_naming_the_table():
    with pytest.raises(DistributionError, match="rest_spec.PUBLISHED"):
        choose(Version.parse("10.0.0"))


@pytest.mark.parametrize("cluster", ["5.6.16", "7.17.29", "8.19.21", "opensearch-2.19.0"])
def test_the_fetched_specification_has_the_snapshot_apis_and_the_common_parameters(cluster):
    spec = spec_for(cluster)
    apis = {endpoint.api for endpoint in spec.endpoints}
    assert {"snapshot.create", "snapshot.restore", "cat.indices", "cluster.state"} <= apis
    assert "filter_path" in spec.common
    create = next(e for e in spec.endpoints if e.api == "snapshot.create")
    assert "PUT" in create.methods and "wait_for_completion" in create.params
    assert (spec.fallback is not None) is cluster.startswith(("5.", "7."))
