"""The requests a cancel sends, built once as data (issue 16: one source): `migrator cancel` sends them
(`migration.undo._undo`, `ownership.delete_snapshot_if_ours`) and the dry run's cancel advice shows them
(`migration.undo.cancel_advice`), so the runbook's "to cancel at this step" is what the cancel sends.

Each is a `clients.es.Request` with the cluster it goes to: the destination index whose restore is
stopped (`DELETE <index>`: deleting a restoring index stops its restore), then the run's snapshot
(`DELETE _snapshot/<repository>/<snapshot>`: deleting a running snapshot stops it). Only what the
state's ledger says this migration made is deleted; that check is the sender's.
"""

from __future__ import annotations

from collections.abc import Iterable

from migrator.clients.es import Request, build_path

SOURCE, DESTINATION = "source", "destination"


def delete_index(target: str) -> Request:
    """`DELETE <target>` on the destination."""
    return Request("DELETE", build_path(target))


def delete_snapshot(repository: str, snapshot: str) -> Request:
    """`DELETE _snapshot/<repository>/<snapshot>` on the source."""
    return Request("DELETE", build_path("_snapshot", repository, snapshot))


def cancel_requests(repository: str, snapshot: str, targets: Iterable[str]) -> list[tuple[str, Request]]:
    """(cluster, request) in the order a cancel sends them: each destination index `targets` names (those
    being restored), then the snapshot."""
    found = [(DESTINATION, delete_index(target)) for target in targets]
    return [*found, (SOURCE, delete_snapshot(repository, snapshot))]
