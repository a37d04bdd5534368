"""`migrator sandbox ...`: the local test bed's commands (thin: the work is in migrator.sandbox; its
`SandboxError`s become exit codes in cli/errors.py like every other error)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from migrator.cli.choices import Engine, ImageMode, RepositoryType
from migrator.cli.errors import errors_to_exit_codes
from migrator.cli.helptext import MARKUP, SANDBOX_ORDER, examples, in_order
from migrator.exit_codes import ExitCode
from migrator.sandbox.distributions import (
    DEFAULT_DESTINATION_VERSION,
    DEFAULT_SOURCE_VERSION,
    KNOWN_VERSIONS,
)

if TYPE_CHECKING:
    from migrator.sandbox.engines import SandboxEngine

app = typer.Typer(
    help=(
        "A local test bed to rehearse on: two real clusters and an OSS-compatible server.\n\n"
        "Two real Elasticsearch clusters (source and destination) and an OSS-compatible server; the clusters "
        "share an `oss` repository in its bucket (or, with --repository fs, the bucket's folder). Rehearse a "
        "migration here before touching production."
    ),
    no_args_is_help=True,
    rich_markup_mode=MARKUP,
    cls=in_order(SANDBOX_ORDER),
)

VERSIONS_HELP = (
    f"Elasticsearch or OpenSearch version: {', '.join(KNOWN_VERSIONS)} (the newest release of each line), "
    "or that release's full number."
)
DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="The sandbox's folder.",
        show_default="$MIGRATOR_SANDBOX_DIR, else /var/tmp/migrator-sandbox as root",
    ),
]


def _complete_version(incomplete: str) -> list[str]:
    """Shell completion of --source-version and --destination-version: the known versions' short names."""
    return [alias for alias in KNOWN_VERSIONS if alias.startswith(incomplete)]


VersionOption = Annotated[str, typer.Option(help=VERSIONS_HELP, autocompletion=_complete_version)]


def _sandbox(folder: Path | None, engine: str | None = None, image_mode: str = "auto") -> SandboxEngine:
    """The sandbox in `folder` on `engine` (default: the engine that started it, else `process`)."""
    # Imported here: the manager brings the OSS server and the node code, which `migrator apply` never needs.
    from migrator.sandbox.engines import open_sandbox
    from migrator.sandbox.manager import default_dir

    return open_sandbox((folder or default_dir()).resolve(), engine, image_mode)


@app.command(epilog=examples("sandbox up"))
def up(
    source_version: VersionOption = DEFAULT_SOURCE_VERSION,
    destination_version: VersionOption = DEFAULT_DESTINATION_VERSION,
    folder: DirOption = None,
    engine: Annotated[
        Engine | None,
        typer.Option(
            help="process: local processes; docker: containers of the local Docker engine.",
            show_default="the engine that started DIR, else process",
        ),
    ] = None,
    image: Annotated[
        ImageMode,
        typer.Option(help="With --engine docker: auto (the official image, else one built here), official or local."),
    ] = ImageMode.AUTO,
    repository: Annotated[
        RepositoryType | None,
        typer.Option(
            help="The plans' repository type: oss (the test bed's elasticsearch-repository-oss plugin on every "
            "node, built on first use) or fs (the bucket's folder, no plugin).",
            show_default="oss where both versions are Elasticsearch (not OpenSearch), on either engine, else fs",
        ),
    ] = None,
    source_nodes: Annotated[
        int,
        typer.Option(
            min=1,
            max=5,
            help="Nodes of the source cluster (process engine; more than 1: they "
            "find each other on loopback, each with a smaller heap)",
        ),
    ] = 1,
    destination_nodes: Annotated[
        int, typer.Option(min=1, max=5, help="Nodes of the destination cluster (as --source-nodes)")
    ] = 1,
) -> None:
    """Start the source and destination clusters and the OSS server; print the sandbox as JSON.

    The JSON (also written to DIR/sandbox.json) holds both URLs and versions, the OSS endpoint,
    bucket and key id (the secret is printed as ${MIGRATOR_SANDBOX_OSS_ACCESS_KEY_SECRET}, the
    variable the plans read from DIR/sandbox.env; sandbox.json keeps it, mode 600), the repository's
    type and settings (keys left out) and a ready plan file.
    The OSS server also serves a replica bucket in another region (`oss.replica_bucket`,
    `oss.replica_region`) for cross-region replication, and `replica_repository` is the settings of
    its copy of the repository. Running `up` on a running sandbox changes nothing and exits 0.
    With --destination-nodes 3 the destination is three nodes (`destination.nodes` lists their URLs;
    `destination.url`, the plans' URL, is the first).
    """
    from migrator.sandbox.engines import DEFAULT_ENGINE, remember
    from migrator.sandbox.sandbox_plans import printable

    chosen = engine.value if engine else None
    with errors_to_exit_codes():
        sandbox = _sandbox(folder, chosen, image.value)
        document, started = sandbox.up(
            source_version,
            destination_version,
            repository.value if repository else None,
            source_nodes,
            destination_nodes,
        )
        remember(sandbox.folder, chosen or document.get("engine", DEFAULT_ENGINE))
    if not started:
        typer.echo(f"the sandbox in {sandbox.folder} is already running", err=True)
    for warning in document.get("warnings", []):
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    typer.echo(json.dumps(printable(document), indent=2))


@app.command(epilog=examples("sandbox status"))
def status(
    folder: DirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show what runs: each cluster (URL, version, health) and the OSS server. Exit 3 when stopped."""
    with errors_to_exit_codes():
        report = _sandbox(folder).status()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    elif not report["running"]:
        typer.echo(f"no sandbox running in {report['dir']}")
    else:
        for name, item in report.items():
            if not isinstance(item, dict):
                continue
            state = "running" if item["running"] else "STOPPED"
            where = item.get("url") or item.get("endpoint")
            extra = f" Elasticsearch {item['version']}, health {item.get('health', '-')}" if "version" in item else ""
            typer.echo(f"{name:<14} {state:<8} {where}{extra}")
            if "logs" in item:
                typer.echo(f"{'':<14} container {item['container']} ({item['image']}), logs: {item['logs']}")
    if not report["running"]:
        raise typer.Exit(int(ExitCode.NEEDS_ATTENTION))


@app.command(epilog=examples("sandbox down"))
def down(folder: DirOption = None) -> None:
    """Stop both clusters and the OSS server; no process of the sandbox is left behind."""
    with errors_to_exit_codes():
        stopped = _sandbox(folder).down()
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command(epilog=examples("sandbox seed"))
def seed(
    docs: Annotated[int, typer.Option(min=1, max=10_000_000, help="Documents per example index.")] = 1000,
    folder: DirOption = None,
) -> None:
    """Create example indices with real documents on the source (bulk), one of them `.`-prefixed."""
    with errors_to_exit_codes():
        counts = _sandbox(folder).seed(docs)
    typer.echo(json.dumps(counts, indent=2))


@app.command(epilog=examples("sandbox faults"))
def faults(
    error_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction of requests answered 503.")] = 0.0,
    latency_ms: Annotated[int, typer.Option(min=0, help="Delay added to every request.")] = 0,
    truncate_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction of GET bodies cut short.")] = 0.0,
    error_key: Annotated[list[str] | None, typer.Option(help="Keys containing this always get 500.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the fault dice, for repeatable runs.")] = None,
    folder: DirOption = None,
) -> None:
    """Inject faults into the running OSS server (no option: remove them), to rehearse a flaky bucket."""
    from migrator.sandbox.oss_server import Faults

    wanted = Faults(error_rate, latency_ms, truncate_rate, list(error_key or []), seed)
    with errors_to_exit_codes():
        current = _sandbox(folder).set_faults(wanted)
    typer.echo(json.dumps(current, indent=2))
