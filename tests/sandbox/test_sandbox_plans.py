"""The plans `sandbox up` writes: valid plans, `type: oss` by default with the keys as ${ENV} references
(never literal), `fs` on the bucket's folder with --repository fs; across regions the destination reads
the replica bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.sandbox.sandbox_plans import (
    KEY_ID_VAR,
    SECRET_VAR,
    cross_region_plan,
    cutover_plan,
    printable,
    repository_document,
    sandbox_plan,
)
from migrator.spec import SecretRef, parse_plan

OSS = {
    "endpoint": "http://127.0.0.1:19000",
    "bucket": "migrator-sandbox",
    "region": "cn-hangzhou",
    "base_path": "snapshots/sandbox",
    "replica_bucket": "migrator-sandbox-replica",
    "replica_region": "cn-shanghai",
    "access_key_id": "sandboxkeyid",
    "access_key_secret": "sandbox-literal-secret",
}


def document(kind: str) -> dict:
    doc = {
        "source": {"url": "http://127.0.0.1:19200"},
        "destination": {"url": "http://127.0.0.1:19210"},
        "oss": OSS,
        "plan": "/sandbox/plan.yaml",
    }
    doc.update(repository_document(kind, OSS, Path("/sandbox/buckets/migrator-sandbox"), Path("/sandbox/buckets/r")))
    return doc


def test_the_plans_use_an_oss_repository_with_keys_from_the_env_file() -> None:
    for write in (sandbox_plan, cutover_plan, cross_region_plan):
        text = write(document("oss"), "sandbox.env")
        assert OSS["access_key_secret"] not in text and OSS["access_key_id"] not in text
        spec = parse_plan(text)
        settings = spec.repository.settings_dict()
        assert spec.repository.type == "oss"
        assert (settings["access_key_id"], settings["secret_access_key"]) == (
            SecretRef(KEY_ID_VAR),
            SecretRef(SECRET_VAR),
        )
        assert (settings["endpoint"], settings["bucket"], settings["region"]) == (
            OSS["endpoint"],
            OSS["bucket"],
            "cn-hangzhou",
        )
    crossing = parse_plan(cross_region_plan(document("oss"), "sandbox.env"))
    assert crossing.repository.destination_settings_dict() == {"bucket": OSS["replica_bucket"], "region": "cn-shanghai"}
    assert crossing.repository.settings_dict()["base_path"] == crossing.storage.base_path == "snapshots/cross-region"


@pytest.mark.parametrize("write", [sandbox_plan, cutover_plan, cross_region_plan])
def test_repository_fs_keeps_the_folder(write) -> None:
    spec = parse_plan(write(document("fs"), "sandbox.env"))
    assert spec.repository.type == "fs"
    assert str(spec.repository.settings_dict()["location"]).startswith("/sandbox/buckets/migrator-sandbox/snapshots/")


def test_sandbox_json_leaves_the_keys_out_of_the_repository() -> None:
    entries = repository_document("oss", OSS, Path("/b"), Path("/r"))
    assert entries["repository"]["settings"] == {
        "endpoint": OSS["endpoint"],
        "bucket": OSS["bucket"],
        "base_path": OSS["base_path"],
        "region": "cn-hangzhou",
    }
    assert entries["replica_repository"]["settings"]["bucket"] == OSS["replica_bucket"]


@pytest.mark.parametrize("kind", ["oss", "fs"])
def test_the_printed_sandbox_shows_the_secret_as_its_variable_and_keeps_everything_else(kind: str) -> None:
    # Before: `sandbox up` printed the document with the OSS secret in clear.
    full = document(kind)
    shown = printable(full)
    assert OSS["access_key_secret"] not in str(shown)
    assert shown["oss"]["access_key_secret"] == f"${{{SECRET_VAR}}}"
    assert {key: value for key, value in shown.items() if key != "oss"} == {
        key: value for key, value in full.items() if key != "oss"
    }
    assert full["oss"]["access_key_secret"] == OSS["access_key_secret"]  # sandbox.json keeps it
