"""Cross-region, the server-side way: OSS cross-region replication of the repository to the destination's bucket.

Place in the flow: after the snapshot is verified in the source's bucket, before the replica is
verified and the destination registers it. `act` makes sure a replication rule copies every write
and delete under the repository's base path to the destination's bucket (historical objects
included; an existing rule covering them is reused, so a resumed run finds the one it made), and
`wait` follows the rule's progress until every object written before this step began (the finished
snapshot, its index-N and index.latest) is in the target. The replica is then read and verified by
the next step: OSS's word alone is not taken.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from migrator.clients.replication import ReplicationRuleInfo
from migrator.clients.storage import NotFound, StorageError
from migrator.dag import StepKind
from migrator.spec import MigrationSpec
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed
from migrator.steps.stall import StallWatch


def replication_rule(spec: MigrationSpec) -> dict[str, Any]:
    """The rule a plan's OSS replication uses: its ID, the repository's prefix, the target bucket and region."""
    assert spec.replication is not None
    source, replica = spec.storage_spec(), spec.replication.storage
    base = (source.base_path or "").strip("/")
    return {
        "rule_id": spec.replication.rule_id or f"migrator-{spec.name}",
        "prefix": f"{base}/" if base else "",
        "target_bucket": replica.bucket,
        "target_location": f"oss-{(replica.region or '').removeprefix('oss-')}",
        "source_bucket": source.bucket,
    }


class Replicate(Step):
    kind = StepKind.REPLICATION
    title = "Replicate the repository to the destination's bucket (OSS cross-region replication)"
    waits_for = "the rule's progress: historical objects 100 %, and new objects replicated up to this step's start"

    since: datetime | None = None  # set when the step first looks: every blob it must see was written before

    def _rule(self) -> dict[str, Any]:
        return replication_rule(self.ctx.spec)

    def describe(self) -> list[ConsoleRequest]:
        rule = self._rule()
        body = {
            "ID": rule["rule_id"],
            "PrefixSet": [rule["prefix"]],
            "Action": "ALL",
            "Destination": {"Bucket": rule["target_bucket"], "Location": rule["target_location"]},
            "HistoricalObjectReplication": "enabled",
        }
        return [ConsoleRequest("storage", "POST", f"oss://{rule['source_bucket']}/?replication&comp=add", body)]

    def checks(self) -> list[ConsoleRequest]:
        rule = self._rule()
        bucket = rule["source_bucket"]
        return [
            ConsoleRequest("storage", "GET", f"oss://{bucket}/?replication"),
            ConsoleRequest("storage", "GET", f"oss://{bucket}/?replicationProgress&rule-id={rule['rule_id']}"),
        ]

    def _existing(self) -> ReplicationRuleInfo | None:
        rule = self._rule()
        for found in self._call(self.ctx.replication().rules):
            if found.status != "closing" and found.covers(rule["prefix"], rule["target_bucket"]):
                return found
        return None

    def _call(self, operation: Any, *args: Any) -> Any:
        try:
            return operation(*args)
        except NotFound as exc:
            raise StepFailed(f"{exc}", transient=True) from exc
        except StorageError as exc:
            raise StepFailed(f"cannot manage the bucket's replication: {exc}", transient=exc.transient) from exc

    def observe(self) -> Observation:
        self.since = self.since or datetime.now(UTC)
        found = self._existing()
        if found is None:
            return Observation(False, summary="no replication rule covers the repository yet")
        progress = self._call(self.ctx.replication().progress, found.rule_id)
        if progress.covers(self.since):
            return Observation(True, summary=f"rule {found.rule_id}: replicated", detail={"rule_id": found.rule_id})
        return Observation(False, in_progress=True, summary=f"rule {found.rule_id}: replicating")

    def act(self) -> None:
        rule = self._rule()
        self._call(
            self.ctx.replication().ensure_rule,
            rule["rule_id"],
            rule["prefix"],
            rule["target_bucket"],
            rule["target_location"],
        )

    def wait(self) -> dict[str, Any]:
        found = self._existing()
        if found is None:
            raise StepFailed("the replication rule vanished while it was followed; run again", transient=True)
        watch = StallWatch(self.ctx, f"the replication of rule {found.rule_id}")
        while True:
            progress = self._call(self.ctx.replication().progress, found.rule_id)
            historical = 100.0 if progress.historical is None else progress.historical * 100
            point = progress.new_object_progress.isoformat() if progress.new_object_progress else "not yet"
            self.ctx.progress.update(self.id, historical, 100, "%", f"new objects replicated up to {point}")
            watch.see((historical, point), f"{historical:.0f} % of the existing objects, new ones up to {point}")
            if progress.covers(self.since or datetime.now(UTC)):
                return {"rule_id": found.rule_id, "replicated_up_to": point}
            self.ctx.sleep()
