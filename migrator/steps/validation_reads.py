"""steps (validate) -> clients: the validation's counts, mappings and settings of many indices, read together.

Place in the flow: executor -> steps (recovery, validate) -> this service -> clients. Each index's
validate step compares its own index (and passes or fails alone), but reading three things per index
on both clusters is six requests per index. Elasticsearch answers them for many indices at once:

- counts: `GET a,b,c/_search` with `size: 0` and a `terms` aggregation on `_index` sized to the names:
  one bucket per index with its documents (top-level documents matching `match_all`, as `_count`
  counts them). Exact: each shard belongs to one index, so each shard's one bucket is complete and
  the buckets are summed per index; `hits.total` (a number before 7.x, an object capped at 10,000
  from 7.x) is not read. An empty index has no bucket;
- mappings: `GET a,b,c/_mapping` (each index's section, as for one);
- settings: `GET a,b,c/_settings?flat_settings=true`.

A joined read (several names) adds `ignore_unavailable=true`, so that one missing or closed index does
not fail the others' read; an index a joined answer leaves out (missing, closed, or with no count
bucket) is read again alone, without it, which answers 0 documents or raises the error a read of that
one index raises. Names are cut into groups that fit a request line (`name_groups`).

`ValidationReads` is the typed service in the `StepContext`. The indices read together are fixed by
the plan: a wave of the open indices of one restore batch (planner.validation_waves, in the batch's
order; the wave's first validate step waits in the DAG for the recovery of the whole wave and the others
follow it, so that a wave is validated while the batch's later indices still restore), so the dry run
lists the joined requests exactly as they are sent (among the checks of the restore batch's step, for which
they are sent: the event log names the batch, whichever member's validate step asks first). A recovery
step that sees its index's recovery ended says so (`recovered`); the first validate step of a wave
to ask (`take`) reads the whole wave once every member's recovery has ended in this run, and keeps
the answers for the other members' validate steps, which take them without asking the cluster. An
answer is used once; an index whose recovery ends again (restored again) drops the answer read before:
a read made before an index's recovery ended never validates it. A step that finds no answer (a
resumed run, a retry, a wave with a member still recovering) reads its own index alone. The
cutover's validation and a closed index's read alone (see migrator.steps.validate).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from migrator.clients.es import EsClient, build_path, name_groups

COUNTED = "indices"  # the terms aggregation's name in the count read


@dataclass(frozen=True)
class Wanted:
    """Which of the three reads the plan's `validate:` section asks for."""

    counts: bool
    mappings: bool
    settings: bool


@dataclass
class IndexReads:
    """One index's answers on one cluster: documents (None: not read), mapping and flat settings as
    `GET <index>/_mapping` and `GET <index>/_settings?flat_settings=true` give them (None: not read)."""

    docs: int | None = None
    mapping: Any = None
    settings: dict[str, Any] | None = None


def _joined(names: list[str], joined: bool | None) -> dict[str, bool]:
    """`ignore_unavailable=true` on a joined read (`joined` None: when it names several indices)."""
    return {"ignore_unavailable": True} if (len(names) > 1 if joined is None else joined) else {}


def count_request(names: list[str], joined: bool | None = None) -> tuple[str, str, dict[str, Any]]:
    """(method, path, body) of the documents of `names`, one `terms` bucket per index (see the module)."""
    body = {"size": 0, "aggs": {COUNTED: {"terms": {"field": "_index", "size": len(names)}}}}
    return "GET", build_path(",".join(names), "_search", params=_joined(names, joined)), body


def mapping_path(names: list[str], joined: bool | None = None) -> str:
    return build_path(",".join(names), "_mapping", params=_joined(names, joined))


def settings_path(names: list[str], joined: bool | None = None) -> str:
    return build_path(",".join(names), "_settings", params={"flat_settings": True, **_joined(names, joined)})


def read_group(client: EsClient, names: list[str], wanted: Wanted) -> dict[str, IndexReads]:
    """The wanted reads of `names` (one group, one request each); an index the answer leaves out keeps None."""
    found = {name: IndexReads() for name in names}
    if wanted.counts:
        method, path, body = count_request(names)
        _, answer = client.request(method, path, body)
        for bucket in answer.get("aggregations", {}).get(COUNTED, {}).get("buckets", []):
            if bucket.get("key") in found:
                found[bucket["key"]].docs = int(bucket["doc_count"])
        if len(names) == 1 and found[names[0]].docs is None:
            found[names[0]].docs = 0  # the index exists (else the read raised) and holds no document
    if wanted.mappings:
        for name, section in client.get(mapping_path(names)).items():
            if name in found:
                found[name].mapping = section.get("mappings", {})
    if wanted.settings:
        for name, section in client.get(settings_path(names)).items():
            if name in found:
                found[name].settings = section.get("settings", {})
    return found


def read_indices(client: EsClient, names: list[str], wanted: Wanted) -> dict[str, IndexReads]:
    """Index -> its reads on `client`, in groups that fit a request line (an index a joined answer left out keeps
    None: see `completed`)."""
    found: dict[str, IndexReads] = {}
    for group in name_groups(names):
        found.update(read_group(client, group, wanted))
    return found


def joined_reads(names: list[str], wanted: Wanted) -> list[tuple[str, str, Any]]:
    """(method, path, body) of the requests `read_indices` sends for `names` (the runbook's form)."""
    reads: list[tuple[str, str, Any]] = []
    for group in name_groups(names):
        if wanted.counts:
            reads.append(count_request(group))
        if wanted.mappings:
            reads.append(("GET", mapping_path(group), None))
        if wanted.settings:
            reads.append(("GET", settings_path(group), None))
    return reads


def completed(client: EsClient, name: str, reads: IndexReads, wanted: Wanted) -> IndexReads:
    """`reads`, or when a joined answer left out part of them (a missing, closed or empty index), the index read
    alone: 0 documents, or the error a read of that one index raises."""
    if (
        (wanted.counts and reads.docs is None)
        or (wanted.mappings and reads.mapping is None)
        or (wanted.settings and reads.settings is None)
    ):
        return read_group(client, [name], wanted)[name]
    return reads


# (source index, target index) -> (its reads on the source, on the destination)
Pair = tuple[IndexReads, IndexReads]
BothSides = Callable[[Callable[[], dict[str, IndexReads]], Callable[[], dict[str, IndexReads]]], list[Any]]


class ValidationReads:
    """The validate steps' shared reads (see the module docstring). Thread-safe: steps run in parallel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the recovered indices, the answers kept, the generations
        self._reading = threading.Lock()  # one joined read at a time: a step asking meanwhile may find its answer
        self._answers: dict[str, Pair] = {}
        self._generation: dict[str, int] = {}  # target -> how many times its recovery ended in this run
        # restore batch -> (source, target) open index -> its validation wave (planner.validation_waves)
        self._waves: dict[str, dict[tuple[str, str], list[tuple[str, str]]]] = {}
        self.reads = 0  # joined reads made (each: one request per wanted kind and group of names, on each side)

    def wave(
        self, batch: str, member: tuple[str, str], find: Callable[[str], list[list[tuple[str, str]]]]
    ) -> list[tuple[str, str]]:
        """The (source, target) pairs read together with `member` (one of them): its wave of restore batch `batch`,
        as `find(batch)` cuts the batch's open indices, once per batch (the plan fixes them; every member's validate
        step asks, each time it is described, checked or run); none when `member` is in no wave (closed)."""
        with self._lock:
            if batch not in self._waves:
                self._waves[batch] = {pair: wave for wave in find(batch) for pair in wave}
            return self._waves[batch].get(member, [])

    def recovered(self, target: str) -> None:
        """`target`'s recovery ended: an answer read before now is dropped."""
        with self._lock:
            self._answers.pop(target, None)
            self._generation[target] = self._generation.get(target, 0) + 1

    def take(
        self,
        clients: tuple[EsClient, EsClient],
        both: BothSides,
        joined: BothSides,
        wanted: Wanted,
        member: tuple[str, str],
        group: list[tuple[str, str]],
    ) -> Pair:
        """(source's reads, destination's reads) of `member` ((source, target) index), one of `group` (its batch's
        (source, target) pairs, in the plan's order): kept from a read made after its recovery ended; else, when
        the recovery of every index of the group has ended in this run, the whole group read now (sent with
        `joined`: for the batch); else this index read alone (sent with `both`). Each sends the two sides' reads
        at once, as `RequestTap.at_once`. Raises what the read raises."""
        source, target = member
        kept = self._read(clients, both, joined, wanted, member, group)
        return completed(clients[0], source, kept[0], wanted), completed(clients[1], target, kept[1], wanted)

    def _read(
        self,
        clients: tuple[EsClient, EsClient],
        both: BothSides,
        joined: BothSides,
        wanted: Wanted,
        member: tuple[str, str],
        group: list[tuple[str, str]],
    ) -> Pair:
        source, target = member
        with self._reading:
            with self._lock:
                kept = self._answers.pop(target, None)
                if kept is not None:
                    return kept
                if not all(self._generation.get(name) or name == target for _, name in group):
                    group = [member]  # a resumed run, or a member still recovering: this index alone
                generations = {name: self._generation.get(name, 0) for _, name in group}
            sources, targets = (joined if len(group) > 1 else both)(
                partial(read_indices, clients[0], [origin for origin, _ in group], wanted),
                partial(read_indices, clients[1], [name for _, name in group], wanted),
            )
            self.reads += 1
            with self._lock:
                for origin, name in group:
                    if name != target and self._generation.get(name, 0) == generations[name]:
                        self._answers[name] = (sources[origin], targets[name])
            return sources[source], targets[target]
