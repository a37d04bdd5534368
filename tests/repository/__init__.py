"""Tests of the repository reader and verifier: fixtures written by ES 5.6/6.8/7.10, and the test bed's nodes."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "es-repositories"


def fixture_repositories() -> list[Path]:
    """Every repository folder among the shared fixtures (each has an index.latest)."""
    return sorted(path.parent for path in FIXTURES.glob("*/index.latest"))


def framed_blobs(root: Path) -> list[Path]:
    """The framed blobs of a repository: every `.dat` and every shard-level `index-*`."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and (path.suffix == ".dat" or (path.name.startswith("index-") and path.parents[2].name == "indices"))
    )
