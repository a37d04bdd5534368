"""Verify in storage: read the repository itself (oss2 or a local folder), not the cluster's word.

The snapshot must be listed as SUCCESS in the live `index-N` with every selected index, before
the destination touches it. (The blob-by-blob check of every file lives in `migrator verify`.)
"""

from __future__ import annotations

from typing import Any

from migrator.clients.storage import StorageError
from migrator.repository.repository_data import RepositoryFormatError, read_repository_data
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed


class VerifyInStorage(Step):
    kind = "storage.verify"
    title = "Verify the snapshot in the bucket"
    waits_for = "the live index-N in the bucket to list the snapshot as SUCCESS with every selected index"

    def describe(self) -> list[ConsoleRequest]:
        storage = self.ctx.spec.storage_spec()
        where = f"{storage.kind}: {storage.bucket or storage.path}/{storage.base_path or ''}"
        return [ConsoleRequest("storage", "LIST+GET", f"{where} index-N (read with oss2, not through Elasticsearch)")]

    def observe(self) -> Observation:
        try:
            data = read_repository_data(self.ctx.storage())
        except (StorageError, RepositoryFormatError) as exc:
            raise StepFailed(f"cannot read the repository from storage: {exc}", transient=True) from exc
        where = self.ctx.storage().description
        if data is None:
            raise StepFailed(
                f"no index-N in {where}: do the storage settings point at the repository?", transient=True
            )
        entry = data.snapshots.get(self.ctx.snapshot)
        if entry is None:
            raise StepFailed(f"snapshot {self.ctx.snapshot} is not in {where}/index-{data.generation}", transient=True)
        allowed = {"SUCCESS", "PARTIAL"} if self.ctx.spec.snapshot.partial else {"SUCCESS"}
        if entry.state not in allowed:
            raise StepFailed(f"snapshot {self.ctx.snapshot} is {entry.state} in {where}/index-{data.generation}")
        missing = sorted({move.source for move in self.ctx.plan.moves} - set(entry.indices))
        if missing:
            raise StepFailed(f"snapshot {self.ctx.snapshot} in {where} lacks indices {', '.join(missing)}")
        self.found: dict[str, Any] = {"generation": data.generation, "uuid": entry.uuid}
        return Observation(True, summary=f"{entry.state} in index-{data.generation}", detail=self.found)
