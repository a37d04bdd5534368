"""The drift report of `resume` (and `apply`) on a finished plan whose facts changed: a bounded number of lines
whatever the number of drifted steps, with one `--redo` that designates exactly the drifted steps. The run
itself is replaced (its drift is given); what is printed is the CLI's own."""

from __future__ import annotations

import re
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.cli import apply as cli_apply
from migrator.drift import Drift, drift_record, redo_named
from migrator.executor import RunResult
from tests.test_drift import graph_of

TARGETS = [f"logs-{number:03d}" for number in range(400)]
LAST_300 = TARGETS[100:]  # a range: said by patterns
SCATTERED = [target for number, target in enumerate(TARGETS) if number % 4 != 0]  # said as `drifted`


def report(tmp_path, monkeypatch, drifted: list[str]):
    """`migrator resume` printing the drift of a count changed on each of `drifted`: (stderr lines, the --redo
    argument it prints, the steps that argument names, given the drift record the run keeps)."""
    graph = graph_of(TARGETS)
    drift = [
        Drift(f"validate[{t}]", f"{t} has 9 documents on the destination, 10 when validated", f"restore[{t}]")
        for t in drifted
    ]
    plan = SimpleNamespace(graph=graph, spec=SimpleNamespace(name="logs"))

    @contextmanager
    def opened(plan_file, state):
        yield SimpleNamespace()

    monkeypatch.setattr(cli_apply, "opened", opened)
    monkeypatch.setattr(cli_apply, "execute", lambda migration, **options: (plan, RunResult(drift=drift)))
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("name: logs\n")
    result = CliRunner().invoke(app, ["resume", str(plan_file)])
    assert result.exit_code == 1
    [argument] = re.findall(rf"migrator resume {re.escape(str(plan_file))} --redo '([^']+)'", result.stderr)
    return result.stderr.splitlines(), argument, redo_named(graph, argument, drift_record(graph, drift))


@pytest.mark.parametrize("drifted", [LAST_300, SCATTERED], ids=["a-range", "scattered"])
def test_300_drifted_indices_print_a_few_lines_and_one_redo_naming_exactly_them(tmp_path, monkeypatch, drifted):
    # Before: two lines per drifted index (`drift: ...` and `to redo it: ...`), 600 lines here.
    printed, argument, named = report(tmp_path, monkeypatch, drifted)
    assert len(printed) <= 8, printed
    assert printed[0] == "drift: 300 done step(s) are no longer as the run left them:"
    first = drifted[0]
    assert printed[1].startswith(f"  validate: 300 (validate[{first}], ")
    assert printed[1].endswith(
        f"and 297 more); validate[{first}]: {first} has 9 documents on the destination, 10 when validated"
    )
    assert any("status" in line and "--json" in line for line in printed)  # where the full list is
    assert named == {f"restore[{t}]" for t in drifted}
    assert len(argument) <= 200


def test_a_range_of_drifted_indices_is_redone_by_a_pattern_and_scattered_ones_by_drifted(tmp_path, monkeypatch):
    assert report(tmp_path, monkeypatch, LAST_300)[1] == "restore[logs-1*],restore[logs-2*],restore[logs-3*]"
    assert report(tmp_path, monkeypatch, SCATTERED)[1] == "drifted"
