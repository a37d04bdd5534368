"""Cross-region replication (CRR) between the sandbox OSS server's buckets: the rules and the background copier.

Place in the flow: replication_api (the PutBucketReplication... operations) -> replication (this module:
the rules, kept in `<root>/.oss-server/replication.json` so they survive a restart, and the thread that
applies them) -> the bucket directories. About every 0.2 s the thread walks each rule's prefixes on disk
(Elasticsearch writes the source bucket directly, not through the server) and copies new or changed
files (size or mtime) to the same key in the target bucket, atomically, keeping the source's mtime;
with Action ALL (or DELETE) it also deletes target files under the prefixes whose source is gone.
Objects that existed when the rule was added are "historical": copied only when
HistoricalObjectReplication is enabled, and counted in the historical progress. The NewObject progress
is the point in time before which every object written is in the target.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from migrator.sandbox import oss_layout
from migrator.sandbox.oss_server.protocol import CHUNK, OssError
from migrator.sandbox.oss_server.store import makedirs, remove_file

logger = logging.getLogger(__name__)

REPLICATION_STATE = "replication.json"  # the rules' file in the server's state directory
_REPLICATION_INTERVAL_S = 0.2


@dataclass
class ReplicationRule:
    """One cross-region replication rule of a source bucket, as stored in the state file."""

    id: str
    source: str
    target: str
    location: str
    prefixes: list[str]
    actions: list[str]
    historical: bool
    created_ns: int  # objects last written at or before this are historical
    transfer_type: str = "internal"
    status: str = "starting"  # starting -> doing; closing once deleted, until the replicator drops it
    historical_progress: float = 0.0  # fraction of the historical objects in the target (kept at 1.0 once done)
    new_object_progress: float | None = None  # every object written before this (epoch s) is in the target

    @property
    def replicates_deletes(self) -> bool:
        return bool({"ALL", "DELETE"} & set(self.actions))

    def stored(self) -> dict[str, object]:
        record = dataclasses.asdict(self)
        del record["new_object_progress"]  # recomputed by the first pass after a restart
        return record


class Replicator:
    """Holds the replication rules of every bucket and copies objects in a background thread."""

    def __init__(self, root: Path, state_file: Path, buckets: set[str], delay_ms: Callable[[], int]) -> None:
        self._root = root
        self._state_file = state_file
        self._buckets = buckets
        self._delay_ms = delay_ms
        self._lock = threading.Lock()
        self._rules: dict[tuple[str, str], ReplicationRule] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_changed: Callable[[str], None] = lambda path: None

    def start(self, on_changed: Callable[[str], None]) -> None:
        """Load the stored rules, start replicating; on_changed(path) hears of each target file written or deleted."""
        self._on_changed = on_changed
        with self._lock:
            self._rules = {}
            if self._state_file.is_file():
                for record in json.loads(self._state_file.read_text(encoding="utf-8")):
                    rule = ReplicationRule(**record)
                    self._rules[(rule.source, rule.id)] = rule
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="oss-replication", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # rules -------------------------------------------------------------------------------------

    def rules(self, bucket: str) -> list[ReplicationRule]:
        with self._lock:
            return [dataclasses.replace(r) for (source, _), r in sorted(self._rules.items()) if source == bucket]

    def rule(self, bucket: str, rule_id: str) -> ReplicationRule:
        with self._lock:
            rule = self._rules.get((bucket, rule_id))
            if rule is None:
                raise _no_such_rule(rule_id)
            return dataclasses.replace(rule)

    def add(self, rule: ReplicationRule) -> None:
        with self._lock:
            for other in self._rules.values():
                if other.source != rule.source:
                    continue
                if other.id == rule.id:
                    raise OssError(
                        400, "BucketReplicationAlreadyExist", f"A replication rule with ID {rule.id} already exists."
                    )
                if other.target == rule.target:
                    raise OssError(
                        400,
                        "BucketReplicationAlreadyExist",
                        f"Bucket replication already exists: rule {other.id} replicates {rule.source} to "
                        f"{rule.target}.",
                    )
            self._rules[(rule.source, rule.id)] = rule
            self._save()

    def close(self, bucket: str, rule_id: str) -> None:
        with self._lock:
            rule = self._rules.get((bucket, rule_id))
            if rule is None:
                raise _no_such_rule(rule_id)
            rule.status = "closing"
            self._save()

    def _save(self) -> None:
        """Write the rules (caller holds the lock) atomically."""
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_name(f"{self._state_file.name}.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps([r.stored() for r in self._rules.values()], indent=1), encoding="utf-8")
        os.replace(tmp, self._state_file)

    # replicating -------------------------------------------------------------------------------

    def _run(self) -> None:
        interval = _REPLICATION_INTERVAL_S
        while not self._stopping.wait(interval):
            started = time.monotonic()
            try:
                self.replicate_once()
            except Exception:  # a bad pass must not end replication for good
                logger.exception("OSS server: a replication pass failed")
            # a pass over a large repository takes a while: rest twice as long, so it uses at most a third of a CPU
            interval = max(_REPLICATION_INTERVAL_S, 2 * (time.monotonic() - started))

    def replicate_once(self) -> None:
        """One pass over every rule: drop closing rules, copy what changed, delete what is gone."""
        with self._lock:
            closing = [key for key, rule in self._rules.items() if rule.status == "closing"]
            for key in closing:
                del self._rules[key]
            if closing:
                self._save()
            rules = [dataclasses.replace(r) for r in self._rules.values()]
        for rule in rules:
            if rule.source in self._buckets and rule.target in self._buckets:
                self._replicate(rule)

    def _replicate(self, rule: ReplicationRule) -> None:
        started = time.time()
        cutoff_ns = int((started - self._delay_ms() / 1000) * 1e9)
        source_dir = os.path.join(self._root, rule.source)
        target_dir = os.path.join(self._root, rule.target)
        complete = True
        historical = copied_historical = 0
        present: set[str] = set()
        for key, relative in _rule_keys(source_dir, rule.prefixes):
            if self._stopping.is_set():
                return
            present.add(key)
            path = os.path.join(source_dir, relative)
            try:
                st = os.stat(path)
            except OSError:
                continue  # deleted since the walk
            is_historical = st.st_mtime_ns <= rule.created_ns
            if is_historical and not rule.historical:
                continue
            historical += is_historical
            if st.st_mtime_ns > cutoff_ns:
                continue  # too young for the replication delay; written after this pass's progress point
            target = os.path.join(target_dir, relative)
            done = _same_file(target, st) or self._copy(path, target, st)
            complete = complete and done
            copied_historical += is_historical and done
        if rule.replicates_deletes:
            for key, relative in _rule_keys(target_dir, rule.prefixes):
                if key not in present and not os.path.exists(os.path.join(source_dir, relative)):
                    target = os.path.join(target_dir, relative)
                    if remove_file(target_dir, target):
                        self._on_changed(target)
        with self._lock:
            current = self._rules.get((rule.source, rule.id))
            if current is None or current.status == "closing":
                return
            if rule.historical and current.historical_progress < 1.0:
                current.historical_progress = copied_historical / historical if historical else 1.0
            if complete:
                current.new_object_progress = cutoff_ns / 1e9
                if current.status == "starting":
                    current.status = "doing"
                    self._save()

    def _copy(self, source: str, target: str, st: os.stat_result) -> bool:
        """Copy one file atomically (0644, parents 0755, the source's mtime); False when it changed meanwhile."""
        tmp = os.path.join(os.path.dirname(self._state_file), "tmp", uuid.uuid4().hex)
        try:
            with open(source, "rb") as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
                after = os.fstat(src.fileno())
            if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                return False  # still being written: next pass
            os.chmod(tmp, 0o644)
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
            makedirs(os.path.dirname(target), 0o755)
            os.replace(tmp, target)
        except OSError as error:
            logger.debug("OSS server: replicating %s to %s failed: %s", source, target, error)
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._on_changed(target)
        return True


def _no_such_rule(rule_id: str) -> OssError:
    return OssError(404, "NoSuchReplicationRule", "The specified replication rule does not exist.", RuleId=rule_id)


def _rule_keys(bucket_dir: str, prefixes: list[str]) -> Iterator[tuple[str, str]]:
    """(key, path relative to the bucket directory) of a bucket's objects under any of the prefixes (all
    objects when there are none)."""
    seen: set[str] = set()
    for prefix in prefixes or [""]:
        for key, _, path in oss_layout.walk(bucket_dir, prefix, "", roll_up_dirs=False):
            if key not in seen:
                seen.add(key)
                yield key, os.path.relpath(path, bucket_dir)


def _same_file(path: str, st: os.stat_result) -> bool:
    try:
        target = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(target.st_mode) and (target.st_size, target.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
