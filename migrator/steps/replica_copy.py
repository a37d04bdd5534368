"""Cross-region, the client-side way (opt-in, for small snapshots): copy exactly the snapshot's blobs.

Place in the flow: after the snapshot is verified in the source's bucket, before the replica is
verified and the destination registers it. migrator reads each blob the snapshot needs from the
source's bucket and writes it to the destination's (parallel; data first, index.latest last; each
blob's CRC64 compared end to end). Resumable by construction: a blob already in the target with
the same size and CRC64 is not copied again, so a resumed or repeated run copies only what is missing.
"""

from __future__ import annotations

from typing import Any

from migrator.clients.storage import StorageError
from migrator.dag import StepKind
from migrator.repository.copy import CopyError, CopyProgress, copy_snapshot
from migrator.repository.needed_blobs import SnapshotBlobsError, SnapshotNotFound
from migrator.repository.verify import verify_snapshot
from migrator.steps.base import Cancelled, ConsoleRequest, Observation, Step, StepFailed


class CopyToReplica(Step):
    kind = StepKind.REPLICA_COPY
    title = "Copy the snapshot's blobs to the destination's bucket"
    waits_for = "every blob the snapshot needs copied, CRC64-checked (progress: bytes copied or already there)"
    result: dict[str, Any] | None = None

    def _indices(self) -> list[str]:
        return [move.source for move in self.ctx.plan.moves]

    def describe(self) -> list[ConsoleRequest]:
        spec = self.ctx.spec
        assert spec.replication is not None
        source, replica = spec.storage_spec(), spec.replication.storage
        where = f"{source.bucket or source.path}/{source.base_path or ''}"
        to = f"{replica.bucket or replica.path}/{replica.base_path or ''}"
        text = f"{where} -> {to}: the blobs of {self.snapshot} ({len(self._indices())} indices), index.latest last"
        return [ConsoleRequest("storage", "GET+PUT", text)]

    def observe(self) -> Observation:
        try:
            result = verify_snapshot(self.ctx.replica(), self.snapshot, indices=self._indices())
        except StorageError as exc:
            raise StepFailed(f"cannot read the destination's bucket: {exc}", transient=exc.transient) from exc
        if result.restorable:
            return Observation(True, summary=f"{self.snapshot} is complete in the destination's bucket")
        return Observation(False, summary=f"{self.snapshot} is not complete in the destination's bucket yet")

    def _progress(self, step: CopyProgress) -> None:
        if self.ctx.cancel_requested():
            raise Cancelled("cancel requested")
        self.ctx.progress.update(self.id, step.done_bytes, step.total_bytes, "bytes", f"blobs {step.done}/{step.total}")

    def act(self) -> None:
        replication = self.ctx.spec.replication
        assert replication is not None
        try:
            result = copy_snapshot(
                self.ctx.storage(),
                self.ctx.replica(),
                self.snapshot,
                self._indices(),
                workers=replication.workers,
                progress=self._progress,
            )
        except (SnapshotNotFound, SnapshotBlobsError, CopyError) as exc:
            raise StepFailed(str(exc)) from exc
        except StorageError as exc:
            raise StepFailed(f"copy to the destination's bucket: {exc}", transient=exc.transient) from exc
        if not result.complete:
            raise StepFailed(result.summary(), transient=True)
        self.result = result.to_dict()

    def wait(self) -> dict[str, Any]:
        keys = ("blobs", "bytes", "copied", "copied_bytes", "skipped", "skipped_bytes", "replaced", "seconds")
        return {key: (self.result or {}).get(key) for key in keys}
