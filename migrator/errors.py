"""The error model: what kind a failure is, its exit code, whether waiting can cure it, which command continues.

Place in the flow: every layer raises `MigratorError`s: the plan model and the middle `PlanError`
(the plan is not valid, or refused), `UsageError` (an option does not fit the plan) and
`NeedsAttention` (a decision is needed: lock held, plan changed, cancelled); the clients and the
steps their own kinds (`clients.es.EsError`, `clients.storage.StorageError`, `steps.base.StepFailed`);
the test bed `SandboxError` and its kinds (`sandbox.distributions.DistributionError` among them).
The executor retries, with backoff, only those marked transient; the CLI turns each into the exit
code it carries and a last line naming the next command, in one place (`cli/errors.py`).

Elasticsearch errors are classified here and nowhere else (`classify_es`), by the `error.type` of
the answer first and its HTTP status second:

- transient (retried): 429, 502, 503, 504, no answer at all, and the types that name an overload or
  a passing state (`es_rejected_execution_exception`, `circuit_breaking_exception`,
  `concurrent_snapshot_execution_exception`, a node or master briefly unreachable...);
- permanent, the fix is a plan change (`resume --replan`): a refusal of a request built from the
  plan, which sending it again cannot change (`snapshot_restore_exception` "cannot restore",
  `invalid_index_name_exception`, `illegal_argument_exception`, an index too old for the
  destination...);
- permanent, the cause is outside the plan (`resume`): everything else, a 500 of an unknown type
  included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from migrator.exit_codes import ExitCode


class Cure(StrEnum):
    """What continues a migration after a failure."""

    RESUME = "resume"  # the cause is outside the plan: remove it (or wait), then `migrator resume`
    REPLAN = "replan"  # the fix is a plan change: edit the plan, then `migrator resume --replan`


class MigratorError(Exception):
    """A failure migrator reports: its message says what is wrong; `transient` whether trying again later
    may succeed by itself; `cure` which command continues once it is fixed; `exit_code` for the CLI."""

    exit_code: ClassVar[ExitCode] = ExitCode.FAILED

    def __init__(self, message: str, *, transient: bool = False, cure: Cure = Cure.RESUME) -> None:
        super().__init__(message)
        self.transient = transient
        self.cure = cure

    def headline(self) -> str:
        """What the CLI prints before the message: nothing, or a sentence ending in a colon (see `PlanError`)."""
        return ""


class NeedsAttention(MigratorError):
    """The run cannot go on without a decision (plan changed, lock held, cancelled, not confirmed)."""

    exit_code = ExitCode.NEEDS_ATTENTION


class UsageError(MigratorError):
    """A command-line option that does not fit the plan (e.g. an unknown step for --until)."""

    exit_code = ExitCode.BAD_INPUT


class SandboxError(MigratorError):
    """The test bed (`migrator sandbox`, migrator/sandbox) cannot do what was asked; the message says why
    and what to do. Exit 1: a start that failed (a node, the OSS server, an image build)."""


class SandboxNotRunning(SandboxError):
    """The sandbox (or the part of it a command needs) is not running: start it with `migrator sandbox up`."""

    exit_code = ExitCode.NEEDS_ATTENTION


class SandboxRefused(SandboxError):
    """An option the test bed cannot serve (an unknown version or engine, cluster sizes its folder does not
    hold, a plugin a version lacks); nothing was started. Exit 2, like any bad input."""

    exit_code = ExitCode.BAD_INPUT


@dataclass
class Problem:
    """One thing wrong with a plan: the dotted field, what is wrong, and how to fix it."""

    field: str
    message: str
    fix: str


class PlanError(MigratorError):
    """The plan cannot be used; `problems` lists why, `str()` one problem per line.

    `refused` False: the plan is not valid (its YAML, a field, a secret, a saved plan); True: it is
    valid but breaks a rule Elasticsearch or migrator enforces (the planner's problems), and nothing
    was changed. Either way the fix is a plan change, so the exit code is 2 (bad input)."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, problems: Sequence[Problem], *, refused: bool = False) -> None:
        self.problems = list(problems)
        self.refused = refused
        super().__init__("\n".join(f"{p.field}: {p.message} (fix: {p.fix})" for p in problems), cure=Cure.REPLAN)

    def headline(self) -> str:
        return "the plan is refused, nothing was changed:" if self.refused else "the plan is not valid:"


def next_command(cure: Cure, plan_file: str) -> str:
    """The command a failure's last line names, e.g. `migrator resume --replan plans/orders.yaml`."""
    replan = " --replan" if cure is Cure.REPLAN else ""
    return f"migrator resume{replan} {plan_file}"


@dataclass(frozen=True)
class EsErrorClass:
    """How an Elasticsearch error is handled: retried (transient) or not, and what continues after it."""

    transient: bool
    cure: Cure = Cure.RESUME


TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
# Overload and passing states: the same request succeeds once the cluster catches up.
TRANSIENT_TYPES = frozenset(
    {
        "es_rejected_execution_exception",
        "circuit_breaking_exception",
        "concurrent_snapshot_execution_exception",
        "process_cluster_event_timeout_exception",
        "receive_timeout_transport_exception",
        "node_not_connected_exception",
        "node_disconnected_exception",
        "connect_transport_exception",
        "master_not_discovered_exception",
        "not_master_exception",
        "no_shard_available_action_exception",
        "unavailable_shards_exception",
    }
)
# Refusals of a request migrator built from the plan: sending it again gives the same answer.
PLAN_REFUSALS = frozenset(
    {
        "illegal_argument_exception",
        "invalid_index_name_exception",
        "invalid_alias_name_exception",
        "invalid_snapshot_name_exception",
        "resource_already_exists_exception",
        "action_request_validation_exception",
        "parsing_exception",
        "x_content_parse_exception",
        "settings_exception",
    }
)
# Words of a reason that say the index cannot be read by the destination's version, whatever its type.
TOO_OLD = ("minimum compatible version", "minimum index compatibility version", "is not compatible with version")


def classify_es(status: int | None, error_type: str | None, reason: str = "") -> EsErrorClass:
    """How to handle an Elasticsearch answer: `status` None means no answer (a connection error or a
    timeout); `error_type` is the answer's `error.root_cause[0].type` (or `error.type`), `reason` its text."""
    text = reason.lower()
    if error_type in TRANSIENT_TYPES:
        return EsErrorClass(transient=True)
    if any(words in text for words in TOO_OLD):
        return EsErrorClass(transient=False, cure=Cure.REPLAN)
    if error_type == "snapshot_restore_exception":
        if "cannot restore" in text:
            return EsErrorClass(transient=False, cure=Cure.REPLAN)
        if "already running" in text:  # another restore of the same snapshot holds it (older versions)
            return EsErrorClass(transient=True)
        return EsErrorClass(transient=False)
    if error_type in PLAN_REFUSALS:
        return EsErrorClass(transient=False, cure=Cure.REPLAN)
    if status is None or status in TRANSIENT_STATUSES:
        return EsErrorClass(transient=True)
    return EsErrorClass(transient=False)
