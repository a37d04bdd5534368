"""How every command reports a failure: one red line on stderr and the exit code the error carries.

Place in the flow: the top. Every command runs inside `errors_to_exit_codes`, the one place where a
`migrator.errors.MigratorError` becomes its message and its `exit_code` (never a traceback); `fail`
leaves with a code for what the CLI itself checks (an option out of range).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer

from migrator.errors import Cure, MigratorError, next_command
from migrator.exit_codes import ExitCode


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print `error: message` on stderr; raise the returned Exit to leave with `code`."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(int(code))


@contextmanager
def errors_to_exit_codes(redact: Callable[[str], str] = lambda text: text) -> Iterator[None]:
    """Every expected failure (a `MigratorError`) becomes its message, passed through `redact`, and the exit
    code its kind carries: 2 bad input (the plan, an option), 3 needs attention, 1 anything else."""
    try:
        yield
    except MigratorError as exc:
        headline, text = exc.headline(), redact(str(exc))
        raise fail(f"{headline}\n{text}" if headline else text, exc.exit_code) from None


def stopped_line(cure: Cure, plan_file: str) -> str:
    """The last line of a run that stopped on a failure: the command that continues it once fixed."""
    if cure is Cure.REPLAN:
        return f"stopped; change the plan as said above, then run `{next_command(cure, plan_file)}`"
    return f"stopped; fix the cause, then run `{next_command(cure, plan_file)}`"
