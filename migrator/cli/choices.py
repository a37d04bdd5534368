"""The command line's closed choices as enums (CLI layer): typer lists their values in `--help`, offers them
to shell completion and refuses any other value with exit 2, naming the option and the values it takes.

The commands hand the layers below the plain values (`.value`: "cutover", "v4", ...), as before."""

from __future__ import annotations

from enum import StrEnum


class PlanFormat(StrEnum):
    """`migrator plan --format`: how the dry run is printed."""

    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"
    MERMAID = "mermaid"
    DOT = "dot"


class GraphFormat(StrEnum):
    """`migrator graph --format`: the DAG's notation."""

    DOT = "dot"
    MERMAID = "mermaid"


class ReportFormat(StrEnum):
    """`migrator report --format`."""

    MARKDOWN = "markdown"
    JSON = "json"


class Phase(StrEnum):
    """`--phase` of apply and resume, for a plan with cutover.enabled (without it: the bulk copy)."""

    CUTOVER = "cutover"
    ALL = "all"


class Signature(StrEnum):
    """`migrator verify --signature`: the OSS request signature version."""

    V4 = "v4"
    V1 = "v1"


class Engine(StrEnum):
    """`migrator sandbox up --engine`: what runs the test bed (migrator.sandbox.engines.ENGINES)."""

    PROCESS = "process"
    DOCKER = "docker"


class ImageMode(StrEnum):
    """`migrator sandbox up --image`, docker engine only (migrator.sandbox.images.elasticsearch_image)."""

    AUTO = "auto"
    OFFICIAL = "official"
    LOCAL = "local"


class RepositoryType(StrEnum):
    """`migrator sandbox up --repository`: the repository type of the sandbox's plans."""

    OSS = "oss"
    FS = "fs"
