"""TLS verification is on unless the plan turns it off for a named cluster; a CA file is honoured."""

from __future__ import annotations

import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from migrator.cli import app


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = b"<html>not elasticsearch</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


def plan_output(tmp_path, url: str, tls: str) -> str:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"""
name: tls
source: {{url: "{url}"{tls}}}
destination: {{url: "{url}"{tls}}}
repository: {{name: repo, type: fs, settings: {{location: /tmp/repo}}}}
storage: {{kind: local, path: /tmp/repo}}
snapshot: {{indices: ["a"]}}
"""
    )
    result = CliRunner().invoke(app, ["plan", str(plan)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    return result.output


def test_a_self_signed_certificate_is_refused_by_default(https_server, tmp_path):
    url, _ = https_server
    assert "CERTIFICATE_VERIFY_FAILED" in plan_output(tmp_path, url, "")


def test_verification_off_for_the_cluster_or_its_ca_file_lets_the_request_through(https_server, tmp_path):
    url, cert = https_server
    for tls in (", verify_tls: false", f', ca_file: "{cert}"'):
        output = plan_output(tmp_path, url, tls)
        assert "CERTIFICATE_VERIFY_FAILED" not in output
        assert "is this Elasticsearch?" in output
