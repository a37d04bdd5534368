"""How the command line's help reads (CLI layer, beside main.py): commands listed in the order a user runs
them, not the order they are defined in, and the Examples epilog that ends every command's help.

The help is rendered as Markdown (`rich_markup_mode="markdown"` on each typer app): paragraphs reflow to
the terminal, so a docstring may wrap wherever its source line ends."""

from __future__ import annotations

from typing import Any, Literal

from typer.core import TyperGroup

ORDER_OF_USE = ("plan", "apply", "status", "resume", "report", "verify", "cancel", "rollback", "graph", "schema")
SANDBOX_ORDER = ("up", "seed", "status", "faults", "down")
MARKUP: Literal["markdown"] = "markdown"


def in_order(order: tuple[str, ...]) -> type[TyperGroup]:
    """A typer group class listing its commands in `order`; a command not named there comes after them,
    in the order it was defined (typer lists groups such as `sandbox` after the commands)."""

    class Ordered(TyperGroup):
        def list_commands(self, ctx: Any) -> list[str]:
            names = super().list_commands(ctx)
            return sorted(names, key=lambda name: order.index(name) if name in order else len(order))

    return Ordered


EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "": (
        ("migrator sandbox up", "two local clusters and an OSS server to rehearse on"),
        ("migrator plan my-plan.yaml", "the dry run: every step and request, nothing sent"),
        ("migrator apply my-plan.yaml", "run it; `migrator resume my-plan.yaml` after any interruption"),
    ),
    "plan": (
        ("migrator plan my-plan.yaml", "review every step and request"),
        ("migrator plan my-plan.yaml --format markdown > runbook.md", "the runbook, to run by hand or review"),
        ("migrator plan my-plan.yaml --out reviewed.json", "save it; `migrator apply reviewed.json` runs exactly it"),
    ),
    "apply": (
        ("migrator apply my-plan.yaml", "run it, asking once before the first change"),
        ("migrator apply my-plan.yaml --step-by-step", "show each step's requests and ask before sending them"),
        ("migrator apply my-plan.yaml --phase cutover --yes", "phase two of a plan with cutover.enabled"),
    ),
    "status": (
        ("migrator status my-plan.yaml", "where the run is"),
        ("migrator status my-plan.yaml --watch", "follow it live from another terminal"),
    ),
    "resume": (
        ("migrator resume my-plan.yaml", "continue after a crash, a kill or `--until`"),
        (
            "migrator resume my-plan.yaml --redo 'restore[logs-2024.06.01]'",
            "restore that one index again (deleted first when this migration restored it), then its recovery, "
            "its validation and the finish: a step id selects that step and what follows it for its index",
        ),
        (
            "migrator resume my-plan.yaml --redo restore",
            "a step kind selects every step of that kind: restores EVERY index of the plan again",
        ),
    ),
    "report": (
        ("migrator report my-plan.yaml > report.md", "the run's report, to keep with the change"),
        ("migrator report my-plan.yaml --format json", "the same for scripts"),
    ),
    "verify": (
        ("migrator verify --plan my-plan.yaml", "list the snapshots in the plan's repository"),
        ("migrator verify --plan my-plan.yaml -s snap-1 --deep", "check one snapshot and its files' checksums"),
        ("migrator verify --dir /mnt/backups/repo -s snap-1", "an fs repository's folder"),
    ),
    "cancel": (("migrator cancel my-plan.yaml", "stop the run and remove what it left half done"),),
    "rollback": (
        ("migrator rollback my-plan.yaml", "writes go to the source again; the aliases leave the destination"),
        ("migrator rollback --dry-run my-plan.yaml", "the requests it would send now; nothing is sent"),
    ),
    "graph": (("migrator graph my-plan.yaml | dot -Tsvg > plan.svg", "draw the steps with Graphviz"),),
    "schema": (("migrator schema > plan.schema.json", "point your editor's YAML support at the file"),),
    "sandbox up": (
        ("migrator sandbox up --dir /var/tmp/rehearsal", "Elasticsearch 7.17 to 8, with a ready plan file"),
        ("migrator sandbox up --source-version 6.8 --destination-version 7.17", "another pair of versions"),
    ),
    "sandbox seed": (("migrator sandbox seed --docs 10000", "example indices of 10,000 documents each"),),
    "sandbox status": (("migrator sandbox status --dir /var/tmp/rehearsal", "is it up, and where"),),
    "sandbox faults": (
        ("migrator sandbox faults --error-rate 0.1 --seed 7", "one request in ten answered 503, repeatably"),
        ("migrator sandbox faults", "remove the faults"),
    ),
    "sandbox down": (("migrator sandbox down --dir /var/tmp/rehearsal", "stop everything it started"),),
}


def examples(command: str) -> str:
    """The Examples epilog of `command`'s help ("" for `migrator` itself): one bullet per example."""
    return "**Examples**\n\n" + "\n".join(f"* `{line}`: {what}" for line, what in EXAMPLES[command])
