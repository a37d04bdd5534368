"""Fixtures of the sandbox's tests: the local Docker engine for the `docker`-marked modules."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from migrator.errors import SandboxError
from migrator.sandbox.docker_engine import connect


@pytest.fixture(scope="module")
def engine() -> Iterator:
    """A client of the local Docker engine; the test FAILS (never skips) with the reason when none answers."""
    try:
        client = connect()
    except SandboxError as exc:
        reason = os.environ.get("MIGRATOR_DOCKER_UNAVAILABLE") or str(exc)
    else:
        reason = None
    if reason is not None:
        pytest.fail(reason, pytrace=False)
    yield client
    client.close()
