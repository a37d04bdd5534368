"""The command line (typer): one thin function per command; the work happens below it.

`migrator.cli.main` holds the orchestration commands (plan, apply, status, resume, report, cancel,
rollback, graph, schema), `migrator.cli.verify` the repository check, `migrator.cli.sandbox` the local
test bed's; `choices` their closed option values, `helptext` the order and examples of their help;
`apply` the run of apply and resume. Loading it imports typer and the options' types only: each
command imports its work when it runs, with the garbage collector paused (`loading`).
"""

from migrator.cli.loading import frozen_imports

with frozen_imports():
    from migrator.cli.main import app

__all__ = ["app"]
