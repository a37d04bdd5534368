"""Tests of the repository reader and verifier: fixtures written by ES 5.6/6.8/7.10, and the test bed's nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Vendored from the opensearch-migrations project (Apache-2.0; origin and contents in its README.md),
# so that a clone passes its tests with nothing beside it.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "es-repositories"


def fixture_repositories() -> list[Path]:
    """Every repository folder among the fixtures (each has an index.latest).

    Raises FileNotFoundError when there is none: a missing fixture must fail the tests that use it,
    never turn their parameter lists empty (which pytest would report as skipped).
    """
    found = sorted(path.parent for path in FIXTURES.glob("*/index.latest"))
    if not found:
        raise FileNotFoundError(f"no repository fixtures under {FIXTURES}; they are part of the tree (git checkout)")
    return found


def framed_blobs(root: Path) -> list[Path]:
    """The framed blobs of a repository: every `.dat` and every shard-level `index-*`."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and (path.suffix == ".dat" or (path.name.startswith("index-") and path.parents[2].name == "indices"))
    )


class ReadRecorder:
    """A Storage that passes every call on to `inner` and records the key of each whole-object read
    (the verifier's GETs of metadata blobs), so a test can say which blobs a verification read."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads: list[str] = []

    def read(self, key: str) -> bytes:
        self.reads.append(key)
        return bytes(self.inner.read(key))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
