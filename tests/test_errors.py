"""The error model: Elasticsearch errors classified by type and status in one place, and the next command."""

from __future__ import annotations

import pytest

from migrator.cli.errors import stopped_line
from migrator.clients.es import EsError, Request, error_reason
from migrator.clients.storage import StorageError
from migrator.errors import Cure, MigratorError, classify_es, next_command
from migrator.exit_codes import ExitCode
from migrator.steps.base import StepFailed

# (status, error.type, reason) -> (transient, cure): answers as Elasticsearch 7.x-9.x give them
CASES = [
    (
        500,
        "snapshot_restore_exception",
        "[repo:snap/x] cannot restore index [orders] because an open index with "
        "same name already exists in the cluster",
        False,
        Cure.REPLAN,
    ),
    (
        500,
        "snapshot_restore_exception",
        "[repo:snap/x] cannot restore index [[old/abc]] because it cannot be upgraded",
        False,
        Cure.REPLAN,
    ),
    (400, "invalid_index_name_exception", "Invalid index name [Orders], must be lowercase", False, Cure.REPLAN),
    (400, "illegal_argument_exception", "unknown setting [index.foo]", False, Cure.REPLAN),
    (
        500,
        "illegal_state_exception",
        "The index [old/abc] was created with version [5.6.16] but the minimum "
        "compatible version is [6.0.0-beta1]. It should be re-indexed",
        False,
        Cure.REPLAN,
    ),
    (500, "repository_exception", "[repo] could not read repository data from index blob", False, Cure.RESUME),
    (500, "some_new_exception", "a 500 of a type nobody listed", False, Cure.RESUME),
    (403, "security_exception", "action [cluster:admin/snapshot/restore] is unauthorized", False, Cure.RESUME),
    (429, "es_rejected_execution_exception", "rejected execution of coordinating operation", True, Cure.RESUME),
    (429, "circuit_breaking_exception", "[parent] Data too large", True, Cure.RESUME),
    (500, "circuit_breaking_exception", "[parent] Data too large (6.x answers 500)", True, Cure.RESUME),
    (
        503,
        "concurrent_snapshot_execution_exception",
        "cannot restore while a deletion is in-progress",
        True,
        Cure.RESUME,
    ),
    (500, "concurrent_snapshot_execution_exception", "Restore process is already running", True, Cure.RESUME),
    (502, None, "bad gateway", True, Cure.RESUME),
    (503, "master_not_discovered_exception", "", True, Cure.RESUME),
    (504, None, "gateway timeout", True, Cure.RESUME),
    (None, None, "connection refused", True, Cure.RESUME),
]


@pytest.mark.parametrize(("status", "error_type", "reason", "transient", "cure"), CASES)
def test_elasticsearch_errors_are_classified_by_type_then_status(status, error_type, reason, transient, cure):
    kind = classify_es(status, error_type, reason)
    assert (kind.transient, kind.cure) == (transient, cure)


def test_an_es_error_reads_its_type_from_the_answer_and_carries_its_class():
    body = {
        "error": {
            "root_cause": [{"type": "snapshot_restore_exception", "reason": "[r:s/u] cannot restore index [a]"}],
            "type": "snapshot_restore_exception",
            "reason": "[r:s/u] cannot restore index [a]",
        },
        "status": 500,
    }
    error = EsError("destination", Request("POST", "/_snapshot/r/s/_restore"), 500, error_reason(body))
    assert error.error_type == "snapshot_restore_exception"
    assert not error.transient and error.cure is Cure.REPLAN and error.exit_code is ExitCode.FAILED
    assert isinstance(error, MigratorError)
    unreachable = EsError("source", Request("GET", "/"), None, "http://x unreachable")
    assert unreachable.error_type is None and unreachable.transient


def test_steps_and_storage_errors_share_the_model():
    assert StepFailed("x").transient is False and StepFailed("x").cure is Cure.RESUME
    assert StepFailed("x", transient=True, cure=Cure.REPLAN).cure is Cure.REPLAN
    assert isinstance(StorageError("x", transient=True), MigratorError) and StorageError("x", transient=True).transient


def test_the_last_line_names_resume_or_resume_replan():
    assert next_command(Cure.RESUME, "p.yaml") == "migrator resume p.yaml"
    assert next_command(Cure.REPLAN, "p.yaml") == "migrator resume --replan p.yaml"
    assert stopped_line(Cure.RESUME, "p.yaml").endswith("`migrator resume p.yaml`")
    assert stopped_line(Cure.REPLAN, "p.yaml").endswith("`migrator resume --replan p.yaml`")


def test_every_kind_carries_its_exit_code_and_the_cli_maps_them_in_one_place(capsys):
    """PlanError (invalid or refused), UsageError, NeedsAttention (a held lock is one) and the clients' errors:
    `errors_to_exit_codes` gives each the code its kind carries, with the plan's headline and redacted text."""
    import typer

    from migrator.cli.errors import errors_to_exit_codes
    from migrator.errors import NeedsAttention, PlanError, Problem, UsageError
    from migrator.state import LockHeld

    problem = Problem("snapshot.indices", "no index matches", "fix the pattern")
    cases = [
        (PlanError([problem]), ExitCode.BAD_INPUT, "the plan is not valid:\nsnapshot.indices: no index matches"),
        (PlanError([problem], refused=True), ExitCode.BAD_INPUT, "the plan is refused, nothing was changed:"),
        (UsageError("--until x: no such step"), ExitCode.BAD_INPUT, "--until x"),
        (LockHeld("held by apply"), ExitCode.NEEDS_ATTENTION, "held by apply"),
        (NeedsAttention("plan changed"), ExitCode.NEEDS_ATTENTION, "plan changed"),
        (StorageError("bucket gone"), ExitCode.FAILED, "bucket gone"),
    ]
    for error, code, printed in cases:
        with pytest.raises(typer.Exit) as left, errors_to_exit_codes():
            raise error
        assert left.value.exit_code == code, error
        assert printed in capsys.readouterr().err
    with pytest.raises(typer.Exit), errors_to_exit_codes(lambda text: text.replace("secret", "******")):
        raise NeedsAttention("the password secret leaked")
    assert "the password ****** leaked" in capsys.readouterr().err
