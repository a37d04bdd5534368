"""How every command reports a failure: one red line on stderr and a documented exit code."""

from __future__ import annotations

import typer

from migrator.exit_codes import ExitCode


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print `error: message` on stderr; raise the returned Exit to leave with `code`."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(int(code))
