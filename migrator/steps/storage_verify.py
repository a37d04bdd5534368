"""Verify in storage: read the repository itself (oss2 or a local folder), not the cluster's word.

Before the destination touches the snapshot, the verifier proves from the bucket alone that it is
committed (listed as SUCCESS in the live `index-N`) and that every file each selected index needs
is there with its exact length. A failure stops the run naming the snapshot, index, shard and file.
"""

from __future__ import annotations

from typing import ClassVar

from migrator.clients.storage import Storage, StorageError
from migrator.dag import StepKind
from migrator.repository.verify import verify_snapshot
from migrator.spec import StorageSpec
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed


class VerifyInStorage(Step):
    kind = StepKind.STORAGE_VERIFY
    title = "Verify the snapshot in the bucket"
    waits_for = "the snapshot listed as SUCCESS in the live index-N and every file of every shard present and whole"
    replica: ClassVar[bool] = False

    def _storage_spec(self) -> StorageSpec:
        return self.ctx.spec.storage_spec()

    def _storage(self) -> Storage:
        return self.ctx.storage()

    def describe(self) -> list[ConsoleRequest]:
        where = self._storage_spec().location
        return [ConsoleRequest("storage", "LIST+GET", f"{where} (index-N, snapshot and shard metadata, file sizes)")]

    def observe(self) -> Observation:
        try:
            result = verify_snapshot(
                self._storage(),
                self.snapshot,
                allow_partial=self.ctx.spec.snapshot.partial,
                indices=[move.source for move in self.ctx.plan.moves],
            )
        except StorageError as exc:
            raise StepFailed(f"cannot read the repository from storage: {exc}", transient=True) from exc
        if not result.restorable:
            # A snapshot just finalized may not be listed yet by an eventually consistent store.
            missing = any(f.code in ("snapshot_not_found", "repository_data_missing") for f in result.errors)
            raise StepFailed(result.summary(), transient=missing or self.replica)
        detail = {"files": result.files, "blobs": result.blobs, "bytes": result.bytes, "requests": result.requests}
        return Observation(
            True,
            summary=f"{result.indices} indices, {result.shards} shards, {result.files} files verified in storage",
            detail=detail,
        )


class VerifyReplica(VerifyInStorage):
    """The same proof, read from the destination's bucket: the replicated (or copied) repository is whole
    before the destination reads it. A failure is retried first: a replica may still be catching up."""

    kind = StepKind.REPLICA_VERIFY
    title = "Verify the snapshot in the destination's bucket"
    replica = True

    def _storage_spec(self) -> StorageSpec:
        assert self.ctx.spec.replication is not None
        return self.ctx.spec.replication.storage

    def _storage(self) -> Storage:
        return self.ctx.replica()
