"""How every command reports a failure: one red line on stderr and a documented exit code."""

from __future__ import annotations

import typer

from migrator.errors import Cure, next_command
from migrator.exit_codes import ExitCode


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print `error: message` on stderr; raise the returned Exit to leave with `code`."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(int(code))


def stopped_line(cure: Cure, plan_file: str) -> str:
    """The last line of a run that stopped on a failure: the command that continues it once fixed."""
    if cure is Cure.REPLAN:
        return f"stopped; change the plan as said above, then run `{next_command(cure, plan_file)}`"
    return f"stopped; fix the cause, then run `{next_command(cure, plan_file)}`"
