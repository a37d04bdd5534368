"""The requests of a dry run (its JSON form and its Markdown runbook) and of a real run's event log, read
back as data, and checked against the official REST API specification of the cluster each one goes to
(migrator.sandbox.rest_spec, fetched once under the test directory)."""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from migrator.clients.es import Version
from migrator.sandbox.conformance import Checked, violations
from migrator.sandbox.rest_spec import RestSpec, choose, load

SPEC_DIR = Path(os.environ.get("MIGRATOR_TEST_DIR", "/var/tmp/migrator-tests")) / "rest-api-spec"
METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
LABELS = {"Requests:": "requests", "Checks": "checks", "To cancel": "cancel", "## Discovery": "discovery"}


@cache
def spec_for(version: str) -> RestSpec:
    return load(Version.parse(version), SPEC_DIR)


def nonconforming(requests: list[Checked], versions: dict[str, str]) -> list[str]:
    """Every violation of every Elasticsearch request (`versions`: cluster label -> its version; requests
    to other places, the repository's storage, are not Elasticsearch's), each line ending with the note
    of a cluster checked against another version's specification."""
    found: list[str] = []
    for request in requests:
        if request.cluster not in versions:
            continue
        version = versions[request.cluster]
        note = choose(Version.parse(version)).note
        found += [f"{line} [{version}{': ' + note if note else ''}]" for line in violations(request, spec_for(version))]
    return sorted(set(found))


def document_requests(document: dict[str, Any]) -> list[Checked]:
    """The requests of the dry run's JSON form: discovery, then each step's requests, checks and cancel."""
    found = [_checked(r) for r in document["discovery"]]
    for step in document["steps"]:
        found += [_checked(r) for r in [*step["requests"], *step["checks"], *step["cancel"]["requests"]]]
    return found


def _checked(request: dict[str, Any]) -> Checked:
    """A request of the JSON form; its `when` (the condition a run sends it on) is no part of the request."""
    return Checked(request["cluster"], request["method"], request["path"], request["body"])


def runbook_requests(markdown: str) -> dict[str, list[Checked]]:
    """The console requests of a runbook, by what lists them: `discovery`, `requests` (what a step sends),
    `checks` (what it reads) and `cancel`; a user copies these blocks into the Kibana console."""
    found: dict[str, list[Checked]] = {label: [] for label in LABELS.values()}
    label, cluster, block = "", "", None
    for line in markdown.splitlines():
        if block is not None:
            if line == "```":
                found[label] += _console(cluster, block)
                block = None
            else:
                block.append(line)
            continue
        if line == "```":
            block = []
        elif line.startswith("### "):
            label = ""
        elif match := re.match(r"^on the (source|destination) ", line):
            cluster = match.group(1)
        else:
            label = next((name for prefix, name in LABELS.items() if line.startswith(prefix)), label)
    return found


def _console(cluster: str, lines: list[str]) -> list[Checked]:
    requests: list[Checked] = []
    head: list[str] | None = None
    body: list[str] = []

    def close() -> None:
        if head is not None:
            text = "\n".join(body).strip()
            requests.append(Checked(cluster, head[0], head[1], json.loads(text) if text else None))

    for line in lines:
        if line.startswith("#"):  # a comment, as the Kibana console reads it (`# only when ...`)
            continue
        words = line.split(" ", 1)
        if len(words) == 2 and words[0] in METHODS:
            close()
            head, body = words, []
        else:
            body.append(line)
    close()
    return requests


def log_requests(events: list[Any]) -> list[Checked]:
    """The requests of `request` events (migrator.executor.RequestLog), as sent (secrets already masked)."""
    return [Checked(e.data["cluster"], e.data["method"], e.data["path"], e.data.get("body")) for e in events]
