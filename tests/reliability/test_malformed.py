"""Malformed answers from a 'cluster' give a clear error and exit 1, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from tests.canned_http import canned_server

ANSWERS = {
    "html": ("text/html", b"<html><body>Welcome to nginx!</body></html>"),
    "broken-json": ("application/json", b'{"nodes": {"a": '),
    "wrong-shape": ("application/json", b'{"nodes": {"a": {"version": 7}}, "status": "green", "index": 3}'),
    "list-for-object": ("application/json", b"[1, 2, 3]"),
}


@pytest.fixture(params=sorted(ANSWERS))
def bad_cluster(request):
    with canned_server(lambda path: ANSWERS[request.param]) as url:
        yield url


def test_a_malformed_cluster_answer_is_a_clear_error(bad_cluster, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"""
name: malformed
source: {{url: "{bad_cluster}"}}
destination: {{url: "{bad_cluster}"}}
repository: {{name: repo, type: fs, settings: {{location: /tmp/repo}}}}
storage: {{kind: local, path: /tmp/repo}}
snapshot: {{indices: ["a"]}}
"""
    )
    result = CliRunner().invoke(app, ["plan", str(plan)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "error: source" in result.output
