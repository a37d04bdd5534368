"""The dry run: the whole plan for review, as text (requests in Kibana console form) or JSON.

Secrets are masked: the requests come from each step's `describe()`, which never resolves them.
"""

from __future__ import annotations

import json
from typing import Any

import networkx as nx

from migrator.planner import MigrationPlan
from migrator.steps.base import Step


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def plan_document(plan: MigrationPlan, steps: dict[str, Step]) -> dict[str, Any]:
    """The stable JSON form of a plan."""
    order = list(nx.topological_sort(plan.graph))
    return {
        "name": plan.spec.name,
        "plan_hash": plan.plan_hash,
        "snapshot": plan.snapshot,
        "repository": plan.spec.repository.name,
        "source": {"url": plan.facts.source.url, "version": plan.facts.source.version},
        "destination": {"url": plan.facts.destination.url, "version": plan.facts.destination.version},
        "indices": [
            {
                "source": move.source,
                "target": move.target,
                "docs": move.docs,
                "primary_bytes": move.primary_bytes,
                "primary_shards": move.primary_shards,
            }
            for move in plan.moves
        ],
        "skipped": plan.skipped,
        "totals": {"indices": len(plan.moves), "primary_bytes": plan.total_bytes, "primary_shards": plan.total_shards},
        "problems": [{"field": p.field, "message": p.message, "fix": p.fix} for p in plan.problems],
        "warnings": plan.warnings,
        "steps": [
            {
                "id": node,
                "title": steps[node].title,
                "after": sorted(plan.graph.predecessors(node)),
                "waits_for": steps[node].waits_for,
                "requests": [
                    {"cluster": r.cluster, "method": r.method, "path": r.path, "body": r.body}
                    for r in steps[node].describe()
                ],
            }
            for node in order
        ],
    }


def plan_text(plan: MigrationPlan, steps: dict[str, Step]) -> str:
    doc = plan_document(plan, steps)
    lines = [
        f"Plan {doc['name']} (hash {doc['plan_hash']})",
        f"  source       {doc['source']['url']}  Elasticsearch {doc['source']['version']}",
        f"  destination  {doc['destination']['url']}  Elasticsearch {doc['destination']['version']}",
        f"  snapshot     {doc['snapshot']} in repository {doc['repository']}",
        "",
        f"Indices to move: {len(plan.moves)} ({human_bytes(plan.total_bytes)}, {plan.total_shards} primary shards)",
    ]
    for move in plan.moves:
        lines.append(
            f"  {move.source} -> {move.target}   {move.docs} docs, {human_bytes(move.primary_bytes)}, "
            f"{move.primary_shards} shard(s)"
        )
    if plan.skipped:
        lines.append("Left out:")
        lines.extend(f"  {name}: {why}" for name, why in sorted(plan.skipped.items()))
    for warning in plan.warnings:
        lines.append(f"warning: {warning}")
    if plan.problems:
        lines.append("")
        lines.append("REFUSED, nothing will run:")
        lines.extend(f"  {p.field}: {p.message} (fix: {p.fix})" for p in plan.problems)
    lines.append("")
    lines.append("Steps:")
    for number, step in enumerate(doc["steps"], 1):
        after = f" (after {', '.join(step['after'])})" if step["after"] else ""
        lines.append(f"{number:>3}. {step['id']}: {step['title']}{after}")
        for request in step["requests"]:
            console = request["method"] + " " + request["path"].lstrip("/")
            lines.append(f"       [{request['cluster']}] {console}")
            if request["body"] is not None:
                lines.extend("       " + line for line in json.dumps(request["body"], indent=2).splitlines())
        if step["waits_for"]:
            lines.append(f"       waits for: {step['waits_for']}")
    return "\n".join(lines)


def graph_dot(graph: nx.DiGraph) -> str:
    lines = ["digraph migration {", "  rankdir=LR;"]
    lines.extend(f'  "{node}";' for node in nx.topological_sort(graph))
    lines.extend(f'  "{a}" -> "{b}";' for a, b in sorted(graph.edges))
    lines.append("}")
    return "\n".join(lines)


def graph_mermaid(graph: nx.DiGraph) -> str:
    ids = {node: f"n{i}" for i, node in enumerate(nx.topological_sort(graph))}
    lines = ["flowchart LR"]
    lines.extend(f'  {ids[node]}["{node}"]' for node in ids)
    lines.extend(f"  {ids[a]} --> {ids[b]}" for a, b in sorted(graph.edges))
    return "\n".join(lines)
