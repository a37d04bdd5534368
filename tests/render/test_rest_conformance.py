"""Every request the dry run shows (its JSON form and its runbook), from synthetic facts, is one the official
REST API specification of the cluster's version documents (issue 16, §1): for each pair of versions the
test bed runs, with and without a cutover. Discovery is replaced here; the end-to-end test checks its
requests on real nodes (tests/e2e/test_rest_conformance_e2e.py)."""

from __future__ import annotations

import pytest

from migrator.migration.opened import open_migration
from migrator.migration.review import review
from migrator.render.plan import plan_document, plan_markdown
from tests.render.conftest import BASE_INDICES, PLAN, SECRETS, facts
from tests.rest_conformance import document_requests, nonconforming, runbook_requests

PAIRS = [
    ("7.10.2", "8.19.21"),
    ("7.17.29", "8.19.21"),
    ("8.19.21", "9.5.4"),
    ("6.8.23", "7.17.29"),
    ("5.6.16", "6.8.23"),
    ("7.10.2", "opensearch-2.19.0"),
    ("opensearch-1.3.20", "opensearch-2.19.0"),
]


@pytest.mark.parametrize("cutover", [False, True], ids=["bulk", "cutover"])
@pytest.mark.parametrize(("source", "destination"), PAIRS)
def test_every_request_of_the_dry_run_is_in_the_specification(tmp_path, discovered, source, destination, cutover):
    discovered(facts(BASE_INDICES, (source, destination)))
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN + ("cutover: {enabled: true}\n" if cutover else ""))
    migration = open_migration(plan, environ=SECRETS)
    try:
        reviewed = review(migration)
    finally:
        migration.close()
    assert not reviewed.plan.problems, reviewed.plan.problems
    document = plan_document(reviewed)
    runbook = runbook_requests(plan_markdown(reviewed))
    shown = document_requests(document)
    assert len(shown) > 20 and sum(map(len, runbook.values())) > 20
    versions = {"source": source, "destination": destination}
    problems = nonconforming(shown, versions) + nonconforming([r for rs in runbook.values() for r in rs], versions)
    assert problems == [], "\n".join(problems)
