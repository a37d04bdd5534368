"""The step contract: observe (read-only), act (only what is missing), wait, describe (dry run).

Every step of the DAG is a small object built from its node's params and a shared context. The
executor calls `observe()`; when the step is not done it records an `acting` checkpoint, calls
`act()` unless the observation shows the work already under way, then `wait()`. `describe()`
returns the requests the step would send, in the Kibana console form, with secrets masked, and
`checks()` the read-only ones its observation and polling add (the runbook lists both).
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from migrator.aliases import RemovedAliases
from migrator.blocks import SourceBlocks
from migrator.clients.es import EsClient
from migrator.clients.replication import BucketReplication
from migrator.clients.storage import Storage
from migrator.clients.tap import RequestTap
from migrator.dag import StepKind
from migrator.errors import MigratorError
from migrator.ownership import Ledger
from migrator.planner import MigrationPlan
from migrator.spec import MigrationSpec
from migrator.steps.handoffs import BatchHeals, EarlyReleases, HeldRequests, SnapshotSizes
from migrator.steps.validation_reads import ValidationReads

MASK = "******"


class StepFailed(MigratorError):
    """A step cannot complete; the message says what is wrong and what to do next (`cure`: `resume`, or
    `resume --replan` when the fix is a plan change)."""


class Cancelled(Exception):
    """`migrator cancel` asked this run to stop."""


@dataclass(frozen=True)
class ConsoleRequest:
    """A request in the form the Kibana console takes (and the Alibaba Cloud document shows)."""

    cluster: str
    method: str
    path: str
    body: Any = None
    # When a run may skip it: the condition under which the step sends it ("" when it is always sent). Not part
    # of the request: two requests that differ only in it are the same request.
    when: str = field(default="", compare=False)

    @property
    def sent_path(self) -> str:
        """The path as the client sends it (`/` + `path`): a step sends what it describes."""
        return "/" + self.path.lstrip("/")

    def console(self) -> str:
        """The Kibana console form; a conditional request is preceded by `# only when <condition>`, a comment
        line the console ignores."""
        text = f"{self.method} {self.path.lstrip('/') or '/'}"  # the root (`GET /`) keeps its slash
        if self.body is not None:
            text += "\n" + json.dumps(self.body, indent=2)
        return f"# only when {self.when}\n{text}" if self.when else text

    def as_json(self) -> dict[str, Any]:
        """`{"cluster", "method", "path", "body"}`, and `"when"` (see above) for a conditional request."""
        shown = {"cluster": self.cluster, "method": self.method, "path": self.path, "body": self.body}
        return {**shown, "when": self.when} if self.when else shown

    def only_when(self, condition: str) -> ConsoleRequest:
        """The same request, sent only when `condition` holds (shown by the dry run)."""
        return replace(self, when=condition)


@dataclass
class Observation:
    done: bool
    in_progress: bool = False
    summary: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class ProgressSink(ABC):
    """Where steps report what they are doing (rich bars on a terminal, plain lines otherwise)."""

    @abstractmethod
    def update(self, step: str, completed: float, total: float, unit: str, text: str = "") -> None: ...

    @abstractmethod
    def message(self, step: str | None, text: str) -> None: ...

    def expect(self, steps: int) -> None:  # noqa: B027 - only a display with totals needs the count
        """The run has `steps` steps in all (for the totals a display shows)."""

    def step(self, step: str, status: str, text: str = "") -> None:
        """The executor's news of a step (`start`, `done`, `skipped`, `failed`, `retry`, ...): a message by default."""
        self.message(step, f"{status}: {text}" if text else status)


@dataclass(frozen=True)
class RepositoryBodies:
    """The repository registrations the repository steps send, by cluster (`source`; `destination`, read-only):
    `{"type": ..., "settings": {...}}`, built once when the migration is opened (see
    `steps.source_repository.repository_bodies`). `shown` has the secrets masked (the dry run's); `sent` has
    the values resolved at open (migration.secrets), None where nothing is sent (the dry run)."""

    shown: dict[str, dict[str, Any]]
    sent: dict[str, dict[str, Any]] | None = None

    def body(self, cluster: str, *, reveal: bool) -> dict[str, Any]:
        """The registration for `cluster`; `reveal` the one sent (StepFailed where no secret was resolved)."""
        if not reveal:
            return self.shown[cluster]
        if self.sent is None:
            raise StepFailed("the repository's secrets were not resolved: a dry run sends no registration")
        return self.sent[cluster]


@dataclass
class StepContext:
    """What every step may use: the plan, both clusters, the repository storage and registrations (their
    secrets resolved at open, migration.secrets: no step reads the environment)."""

    spec: MigrationSpec
    plan: MigrationPlan
    source: EsClient
    destination: EsClient
    repository_bodies: RepositoryBodies
    storage_factory: Callable[[], Storage]
    progress: ProgressSink
    cancel_requested: Callable[[], bool] = lambda: False
    poll_s: float = 2.0
    # The handoffs between steps (migrator.steps.handoffs): snapshot.create -> snapshot.wait, restore ->
    # recovery, snapshot.wait -> recovery. Empty in a run that did not send the request or read the sizes.
    # The clients' RequestTap (migrator.clients.tap): reads sent at once are logged under the step (`at_once`).
    requests: RequestTap = field(default_factory=RequestTap)
    held_snapshots: HeldRequests = field(default_factory=HeldRequests)
    held_restores: HeldRequests = field(default_factory=HeldRequests)
    snapshot_index_bytes: SnapshotSizes = field(default_factory=SnapshotSizes)
    # recovery -> validate: the indices whose recovery ended, read together (migrator.steps.validation_reads).
    validation_reads: ValidationReads = field(default_factory=ValidationReads)
    # recovery -> restore batch: the members whose restore was given up, restored again by their batch (batch_heal).
    batch_heals: BatchHeals = field(default_factory=BatchHeals)
    # step -> executor: successors a running step lets start early (the executor given it reads them).
    releases: EarlyReleases = field(default_factory=EarlyReleases)
    # Cross-region plans: the destination's bucket (the replica) and the source bucket's replication rules.
    replica_factory: Callable[[], Storage] | None = None
    replication_factory: Callable[[], BucketReplication] | None = None
    # What this migration made (snapshots, repositories), recorded in the state file: see migrator.ownership.
    ledger: Ledger = field(default_factory=Ledger)
    # The source indices' blocks before the cutover (recorded by the write-block step, in the state file).
    source_blocks: SourceBlocks = field(default_factory=SourceBlocks)
    # Alias -> the destination indices the cutover's switch removed it from (for rollback).
    removed_aliases: RemovedAliases = field(default_factory=RemovedAliases)
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def snapshot(self) -> str:
        return self.plan.snapshot

    @property
    def repository(self) -> str:
        return self.spec.repository.name

    def _client(self, name: str, factory: Callable[[], Any] | None) -> Any:
        with self._lock:
            if name not in self._clients:
                if factory is None:
                    raise StepFailed(f"this plan has no {name}: add a replication section to the plan")
                self._clients[name] = factory()
            return self._clients[name]

    def storage(self) -> Storage:
        """The source's repository, as migrator reads it."""
        return self._client("storage", self.storage_factory)

    def replica(self) -> Storage:
        """Cross-region: the destination's copy of the repository."""
        return self._client("replica", self.replica_factory)

    def replication(self) -> BucketReplication:
        """Cross-region: the replication rules of the source's bucket."""
        return self._client("replication", self.replication_factory)

    def sleep(self, seconds: float | None = None) -> None:
        """Wait between polls; stops the run early when a cancel was requested."""
        deadline = time.monotonic() + (self.poll_s if seconds is None else seconds)
        while True:
            if self.cancel_requested():
                raise Cancelled("cancel requested")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.5))


class Step(ABC):
    """One node of the DAG."""

    kind: ClassVar[StepKind]
    title: ClassVar[str]
    waits_for: ClassVar[str] = ""
    # Observed again when an unfinished run continues, even if its checkpoint says done: what it made
    # (a repository registration) can be undone behind our back, and everything after it depends on it.
    recheck: ClassVar[bool] = False
    # Its work is part of the migration's result (a restored target, its count, an alias): applying or
    # resuming a finished plan asks it again for drift (migrator.drift).
    lasting: ClassVar[bool] = False

    def __init__(self, node_id: str, params: dict[str, Any], ctx: StepContext) -> None:
        self.id = node_id
        self.params = params
        self.ctx = ctx

    @property
    def snapshot(self) -> str:
        """The snapshot this step works with: the node's own (the cutover's incremental one) or the run's."""
        return str(self.params.get("snapshot") or self.ctx.snapshot)

    @abstractmethod
    def describe(self) -> list[ConsoleRequest]:
        """The requests `act` sends (secrets masked), for the dry run."""

    def checks(self) -> list[ConsoleRequest]:
        """The read-only requests `observe` and `wait` send beyond those of `describe`, for the runbook."""
        return []

    @abstractmethod
    def observe(self) -> Observation:
        """What is true now. Read-only."""

    def act(self) -> None:  # noqa: B027 - read-only steps have nothing to do
        """Do the missing part; safe to repeat."""

    def wait(self) -> dict[str, Any]:
        """Poll until done; returns what to record in the checkpoint."""
        return {}

    def drift(self, recorded: dict[str, Any]) -> str | None:
        """What is no longer as this done step left it (`recorded`: its checkpoint's detail), or None.
        Read-only; by default the step's own observation. Raises what the observation raises."""
        observation = self.observe()
        return None if observation.done else observation.summary
