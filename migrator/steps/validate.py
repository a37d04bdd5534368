"""Validate one restored index against its source: the last step of each index's branch of the DAG.

Read-only (GET requests only, some with a body), so observing a finished migration again changes
nothing. What is compared, each switchable in the plan's `validate:` section:

- document counts (a `_search` of `size: 0` with one `terms` bucket per index, on both sides, see
  below). Before a cutover (phase one of a two-phase plan) the source still takes writes, so its
  count is recorded beside the destination's but a difference is only a warning; the cutover's
  validation refreshes the write-blocked source first and requires the counts exactly equal;
- mappings (`GET <index>/_mapping`), equal modulo what a newer version changes by itself: the type
  level of a 6.x mapping (`{"_doc": {...}}`) and the 6.x `_default_` mapping are dropped, so is
  `_all: {enabled: true}` (6.x writes out the 5.x default on a restored 5.x index; an index created by
  6.x cannot enable `_all`, 7.x has none, so it never hides a difference), scalar
  values compare as text (`"false"` equals `false`, `"256"` equals `256`) and an empty `properties`
  equals none;
- the settings that matter (`GET <index>/_settings?flat_settings=true`): shard and routing counts,
  analysis, similarity, index sorting, mapping limits, codec, max_result_window, hidden. Settings
  the plan changes or drops on restore (`restore.index_settings`, `restore.ignore_index_settings`)
  are not compared, nor are those every restore changes (uuid, creation, version, allocation);
- an index closed on the source (`snapshot.closed_indices: restore_closed`) cannot answer `_count` or
  a search: its count is the Lucene documents of its last commit (`GET <index>/_stats/docs` with
  `forbid_closed_indices=false`, read the same way on the destination copy, open or closed), its
  mappings and settings are compared as usual, and the document sample is skipped with a warning;
- optionally `sample_docs` documents picked at random (a seed fixed by the snapshot name, so a
  second run checks the same ones) on the source with `GET <index>/_search`, fetched from the
  destination with `GET <target>/_mget` and compared by id and a SHA-256 of their `_source`.

The counts, mappings and settings of the open indices of one restore batch are read together, a few
requests per wave of the batch (planner.validation_waves, migrator.steps.validation_reads); each step still
compares and reports its own index.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import networkx as nx

from migrator.clients.es import EsClient, Version, build_path
from migrator.dag import StepKind
from migrator.planner import restore_id, validation_waves
from migrator.spec import MigrationSpec
from migrator.steps.base import ConsoleRequest, Observation, Step, StepFailed
from migrator.steps.validation_reads import Pair, Wanted, completed, joined_reads, read_indices

T = TypeVar("T")
SETTINGS_THAT_MATTER = (
    "index.number_of_shards",
    "index.number_of_routing_shards",
    "index.routing_partition_size",
    "index.analysis.",
    "index.similarity.",
    "index.sort.",
    "index.mapping.",
    "index.codec",
    "index.max_result_window",
    "index.hidden",
)
MAPPING_KEYS = {"properties", "dynamic", "dynamic_templates", "_source", "_meta", "_routing", "runtime", "enabled"}
SHOWN = 5  # differences named in a failure message
MGET_BATCH = 1000
CLOSED_COUNT = {"forbid_closed_indices": False, "filter_path": "indices.*.primaries.docs.count"}


def closed_count_read(cluster: str, index: str) -> ConsoleRequest:
    """`GET <index>/_stats/docs?forbid_closed_indices=false&...`: the documents of a closed index's last commit
    (a search cannot read it), as the runbook lists it."""
    return ConsoleRequest(cluster, "GET", build_path(index, "_stats", "docs", params=CLOSED_COUNT).lstrip("/"))


def refresh_request(index: str) -> ConsoleRequest:
    """`POST <index>/_refresh` on the source (the cutover's validation, writes blocked)."""
    return ConsoleRequest("source", "POST", build_path(index, "_refresh").lstrip("/"))


def mget_request(target: str, docs: list[dict[str, Any]]) -> ConsoleRequest:
    """`GET <target>/_mget {"docs": [{"_id", "routing"?}, ...]}` on the destination: the sampled documents."""
    return ConsoleRequest("destination", "GET", build_path(target, "_mget").lstrip("/"), {"docs": docs})


def lucene_docs(client: EsClient, read: ConsoleRequest) -> int:
    """The primaries' documents a `closed_count_read` answers."""
    stats: dict[str, Any] = next(iter(client.get(read.sent_path).get("indices", {}).values()), {})
    return int(stats.get("primaries", {}).get("docs", {}).get("count", 0))


def normalized_mapping(mapping: dict[str, Any]) -> Any:
    """An index's mapping without what a newer version changes by itself (see the module docstring)."""
    mapping = {key: value for key, value in mapping.items() if key != "_default_"}
    if len(mapping) == 1:
        ((key, inner),) = mapping.items()
        if key not in MAPPING_KEYS and isinstance(inner, dict) and set(inner) & MAPPING_KEYS:
            mapping = inner  # the 6.x type level
    text = _as_text(mapping)
    for level in [text] if set(mapping) & MAPPING_KEYS else [v for v in text.values() if isinstance(v, dict)]:
        if level.get("_all") == {"enabled": "true"}:
            del level["_all"]  # the 5.x default, written out by 6.x
    return text


def _as_text(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {key: _as_text(item) for key, item in value.items()}
        if cleaned.get("properties") == {}:
            del cleaned["properties"]
        return cleaned
    if isinstance(value, list):
        return [_as_text(item) for item in value]
    if isinstance(value, bool):
        return str(value).lower()
    return value if value is None else str(value)


def differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Dotted paths where two JSON values differ."""
    if isinstance(left, dict) and isinstance(right, dict):
        found: list[str] = []
        for key in sorted(set(left) | set(right)):
            where = f"{path}.{key}" if path else key
            if key not in left or key not in right:
                found.append(f"{where} ({'only on the destination' if key not in left else 'only on the source'})")
            else:
                found.extend(differences(left[key], right[key], where))
        return found
    return [] if left == right else [f"{path or '(root)'} ({left!r} != {right!r})"]


def settings_that_matter(flat: dict[str, Any], excluded: list[str]) -> dict[str, str]:
    """The compared settings of one index (values as text), less those the plan changes on restore."""
    prefixes = [("index." + e.removeprefix("index.")).rstrip("*").rstrip(".") for e in excluded]
    return {
        key: json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else str(value).lower()
        for key, value in flat.items()
        if any(key == p or (p.endswith(".") and key.startswith(p)) for p in SETTINGS_THAT_MATTER)
        and not any(key == p or key.startswith(p + ".") for p in prefixes)
    }


def source_hash(source: Any) -> str:
    return hashlib.sha256(json.dumps(source, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def wanted_reads(spec: MigrationSpec) -> Wanted:
    """What the plan's `validate:` section reads of each index (mappings also for the document sample)."""
    validate = spec.validate
    return Wanted(validate.doc_counts, bool(validate.mappings or validate.sample_docs > 0), validate.settings)


def batch_group(graph: nx.DiGraph, batch: str) -> list[tuple[str, str]]:
    """The (source, target) pairs of the open indices of restore batch `batch`, in the batch's order."""
    return [
        (member["source"], member["target"])
        for member in graph.nodes[batch]["params"]["members"]
        if not graph.nodes[restore_id(member["target"])]["params"].get("closed")
    ]


def batch_waves(graph: nx.DiGraph, batch: str) -> list[list[tuple[str, str]]]:
    """The open indices of restore batch `batch` (`batch_group`) in their validation waves (planner)."""
    return validation_waves(batch_group(graph, batch))


def batch_reads(spec: MigrationSpec, graph: nx.DiGraph, batch: str) -> list[ConsoleRequest]:
    """The joined validation reads of restore batch `batch` (migrator.steps.validation_reads), per wave of its
    open indices (planner.validation_waves), on both sides, as sent: listed among the batch step's checks and
    sent for it (none for a wave of one open index: it is read alone, by its own step)."""
    reads = []
    for group in batch_waves(graph, batch):
        if len(group) < 2:
            continue
        for cluster, names in (("source", [s for s, _ in group]), ("destination", [t for _, t in group])):
            for method, path, body in joined_reads(names, wanted_reads(spec)):
                reads.append(ConsoleRequest(cluster, method, path.lstrip("/"), body))
    return reads


class ValidateIndex(Step):
    kind = StepKind.VALIDATE
    title = "Validate the restored index against its source"
    waits_for = "nothing: counts, mappings, settings and sampled documents are read and compared"
    lasting = True

    def drift(self, recorded: dict[str, Any]) -> str | None:
        """The destination's count against the one validated (the index's counting `_search`, as validation reads
        it alone, or `_stats/docs` for a closed copy): the source may take writes after the migration, so it is
        not compared again."""
        validated, target = recorded.get("destination_docs"), self.params["target"]
        if validated is None:
            return None
        closed = bool(self.params.get("closed"))  # counted as validated: its last commit (`_stats/docs`)
        if closed:
            now = lucene_docs(self.ctx.destination, closed_count_read("destination", target))
        else:  # the read validation lists for the index alone (its checks)
            counts = Wanted(True, False, False)
            found = read_indices(self.ctx.destination, [target], counts)[target]
            now = int(completed(self.ctx.destination, target, found, counts).docs or 0)
        if now == validated:
            return None
        return f"{target} has {now} documents on the destination, {validated} when validated"

    def _seed(self) -> int:
        return int(hashlib.sha256(f"{self.ctx.snapshot}/{self.params['source']}".encode()).hexdigest()[:7], 16)

    def _sample_body(self) -> dict[str, Any]:
        """A `function_score` search of `sample_docs` documents in an order fixed by the seed: `random_score` on
        `_seq_no` from Elasticsearch 6.0 (OpenSearch included); 5.x knows no `field` there ("random_score query
        does not support [field]") and has no `_seq_no`: its `random_score` takes the seed alone (on `_uid`)."""
        random_score: dict[str, Any] = {"seed": self._seed()}
        if Version.parse(self.ctx.plan.facts.source.version).es_major >= 6:
            random_score["field"] = "_seq_no"
        random = {"random_score": random_score, "boost_mode": "replace"}
        return {
            "size": self.ctx.spec.validate.sample_docs,
            "query": {"function_score": {"query": {"match_all": {}}, **random}},
            "_source": True,
        }

    def _sample_read(self) -> ConsoleRequest:
        """`GET <source>/_search` of `sample_docs` documents picked at random (a seed fixed by the snapshot)."""
        return ConsoleRequest(
            "source", "GET", build_path(self.params["source"], "_search").lstrip("/"), self._sample_body()
        )

    def describe(self) -> list[ConsoleRequest]:
        """An index read alone (the cutover's, a closed one's, one outside any batch): its reads; an index of a
        batch: the document sample only (its counts, mappings and settings are checks, read with the batch's)."""
        return ([] if self._group() else self._alone()) + self._sample_shown()

    def checks(self) -> list[ConsoleRequest]:
        """An index of a batch: its reads alone (when the batch's joined read did not answer for it). The batch's
        joined reads are the restore batch step's checks (`batch_reads`): they are sent for the batch."""
        if not self._group():
            return []
        return [read.only_when("the batch's joined reads did not answer for this index") for read in self._alone()]

    def _alone(self) -> list[ConsoleRequest]:
        """This index's counts, mappings and settings read alone, on both sides (the cutover refreshes first)."""
        wanted, source, target = self._wanted(), self.params["source"], self.params["target"]
        reads: list[ConsoleRequest] = []
        if wanted.counts and self.params.get("cutover"):
            reads.append(refresh_request(source))
        for cluster, index in (("source", source), ("destination", target)):
            if wanted.counts and self.params.get("closed"):
                reads.append(closed_count_read(cluster, index))
            counts = wanted.counts and not self.params.get("closed")
            for method, path, body in joined_reads([index], Wanted(counts, wanted.mappings, wanted.settings)):
                reads.append(ConsoleRequest(cluster, method, path.lstrip("/"), body))
        return reads

    def _sample_shown(self) -> list[ConsoleRequest]:
        if not self.ctx.spec.validate.sample_docs or self.params.get("closed"):
            return []
        ids = [{"_id": "<each sampled id>", "routing": "<its routing, if any>"}]  # known when the sample is read
        return [self._sample_read(), mget_request(self.params["target"], ids)]

    def _wanted(self) -> Wanted:
        return wanted_reads(self.ctx.spec)

    def _group(self) -> list[tuple[str, str]]:
        """The (source, target) pairs of this index's validation wave (planner.validation_waves: open indices of
        its restore batch, in the batch's order), when this index is read with them (an open index of a bulk
        phase); else none."""
        batch = self.params.get("batch")
        if not batch or self.params.get("closed") or self.params.get("cutover"):
            return []
        member = (self.params["source"], self.params["target"])
        return self.ctx.validation_reads.wave(batch, member, partial(batch_waves, self.ctx.plan.graph))

    def _for_batch(self, *reads: Callable[[], T]) -> list[T]:
        """`reads` sent at once for this index's restore batch (the event log names the batch, whose checks list
        them: whichever member's validation asks first sends them)."""
        tap = self.ctx.requests
        step = tap.step
        tap.working_on(self.params["batch"])
        try:
            return tap.at_once(*reads)
        finally:
            tap.working_on(step)

    def _reads(self) -> Pair:
        """(source's reads, destination's reads) of this index's counts (unless closed: its last commit's, read
        below), mappings and settings: with its batch's (see migrator.steps.validation_reads) or alone."""
        source, target, wanted = self.params["source"], self.params["target"], self._wanted()
        clients = (self.ctx.source, self.ctx.destination)
        group = self._group()
        if group:
            both, joined = self.ctx.requests.at_once, self._for_batch
            return self.ctx.validation_reads.take(clients, both, joined, wanted, (source, target), group)
        if self.params.get("cutover") and wanted.counts:  # writes are blocked: make every accepted document countable
            refresh = refresh_request(source)
            self.ctx.source.request(refresh.method, refresh.sent_path)
        if self.params.get("closed"):
            wanted = Wanted(False, wanted.mappings, wanted.settings)
        found = self._both(
            lambda client, index: completed(client, index, read_indices(client, [index], wanted)[index], wanted)
        )
        return found[0], found[1]

    def observe(self) -> Observation:
        validate, target = self.ctx.spec.validate, self.params["target"]
        detail: dict[str, Any] = {"warnings": []}
        problems: list[str] = []
        reads = self._reads()
        if validate.doc_counts:
            problems += self._counts(detail, reads)
        mappings = [reads[0].mapping, reads[1].mapping] if validate.mappings or validate.sample_docs else None
        if validate.mappings and mappings is not None:
            found = differences(*(normalized_mapping(m) for m in mappings))
            detail["mapping_differences"] = len(found)
            if found:
                problems.append(f"mappings differ at {self._some(found)}")
        if validate.settings:
            problems += self._settings(detail, reads)
        if validate.sample_docs and mappings is not None:
            problems += self._documents(mappings[0], detail)
        if problems:
            raise StepFailed(f"{target}: " + "; ".join(problems))
        wanted = {"counts": validate.doc_counts, "mappings": validate.mappings, "settings": validate.settings}
        checks = [name for name, on in {**wanted, "sample": validate.sample_docs > 0}.items() if on]
        count = f"{detail['destination_docs']} documents, " if "destination_docs" in detail else ""
        if detail.get("source_docs") != detail.get("destination_docs"):
            checks.remove("counts")
            count += f"the source has {detail['source_docs']} now (still taking writes), "
        return Observation(True, summary=f"{count}{', '.join(checks) or 'nothing else'} equal", detail=detail)

    def _counts(self, detail: dict[str, Any], reads: Pair) -> list[str]:
        source, target = self.params["source"], self.params["target"]
        if self.params.get("closed"):  # a search cannot read a closed index; its last commit can be
            expected, actual = self.ctx.requests.at_once(
                *(
                    partial(lucene_docs, client, closed_count_read(cluster, index))
                    for cluster, client, index in self._named()
                )
            )
        else:
            expected, actual = int(reads[0].docs or 0), int(reads[1].docs or 0)  # read: counts are wanted
        detail.update(source_docs=expected, destination_docs=actual)
        if expected == actual:
            return []
        if self.params.get("counts") == "informational":
            detail["warnings"].append(
                f"{target} has {actual} documents, {source} {expected} now: the source still takes writes, "
                "the cutover phase makes them equal"
            )
            return []
        return [
            f"{target} has {actual} documents on the destination but {source} has {expected} on the source "
            "(writes since the snapshot? run the cutover phase, or delete the index and apply again)"
        ]

    def _settings(self, detail: dict[str, Any], reads: Pair) -> list[str]:
        excluded = [*self.ctx.spec.restore.index_settings, *self.ctx.spec.restore.ignore_index_settings]
        compared = [settings_that_matter(side.settings or {}, excluded) for side in reads]
        detail["settings_compared"] = sorted(set(compared[0]) | set(compared[1]))
        found = differences(compared[0], compared[1])
        return [f"settings differ: {self._some(found)}"] if found else []

    def _documents(self, source_mapping: dict[str, Any], detail: dict[str, Any]) -> list[str]:
        if self.params.get("closed"):
            detail["warnings"].append(
                f"{self.params['source']} is closed on the source: the document sample was skipped"
            )
            return []
        if str(source_mapping.get("_source", {}).get("enabled", True)).lower() == "false":
            detail["warnings"].append(f"{self.params['source']} stores no _source: the document sample was skipped")
            return []
        checked, mismatched = self._sample()
        detail["sample_checked"] = checked
        return (
            [f"sampled documents differ or are missing on the destination: {self._some(mismatched)}"]
            if mismatched
            else []
        )

    def _sides(self) -> list[tuple[EsClient, str]]:
        return [(client, index) for _, client, index in self._named()]

    def _named(self) -> list[tuple[str, EsClient, str]]:
        """(cluster label, client, index) of the source index and of the restored one."""
        return [
            ("source", self.ctx.source, self.params["source"]),
            ("destination", self.ctx.destination, self.params["target"]),
        ]

    def _both(self, read: Callable[[EsClient, str], T]) -> list[T]:
        """`read(client, index)` of the source index and of the destination index, sent at once: [source's, ...]."""
        return self.ctx.requests.at_once(*(partial(read, client, index) for client, index in self._sides()))

    @staticmethod
    def _some(items: list[str]) -> str:
        more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
        return ", ".join(items[:SHOWN]) + more

    def _sample(self) -> tuple[int, list[str]]:
        """Sampled documents checked, and the ids missing or different on the destination."""
        sample = self._sample_read()
        _, found = self.ctx.source.request(sample.method, sample.sent_path, sample.body)
        hits = found.get("hits", {}).get("hits", [])
        expected = {hit["_id"]: source_hash(hit.get("_source")) for hit in hits}
        mismatched: list[str] = []
        for start in range(0, len(hits), MGET_BATCH):
            docs = [
                {"_id": hit["_id"], **({"routing": hit["_routing"]} if "_routing" in hit else {})}
                for hit in hits[start : start + MGET_BATCH]
            ]
            fetch = mget_request(self.params["target"], docs)
            _, answer = self.ctx.destination.request(fetch.method, fetch.sent_path, fetch.body)
            for doc in answer.get("docs", []):
                if not doc.get("found") or source_hash(doc.get("_source")) != expected.get(doc["_id"]):
                    mismatched.append(doc["_id"])
        return len(hits), sorted(mismatched)
