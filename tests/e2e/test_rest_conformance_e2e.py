"""What the dry run shows is what `apply` sends, and both are what the REST API specification documents
(issue 16, §1), on real nodes 7.17 -> 8 through the CLI: a plan with a cutover, its runbook, the run of
both phases and a rollback.

The runbook (`plan --format markdown`, before the run) against the event log of the two `apply` runs: every
request sent is listed in the runbook (discovery, a step's requests or its checks); every request listed
under a step's "Requests:" is sent; every mutating request sent is listed under "Requests:". Checks are
read-only requests a step may skip (an observation that ends early), so a listed check need not be sent.
Normalised: the leading `/` of a path (the console form drops it), the order of a body's keys (compared
as sorted JSON) and repetition (a request polled many times is compared once). Nothing else: the query
string is compared as written. What only the run could know does not occur: the snapshot name is fixed
in the plan (no `{date}`), and no request carries a uuid or a time. The rollback is not in the runbook
(it is not a step): its dry run (`rollback --dry-run --json`, before it) lists the mutating requests the
rollback then sends, in order, and both are checked against the specification."""

from __future__ import annotations

import json

import pytest

from migrator.clients.es import build_path
from migrator.sandbox.conformance import Checked
from migrator.state import StateStore
from tests.helpers import cli
from tests.rest_conformance import document_requests, log_requests, nonconforming, runbook_requests

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("leave_the_clusters_as_found")]
SOURCE, DESTINATION = "7.17", "8"
MUTATING = ("PUT", "POST", "DELETE")


def shown(request) -> tuple[str, str, str, str]:
    return request.cluster, request.method, request.path.lstrip("/"), json.dumps(request.body, sort_keys=True)


def make_sources(bed, prefix: str) -> list[str]:
    client = bed.client(SOURCE)
    names = [f"{prefix}-a", f"{prefix}-b"]
    try:
        for name in names:
            client.request("PUT", build_path(name), {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
            lines = "".join(f'{{"index":{{"_id":"{n}"}}}}\n{{"n":{n}}}\n' for n in range(50))
            client.request("POST", build_path(name, "_bulk"), lines.encode())
            client.request("POST", build_path(name, "_refresh"))
    finally:
        client.close()
    return names


def test_the_runbook_is_what_the_run_sends_and_every_request_is_in_the_rest_specification(seeded, tmp_path):
    prefix = f"conf{tmp_path.name[-4:].replace('_', '')}"
    names = make_sources(seeded, prefix)
    plan = seeded.write_plan(
        tmp_path,
        SOURCE,
        DESTINATION,
        name=prefix,
        snapshot={"indices": names, "name": f"{prefix}-snap"},
        restore={"rename_pattern": "(.+)", "rename_replacement": "moved-$1"},
        cutover={"enabled": True},
        finish={"aliases": {f"{prefix}-live": [names[0]]}},
    )
    document = json.loads(cli(seeded, "plan", str(plan), "--format", "json").stdout)
    versions = {"source": document["source"]["version"], "destination": document["destination"]["version"]}
    runbook = runbook_requests(cli(seeded, "plan", str(plan), "--format", "markdown").stdout)
    problems = nonconforming(document_requests(document), versions)
    problems += nonconforming([r for listed in runbook.values() for r in listed], versions)

    cli(seeded, "apply", str(plan), "--yes", "--poll", "0.5")
    cli(seeded, "apply", str(plan), "--phase", "cutover", "--yes", "--poll", "0.5")
    store = StateStore(plan.with_name("plan.state.db"))
    applied = log_requests(store.events(kind="request"))
    store.close()
    dry_run = [Checked(**r) for r in json.loads(cli(seeded, "rollback", "--dry-run", "--json", str(plan)).stdout)]
    shown_text = cli(seeded, "rollback", "--dry-run", str(plan)).stdout
    store = StateStore(plan.with_name("plan.state.db"))
    assert len(log_requests(store.events(kind="request"))) == len(applied), "the dry run sends nothing"
    store.close()
    cli(seeded, "rollback", str(plan))
    store = StateStore(plan.with_name("plan.state.db"))
    everything = log_requests(store.events(kind="request"))
    store.close()
    assert len(everything) > len(applied), "the rollback's requests are in the event log"
    problems += nonconforming(everything, versions)
    problems += nonconforming(dry_run, versions)
    # The rollback's dry run is what it sends: every mutating request, in order (aliases back to the source
    # side, the write block lifted, the incremental snapshot deleted).
    rolled_back = [shown(r) for r in everything[len(applied) :] if r.method in MUTATING]
    assert [shown(r) for r in dry_run] == rolled_back and len(rolled_back) >= 2, (dry_run, rolled_back)
    assert all(f"{r.method} {r.path.lstrip('/')}" in shown_text for r in dry_run)

    assert len(runbook["requests"]) > 10 and len(applied) > 50, (len(runbook["requests"]), len(applied))
    sent = {shown(r) for r in applied}
    listed = {shown(r) for r in [*runbook["discovery"], *runbook["requests"], *runbook["checks"]]}
    sends = {shown(r) for r in runbook["requests"]}
    problems += [f"sent, not in the runbook: {r}" for r in sorted(sent - listed)]
    problems += [f"in the runbook's requests, never sent: {r}" for r in sorted(sends - sent)]
    problems += [f"mutating, not among the runbook's requests: {r}" for r in sorted(sent - sends) if r[1] in MUTATING]
    assert problems == [], "\n".join(problems)
