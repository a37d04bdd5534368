"""Malformed answers from a 'cluster' give a clear error and exit 1, never a traceback."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from migrator.cli import app

ANSWERS = {
    "html": ("text/html", b"<html><body>Welcome to nginx!</body></html>"),
    "broken-json": ("application/json", b'{"nodes": {"a": '),
    "wrong-shape": ("application/json", b'{"nodes": {"a": {"version": 7}}, "status": "green", "index": 3}'),
    "list-for-object": ("application/json", b"[1, 2, 3]"),
}


@pytest.fixture(params=sorted(ANSWERS))
def bad_cluster(request):
    content_type, body = ANSWERS[request.param]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


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
