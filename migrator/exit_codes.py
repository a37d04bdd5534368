"""Exit codes every command uses, so scripts can rely on them (documented in the README)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # done (or nothing to do)
    FAILED = 1  # a step failed; `migrator status` shows which, `migrator resume` continues
    BAD_INPUT = 2  # the plan or the command line is wrong; the message names the field and the fix
    NEEDS_ATTENTION = 3  # lock held, plan changed since the run began, sandbox not running, cancelled
