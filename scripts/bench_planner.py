"""Benchmark: planning 10,000 indices / 50,000 shards from synthetic facts (no cluster needed).

The facts carry what the dry run's checks read (creation version, allocation settings, aliases, 20
data nodes). Prints wall time and peak memory of `build_plan` (plus the DAG's size), and, as the baseline
measured in the same run, the time to merely build the list of index names the plan selects.
Target (issue 3): at most 2 s and 300 MB.
"""

from __future__ import annotations

import resource
import time
import tracemalloc
from datetime import UTC, datetime

from migrator.discovery import ClusterFacts, Facts, IndexFacts, NodeFacts
from migrator.planner import build_plan, wildcard
from migrator.spec import parse_plan

INDICES = 10_000
SHARDS_PER_INDEX = 5

PLAN = """
name: bench
source: {url: "http://127.0.0.1:9200"}
destination: {url: "http://127.0.0.1:9201"}
repository: {name: bench, type: fs, settings: {location: /tmp/bench}}
storage: {kind: local, path: /tmp/bench}
snapshot: {indices: ["logs-*", "metrics-*"], exclude: ["logs-debug-*"]}
restore: {rename_pattern: "(.+)", rename_replacement: "restored-$1"}
"""


def synthetic_facts() -> Facts:
    indices = {}
    for number in range(INDICES):
        family = ("logs", "metrics", "logs-debug", ".system")[number % 4]
        name = f"{family}-{number:05d}"
        settings = {
            "index.routing.allocation.include._tier_preference": "data_content",
            "index.number_of_replicas": "1",
        }
        indices[name] = IndexFacts(
            name,
            "open",
            "green",
            1000 + number,
            10_000_000,
            10_000_000,
            SHARDS_PER_INDEX,
            "7172999",
            settings,
            [name[:4]],
        )
    source = ClusterFacts(url="http://127.0.0.1:9200", version="7.17.29", health="green", indices=indices)
    nodes = [NodeFacts(f"d{n}", "10.0.0.1", "10.0.0.1", ["data"], {"zone": "a"}, 10**14, 10**14) for n in range(20)]
    destination = ClusterFacts(
        url="http://127.0.0.1:9201",
        version="8.19.21",
        health="green",
        free_disk_bytes=10**15,
        data_nodes=nodes,
        max_shards_per_node=1000,
    )
    return Facts(source, destination)


def main() -> None:
    spec = parse_plan(PLAN)
    facts = synthetic_facts()
    started = time.perf_counter()
    matchers = [wildcard(p) for p in spec.snapshot.indices]
    baseline = [name for name in facts.source.indices if any(m.match(name) for m in matchers)]
    baseline_s = time.perf_counter() - started

    tracemalloc.start()
    started = time.perf_counter()
    plan = build_plan(spec, facts, datetime.now(UTC))
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"indices in facts        {INDICES} ({INDICES * SHARDS_PER_INDEX} shards)")
    print(
        f"indices planned         {len(plan.moves)} ({plan.total_shards} shards), DAG {plan.graph.number_of_nodes()} "
        f"nodes / {plan.graph.number_of_edges()} edges"
    )
    print(f"build_plan              {elapsed:.3f} s (target <= 2 s)")
    print(f"baseline: name matching {baseline_s:.3f} s ({len(baseline)} names); ratio {elapsed / baseline_s:.1f}x")
    print(f"peak traced memory      {peak / 2**20:.1f} MB (target <= 300 MB); process max RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
