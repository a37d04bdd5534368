"""Which engine runs a sandbox folder: `process` (manager.py, the default) or `docker` (docker_engine.py).

`migrator sandbox up --engine E` records E in DIR/engine; `status`, `seed`, `faults` and `down` read it, so
they act on the engine that started the folder without being told again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from migrator.errors import SandboxRefused

if TYPE_CHECKING:
    from migrator.sandbox.oss_server import Faults

ENGINES = ("process", "docker")
DEFAULT_ENGINE = "process"
MARKER = "engine"
IMAGE_MODES = ("auto", "official", "local")  # see images.node_image


class SandboxEngine(Protocol):
    """What the CLI needs of a sandbox, whatever runs it."""

    folder: Path

    def up(
        self,
        source_version: str | None = None,
        destination_version: str | None = None,
        repository: str | None = None,
        source_nodes: int = 1,
        destination_nodes: int = 1,
    ) -> tuple[dict[str, Any], bool]: ...

    def status(self) -> dict[str, Any]: ...

    def down(self) -> list[str]: ...

    def seed(self, docs: int) -> dict[str, int]: ...

    def set_faults(self, faults: Faults) -> dict[str, object]: ...


def engine_of(folder: Path) -> str:
    """The engine recorded in `folder` (DIR/engine), else the default."""
    marker = folder / MARKER
    if marker.is_file():
        recorded = marker.read_text().strip()
        if recorded in ENGINES:
            return recorded
    return DEFAULT_ENGINE


def open_sandbox(folder: Path, engine: str | None = None, image_mode: str = "auto") -> SandboxEngine:
    """The sandbox in `folder` on `engine` (default: the one recorded there). `image_mode` is the docker
    engine's choice of image (see images.node_image). Raises SandboxError for an unknown engine,
    or when `up` would start one engine on a folder another engine still runs."""
    recorded = engine_of(folder)
    chosen = engine or recorded
    if chosen not in ENGINES:
        raise SandboxRefused(f"unknown engine {chosen!r}; use --engine process or --engine docker")
    if image_mode not in IMAGE_MODES:
        raise SandboxRefused(f"unknown image {image_mode!r}; use --image {' or --image '.join(IMAGE_MODES)}")
    if chosen != recorded:
        current = open_sandbox(folder, recorded)
        if current.status()["running"]:
            raise SandboxRefused(
                f"the sandbox in {folder} runs on the {recorded} engine; stop it first with "
                f"`migrator sandbox down --dir {folder}`, or choose another --dir"
            )
    if chosen == "docker":
        from migrator.sandbox.docker_engine import DockerSandbox

        return DockerSandbox(folder, image_mode=image_mode)
    from migrator.sandbox.manager import Sandbox

    return Sandbox(folder)


def remember(folder: Path, engine: str) -> None:
    """Record the engine that started `folder` (after a successful `up`)."""
    (folder / MARKER).write_text(engine + "\n")
