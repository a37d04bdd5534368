"""replication (OSS cross-region replication), with canned answers of the source bucket's replication API:
the rule the dry run shows is the rule it adds; a covering rule is reused; the wait follows the rule's
progress until everything written before the step began is in the target, then records how far it got."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from migrator.clients.replication import ReplicationProgress, ReplicationRuleInfo
from migrator.spec import parse_plan
from migrator.steps.replication import Replicate
from tests.steps.fakes import Progress
from tests.test_planner_phases import replicated

LATER = datetime.now(UTC) + timedelta(hours=1)


class Rules:
    """The source bucket's rules and, per rule, the progress answers in the order OSS gives them."""

    def __init__(self, rules: list[ReplicationRuleInfo], progress: list[tuple[float | None, datetime | None]]) -> None:
        self.found = rules
        self.answers = progress
        self.added: list[tuple[str, str, str, str]] = []

    def rules(self) -> list[ReplicationRuleInfo]:
        return list(self.found)

    def ensure_rule(self, rule_id: str, prefix: str, target_bucket: str, target_location: str) -> ReplicationRuleInfo:
        self.added.append((rule_id, prefix, target_bucket, target_location))
        rule = ReplicationRuleInfo(rule_id, (prefix,), target_bucket, target_location, "starting", True, "ALL")
        self.found.append(rule)
        return rule

    def progress(self, rule_id: str) -> ReplicationProgress:
        historical, point = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return ReplicationProgress(rule_id, "doing", historical, point)


def step(rules: Rules) -> Replicate:
    sleeps: list[float | None] = []
    ctx = SimpleNamespace(
        spec=parse_plan(replicated("oss")),
        replication=lambda: rules,
        progress=Progress(),
        sleep=lambda seconds=None: sleeps.append(seconds),
        sleeps=sleeps,
    )
    return Replicate("replication", {}, ctx)


def test_the_rule_it_adds_is_the_rule_the_dry_run_shows_and_the_wait_ends_once_replicated():
    rules = Rules([], [(0.2, None), (0.6, None), (1.0, LATER)])
    replicate = step(rules)
    assert not replicate.observe().done
    replicate.act()
    [shown] = replicate.describe()
    [(rule_id, prefix, bucket, location)] = rules.added
    assert (rule_id, prefix, bucket, location) == ("migrator-unit", "repo/", "dst", "oss-cn-shanghai")
    assert shown.body == {
        "ID": rule_id,
        "PrefixSet": [prefix],
        "Action": "ALL",
        "Destination": {"Bucket": bucket, "Location": location},
        "HistoricalObjectReplication": "enabled",
    }
    assert shown.path == "oss://src/?replication&comp=add"
    assert replicate.wait() == {"rule_id": "migrator-unit", "replicated_up_to": LATER.isoformat()}
    assert len(replicate.ctx.sleeps) == 2  # polled until the third answer covered the step's start
    assert replicate.ctx.progress.updates[-1] == (100.0, 100)


def test_a_rule_that_covers_the_prefix_already_is_reused_and_done_once_it_replicated_everything():
    existing = ReplicationRuleInfo("theirs", ("",), "dst", "oss-cn-shanghai", "doing", True, "ALL")
    rules = Rules([existing], [(1.0, LATER)])
    observation = step(rules).observe()
    assert observation.done and observation.detail == {"rule_id": "theirs"}
    assert rules.added == []


def test_a_rule_still_copying_history_is_in_progress_not_done():
    existing = ReplicationRuleInfo("theirs", ("repo/",), "dst", "oss-cn-shanghai", "doing", True, "ALL")
    observation = step(Rules([existing], [(0.5, LATER)])).observe()
    assert not observation.done and observation.in_progress
