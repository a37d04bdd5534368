"""`migrator` commands: the thin top of the flow (CLI → migration → planner/executor → steps → clients).

Over 400 lines: one function per command with its options, and the outcome messages of `rollback`. Help
layout and examples are in helptext.py, closed choices in choices.py, apply's and resume's run in apply.py.

Each command imports what it runs inside its body: loading the command line (for any command, `--help`
or `--version`) imports typer and the options' types only, `status` and `report` read the state file
without the planner, the clients or the spec's models, and only the commands that open a migration
load those (tests/cli/test_start.py pins it; docs/performance.md has the figures)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from migrator import __version__
from migrator.cli import sandbox
from migrator.cli.choices import GraphFormat, Phase, PlanFormat, ReportFormat
from migrator.cli.errors import errors_to_exit_codes, fail
from migrator.cli.helptext import MARKUP, ORDER_OF_USE, examples, in_order
from migrator.cli.loading import frozen_imports
from migrator.cli.verify import verify
from migrator.dag import RunStatus
from migrator.exit_codes import ExitCode

app = typer.Typer(
    help=(
        "Move Elasticsearch indices between clusters or regions through snapshot and restore "
        "(an OSS repository on Alibaba Cloud), safely and resumably.\n\n"
        "Typical run: `migrator plan PLAN` (review), `migrator apply PLAN`, `migrator status PLAN`; "
        "after any interruption `migrator resume PLAN`. Rehearse on `migrator sandbox up` first.\n\n"
        "Exit codes: 0 done, 1 a step failed, 2 bad input (plan or options), 3 needs attention "
        "(lock held, plan changed, cancelled)."
    ),
    epilog=examples(""),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=MARKUP,
    cls=in_order(ORDER_OF_USE),
)
app.add_typer(sandbox.app, name="sandbox")
app.command(epilog=examples("verify"))(verify)

PlanArg = Annotated[
    Path,
    typer.Argument(
        metavar="PLAN",
        help="The plan file (YAML; see `migrator schema` and plans/), or a plan saved with `plan --out`.",
    ),
]
StateOpt = Annotated[
    Path | None, typer.Option("--state", help="The run's state file.", show_default="beside the plan, PLAN.state.db")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.callback(invoke_without_command=True)
def main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@app.command(epilog=examples("schema"))
def schema() -> None:
    """Print the plan file's JSON Schema, for an editor's YAML support."""
    with frozen_imports():
        from migrator.spec import plan_json_schema

    typer.echo(json.dumps(plan_json_schema(), indent=2))


@app.command(
    "plan",
    epilog=examples("plan"),
)
def plan_command(
    plan_file: PlanArg,
    state: StateOpt = None,
    fmt: Annotated[PlanFormat, typer.Option("--format", help="markdown is a runbook; mermaid and dot the DAG.")] = (
        PlanFormat.TEXT
    ),
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Save the reviewed plan here; `migrator apply FILE` runs exactly it.")
    ] = None,
) -> None:
    """Dry run: show every step, the requests it will send and the estimates; nothing is changed.

    Discovers both clusters (read-only) and prints every step with the requests it will send, what it
    waits for, how to cancel it, and the estimates.

    Secrets are shown as `******`. A plan Elasticsearch would refuse (a newer-to-older restore, a
    skipped major, colliding renames, an existing target, a snapshot name already in the repository)
    is refused here already, with exit 2. Beside a recorded run (its state file), the plan is that
    run's: its snapshot and targets are its own, and its status is shown.
    """
    if as_json and fmt not in (PlanFormat.TEXT, PlanFormat.JSON):
        raise fail(f"--json and --format {fmt} exclude each other", ExitCode.BAD_INPUT)
    fmt = PlanFormat.JSON if as_json else fmt
    with frozen_imports():
        from migrator.cli.apply import opened
        from migrator.errors import PlanError
        from migrator.migration.review import review
        from migrator.migration.saved import save_plan
        from migrator.render.plan import graph_dot, graph_mermaid, plan_document, plan_markdown, plan_text

    with opened(plan_file, state) as migration:
        reviewed = review(migration)
        document = plan_document(reviewed)
        rendered = {
            "text": lambda: plan_text(reviewed),
            "json": lambda: json.dumps(document, indent=2),
            "markdown": lambda: plan_markdown(reviewed),
            "mermaid": lambda: graph_mermaid(reviewed.plan.graph),
            "dot": lambda: graph_dot(reviewed.plan.graph),
        }[fmt]()
        typer.echo(migration.redactor.text(rendered))
        if reviewed.plan.problems:
            raise PlanError(reviewed.plan.problems, refused=True)
        if out is not None:
            save_plan(migration, reviewed, document, out)
            typer.echo(
                f"saved the plan (hash {reviewed.plan.plan_hash}) to {out}; run it with `migrator apply {out}`",
                err=True,
            )


@app.command(epilog=examples("graph"))
def graph(
    plan_file: PlanArg,
    fmt: Annotated[GraphFormat, typer.Option("--format", help="Graphviz dot or Mermaid.")] = GraphFormat.DOT,
    state: StateOpt = None,
) -> None:
    """Print the plan's DAG of steps; the same as `plan --format dot|mermaid`."""
    plan_command(plan_file, state=state, fmt=PlanFormat(fmt.value))


YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ReplanOpt = Annotated[bool, typer.Option("--replan", help="Continue even though the plan file changed.")]
UnlockOpt = Annotated[bool, typer.Option("--force-unlock", help="Take the lock from another run you know is gone.")]
ParallelOpt = Annotated[
    int | None, typer.Option(min=1, max=32, help="Steps at once.", show_default="the plan's restore.parallel")
]
PollOpt = Annotated[float, typer.Option(min=0.2, max=60, help="Seconds between status polls.")]
StepByStepOpt = Annotated[
    bool, typer.Option("--step-by-step", help="Show each step's requests and ask before sending them.")
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", metavar="STEP", help="Stop after this step (an id like snapshot.wait, or a kind: restore)."
    ),
]
OnlyOpt = Annotated[
    str | None, typer.Option("--only", metavar="STEP", help="Run only this step (its predecessors must be done).")
]
RedoOpt = Annotated[
    str | None,
    typer.Option(
        "--redo",
        metavar="STEP",
        help="Do a done step again, with what follows it for the same target: an id as a drift report names "
        "it, a kind, a pattern like 'restore[logs-*]', a comma list of these, or `drifted` (every step the last "
        "drift report named).",
    ),
]
PhaseOpt = Annotated[
    Phase | None,
    typer.Option(
        "--phase",
        help="For a plan with cutover.enabled: `cutover` blocks writes on the source, restores an incremental "
        "snapshot over the destination, checks the counts and switches the aliases (after the bulk copy, which "
        "a plain apply runs); `all` runs both phases.",
        show_default="the bulk copy",
    ),
]


@app.command(epilog=examples("apply"))
def apply(
    plan_file: PlanArg,
    state: StateOpt = None,
    yes: YesOpt = False,
    replan: ReplanOpt = False,
    force_unlock: UnlockOpt = False,
    parallel: ParallelOpt = None,
    poll: PollOpt = 2.0,
    step_by_step: StepByStepOpt = False,
    until: UntilOpt = None,
    only: OnlyOpt = None,
    phase: PhaseOpt = None,
    redo: RedoOpt = None,
) -> None:
    """Run the migration, resumably: each step does only what is missing and records a checkpoint.

    Every step observes the clusters and the bucket, does only what is missing, and records a
    checkpoint. Applying a finished plan again changes nothing.

    With cutover.enabled, a plain apply is phase one (the bulk copy; the source keeps taking writes) and
    `--phase cutover` phase two (a short write freeze); `migrator rollback` undoes a cutover.

    Given a plan saved with `plan --out`, runs exactly it, and refuses (exit 3, naming what changed)
    when a fresh discovery of the clusters gives a different plan."""
    with frozen_imports():
        from migrator.cli.apply import run

    run(
        plan_file,
        state,
        yes=yes,
        replan=replan,
        force_unlock=force_unlock,
        resuming=False,
        parallel=parallel,
        poll=poll,
        step_by_step=step_by_step,
        until=until,
        only=only,
        phase=phase.value if phase else None,
        redo=redo,
    )


@app.command(epilog=examples("resume"))
def resume(
    plan_file: PlanArg,
    state: StateOpt = None,
    replan: ReplanOpt = False,
    force_unlock: UnlockOpt = False,
    parallel: ParallelOpt = None,
    poll: PollOpt = 2.0,
    step_by_step: StepByStepOpt = False,
    until: UntilOpt = None,
    only: OnlyOpt = None,
    phase: PhaseOpt = None,
    redo: RedoOpt = None,
) -> None:
    """Continue an interrupted or paused run from its checkpoints.

    An in-flight snapshot or restore is followed, never started twice. A cutover that began is
    continued to its end."""
    with frozen_imports():
        from migrator.cli.apply import run

    run(
        plan_file,
        state,
        yes=True,
        replan=replan,
        force_unlock=force_unlock,
        resuming=True,
        parallel=parallel,
        poll=poll,
        step_by_step=step_by_step,
        until=until,
        only=only,
        phase=phase.value if phase else None,
        redo=redo,
    )


OUTCOMES = {
    RunStatus.DONE: ExitCode.OK,
    RunStatus.PAUSED: ExitCode.OK,
    RunStatus.FAILED: ExitCode.FAILED,
    RunStatus.DRIFTED: ExitCode.FAILED,
}
LIVE = (RunStatus.PLANNED, RunStatus.RUNNING, RunStatus.CANCELLING)


@app.command(
    "status",
    epilog=examples("status"),
)
def status_command(
    plan_file: PlanArg,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the run live until it ends.")] = False,
    interval: Annotated[float, typer.Option(min=0.2, max=60, help="Seconds between refreshes (--watch).")] = 1.0,
) -> None:
    """Show the recorded run: each step's status and progress, the lock, the last events.

    Reads the state file only: each step's status, duration and progress, the lock, the last events.
    With --watch, follow it live; the exit code then tells how it ended (0 done or paused, 1 failed or
    drifted since it was done, 3 cancelled or interrupted)."""
    from migrator.migration.files import default_state_path
    from migrator.migration.readback import status
    from migrator.render.status import status_text, status_view

    path = (state or default_state_path(plan_file)).resolve()
    with errors_to_exit_codes():
        report = status(path)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    if not watch:
        typer.echo(status_text(report, str(plan_file)))
        return
    from rich.console import Console  # the live view's, imported for it alone (see migrator.render.status)
    from rich.live import Live

    with Live(status_view(report), console=Console(), refresh_per_second=4) as live:
        while report["live"] and report["status"] in LIVE:
            time.sleep(interval)
            with errors_to_exit_codes():
                report = status(path)
            live.update(status_view(report))
    if report["status"] == RunStatus.RUNNING:
        raise fail(
            f"the run stopped without finishing (killed?); `migrator resume {plan_file}` continues",
            ExitCode.NEEDS_ATTENTION,
        )
    raise typer.Exit(int(OUTCOMES.get(report["status"], ExitCode.NEEDS_ATTENTION)))


@app.command(
    "report",
    epilog=examples("report"),
)
def report_command(
    plan_file: PlanArg,
    state: StateOpt = None,
    fmt: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.MARKDOWN,
) -> None:
    """Report the run: documents and bytes per index, step durations, retries, warnings.

    From the state file: per index the documents on each side and the bytes, each step's duration,
    attempts and retries, and every warning; the JSON also has the last run's timeline (when each step
    started and finished, the requests it sent, the waits' request rates)."""
    from migrator.migration.files import default_state_path
    from migrator.migration.readback import cutover_report
    from migrator.migration.readback import report as build_report
    from migrator.render.report import report_markdown
    from migrator.timeline import timeline_report

    path = (state or default_state_path(plan_file)).resolve()
    with errors_to_exit_codes():
        data = build_report(path)
        data["cutover"] = cutover_report(path)
        data["timeline"] = timeline_report(path)
    typer.echo(json.dumps(data, indent=2) if fmt == "json" else report_markdown(data))


@app.command("cancel", epilog=examples("cancel"))
def cancel_command(plan_file: PlanArg, state: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel the run: delete the snapshot being taken and the indices being restored.

    As the document says: delete the snapshot being taken and the indices being restored; a running
    `apply` stops at its next poll. A later `apply` starts afresh."""
    with frozen_imports():
        from migrator.cli.apply import opened
        from migrator.migration.undo import cancel
        from migrator.render.undo import cancel_lines

    with opened(plan_file, state) as migration:
        report = cancel(migration)
    typer.echo(json.dumps(report, indent=2) if as_json else "\n".join(cancel_lines(report)))


@app.command(
    "rollback",
    epilog=examples("rollback"),
)
def rollback_command(
    plan_file: PlanArg,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the requests rollback would send for the recorded state; send nothing."),
    ] = False,
) -> None:
    """Undo a cutover: aliases off the destination, then writes allowed on the source again.

    Stops a running apply, removes the aliases the cutover switched to the destination, then lifts the
    write block the cutover added on the source (never both writable with the aliases on the
    destination; a block the source had before the cutover stays), and says what state each
    destination index is in. A later `apply --phase cutover` tries again with a new incremental
    snapshot. With --dry-run: the requests it would send, read from the state file and both clusters
    (nothing is changed), in the runbook's console form (with --json: a list of cluster, method, path, body)."""
    with frozen_imports():
        from migrator.cli.apply import opened
        from migrator.migration.rollback import rollback, rollback_requests
        from migrator.render.undo import rollback_dry_run_lines

    if dry_run:
        with opened(plan_file, state) as migration:
            requests = rollback_requests(migration)
        if as_json:
            typer.echo(json.dumps([r.as_json() for r in requests], indent=2))
        else:
            typer.echo("\n".join(rollback_dry_run_lines(requests)))
        return
    with opened(plan_file, state) as migration:
        report = rollback(migration)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"writes allowed again on the source: {', '.join(report['writes_unblocked']) or 'none was blocked'}")
    for index, changed in report["blocks_changed_by_others"].items():
        listed = ", ".join(f"{setting} {old} -> {new}" for setting, (old, new) in changed.items())
        typer.secho(f"{index}: blocks changed since the cutover began, not by migrator (left as they are): {listed}")
    removed = [f"{a['alias']} -> {a['index']}" for a in report["aliases_removed"]]
    typer.echo(f"aliases removed from the destination: {', '.join(removed) or 'none'}")
    given_back = [f"{a['alias']} -> {a['index']}" for a in report["aliases_given_back"]]
    if given_back:
        typer.echo(f"aliases given back to the destination indices the cutover took them from: {', '.join(given_back)}")
    if removed:
        typer.secho(
            "the aliases had been switched: what was written to the destination through them since the cutover "
            "is not on the source",
            fg=typer.colors.YELLOW,
        )
    if report["reopened"]:
        typer.echo(
            f"opened again on the destination (closed by the cutover, not restored): {', '.join(report['reopened'])}"
        )
    snapshot = report["cutover_snapshot"]
    typer.echo(
        f"incremental snapshot {snapshot['name']}: "
        + ("deleted" if snapshot["deleted"] else snapshot.get("why", "not there"))
    )
    typer.echo("the destination now:")
    for index in report["destination"]:
        if not index["exists"]:
            typer.echo(f"  {index['index']}: does not exist")
            continue
        restored = f", restored from {index['restored_from']}" if index.get("restored_from") else ""
        aliases = f", aliases {', '.join(index['aliases'])}" if index["aliases"] else ", no alias"
        typer.echo(
            f"  {index['index']}: {index['status']}, {index['health']}, {index['docs']} documents{restored}{aliases}"
        )
    undone = report.get("templates_deleted", []) + report.get("templates_restored", [])
    if undone:
        typer.echo(f"templates deleted or put back on the destination: {', '.join(undone)}")
    if report.get("templates_kept"):
        typer.echo(f"templates kept as the destination has them: {', '.join(report['templates_kept'])}")
    moved = report.get("pipelines_deleted", []) + report.get("pipelines_restored", [])
    if moved:
        typer.echo(f"pipelines and policies deleted or put back on the destination: {', '.join(moved)}")
    if report.get("pipelines_kept"):
        typer.echo(f"pipelines and policies kept on the destination: {', '.join(report['pipelines_kept'])}")
    if undone or moved:
        typer.echo(f"put them back with: migrator apply {plan_file}")
    typer.echo(f"cut over again later with: migrator apply {plan_file} --phase cutover")
