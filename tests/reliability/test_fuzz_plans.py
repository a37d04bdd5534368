"""1,000+ generated plan files through `migrator plan`: never a traceback; every refusal names the
field and the fix (discovery is replaced by a quick failure: the clusters are not the point here)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from migrator.cli import app
from migrator.clients.es import EsError, Request
from migrator.migration import opened

BASE = {
    "name": "fuzz",
    "source": {"url": "http://127.0.0.1:9", "username": "elastic", "password": "${FUZZ_PASSWORD}"},
    "destination": {"url": "http://127.0.0.1:9", "verify_tls": True},
    "repository": {
        "name": "repo",
        "type": "oss",
        "settings": {
            "endpoint": "http://oss-cn-hangzhou-internal.aliyuncs.com",
            "bucket": "b",
            "base_path": "snapshots",
            "access_key_id": "${FUZZ_KEY_ID}",
            "secret_access_key": "${FUZZ_SECRET}",
            "chunk_size": "500mb",
        },
        "destination_settings": {"endpoint": "http://oss-cn-shanghai-internal.aliyuncs.com", "bucket": "b2"},
    },
    "replication": {
        "method": "oss",
        "storage": {
            "kind": "oss",
            "endpoint": "http://oss-cn-shanghai.aliyuncs.com",
            "bucket": "b2",
            "base_path": "snapshots",
            "access_key_id": "${FUZZ_KEY_ID}",
            "access_key_secret": "${FUZZ_SECRET}",
        },
    },
    "cutover": {"enabled": True},
    "snapshot": {"indices": ["logs-*", "orders"], "exclude": ["logs-debug"]},
    "restore": {"rename_pattern": "(.+)", "rename_replacement": "new-$1", "parallel": 2},
    "finish": {"replicas": 1, "aliases": {"logs": ["orders"]}},
}
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["${FUZZ_SECRET}", "${lowercase}", "${}", "$1", "(", "*", "hunter2", "http://x", ""]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=6,
)


def paths(document: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found.extend(paths(value, (*prefix, key)))
    elif isinstance(document, list):
        for position, value in enumerate(document):
            found.extend(paths(value, (*prefix, position)))
    return found


@st.composite
def mutated_plans(draw: st.DrawFn) -> object:
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        targets = paths(document)
        if not targets or not isinstance(document, dict):
            break
        path = draw(st.sampled_from(targets))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(VALUES)
    if draw(st.integers(min_value=0, max_value=20)) == 0:
        return draw(VALUES)
    return document


@pytest.fixture(autouse=True)
def quick_discovery(monkeypatch):
    def refuse(source, destination, *args):
        raise EsError("source", Request("GET", "/_nodes"), None, "unreachable (fuzz)")

    monkeypatch.setattr(opened, "discover", refuse)
    monkeypatch.setenv("FUZZ_PASSWORD", "pw-canary-1")
    monkeypatch.setenv("FUZZ_KEY_ID", "id-canary-2")
    monkeypatch.setenv("FUZZ_SECRET", "secret-canary-3")


OUTCOMES: dict[int, int] = {}


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(document=mutated_plans())
def test_generated_plans_never_give_a_traceback(tmp_path_factory, document):
    folder: Path = tmp_path_factory.mktemp("fuzz")
    plan = folder / "plan.yaml"
    plan.write_text(yaml.safe_dump(document, allow_unicode=True) if document is not None else "")
    result = CliRunner().invoke(app, ["plan", str(plan)])
    OUTCOMES[result.exit_code] = OUTCOMES.get(result.exit_code, 0) + 1
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for canary in ("pw-canary-1", "id-canary-2", "secret-canary-3"):
        assert canary not in result.output
    if result.exit_code == 2:
        assert "fix" in result.output, result.output
    else:
        assert "unreachable (fuzz)" in result.output


def test_the_fuzzing_reached_both_outcomes():
    assert OUTCOMES.get(1, 0) > 0 and OUTCOMES.get(2, 0) > 0, OUTCOMES
    assert sum(OUTCOMES.values()) >= 1000
    print("outcomes by exit code:", OUTCOMES)
