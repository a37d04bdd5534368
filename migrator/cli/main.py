"""`migrator` commands: the thin top of the flow (CLI → migration → planner/executor → steps → clients)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from migrator import __version__
from migrator.cli import sandbox
from migrator.cli.errors import fail
from migrator.cli.verify import verify
from migrator.clients.es import EsError
from migrator.clients.storage import StorageError
from migrator.executor import build_steps
from migrator.exit_codes import ExitCode
from migrator.migration import (
    Migration,
    NeedsAttention,
    PlanRefused,
    cancel,
    default_state_path,
    execute,
    open_migration,
    status,
)
from migrator.planner import MigrationPlan
from migrator.render.plan import graph_dot, graph_mermaid, human_bytes, plan_document, plan_text
from migrator.render.progress import progress_for
from migrator.spec import PlanError, plan_json_schema
from migrator.state import LockHeld
from migrator.steps.base import StepContext

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
app.command()(verify)

PlanArg = Annotated[Path, typer.Argument(help="The plan file (YAML); see `migrator schema` and plans/.")]
StateOpt = Annotated[
    Path | None, typer.Option("--state", help="State file [default: beside the plan, <plan>.state.db]")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.callback(invoke_without_command=True)
def main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@contextmanager
def errors_to_exit_codes(redact: Callable[[str], str] = lambda text: text) -> Iterator[None]:
    """Every expected failure becomes a message and a documented exit code, never a traceback."""
    try:
        yield
    except PlanError as exc:
        raise fail(f"the plan is not valid:\n{exc}", ExitCode.BAD_INPUT) from None
    except PlanRefused as exc:
        raise fail(f"the plan is refused, nothing was changed:\n{redact(str(exc))}", ExitCode.BAD_INPUT) from None
    except (LockHeld, NeedsAttention) as exc:
        raise fail(redact(str(exc)), ExitCode.NEEDS_ATTENTION) from None
    except (EsError, StorageError) as exc:
        raise fail(redact(str(exc)), ExitCode.FAILED) from None


@contextmanager
def opened(plan_file: Path, state: Path | None) -> Iterator[Migration]:
    with errors_to_exit_codes():
        migration = open_migration(plan_file.resolve(), state.resolve() if state else None)
    try:
        with errors_to_exit_codes(migration.redactor.text):
            yield migration
    finally:
        migration.close()


def describe_steps(migration: Migration, plan: MigrationPlan) -> dict:
    ctx = StepContext(
        spec=migration.spec,
        plan=plan,
        source=migration.source,
        destination=migration.destination,
        environment={},
        storage_factory=migration.storage,
        progress=progress_for(False),
    )
    return build_steps(plan.graph, ctx)


@app.command()
def schema() -> None:
    """Print the plan file's JSON Schema (point your editor's YAML support at it)."""
    typer.echo(json.dumps(plan_json_schema(), indent=2))


@app.command("plan")
def plan_command(plan_file: PlanArg, state: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Dry run: discover both clusters (read-only) and print every step with the requests it will send.

    Secrets are shown as ******. A plan Elasticsearch would refuse (a newer-to-older restore, a
    skipped major, colliding renames, an existing target) is refused here already, with exit 2.
    """
    with opened(plan_file, state) as migration:
        plan = migration.plan()
        steps = describe_steps(migration, plan)
        if as_json:
            typer.echo(json.dumps(plan_document(plan, steps), indent=2))
        else:
            typer.echo(plan_text(plan, steps))
        if plan.problems:
            raise PlanRefused(plan.problems)


@app.command()
def graph(
    plan_file: PlanArg,
    fmt: Annotated[str, typer.Option("--format", help="dot or mermaid")] = "dot",
    state: StateOpt = None,
) -> None:
    """Print the plan's DAG (Graphviz dot or Mermaid)."""
    if fmt not in ("dot", "mermaid"):
        raise fail(f"unknown --format {fmt!r}; use dot or mermaid", ExitCode.BAD_INPUT)
    with opened(plan_file, state) as migration:
        plan = migration.plan()
        typer.echo(graph_dot(plan.graph) if fmt == "dot" else graph_mermaid(plan.graph))


def run(
    plan_file: Path,
    state: Path | None,
    *,
    yes: bool,
    replan: bool,
    force_unlock: bool,
    resuming: bool,
    parallel: int | None,
    poll: float,
) -> None:
    tty = sys.stderr.isatty()
    progress = progress_for(tty)

    def confirm(plan: MigrationPlan) -> bool:
        summary = (
            f"Migrate {len(plan.moves)} indices ({human_bytes(plan.total_bytes)}) from {plan.facts.source.url} "
            f"to {plan.facts.destination.url} through snapshot {plan.snapshot}?"
        )
        if yes:
            return True
        if not sys.stdin.isatty():
            raise NeedsAttention(summary + " Not confirmed: no terminal to ask; pass --yes to proceed")
        return typer.confirm(summary)

    def on_step(step: str, status_: str, text: str) -> None:
        progress.message(step, f"{status_}: {text}" if text else status_)

    with opened(plan_file, state) as migration:
        try:
            plan, result = execute(
                migration,
                progress=progress,
                confirm=confirm,
                replan=replan,
                force_unlock=force_unlock,
                resuming=resuming,
                parallel=parallel,
                poll_s=poll,
                on_step=on_step,
            )
        finally:
            progress.close()
    if result.cancelled:
        raise fail("the run was cancelled", ExitCode.NEEDS_ATTENTION)
    if result.failed:
        for step, message in result.failed.items():
            typer.secho(f"failed: {step}: {message}", err=True, fg=typer.colors.RED)
        raise fail(f"stopped; fix the cause, then run `migrator resume {plan_file}`", ExitCode.FAILED)
    done = len(result.done)
    typer.echo(
        f"migration {plan.spec.name} complete: {len(plan.moves)} indices, snapshot {plan.snapshot} "
        f"({done} step(s) run, {len(result.skipped)} already done)"
    )


YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ReplanOpt = Annotated[bool, typer.Option("--replan", help="Continue even though the plan file changed.")]
UnlockOpt = Annotated[bool, typer.Option("--force-unlock", help="Take the lock from another run you know is gone.")]
ParallelOpt = Annotated[int | None, typer.Option(min=1, max=32, help="Steps at once [default: restore.parallel]")]
PollOpt = Annotated[float, typer.Option(min=0.2, max=60, help="Seconds between status polls.")]


@app.command()
def apply(
    plan_file: PlanArg,
    state: StateOpt = None,
    yes: YesOpt = False,
    replan: ReplanOpt = False,
    force_unlock: UnlockOpt = False,
    parallel: ParallelOpt = None,
    poll: PollOpt = 2.0,
) -> None:
    """Run the migration: every step observes the clusters and the bucket, does only what is missing,
    and records a checkpoint. Applying a finished plan again changes nothing."""
    run(
        plan_file,
        state,
        yes=yes,
        replan=replan,
        force_unlock=force_unlock,
        resuming=False,
        parallel=parallel,
        poll=poll,
    )


@app.command()
def resume(
    plan_file: PlanArg,
    state: StateOpt = None,
    replan: ReplanOpt = False,
    force_unlock: UnlockOpt = False,
    parallel: ParallelOpt = None,
    poll: PollOpt = 2.0,
) -> None:
    """Continue an interrupted run (crash, Ctrl-C, kill -9) from its checkpoints; an in-flight snapshot
    or restore is followed, never started twice."""
    run(
        plan_file,
        state,
        yes=True,
        replan=replan,
        force_unlock=force_unlock,
        resuming=True,
        parallel=parallel,
        poll=poll,
    )


@app.command("status")
def status_command(plan_file: PlanArg, state: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Show the run recorded in the state file: each step's status, the lock, the last events."""
    with errors_to_exit_codes():
        report = status((state or default_state_path(plan_file)).resolve())
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"plan {report['plan']} — {report['status']} — snapshot {report['snapshot']} ({report['runs']} run(s))")
    if report["lock"]:
        typer.echo(f"locked by {report['lock']['holder']} (pid {report['lock']['pid']} on {report['lock']['host']})")
    for step in report["steps"]:
        typer.echo(f"  {step['status']:<9} {step['step']}")


@app.command("cancel")
def cancel_command(plan_file: PlanArg, state: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel the run as the document says: delete the snapshot being taken and the indices being
    restored; a running `apply` stops at its next poll. A later `apply` starts afresh."""
    with opened(plan_file, state) as migration:
        report = cancel(migration)
    typer.echo(json.dumps(report, indent=2) if as_json else f"cancelled: {report}")
