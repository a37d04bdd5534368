"""The dry run's model of the destination: what Elasticsearch would refuse, predicted before anything changes.

Planner-side and pure (between discovery and the planner's DAG): each rule is one function of the
plan spec, the discovered facts (discovery.py) and the index moves the planner chose, and returns
`Findings` (problems refuse the plan with exit 2, warnings are shown): names.py (rules 1, 2),
indices.py (3, 4, 7), capacity.py (5), settings.py (6); rule 8 is discovery's count of documents.
The planner calls `check_plan` once its moves are known, and `closed_index_findings` while
selecting. Every message says what Elasticsearch would answer and the plan change or command that
fixes it. The facts come from Elasticsearch's own rules, checked against the test bed's 7.17, 8.19
and 9.5 nodes (see tests/checks/).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from migrator.checks.capacity import allocation_findings, capacity, capacity_findings
from migrator.checks.findings import Findings
from migrator.checks.indices import closed_index_findings, compatibility_findings, system_index_findings
from migrator.checks.names import clash_findings, target_name_findings
from migrator.checks.settings import restore_settings_findings
from migrator.discovery import Facts
from migrator.spec import MigrationSpec

if TYPE_CHECKING:
    from migrator.planner import IndexMove

__all__ = ["Findings", "capacity", "check_plan", "closed_index_findings"]


def check_plan(spec: MigrationSpec, facts: Facts, moves: list[IndexMove]) -> Findings:
    """Rules 1, 2, 3, 5, 6 and 7 over the planned moves (rule 4 runs during selection)."""
    found = Findings()
    for findings in _each_rule(spec, facts, moves):
        found.extend(findings)
    return found


def _each_rule(spec: MigrationSpec, facts: Facts, moves: list[IndexMove]) -> Iterable[Findings]:
    yield target_name_findings(spec, moves)
    yield clash_findings(spec, facts, moves)
    yield compatibility_findings(facts, moves)
    yield capacity_findings(spec, facts, moves)
    yield allocation_findings(spec, facts, moves)
    yield restore_settings_findings(spec)
    yield system_index_findings(moves, facts)
