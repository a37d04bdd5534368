"""Every command's `--help` reads well: defaults shown, PLAN as the plan's name, closed choices listed (and
completed by the shell), a one-line summary, paragraphs not broken, an example each, commands in the order
a user runs them. Each help is rendered by a real `migrator` process, as a user sees it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from typing import Any

import pytest
import typer

from migrator.cli import app

ORDER_OF_USE = ["plan", "apply", "status", "resume", "report", "verify", "cancel", "rollback", "graph", "schema"]
SANDBOX_ORDER = ["up", "seed", "status", "faults", "down"]
CLOSED_CHOICES = {
    ("plan", "--format"): ("text", "json", "markdown", "mermaid", "dot"),
    ("graph", "--format"): ("dot", "mermaid"),
    ("report", "--format"): ("markdown", "json"),
    ("apply", "--phase"): ("cutover", "all"),
    ("resume", "--phase"): ("cutover", "all"),
    ("verify", "--signature"): ("v4", "v1"),
    ("sandbox up", "--engine"): ("process", "docker"),
    ("sandbox up", "--image"): ("auto", "official", "local"),
    ("sandbox up", "--repository"): ("oss", "fs"),
}
WIDE = {**os.environ, "TERMINAL_WIDTH": "1000", "COLUMNS": "1000"}


def command_tree() -> dict[str, Any]:
    """Every command by its path ("plan", "sandbox up"), as click objects."""
    found: dict[str, Any] = {}

    def walk(command: Any, path: list[str]) -> None:
        if path:
            found[" ".join(path)] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = command_tree()
LEAVES = sorted(path for path, command in COMMANDS.items() if not hasattr(command, "commands"))


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "migrator", *args], capture_output=True, text=True, timeout=60, env=env or WIDE
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@cache
def help_of(path: str) -> str:
    """The help as printed on a wide terminal, one rendered line per list item."""
    return run(*path.split(), "--help")


def flat(text: str) -> str:
    """Text without box drawing, markdown code marks or repeated whitespace."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).replace("`", "").split())


def listed_commands(path: str) -> list[str]:
    """The names in the Commands panel of a group's help, top to bottom."""
    panel = help_of(path).split("Commands", 1)[1]
    return [line.split()[1] for line in panel.splitlines() if re.match(r"│ \S", line)]


def test_commands_are_listed_in_the_order_a_user_runs_them():
    assert listed_commands("") == [*ORDER_OF_USE, "sandbox"]
    assert listed_commands("sandbox") == SANDBOX_ORDER


@pytest.mark.parametrize("path", LEAVES)
def test_a_one_line_summary_and_an_example(path):
    summary = COMMANDS[path].help.split("\n\n")[0]
    assert "\n" not in summary and len(summary) <= 100, summary
    examples = help_of(path).split("Examples", 1)
    assert len(examples) == 2, f"`migrator {path} --help` has no Examples"
    assert f"migrator {path}" in examples[1]


@pytest.mark.parametrize("path", LEAVES)
def test_paragraphs_are_not_broken_where_the_source_wraps(path):
    lines = [flat(line) for line in help_of(path).splitlines()]
    for paragraph in COMMANDS[path].help.split("\n\n"):
        words = flat(paragraph)
        assert any(words in line for line in lines), f"broken or missing in `{path} --help`: {words}"


@pytest.mark.parametrize("path", LEAVES)
def test_defaults_are_shown(path):
    shown = flat(help_of(path))
    for param in COMMANDS[path].params:
        if param.param_type_name != "option" or param.name == "help":
            continue
        assert "[default:" not in (param.help or ""), f"{param.opts}: a default written in the help is swallowed"
        if isinstance(param.show_default, str):
            assert f"[default: ({param.show_default})]" in shown, param.opts
        elif param.default is not None and not param.is_flag and not param.multiple:
            default = getattr(param.default, "value", param.default)
            assert f"[default: {default}]" in shown, param.opts


@pytest.mark.parametrize("path", [path for path in LEAVES if any(p.name == "plan_file" for p in COMMANDS[path].params)])
def test_the_plan_argument_is_named_plan(path):
    usage = next(line for line in help_of(path).splitlines() if "Usage:" in line)
    assert usage.split()[-1].strip("{}") == "PLAN", usage  # typer braces a required argument
    assert "plan_file" not in help_of(path)


@pytest.mark.parametrize(("path", "option"), sorted(CLOSED_CHOICES))
def test_closed_choices_are_listed_and_completed(path, option):
    assert "|".join(CLOSED_CHOICES[path, option]) in flat(help_of(path))  # the option's type: <text|json|...>
    words = f"migrator {path} {option} "
    completion = {
        **os.environ,
        "_MIGRATOR_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split())),
    }
    assert set(run(env=completion).split()) == set(CLOSED_CHOICES[path, option])


def test_sandbox_versions_are_completed_from_the_known_ones():
    words = "migrator sandbox up --source-version 7."
    completion = {**os.environ, "_MIGRATOR_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "4"}
    assert set(run(env=completion).split()) == {"7.10", "7.17"}


def test_the_redo_examples_say_what_an_id_and_a_kind_select():
    # Before: `--redo restore` was shown as "do a drifted restore again", but a kind redoes every index.
    shown = " ".join(run("resume", "--help").split())
    assert "--redo 'restore[logs-2024.06.01]': restore that one index again" in shown
    assert "--redo restore: a step kind selects every step of that kind: restores EVERY index" in shown
    assert "do a drifted restore again" not in shown
