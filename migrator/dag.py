"""planner -> executor -> state: typed names of the DAG (step kinds, node ids, step and run statuses).

Place in the flow: planner -> executor -> steps -> state. The planner names each node with a
`NodeId` and a `StepKind`; the executor records a `StepStatus` per node and the middle a
`RunStatus` per run. All are strings underneath (`StrEnum`, `str(NodeId)`), exactly the strings
the state file has always stored (`restore[orders]`, `done`, `running`), so a state file written by
an earlier migrator reads the same, and one written now reads the same with an earlier migrator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class StepKind(StrEnum):
    """What a node does: the key of `migrator.steps.STEP_KINDS` (one step class per kind)."""

    PREFLIGHT = "preflight"
    METADATA_PIPELINES = "metadata.pipelines"
    METADATA_TEMPLATES = "metadata.templates"
    SOURCE_REPOSITORY = "repository.source"
    SNAPSHOT_CREATE = "snapshot.create"
    SNAPSHOT_WAIT = "snapshot.wait"
    STORAGE_VERIFY = "storage.verify"
    REPLICATION = "replication"
    REPLICA_COPY = "replica.copy"
    REPLICA_VERIFY = "replica.verify"
    DESTINATION_REPOSITORY = "repository.destination"
    RESTORE_BATCH = "restore.batch"  # one restore request for many indices (issue 17)
    RESTORE = "restore"
    RECOVERY = "recovery"
    VALIDATE = "validate"
    CLOSE = "index.close"
    WRITE_BLOCK = "write.block"
    CUTOVER_RESTORE = "cutover.restore"
    ALIAS_SWITCH = "alias.switch"
    FINISH = "finish"


class StepStatus(StrEnum):
    """A node's checkpoint in the state file (a node without one is pending)."""

    PENDING = "pending"
    ACTING = "acting"  # observed not done, acting (or following work already under way)
    DONE = "done"
    FAILED = "failed"


class RunStatus(StrEnum):
    """The run's `status` in the state file's meta table."""

    NEVER_RUN = "never run"  # no run recorded (status and report say so)
    PLANNED = "planned"
    RUNNING = "running"
    PAUSED = "paused"  # --until, --only or a phase stopped it with steps left
    DONE = "done"
    DRIFTED = "drifted"  # was done; a later apply or resume found part of it no longer as it left it
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled back"


_NODE_ID = re.compile(r"(?P<name>[a-z][a-z0-9_.-]*)(?:\[(?P<target>[^\[\]]+)\])?")


@dataclass(frozen=True)
class NodeId:
    """A node's id: a name (`snapshot.wait`, `restore`, `cutover.recovery`) and, for the steps of one index,
    its target, written `name[target]` (`restore[orders-v2]`). `str()` gives the id the state file stores."""

    name: str
    target: str | None = None

    @classmethod
    def parse(cls, text: str) -> NodeId:
        """The id written `text`; ValueError when it is not `name` or `name[target]`."""
        found = _NODE_ID.fullmatch(text)
        if found is None:
            raise ValueError(f"{text!r} is not a step id (name or name[index])")
        return cls(found["name"], found["target"])

    def __str__(self) -> str:
        return self.name if self.target is None else f"{self.name}[{self.target}]"

    @property
    def in_cutover(self) -> bool:
        """Whether the node is one of the cutover's (phase two: `cutover.block`, `cutover.restore[orders]`...)."""
        return self.name.startswith("cutover.")


# The planner's node ids: the steps run once per plan, and `name[target]` for those of one index. They live here,
# beside NodeId, so that what reads a state file (status, report) knows them without the planner's imports.
PREFLIGHT = "preflight"
SOURCE_REPOSITORY = "repository.source"
SNAPSHOT_CREATE = "snapshot.create"
SNAPSHOT_WAIT = "snapshot.wait"
STORAGE_VERIFY = "storage.verify"
DESTINATION_REPOSITORY = "repository.destination"
REPLICATION = "replication"
REPLICA_VERIFY = "replica.verify"
FINISH = "finish"
WRITE_BLOCK = "cutover.block"
CUTOVER_SNAPSHOT_CREATE = "cutover.snapshot.create"
CUTOVER_SNAPSHOT_WAIT = "cutover.snapshot.wait"
CUTOVER_STORAGE_VERIFY = "cutover.storage.verify"
CUTOVER_REPLICATION = "cutover.replication"
CUTOVER_REPLICA_VERIFY = "cutover.replica.verify"
ALIAS_SWITCH = "cutover.switch"
METADATA_TEMPLATES = "metadata.templates"
METADATA_PIPELINES = "metadata.pipelines"
BULK, CUTOVER = "bulk", "cutover"


# The names of the nodes of one index, `name[target]` (migrator.dag.NodeId).
RESTORE, RECOVERY, VALIDATE, CLOSE = "restore", "recovery", "validate", "close"
CUTOVER_RESTORE, CUTOVER_RECOVERY, CUTOVER_VALIDATE = "cutover.restore", "cutover.recovery", "cutover.validate"


def restore_id(target: str) -> str:
    return str(NodeId(RESTORE, target))


def restore_batch_id(number: int) -> str:
    return str(NodeId(StepKind.RESTORE_BATCH, str(number)))


def recovery_id(target: str) -> str:
    return str(NodeId(RECOVERY, target))


def validate_id(target: str) -> str:
    return str(NodeId(VALIDATE, target))


def close_id(target: str) -> str:
    return str(NodeId(CLOSE, target))


def cutover_restore_id(target: str) -> str:
    return str(NodeId(CUTOVER_RESTORE, target))


def cutover_recovery_id(target: str) -> str:
    return str(NodeId(CUTOVER_RECOVERY, target))


def cutover_validate_id(target: str) -> str:
    return str(NodeId(CUTOVER_VALIDATE, target))


def cutover_snapshot_name(snapshot: str, attempt: int = 1) -> str:
    """The incremental snapshot of the cutover; a cutover tried again after a rollback takes a new one."""
    return f"{snapshot}-cutover" + (f"-{attempt}" if attempt > 1 else "")
