"""What this migration made, as its state file records it: the only things migrator follows, counts as
done, or deletes.

Place in the flow: `execute` gives the steps a `Ledger` over the run's state file (`StepContext.ledger`).
`snapshot.create` records its intent to take a snapshot before it sends the create request, then the
snapshot's uuid and start time from the first answer that shows it; `snapshot.wait`, `restore`,
`finish` and `cancel` ask the ledger before they rely on or delete anything; the repository steps record
a registration they made. The dry run (`migrator plan`) on a recorded run reads the same ledger, so the
run's own snapshot is not refused as someone else's.

The rules (facts from Elasticsearch's `GET _snapshot/<repo>/<snapshot>`: `uuid`, `start_time_in_millis`;
and `GET <index>/_recovery`: the SNAPSHOT recovery source and its `start_time_in_millis`):
- a snapshot is ours when the ledger holds its uuid. A snapshot of the name whose uuid the ledger does
  not hold yet (the run was killed between sending the create and recording the answer) is claimed only
  when the ledger recorded the intent (made right after seeing the name free) and the snapshot started
  at or after it, within `CLOCK_SLACK_MS` (the host's clock against the source's cached one);
- a destination index is ours when its restore names a snapshot that is ours and, when its recovery
  says when it began, it began at or after that snapshot started. A restore still under way can only be
  of the snapshot that now carries the name, which is ours;
- once seen so, the index's uuid is recorded (`record_index`): from then on the index is ours by that
  uuid, which survives what rewrites its recovery record (a close and open, a node restart, a
  relocation), and an index deleted and made again under the name (another uuid) is not;
- a repository registration is ours when a step of this run sent it.
State files of runs begun before the ledger existed have no `ownership` mark: for them the old rule
holds (the run's snapshot by name), so such a run can still be resumed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from migrator.clients.es import EsClient, Request, build_path
from migrator.dag import RunStatus
from migrator.migration.cancel_requests import delete_snapshot
from migrator.state import StateStore

# Elasticsearch stamps a snapshot's start with its cached clock (refreshed every 200 ms by default), and
# the source's clock and this host's differ a little: an intent is compared with this much slack. Only a
# snapshot that appeared after the run saw the name free is ever compared (see Ledger.claim_snapshot).
CLOCK_SLACK_MS = 5_000
LEDGER_MARK = "ownership"  # meta key: "1" in the state of every run begun with the ledger
SNAPSHOT_KEY = "owned.snapshot."
REPOSITORY_KEY = "owned.repository."
INDEX_KEY = "owned.index."


def now_ms() -> int:
    """Milliseconds since the epoch on this host: the clock an intent is recorded with."""
    return int(time.time() * 1000)


class Ledger:
    """The ownership records of one migration: in its state file, or in memory (dry run, unit tests)."""

    def __init__(self, state: StateStore | None = None) -> None:
        self._state = state
        self._memory: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.legacy = (
            state is not None
            and state.get_meta(LEDGER_MARK) is None
            and state.get_meta("status") not in (None, RunStatus.CANCELLED)
        )

    def _get(self, key: str) -> Any:
        return self._state.get_json(key) if self._state is not None else self._memory.get(key)

    def _set(self, key: str, value: Any) -> None:
        if self._state is not None:
            self._state.set_json(key, value)
        else:
            self._memory[key] = value

    def start(self) -> None:
        """A new run begins: it owns nothing yet (what a cancelled run made is not this run's)."""
        assert self._state is not None
        self._state.delete_meta_prefixed("owned.")
        self._state.set_meta(**{LEDGER_MARK: "1"})
        self.legacy = False

    # snapshots -------------------------------------------------------------------------------------

    def intend_snapshot(self, repository: str, snapshot: str) -> None:
        """Record, before the create request is sent, that this run takes `snapshot` now."""
        self._set(f"{SNAPSHOT_KEY}{repository}/{snapshot}", {"intent_ms": now_ms(), "uuid": None, "start_ms": None})

    def snapshot_record(self, repository: str, snapshot: str) -> dict[str, Any] | None:
        """{"intent_ms", "uuid", "start_ms"} of a snapshot this run took or began to take, or None."""
        return self._get(f"{SNAPSHOT_KEY}{repository}/{snapshot}")

    def recognises_snapshot(self, repository: str, snapshot: str, info: dict[str, Any]) -> bool:
        """Whether the snapshot `info` (an entry of `GET _snapshot/<repo>/<snapshot>`) is ours, recording
        nothing (what `claim_snapshot` decides; a dry run asks this)."""
        record = self.snapshot_record(repository, snapshot)
        uuid, start = info.get("uuid"), info.get("start_time_in_millis")
        if record is None:
            return self.legacy
        if record.get("uuid") is not None:
            return bool(uuid) and uuid == record["uuid"]
        return isinstance(start, int) and start >= record["intent_ms"] - CLOCK_SLACK_MS

    def claim_snapshot(self, repository: str, snapshot: str, info: dict[str, Any]) -> bool:
        """Whether the snapshot `info` (an entry of `GET _snapshot/<repo>/<snapshot>`) is ours; records its
        uuid and start time the first time it is seen after the intent."""
        with self._lock:
            record = self.snapshot_record(repository, snapshot)
            if not self.recognises_snapshot(repository, snapshot, info):
                return False
            if record is not None and record.get("uuid") is not None:
                return True
            known = record or {"intent_ms": None, "uuid": None, "start_ms": None}
            uuid, start = info.get("uuid"), info.get("start_time_in_millis")
            self._set(f"{SNAPSHOT_KEY}{repository}/{snapshot}", {**known, "uuid": uuid, "start_ms": start})
            return True

    def owns_snapshot(self, repository: str, snapshot: str) -> bool:
        """Whether the ledger holds the uuid of `snapshot` (taken by this run), without asking the cluster."""
        record = self.snapshot_record(repository, snapshot)
        return self.legacy or (record is not None and record.get("uuid") is not None)

    def owned_snapshots(self) -> dict[str, dict[str, Any]]:
        """`<repository>/<snapshot>` -> its record, for every snapshot this run took or began to take."""
        if self._state is not None:
            return self._state.json_prefixed(SNAPSHOT_KEY)
        return {k[len(SNAPSHOT_KEY) :]: v for k, v in self._memory.items() if k.startswith(SNAPSHOT_KEY)}

    def snapshot_uuids(self, repository: str) -> dict[str, str]:
        """Snapshot name -> uuid, for every snapshot of `repository` this run took (the planner's `owned_snapshots`)."""
        prefix = f"{repository}/"
        return {
            key[len(prefix) :]: record["uuid"]
            for key, record in self.owned_snapshots().items()
            if key.startswith(prefix) and record.get("uuid")
        }

    # indices ---------------------------------------------------------------------------------------

    def owns_index(self, repository: str, restored: dict[str, Any]) -> bool:
        """Whether a destination index restored as `restored` says (its SNAPSHOT recovery source: `repository`,
        `snapshot`, and `start_time_in_millis` once a shard began recovering) was restored by this run."""
        if restored.get("repository") != repository or not restored.get("snapshot"):
            return False
        if self.legacy:
            return True
        record = self.snapshot_record(repository, restored["snapshot"])
        if record is None or record.get("uuid") is None:
            return False
        began = restored.get("start_time_in_millis")
        return not isinstance(began, int) or record.get("start_ms") is None or began >= record["start_ms"]

    def record_index(self, target: str, uuid: str) -> None:
        """Record that destination index `target`, of this `uuid` (`index.uuid`), was restored by this run."""
        self._set(f"{INDEX_KEY}{target}", uuid)

    def owns_index_uuid(self, target: str, uuid: str | None) -> bool:
        """Whether `target` of this `uuid` is the index this run restored (its recorded uuid)."""
        return uuid is not None and self._get(f"{INDEX_KEY}{target}") == uuid

    # repositories ----------------------------------------------------------------------------------

    def record_repository(self, cluster: str, name: str) -> None:
        """Record that this run registered repository `name` on `cluster` (source or destination)."""
        self._set(f"{REPOSITORY_KEY}{cluster}/{name}", True)

    def forget_repository(self, cluster: str, name: str) -> None:
        """The registration is gone: one of that name made later is not this run's."""
        self._set(f"{REPOSITORY_KEY}{cluster}/{name}", False)

    def owns_repository(self, cluster: str, name: str) -> bool:
        return self.legacy or bool(self._get(f"{REPOSITORY_KEY}{cluster}/{name}"))


def snapshot_deletion(
    client: EsClient, ledger: Ledger, repository: str, snapshot: str, *, claim: bool = True
) -> tuple[str, Request | None]:
    """Whether the snapshot on the source `client` is to be deleted (`GET _snapshot/<repository>/<snapshot>`):
    ("ours", its `DELETE`), ("absent", None) or ("kept", None: not made by this migration). `claim` records
    its uuid on first sight (see `Ledger.claim_snapshot`); a dry run passes False and records nothing."""
    status, body = client.request("GET", build_path("_snapshot", repository, snapshot), ok=(200, 404))
    found = (body.get("snapshots") or []) if status == 200 else []
    if not found:
        return "absent", None
    ours = ledger.claim_snapshot if claim else ledger.recognises_snapshot
    if not ours(repository, snapshot, found[0]):
        return "kept", None
    return "ours", delete_snapshot(repository, snapshot)


def delete_snapshot_if_ours(client: EsClient, ledger: Ledger, repository: str, snapshot: str) -> str:
    """`DELETE _snapshot/<repository>/<snapshot>` on the source `client` when the snapshot there is ours
    (`snapshot_deletion`). Returns "deleted", "absent" (nothing of that name) or "kept" (not made by this
    migration)."""
    outcome, delete = snapshot_deletion(client, ledger, repository, snapshot)
    if delete is None:
        return outcome
    status, _ = client.request(delete.method, delete.path, ok=(200, 404))
    return "deleted" if status == 200 else "absent"
