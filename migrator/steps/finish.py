"""Finish, when the plan asks: replicas back (followed until every copy the data nodes can hold has
started, see copies), aliases moved to the restored indices, snapshot deleted, repositories unregistered.
Each part is observed first and done only when missing. An alias of
`finish.aliases` is moved in one atomic `POST _aliases` that also removes it from every other
destination index holding it (see `migrator.aliases`).

In a two-phase plan the aliases are switched by the cutover (`alias.switch`) and the cutover's
incremental snapshot is deleted too.

Only what this migration made is deleted (migrator.ownership): a snapshot whose uuid the state holds, a
repository registration a step of this run sent. Anything else of those names is kept and named."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from migrator.aliases import alias_actions, alias_holders, wanted_aliases
from migrator.clients.es import build_path
from migrator.dag import StepKind
from migrator.steps import copies
from migrator.steps.alias_switch import alias_read, switch_request
from migrator.steps.base import ConsoleRequest, Observation, Step
from migrator.steps.replication import replication_rule


@dataclass(frozen=True)
class Finishing:
    """One finishing request (`request`, what `act` sends) and the read that tells whether it is still to
    send (`read`, what `observe` sends; None for the alias move, computed from the aliases read just now)."""

    request: ConsoleRequest
    read: ConsoleRequest | None


class Finish(Step):
    kind = StepKind.FINISH
    title = "Finish: replicas, aliases, clean-up"
    lasting = True
    waits_for = (
        "with finish.replicas, every replica copy the data nodes can hold started (peer recoveries); settings, "
        "aliases and deletions are acknowledged at once"
    )

    def _targets(self) -> dict[str, str]:
        return {move.source: move.target for move in self.ctx.plan.moves}

    def _moves_aliases(self) -> bool:
        """Whether this step moves the aliases (with a cutover, `alias.switch` does)."""
        return bool(self.ctx.spec.finish.aliases) and not self.ctx.spec.cutover.enabled

    def _alias_holders(self) -> dict[str, set[str]] | None:
        """The destination's aliases of `finish.aliases` now (None when this step does not move them)."""
        if not self._moves_aliases():
            return None
        return alias_holders(self.ctx.destination, self.ctx.spec.finish.aliases)

    def _wanted(self, aliases_now: Mapping[str, Iterable[str]] | None = None) -> list[Finishing]:
        """The finishing requests, each with the read that tells whether it is still to send (built once:
        `act` sends the one, `observe` the other, `describe` and `checks` list them). The alias move is
        computed from `aliases_now` (alias -> the destination indices holding it), by default from what
        discovery found (the dry run)."""
        finish, repo = self.ctx.spec.finish, self.ctx.repository
        wanted: list[Finishing] = []
        if finish.replicas is not None:
            for target in self._targets().values():
                body = {"index": {"number_of_replicas": finish.replicas}}
                replicas = build_path(target, "_settings", "index.number_of_replicas").lstrip("/")
                wanted.append(
                    Finishing(
                        ConsoleRequest("destination", "PUT", build_path(target, "_settings").lstrip("/"), body),
                        ConsoleRequest("destination", "GET", replicas),
                    )
                )
        if self._moves_aliases():
            now = self.ctx.plan.facts.destination.aliases if aliases_now is None else aliases_now
            actions = alias_actions(wanted_aliases(self.ctx.spec, self.ctx.plan.moves), now)
            if actions:  # computed from the aliases read just now: only what is missing
                wanted.append(Finishing(switch_request(actions), None))
        if finish.delete_snapshot:
            for snapshot in (self.ctx.snapshot, self.params.get("cutover_snapshot")):
                if snapshot:
                    path = build_path("_snapshot", repo, snapshot).lstrip("/")
                    wanted.append(
                        Finishing(ConsoleRequest("source", "DELETE", path), ConsoleRequest("source", "GET", path))
                    )
        if finish.unregister_repositories:
            path = build_path("_snapshot", repo).lstrip("/")
            for cluster in ("destination", "source"):
                wanted.append(Finishing(ConsoleRequest(cluster, "DELETE", path), ConsoleRequest(cluster, "GET", path)))
            replication = self.ctx.spec.replication
            if replication is not None and replication.method == "oss":  # OSS allows one rule per target bucket
                rule = replication_rule(self.ctx.spec)
                bucket = f"oss://{rule['source_bucket']}/"
                delete = ConsoleRequest("storage", "POST", f"{bucket}?replication&comp=delete", {"ID": rule["rule_id"]})
                wanted.append(Finishing(delete, ConsoleRequest("storage", "GET", f"{bucket}?replication")))
        return wanted

    def describe(self) -> list[ConsoleRequest]:
        return [item.request for item in self._wanted()]

    def checks(self) -> list[ConsoleRequest]:
        finish = self.ctx.spec.finish
        reads = [item.read for item in self._wanted() if item.read is not None]
        if self._moves_aliases():
            reads.extend(alias_read(alias) for alias in finish.aliases)
        if finish.replicas:
            reads.extend(copies.checks(list(self._targets().values())))
        return reads

    def _missing(self) -> list[ConsoleRequest]:
        """The finishing requests still to send: each one's read (see `_wanted`) sent and judged."""
        missing = []
        self.kept: list[str] = []
        for item in self._wanted(self._alias_holders()):
            request, read = item.request, item.read
            if read is None:
                missing.append(request)
            elif read.cluster == "storage":
                rules = self.ctx.replication().rules()
                if any(r.rule_id == request.body["ID"] and r.status != "closing" for r in rules):
                    missing.append(request)
            elif request.method == "PUT":  # the replicas setting
                index = request.path.split("/")[0]
                current = self._client(read.cluster).get(read.sent_path)
                value = current.get(index, {}).get("settings", {}).get("index", {}).get("number_of_replicas")
                if str(value) != str(self.ctx.spec.finish.replicas):
                    missing.append(request)
            else:
                status, body = self._client(read.cluster).request("GET", read.sent_path, ok=(200, 404))
                # 7.16+ answer a snapshot of an unregistered repository with 200, no snapshot and a failure.
                is_snapshot = request.path.count("/") == 2
                if status == 200 and (not is_snapshot or body.get("snapshots")):
                    if self._ours(request, body):
                        missing.append(request)
                    else:
                        self.kept.append(f"{request.cluster} {request.path} (not made by this migration)")
        return missing

    def _client(self, cluster: str) -> Any:
        return self.ctx.source if cluster == "source" else self.ctx.destination

    def _ours(self, request: ConsoleRequest, body: dict[str, Any]) -> bool:
        """Whether the snapshot or repository registration `request` deletes was made by this migration."""
        _, repository, *snapshot = request.path.split("/")
        if snapshot:
            return self.ctx.ledger.claim_snapshot(repository, snapshot[0], body["snapshots"][0])
        return self.ctx.ledger.owns_repository(request.cluster, repository)

    def observe(self) -> Observation:
        missing = self._missing()
        kept = f"; kept: {', '.join(self.kept)}" if self.kept else ""
        summary = f"{len(missing)} finishing request(s) to send{kept}"
        if not missing and self.ctx.spec.finish.replicas:
            replicas = copies.count(self.ctx.destination, list(self._targets().values()))
            if not replicas.done:
                return Observation(False, in_progress=True, summary=f"{summary}; {replicas.shown()}")
            summary += f"; {replicas.started} shard copies started"
        return Observation(not missing, summary=summary)

    def wait(self) -> dict[str, Any]:
        """With finish.replicas: until every copy the destination's data nodes can hold has started (see copies)."""
        if not self.ctx.spec.finish.replicas:
            return {}
        return copies.follow(self.ctx, self.id, list(self._targets().values()))

    def drift(self, recorded: dict[str, Any]) -> str | None:
        missing = self._missing()
        return "; ".join(f"{r.method} {r.path} to send again" for r in missing) if missing else None

    def act(self) -> None:
        for request in self._missing():
            if request.cluster == "storage":
                self.ctx.replication().delete_rule(request.body["ID"])
                continue
            self._client(request.cluster).request(request.method, request.sent_path, request.body)
            if request.method == "DELETE" and request.path.count("/") == 1:  # a registration, gone now
                self.ctx.ledger.forget_repository(request.cluster, request.path.split("/")[1])
