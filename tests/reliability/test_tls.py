"""TLS verification is on unless the plan turns it off for a named cluster; a CA file is honoured."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from tests.canned_http import canned_server


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

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with canned_server(lambda path: ("text/html", b"<html>not elasticsearch</html>"), tls=context) as url:
        yield url, cert


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
