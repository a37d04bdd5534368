"""The steps of a migration, one module each, all with the contract of `migrator.steps.base`.

`STEP_KINDS` maps a DAG node's `kind` to the class that runs it.
"""

from __future__ import annotations

from migrator.dag import StepKind
from migrator.steps.alias_switch import SwitchAliases
from migrator.steps.base import Step
from migrator.steps.close import CloseIndex
from migrator.steps.cutover_restore import RestoreOver
from migrator.steps.destination_repository import RegisterDestinationRepository
from migrator.steps.finish import Finish
from migrator.steps.metadata_pipelines import MovePipelines
from migrator.steps.metadata_templates import MoveTemplates
from migrator.steps.preflight import Preflight
from migrator.steps.recovery import FollowRecovery
from migrator.steps.replica_copy import CopyToReplica
from migrator.steps.replication import Replicate
from migrator.steps.restore import Restore
from migrator.steps.restore_batch import RestoreBatch
from migrator.steps.snapshot_create import CreateSnapshot
from migrator.steps.snapshot_wait import FollowSnapshot
from migrator.steps.source_repository import RegisterSourceRepository
from migrator.steps.storage_verify import VerifyInStorage, VerifyReplica
from migrator.steps.validate import ValidateIndex
from migrator.steps.write_block import BlockWrites

STEP_KINDS: dict[StepKind, type[Step]] = {
    cls.kind: cls
    for cls in (
        Preflight,
        MovePipelines,
        MoveTemplates,
        RegisterSourceRepository,
        CreateSnapshot,
        FollowSnapshot,
        VerifyInStorage,
        Replicate,
        CopyToReplica,
        VerifyReplica,
        RegisterDestinationRepository,
        RestoreBatch,
        Restore,
        FollowRecovery,
        ValidateIndex,
        CloseIndex,
        BlockWrites,
        RestoreOver,
        SwitchAliases,
        Finish,
    )
}
