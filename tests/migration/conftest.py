"""The migration tests use the render tests' migration on unreachable clusters (synthetic facts)."""

from tests.render.conftest import discovered, opened  # noqa: F401 - fixtures
