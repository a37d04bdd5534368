"""The dry run for review: the plan as text, JSON (a stable schema), a Markdown runbook, and its DAG
(Graphviz dot, Mermaid).

Everything comes from a `migration.Review`: the requests are each step's `describe()` and
`checks()`, in the Kibana console form the Alibaba Cloud document uses, with secrets as `******`
(steps never resolve them to describe themselves); discovery's requests are the ones the dry run
itself sent. The JSON form is documented in docs/state-and-plan-json.md.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import networkx as nx

from migrator.checks import capacity
from migrator.migration.review import Review
from migrator.render.units import human_bytes, human_seconds
from migrator.steps.base import ConsoleRequest, Step

SCHEMA = "migrator.plan/v1"
WHERE = {
    "source": "on the source (Kibana console of the source cluster)",
    "destination": "on the destination (Kibana console of the destination cluster)",
}


def expected(estimate: dict[str, Any]) -> str:
    return (
        f"{human_seconds(estimate['total_seconds'])} at {estimate['throughput_mb_s']:g} MB/s (snapshot "
        f"{human_seconds(estimate['snapshot_seconds'])}, restore {human_seconds(estimate['restore_seconds'])})"
    )


def request_json(request: ConsoleRequest) -> dict[str, Any]:
    """A request in the plan's JSON form: cluster, method, path, body, and `when` for a conditional one."""
    return request.as_json()


def step_requests(step: Step) -> list[ConsoleRequest]:
    """What the step sends, then what it reads beyond that (each request once)."""
    requests = list(step.describe())
    requests.extend(r for r in step.checks() if r not in requests)
    return requests


def plan_document(review: Review) -> dict[str, Any]:
    """The stable JSON form of a plan (schema `migrator.plan/v1`, documented in docs/state-and-plan-json.md)."""
    plan, estimate = review.plan, review.estimate
    order = list(nx.topological_sort(plan.graph))
    facts = plan.facts
    return {
        "schema": SCHEMA,
        "name": plan.spec.name,
        "plan_hash": plan.plan_hash,
        "snapshot": plan.snapshot,
        "repository": plan.spec.repository.name,
        "source": {"url": facts.source.url, "version": facts.source.version, "health": facts.source.health},
        "destination": {
            "url": facts.destination.url,
            "version": facts.destination.version,
            "health": facts.destination.health,
        },
        "indices": [
            {
                "source": move.source,
                "target": move.target,
                "docs": move.docs,
                "primary_bytes": move.primary_bytes,
                "primary_shards": move.primary_shards,
                "expected_seconds": estimate["per_index_seconds"][move.target],
                "status": facts.source.indices[move.source].status,
                "version_created": facts.source.indices[move.source].version_created,
            }
            for move in plan.moves
        ],
        "skipped": plan.skipped,
        "totals": {
            "indices": len(plan.moves),
            "docs": sum(move.docs for move in plan.moves),
            "primary_bytes": plan.total_bytes,
            "primary_shards": plan.total_shards,
        },
        "estimate": {key: value for key, value in estimate.items() if key != "per_index_seconds"},
        "capacity": capacity(plan.spec, facts, plan.moves),
        "problems": [{"field": p.field, "message": p.message, "fix": p.fix} for p in plan.problems],
        "warnings": plan.warnings,
        "discovery": [request_json(r) for r in review.discovery],
        "run": review.run,
        "steps": [
            {
                "id": node,
                "kind": plan.graph.nodes[node]["kind"],
                "phase": plan.graph.nodes[node].get("phase", "bulk"),
                "title": review.steps[node].title,
                "after": sorted(plan.graph.predecessors(node)),
                "waits_for": review.steps[node].waits_for,
                "requests": [request_json(r) for r in review.steps[node].describe()],
                "checks": [request_json(r) for r in review.steps[node].checks()],
                "cancel": {
                    "note": review.cancel[node].note,
                    "requests": [request_json(r) for r in review.cancel[node].requests],
                },
            }
            for node in order
        ],
        "graph": {"nodes": order, "edges": [list(edge) for edge in sorted(plan.graph.edges)]},
    }


def plan_text(review: Review) -> str:
    doc = plan_document(review)
    plan, estimate = review.plan, review.estimate
    lines = [
        f"Plan {doc['name']} (hash {doc['plan_hash']})",
        f"  source       {doc['source']['url']}  Elasticsearch {doc['source']['version']}",
        f"  destination  {doc['destination']['url']}  Elasticsearch {doc['destination']['version']}",
        f"  snapshot     {doc['snapshot']} in repository {doc['repository']}",
        *([run_line(review.run)] if review.run else []),
        "",
        f"Indices to move: {len(plan.moves)} ({human_bytes(plan.total_bytes)}, {plan.total_shards} primary shards)",
    ]
    for move in plan.moves:
        closed = ", closed" if plan.facts.source.indices[move.source].status == "close" else ""
        lines.append(
            f"  {move.source} -> {move.target}   {move.docs} docs, {human_bytes(move.primary_bytes)}, "
            f"{move.primary_shards} shard(s){closed}"
        )
    lines.append(f"Expected duration: {expected(estimate)}")
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
    cutover_shown = False
    for number, node in enumerate(doc["graph"]["nodes"], 1):
        step = review.steps[node]
        after = sorted(plan.graph.predecessors(node))
        if plan.graph.nodes[node].get("phase") == "cutover" and not cutover_shown:
            lines.append(
                "  -- phase two, the cutover (apply --phase cutover): the source refuses writes from here on --"
            )
            cutover_shown = True
        lines.append(f"{number:>3}. {node}: {step.title}" + (f" (after {', '.join(after)})" if after else ""))
        lines.extend("       " + line for line in step_text(step).splitlines())
    return "\n".join(lines)


def run_line(run: dict[str, Any]) -> str:
    """The recorded run of this plan, in one line: its targets and snapshot are its own, not collisions."""
    return (
        f"  run          {run['status']} since {run['started']} ({run['steps_done']}/{run['steps']} steps done, "
        f"state {run['state_file']}): its snapshot and targets are its own"
    )


def step_text(step: Step) -> str:
    """One step's requests (cluster, console form) and what it waits for, for a terminal."""
    lines = []
    for request in step_requests(step):
        if request.when:
            lines.append(f"# only when {request.when}")
        always = replace(request, when="")
        shown = f"{request.method} {request.path}" if request.cluster == "storage" else always.console()
        lines.append(f"[{request.cluster}] {shown}")
    if step.waits_for:
        lines.append(f"waits for: {step.waits_for}")
    return "\n".join(lines)


def plan_markdown(review: Review) -> str:
    """The runbook a reviewer approves: every request in Kibana console form, what each step waits
    for, how to cancel at each step, and the estimates."""
    plan, estimate = review.plan, review.estimate
    facts = plan.facts
    out = [
        f"# Migration runbook: {plan.spec.name}",
        "",
        "| | |",
        "|---|---|",
        f"| Plan hash | `{plan.plan_hash}` |",
        f"| Source | {facts.source.url} (Elasticsearch {facts.source.version}, {facts.source.health}) |",
        f"| Destination | {facts.destination.url} (Elasticsearch {facts.destination.version}, "
        f"{facts.destination.health}) |",
        f"| Snapshot | `{plan.snapshot}` in repository `{plan.spec.repository.name}` |",
        f"| Expected duration | {human_seconds(estimate['total_seconds'])} at {estimate['throughput_mb_s']:g} MB/s |",
        *([f"| Run | {run_line(review.run).split(maxsplit=1)[1]} |"] if review.run else []),
        "",
        "Every request `migrator apply` sends is listed below in the Kibana console form, under the step",
        "that sends it; secrets are shown as `******`. Each step first reads (its checks), then sends only",
        "what is missing. To stop at any point: `migrator cancel PLAN`, which sends the requests listed",
        "under the step the run is at.",
        "",
        "## Indices",
        "",
        "| source | target | documents | primary size | primary shards | expected |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for move in plan.moves:
        out.append(
            f"| `{move.source}` | `{move.target}` | {move.docs} | {human_bytes(move.primary_bytes)} | "
            f"{move.primary_shards} | {human_seconds(estimate['per_index_seconds'][move.target])} |"
        )
    out.append(
        f"| **total: {len(plan.moves)}** | | {sum(m.docs for m in plan.moves)} | {human_bytes(plan.total_bytes)} | "
        f"{plan.total_shards} | {human_seconds(estimate['total_seconds'])} |"
    )
    out += [
        "",
        f"Expected duration: {expected(estimate)}, from `estimate.throughput_mb_s`; data transfer only:",
        "registrations, verification and polling add seconds.",
    ]
    out += ["", *capacity_markdown(capacity(plan.spec, facts, plan.moves))]
    if plan.skipped:
        out += ["", "## Left out", ""]
        out.extend(f"- `{name}`: {why}" for name, why in sorted(plan.skipped.items()))
    if plan.warnings:
        out += ["", "## Warnings", ""]
        out.extend(f"- {warning}" for warning in plan.warnings)
    if plan.problems:
        out += ["", "## REFUSED: nothing will run", ""]
        out.extend(f"- `{p.field}`: {p.message} (fix: {p.fix})" for p in plan.problems)
    out += ["", "## Discovery (read-only)", ""]
    if review.saved:
        out.append("These requests were sent when the plan was saved; `apply` sends them again to check it.")
    else:
        out.append("This dry run sent these requests to read both clusters; `apply` sends them again to plan.")
    out += console_blocks(review.discovery)
    out += ["", "## Steps"]
    cutover_shown = False
    for number, node in enumerate(nx.topological_sort(plan.graph), 1):
        if plan.graph.nodes[node].get("phase") == "cutover" and not cutover_shown:
            out += [
                "",
                "## Phase two: the cutover (`migrator apply PLAN --phase cutover`)",
                "",
                "From the first step below, the source refuses writes until the aliases point at the destination.",
                "`migrator rollback PLAN` undoes it: aliases off the destination first, then writes back on.",
            ]
            cutover_shown = True
        out += ["", *_step_markdown(review, node, number)]
    return "\n".join(out) + "\n"


def capacity_markdown(figures: dict[str, Any]) -> list[str]:
    """The runbook's capacity check: shards and bytes the plan adds against what the destination takes."""

    def verdict(ok: bool | None) -> str:
        return "unknown" if ok is None else "ok" if ok else "**too many**"

    limit, room = figures["shard_limit"], figures["bytes_room"]
    shards_ok = None if limit is None else figures["shards_now"] + figures["shards_added"] <= limit
    bytes_ok = None if room is None else figures["bytes_needed"] <= room
    return [
        f"## Destination capacity ({figures['data_nodes']} data node(s))",
        "",
        "| | the plan adds | the destination has | it takes | |",
        "|---|--:|--:|--:|---|",
        f"| shards (replicas included) | {figures['shards_added']} | {figures['shards_now']} | "
        f"{'?' if limit is None else limit} (cluster.max_shards_per_node x data nodes) | {verdict(shards_ok)} |",
        f"| bytes (replicas included) | {human_bytes(figures['bytes_needed'])} | | "
        f"{'?' if room is None else human_bytes(room)} {figures['room_is']} | {verdict(bytes_ok)} |",
    ]


def _step_markdown(review: Review, node: str, number: int) -> list[str]:
    step, graph = review.steps[node], review.plan.graph
    after = ", ".join(f"`{pred}`" for pred in sorted(graph.predecessors(node))) or "nothing (first step)"
    out = [f"### {number}. `{node}`: {step.title}", "", f"After: {after}.", ""]
    sends = step.describe()
    checks = [r for r in step.checks() if r not in sends]
    storage = [r for r in sends if r.cluster == "storage"]
    if storage:
        out.append("Reads the repository itself with oss2 (or from its folder), not through Elasticsearch:")
        out.extend(f"- {r.method} {r.path}" for r in storage)
        out.append("")
    console = [r for r in sends if r.cluster != "storage"]
    if console:
        out.append("Requests:")
        out += console_blocks(console)
        out.append("")
    if checks:
        out.append("Checks (read-only, sent before acting and while waiting):")
        out += console_blocks(checks)
        out.append("")
    out.append(f"Waits for: {step.waits_for or 'nothing'}.")
    out.append("")
    cancel = review.cancel[node]
    out.append(f"To cancel at this step: `migrator cancel PLAN` {cancel.note}" + (":" if cancel.requests else "."))
    if cancel.requests:
        out += console_blocks(cancel.requests)
    return out


def console_blocks(requests: list[ConsoleRequest]) -> list[str]:
    """Requests grouped per cluster, each group one fenced block in Kibana console form."""
    out: list[str] = []
    groups: list[tuple[str, list[ConsoleRequest]]] = []
    for request in requests:
        if groups and groups[-1][0] == request.cluster:
            groups[-1][1].append(request)
        else:
            groups.append((request.cluster, [request]))
    for cluster, members in groups:
        out += ["", f"{WHERE.get(cluster, cluster)}:", "", "```"]
        out.append("\n\n".join(member.console() for member in members))
        out.append("```")
    return out


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
