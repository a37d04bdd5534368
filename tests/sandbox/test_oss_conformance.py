"""The sandbox OSS server against a second real client: Alibaba's Java SDK (tests/sandbox/OssConformance.java),
with V1 and V4 signatures. The SDK's jars are the ones the test bed's repository plugin uses (fetched with
Maven, cached)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.sandbox.oss_server import BucketConfig, OssServer
from migrator.sandbox.repository_plugin import fetch_sdk

PROGRAM = Path(__file__).with_name("OssConformance.java")
CHECKS = [
    "put_get",
    "range",
    "head",
    "exists",
    "put_1005",
    "list_v1_paging",
    "list_v2_paging_and_delimiter",
    "batch_delete",
    "delete",
    "multipart",
    "copy",
    "upload_part_copy",
    "forbid_overwrite",
]
AK, SK = "LTAI-java-key", "java-secret-value"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OssServer]:
    buckets = [BucketConfig("javabucket", region="oss-cn-beijing")]
    with OssServer(tmp_path_factory.mktemp("oss"), buckets, AK, SK) as srv:
        yield srv


@pytest.mark.parametrize("signature", ["1", "4"])
def test_the_java_sdk_conforms(server: OssServer, signature: str) -> None:
    java = shutil.which("java")
    if java is None:
        pytest.fail("`java` is not on PATH: the conformance program needs a JDK 17")
    classpath = os.pathsep.join(str(jar) for jar in fetch_sdk())
    prefix = f"java-{uuid.uuid4().hex[:8]}/"
    command = [java, "-cp", classpath, str(PROGRAM), server.endpoint, AK, SK, "javabucket", prefix, signature]
    result = subprocess.run([*command, "cn-beijing"], capture_output=True, text=True, timeout=600, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith(("OK ", "FAIL "))]
    assert lines == [f"OK {name}" for name in CHECKS], result.stdout + result.stderr[-3000:]
    assert result.returncode == 0
    assert server.stats()["requests_by_op"].get("CopyObject", 0) > 0
