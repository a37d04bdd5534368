"""What `migrator` imports before its first request (issue 17's small-N target: the start is most of what
migrator costs beyond a hand-written script). Each check runs a fresh interpreter, as a user's command does:
in this one, other tests have imported everything long ago."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Imported later than the command line: rich, when a terminal's view is drawn (migrator.render.live). oss2 stays
# in the start-up: apply's preflight reads the bucket moments later, and imported there (beside the clusters'
# reads) it cost 20-35 ms against 16 ms at start (docs/performance.md).
NOT_AT_START = ("rich", "migrator.render.live")
# What only the commands that open a migration need (plan, apply, resume, cancel, rollback, verify): the
# planner's DAG, the clients, the spec's models and the YAML reader. Loading the command line (any command,
# `--help`, `--version`) and the state file's readers (`status`, `report`) import none of them, except that
# typer itself loads pydantic to convert a command's parameters (typer._adapters) when a command runs.
MIGRATION_ONLY = ("networkx", "oss2", "elastic_transport", "urllib3", "requests", "pydantic", "yaml")
RECORDED_RUN = Path(__file__).parents[1] / "fixtures" / "state" / "main-e5c10a0"  # a state file main wrote


def modules_after(code: str) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])  # after what the code printed


def test_the_command_line_loads_without_rich() -> None:
    loaded = modules_after("import migrator.cli")
    assert "migrator.cli.main" in loaded  # the whole command line was imported
    assert [name for name in loaded if name.split(".")[0] in NOT_AT_START or name in NOT_AT_START] == []


def loaded_packages(modules: list[str], but: tuple[str, ...] = ()) -> list[str]:
    return sorted({name.split(".")[0] for name in modules} & set(MIGRATION_ONLY) - set(but))


def test_loading_the_command_line_imports_no_command_s_work() -> None:
    loaded = modules_after("import migrator.cli")
    assert "migrator.cli.main" in loaded
    assert loaded_packages(loaded) == []
    assert [
        name for name in loaded if name.startswith(("migrator.planner", "migrator.migration", "migrator.spec"))
    ] == []


@pytest.mark.parametrize("command", ["status", "report"])
def test_reading_a_recorded_run_imports_no_migration_machinery(tmp_path: Path, command: str) -> None:
    for name in ("plan.yaml", "plan.state.db", "plan.events.jsonl"):
        shutil.copy(RECORDED_RUN / name, tmp_path / name)
    run = (
        "from typer.main import get_command\nfrom migrator.cli import app\n"
        f"get_command(app).main([{command!r}, {str(tmp_path / 'plan.yaml')!r}], standalone_mode=False)"
    )
    loaded = modules_after(run)
    assert "migrator.migration.readback" in loaded  # the command ran and read the state file
    assert loaded_packages(loaded, but=("pydantic",)) == []
    assert [
        name for name in loaded if name.startswith(("migrator.planner", "migrator.spec", "migrator.discovery"))
    ] == []


def test_apply_imports_the_migration_machinery_when_it_runs() -> None:
    loaded = modules_after("import migrator.cli\nfrom migrator.cli.apply import run")
    assert loaded_packages(loaded) == sorted(MIGRATION_ONLY)
    assert "migrator.render.plan" not in loaded  # the dry run's renderer: only when a step is shown for approval


def test_the_plain_progress_needs_no_rich_and_the_terminal_view_loads_it() -> None:
    plain = modules_after("from migrator.render.progress import progress_for\nprogress_for(False).close()")
    assert "rich" not in plain
    terminal = modules_after(
        "import io\nfrom rich.console import Console\nfrom migrator.render.live import RichProgress\n"
        "RichProgress(Console(file=io.StringIO(), force_terminal=True)).close()"
    )
    assert "rich.live" in terminal
