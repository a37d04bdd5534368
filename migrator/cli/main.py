"""`migrator` commands: the thin top of the flow (CLI → executor/planner → steps → clients)."""

from __future__ import annotations

import typer

from migrator import __version__
from migrator.cli import sandbox

app = typer.Typer(
    help=(
        "Move Elasticsearch indices between clusters or regions through snapshot and restore "
        "(an OSS repository on Alibaba Cloud), safely and resumably.\n\n"
        "Typical run: `migrator plan PLAN` (review), `migrator apply PLAN`, `migrator status PLAN`; "
        "after any interruption `migrator resume PLAN`. Rehearse on `migrator sandbox up` first.\n\n"
        "Exit codes: 0 done, 1 a step failed, 2 bad input (plan or options), 3 needs attention "
        "(lock held, plan changed, cancelled)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox.app, name="sandbox")


@app.callback(invoke_without_command=True)
def main(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()
