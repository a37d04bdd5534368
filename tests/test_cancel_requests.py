"""A cancel's requests come from one builder: the dry run's cancel advice shows, for each step, exactly the
requests `migrator cancel` sends there (the index being restored, then the run's snapshot), and the
snapshot's delete is the one `delete_snapshot_if_ours` sends."""

from __future__ import annotations

import migrator.migration.opened as migration_module
from migrator.migration.cancel_requests import cancel_requests, delete_index, delete_snapshot
from migrator.migration.opened import open_migration
from migrator.migration.review import review
from migrator.migration.undo import cancel_advice
from migrator.ownership import delete_snapshot_if_ours
from tests.render.conftest import BASE_INDICES, PLAN, SECRETS, facts
from tests.steps.fakes import FakeSource, context


def test_the_cancel_advice_of_each_step_is_what_the_cancel_sends_there(tmp_path, monkeypatch):
    monkeypatch.setattr(migration_module, "discover", lambda *args: facts(BASE_INDICES))
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    migration = open_migration(path, environ=SECRETS)
    try:
        plan = review(migration).plan
    finally:
        migration.close()
    restoring = {"restore[new-logs-a]": ["new-logs-a"], "recovery[new-logs-a]": ["new-logs-a"], "snapshot.wait": []}
    for node, targets in restoring.items():
        shown = [(r.cluster, r.method, "/" + r.path) for r in cancel_advice(plan, node).requests]
        sent = [(cluster, r.method, r.path) for cluster, r in cancel_requests("repo", "fixed-snap", targets)]
        assert shown == sent, node
    assert sent[-1] == ("source", "DELETE", "/_snapshot/repo/fixed-snap")
    assert delete_index("new-logs-a").path == "/new-logs-a"


def test_the_snapshot_delete_a_cancel_sends_is_the_one_built_here():
    source = FakeSource()
    ctx = context(source)
    source.taken_earlier(ctx, "snap-1", "SUCCESS")
    assert delete_snapshot_if_ours(source, ctx.ledger, "repo", "snap-1") == "deleted"
    deletes = [(method, path) for method, path, _ in source.requests if method == "DELETE"]
    built = delete_snapshot("repo", "snap-1")
    assert deletes == [(built.method, built.path)]
