"""Example data for the sandbox's source cluster: a few indices with real documents, via bulk.

`logs-2026.11.01` and `logs-2026.11.02` (matched by a wildcard), `logs-debug` (the sandbox plan
excludes it), `orders` (named), and `.sandbox-settings` (a `.`-prefixed index, left out unless a
plan lists it by name). Before 7.0 an index has a mapping type: `_doc` on 6.x, `doc` on 5.x (which
refuses names starting with `_`), named in the mappings and in each bulk action.
"""

from __future__ import annotations

import json
import random

from migrator.clients.es import EsClient, build_path

SEED_INDICES = ["logs-2026.11.01", "logs-2026.11.02", "logs-debug", "orders", ".sandbox-settings"]
BATCH = 1000
MAPPINGS = {
    "properties": {
        "timestamp": {"type": "date"},
        "level": {"type": "keyword"},
        "message": {"type": "text"},
        "amount": {"type": "double"},
        "host": {"type": "keyword"},
    }
}


def document(rng: random.Random, index: str, number: int) -> dict[str, object]:
    return {
        "timestamp": f"2026-11-{1 + number % 28:02d}T{number % 24:02d}:{number % 60:02d}:00Z",
        "level": rng.choice(["info", "warn", "error", "debug"]),
        "message": f"{index} event {number} " + " ".join(rng.choice(WORDS) for _ in range(8)),
        "amount": round(rng.uniform(0, 1000), 2),
        "host": f"host-{rng.randrange(16)}",
    }


WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "shard",
    "replica",
    "snapshot",
    "restore",
    "bucket",
    "region",
    "node",
    "index",
]


def mapping_type(major: int) -> str | None:
    """The mapping type the example indices get on an Elasticsearch major (None: typeless, 7.x+)."""
    if major >= 7:
        return None
    return "_doc" if major == 6 else "doc"


def seed_cluster(client: EsClient, docs: int) -> dict[str, int]:
    """Create (or top up) each example index to `docs` documents; returns index → count."""
    counts: dict[str, int] = {}
    doc_type = mapping_type(client.version().es_major)
    mappings = {doc_type: MAPPINGS} if doc_type else MAPPINGS
    action_extra = {"_type": doc_type} if doc_type else {}
    for index in SEED_INDICES:
        wanted = max(1, docs // 10) if index.startswith(".") else docs
        status, _ = client.request("HEAD", build_path(index), ok=(200, 404))
        if status == 404:
            client.request(
                "PUT",
                build_path(index),
                {
                    "settings": {"number_of_shards": 2 if index == "orders" else 1, "number_of_replicas": 0},
                    "mappings": mappings,
                },
            )
        rng = random.Random(index)
        for start in range(0, wanted, BATCH):
            lines = []
            for number in range(start, min(wanted, start + BATCH)):
                lines.append(json.dumps({"index": {"_index": index, "_id": str(number), **action_extra}}))
                lines.append(json.dumps(document(rng, index, number)))
            body = ("\n".join(lines) + "\n").encode()
            _, result = client.request("POST", build_path("_bulk"), body, timeout_s=120)
            if result.get("errors"):
                failed = next(item for item in result["items"] if item["index"].get("error"))
                raise RuntimeError(f"bulk into {index} failed: {failed['index']['error']}")
        client.request("POST", build_path(index, "_refresh"))
        counts[index] = client.doc_count(index)
    return counts
