"""The command line (typer): one thin function per command; the work happens below it.

`migrator.cli.main` holds the orchestration commands (plan, apply, resume, status, cancel, graph,
schema); `migrator.cli.sandbox` the local test bed's.
"""

from migrator.cli.main import app

__all__ = ["app"]
