"""`apply` and `resume` (CLI layer, below main.py): open the migration, confirm, execute, and say how it ended.

Place in the flow: CLI (main.py declares the commands and their options) -> here -> migration (opened, run)
-> planner/executor. A module of its own so that only the commands that open a migration import the
migration's machinery (the planner's networkx, the clients' elastic-transport and oss2, the spec's
pydantic models): `status`, `report`, `--help` and `--version` do not (tests/cli/test_start.py).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from migrator.cli.errors import errors_to_exit_codes, fail, stopped_line
from migrator.dag import StepKind
from migrator.drift import drift_record
from migrator.errors import NeedsAttention
from migrator.exit_codes import ExitCode
from migrator.migration.opened import Migration, open_migration
from migrator.migration.run import execute
from migrator.planner import CUTOVER, MigrationPlan
from migrator.render.progress import progress_for
from migrator.render.status import drift_lines
from migrator.render.units import human_bytes
from migrator.steps.base import Step


@contextmanager
def opened(plan_file: Path, state: Path | None) -> Iterator[Migration]:
    """The migration of `plan_file` (its state file `state`, else beside the plan), closed on leaving; its
    errors become exit codes, their text redacted."""
    with errors_to_exit_codes():
        migration = open_migration(plan_file.resolve(), state.resolve() if state else None)
    try:
        with errors_to_exit_codes(migration.redactor.text):
            yield migration
    finally:
        migration.close()


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
    step_by_step: bool = False,
    until: str | None = None,
    only: str | None = None,
    phase: str | None = None,
    redo: str | None = None,
) -> None:
    """Run the migration of `plan_file` (apply, or resume with `resuming`), printing its progress on stderr
    and how it ended on stdout; leaves with the exit code of a failure, a drift, a cancel or a stop."""
    tty = sys.stderr.isatty()
    progress = progress_for(tty and not step_by_step)
    ask_each = [step_by_step]

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
        progress.step(step, status_, text)

    with opened(plan_file, state) as migration:

        def gate(step: Step) -> bool:
            """Step by step: show the step's requests, send nothing until answered."""
            if not ask_each[0] and step.kind != "write.block":  # the cutover is always approved on its own
                return True
            if step.kind == StepKind.WRITE_BLOCK:
                typer.secho(
                    "\nPHASE TWO, the cutover: from the next step on, the source refuses writes until the "
                    "aliases point at the destination (or `migrator rollback`).",
                    bold=True,
                    fg=typer.colors.YELLOW,
                )
            typer.secho(f"\nnext step: {step.id}: {step.title}", bold=True)
            from migrator.render.plan import step_text  # the dry run's renderer, loaded when a step is shown

            typer.echo(textwrap.indent(migration.redactor.text(step_text(step)), "  "))
            question = "Send these requests? [y]es, [n]o: stop here, [a]ll: the rest without asking"
            while (answer := typer.prompt(question).strip().lower()[:1]) not in ("y", "n", "a"):
                typer.echo("answer y, n or a")
            ask_each[0] = answer != "a"
            return answer != "n"

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
                gate=gate if step_by_step else None,
                until=until,
                only=only,
                phase="all" if step_by_step and phase is None else phase,
                redo=redo,
            )
        finally:
            progress.close()
    if result.cancelled:
        raise fail("the run was cancelled", ExitCode.NEEDS_ATTENTION)
    if result.failed:
        for step, message in result.failed.items():
            typer.secho(f"failed: {step}: {message}", err=True, fg=typer.colors.RED)
        raise fail(stopped_line(result.cure, str(plan_file)), ExitCode.FAILED)
    if result.drift:
        record = drift_record(plan.graph, result.drift)
        for line in drift_lines(record["drift"], record["redo"], str(plan_file)):
            typer.secho(line, err=True, fg=typer.colors.RED if line.startswith("drift") else None)
        raise fail(
            f"migration {plan.spec.name} was complete, but {len(result.drift)} part(s) are no longer as it left "
            "them (above); nothing was changed",
            ExitCode.FAILED,
        )
    if result.declined:
        raise fail(
            f"stopped before {result.declined} as answered; `migrator resume {plan_file}` continues",
            ExitCode.NEEDS_ATTENTION,
        )
    done = len(result.done)
    if result.not_run and all(plan.graph.nodes[node].get("phase") == CUTOVER for node in result.not_run):
        typer.echo(
            f"phase one done: {len(plan.moves)} indices copied while the source keeps taking writes "
            f"({done} step(s) run, {len(result.skipped)} already done). When ready to cut over (writes on the "
            f"source are blocked until the aliases point at the destination):\n"
            f"  migrator apply {plan_file} --phase cutover"
        )
        return
    if result.not_run:
        typer.echo(
            f"paused as asked: {done} step(s) run, {len(result.not_run)} left ({', '.join(result.not_run[:5])}"
            f"{', ...' if len(result.not_run) > 5 else ''}); `migrator resume {plan_file}` continues"
        )
        return
    typer.echo(
        f"migration {plan.spec.name} complete: {len(plan.moves)} indices, snapshot {plan.snapshot} "
        f"({done} step(s) run, {len(result.skipped)} already done)"
    )
