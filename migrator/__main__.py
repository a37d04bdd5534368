"""`python -m migrator` runs the command line."""

from migrator.cli import app

app(prog_name="migrator")
