"""OSS cross-region replication (CRR) of a bucket, over oss2: the HTTP layer for replicated repositories.

Place in the flow: steps -> clients -> replication. For a cross-region migration the source cluster
writes its snapshot repository into bucket A and the destination cluster reads bucket B in another
region; OSS replicates A's repository prefix to B. The steps use `BucketReplication` (on bucket A) to
make sure a rule exists (`ensure_rule`, idempotent, so a resumed run reuses the rule it created), to
follow it (`progress`: the historical fraction, and the point in time before which every new object is
in B) and to remove it at the end (`delete_rule`). They never see oss2 or its XML.

Requests are signed like `OssStorage`'s (V4 by default, V1 on request, an STS token when given).
Errors are `StorageError` (OSS's refusals as its subclass `ReplicationError`, with the OSS code):
messages name the operation, the bucket and the fix, and never contain the secret; 5xx, 408, 429 and
connection failures are transient and retried here first (oss2 retries nothing).
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from migrator.clients.oss_sdk import oss2
from migrator.clients.storage import NotFound, OssClient, StorageError

T = TypeVar("T")

_MISSING = frozenset({"NoSuchReplicationConfiguration", "NoSuchReplicationRule"})
_ADVICE = {
    "SignatureDoesNotMatch": "check access_key_secret (and, for V4 signatures, the region)",
    "InvalidAccessKeyId": "check access_key_id",
    "InvalidSecurityToken": "the STS security token is wrong or expired: fetch a new one",
    "SecurityTokenExpired": "the STS security token expired: fetch a new one",
    "AccessDenied": "grant this key the oss:PutBucketReplication, oss:GetBucketReplication and "
    "oss:DeleteBucketReplication permissions on the source bucket",
    "NoSuchBucket": "check the source and target bucket names, and that the endpoint is in the source bucket's region",
    "BadReplicationLocation": "target_location must be the target bucket's region (for example oss-cn-shanghai)",
    "BucketReplicationAlreadyExist": "a rule with this ID or to this target bucket exists already: "
    "reuse it, or delete it first",
    "NoSuchReplicationRule": "list the bucket's rules to find the right ID, or create the rule",
    "InvalidArgument": "check the endpoint, region, rule ID, prefix and target",
}


class ReplicationError(StorageError):
    """OSS refused a replication request; `code` is OSS's error code (e.g. BadReplicationLocation)."""

    def __init__(self, message: str, code: str, *, transient: bool = False) -> None:
        super().__init__(message, transient=transient)
        self.code = code


@dataclass(frozen=True)
class ReplicationRuleInfo:
    """One replication rule of the source bucket, as OSS reports it."""

    rule_id: str
    prefixes: tuple[str, ...]  # empty: the whole bucket
    target_bucket: str
    target_location: str  # e.g. oss-cn-shanghai
    status: str  # starting, doing or closing
    historical: bool  # objects that existed before the rule are replicated too
    action: str  # ALL (writes and deletes) or a comma-separated list of PUT, DELETE, ABORT

    def covers(self, prefix: str, target_bucket: str) -> bool:
        """Whether this rule replicates every write under `prefix` to `target_bucket`."""
        writes = {"ALL", "PUT"} & set(self.action.split(","))
        under = not self.prefixes or any(prefix.startswith(p) for p in self.prefixes)
        return self.target_bucket == target_bucket and bool(writes) and under


@dataclass(frozen=True)
class ReplicationProgress:
    """How far a rule has got: `historical` is the fraction (0..1) of the objects that existed when the rule
    was added that are in the target (None when historical replication is disabled); every object written
    before `new_object_progress` is in the target (None until OSS reports a point)."""

    rule_id: str
    status: str
    historical: float | None
    new_object_progress: datetime | None

    def covers(self, written_before: datetime) -> bool:
        """Whether everything written before `written_before` (an aware datetime) is in the target."""
        historical_done = self.historical is None or self.historical >= 1.0
        return historical_done and self.new_object_progress is not None and self.new_object_progress >= written_before


class BucketReplication(OssClient):
    """The replication rules of one source bucket (`oss://bucket`), read and changed through oss2."""

    advice = _ADVICE

    # operations --------------------------------------------------------------------------------

    def rules(self) -> list[ReplicationRuleInfo]:
        """Every replication rule of the bucket (an empty list when it has none)."""
        try:
            result = self._call("GetBucketReplication", self._bucket.get_bucket_replication)
        except ReplicationError as error:
            if error.code in _MISSING:
                return []
            raise
        return [_rule_info(rule) for rule in result.rule_list]

    def ensure_rule(
        self, rule_id: str, prefix: str, target_bucket: str, target_location: str, historical: bool = True
    ) -> ReplicationRuleInfo:
        """A rule replicating every write and delete under `prefix` to `target_bucket`: an existing rule that
        covers them is reused (whatever its ID), otherwise rule `rule_id` is added. `target_location` is the
        target's region, `oss-cn-shanghai` or `cn-shanghai`. StorageError when a rule stands in the way (same
        ID elsewhere, or another rule to that target), naming the fix."""
        found = self._usable(rule_id, prefix, target_bucket)
        if found is not None:
            return found
        rule = oss2.models.ReplicationRule(
            rule_id=rule_id,
            target_bucket_name=target_bucket,
            target_bucket_location=f"oss-{target_location.removeprefix('oss-')}",
            prefix_list=[prefix] if prefix else [],
            action_list=[oss2.models.ReplicationRule.ALL],
            is_enable_historical_object_replication=historical,
        )
        try:
            self._call("PutBucketReplication", lambda: self._bucket.put_bucket_replication(rule), rule_id)
        except ReplicationError as error:
            # a retried PUT whose first attempt got through meets its own rule: that is success
            if error.code != "BucketReplicationAlreadyExist":
                raise
        found = self._usable(rule_id, prefix, target_bucket)
        if found is None:
            raise StorageError(
                f"{self.description}: PutBucketReplication {rule_id!r} succeeded but the rule is not listed; run again"
            )
        return found

    def progress(self, rule_id: str) -> ReplicationProgress:
        """The progress of rule `rule_id`; NotFound when the bucket has no such rule."""
        try:
            result = self._call(
                "GetBucketReplicationProgress",
                lambda: self._bucket.get_bucket_replication_progress(rule_id),
                rule_id,
            )
        except ReplicationError as error:
            if error.code not in _MISSING:
                raise
            raise NotFound(f"{error}; create the rule first (ensure_rule)") from error
        progress = result.progress
        historical = None
        if progress.is_enable_historical_object_replication:
            historical = min(max(float(progress.historical_object_progress or 0.0), 0.0), 1.0)
        return ReplicationProgress(
            rule_id=progress.rule_id,
            status=progress.status,
            historical=historical,
            new_object_progress=self._when(progress.new_object_progress, rule_id),
        )

    def delete_rule(self, rule_id: str) -> bool:
        """Stop and delete rule `rule_id` (OSS keeps it as `closing` for a while); False if it did not exist."""
        try:
            self._call("DeleteBucketReplication", lambda: self._bucket.delete_bucket_replication(rule_id), rule_id)
        except ReplicationError as error:
            if error.code in _MISSING:
                return False
            raise
        return True

    def target_locations(self) -> list[str]:
        """The regions this bucket can replicate to (GetBucketReplicationLocation)."""
        result = self._call("GetBucketReplicationLocation", self._bucket.get_bucket_replication_location)
        return list(result.location_list)

    # helpers -----------------------------------------------------------------------------------

    def _usable(self, rule_id: str, prefix: str, target_bucket: str) -> ReplicationRuleInfo | None:
        """The live rule that already does the job, None when one may be added; StorageError when blocked."""
        where = f"{self.description}: replication rule {rule_id!r}"
        for rule in self.rules():
            if rule.covers(prefix, target_bucket):
                if rule.status == "closing":
                    raise StorageError(
                        f"{where}: rule {rule.rule_id!r} to {target_bucket} is being deleted; wait a minute and "
                        "run again",
                        transient=True,
                    )
                return rule
            if rule.rule_id == rule_id:
                raise StorageError(
                    f"{where} exists with other settings (target {rule.target_bucket}, prefixes "
                    f"{list(rule.prefixes)}, action {rule.action}): delete it or choose another rule ID"
                )
            if rule.target_bucket == target_bucket:
                raise StorageError(
                    f"{where}: rule {rule.rule_id!r} already replicates to {target_bucket} without covering "
                    f"prefix {prefix!r} (OSS allows one rule per target bucket): add the prefix to that rule, "
                    "or delete it"
                )
        return None

    def _when(self, text: str | None, rule_id: str) -> datetime | None:
        """NewObject: ISO 8601 (`2021-01-19T05:53:07.000Z`), or RFC 1123 as oss2's documentation shows it."""
        if not text:
            return None
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            pass
        try:
            return email.utils.parsedate_to_datetime(text).astimezone(UTC)
        except (TypeError, ValueError):
            raise StorageError(
                f"{self.description}: GetBucketReplicationProgress {rule_id!r}: unreadable NewObject time {text!r}"
            ) from None

    def _call(self, operation: str, attempt: Callable[[], T], rule_id: str = "") -> T:
        return self._retrying(f"{self.description}: {operation}" + (f" {rule_id!r}" if rule_id else ""), attempt)

    def _server_error(self, text: str, status: int, code: str) -> StorageError:
        plain = super()._server_error(text, status, code)
        return ReplicationError(str(plain), code, transient=plain.transient)


def _rule_info(rule: oss2.models.ReplicationRule) -> ReplicationRuleInfo:
    return ReplicationRuleInfo(
        rule_id=rule.rule_id or "",
        prefixes=tuple(rule.prefix_list or ()),
        target_bucket=rule.target_bucket_name or "",
        target_location=rule.target_bucket_location or "",
        status=rule.status or "",
        historical=bool(rule.is_enable_historical_object_replication),
        action=",".join(rule.action_list or ["ALL"]),
    )
