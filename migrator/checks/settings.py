"""Dry-run rule 6: the settings a plan passes to the restore (`restore.index_settings`,
`restore.ignore_index_settings`) that Elasticsearch refuses, and setting names it does not know.
"""

from __future__ import annotations

from migrator.checks.findings import Findings, full_setting, wildcard
from migrator.spec import MigrationSpec, Problem

# Elasticsearch's restore refuses to change these ("cannot modify setting [...] on restore") ...
UNMODIFIABLE = (
    "index.number_of_shards",
    "index.version.created",
    "index.uuid",
    "index.creation_date",
    "index.history.uuid",
    "index.soft_deletes.enabled",
)
# ... and to remove these as well ("cannot remove setting [...] on restore").
UNREMOVABLE = (*UNMODIFIABLE, "index.number_of_replicas", "index.auto_expand_replicas")
# Index settings Elasticsearch registers (its index modules' documentation); a name outside these is
# archived on restore (`archived.index.*`) and has no effect.
KNOWN_SETTINGS = {
    "index.number_of_replicas",
    "index.auto_expand_replicas",
    "index.refresh_interval",
    "index.codec",
    "index.hidden",
    "index.priority",
    "index.default_pipeline",
    "index.final_pipeline",
    "index.max_result_window",
    "index.max_inner_result_window",
    "index.max_rescore_window",
    "index.max_docvalue_fields_search",
    "index.max_script_fields",
    "index.max_ngram_diff",
    "index.max_shingle_diff",
    "index.max_refresh_listeners",
    "index.max_terms_count",
    "index.max_regex_length",
    "index.max_adjacency_matrix_filters",
    "index.max_slices_per_scroll",
    "index.gc_deletes",
    "index.load_fixed_bitset_filters_eagerly",
    "index.shard.check_on_startup",
    "index.routing_partition_size",
    "index.soft_deletes.retention_lease.period",
    "index.soft_deletes.retention.operations",
    "index.default_field",
    "index.frozen",
    "index.mode",
    "index.time_series.start_time",
    "index.time_series.end_time",
    "index.search.idle.after",
    "index.search.throttled",
    "index.query.default_field",
    "index.write.wait_for_active_shards",
    "index.verified_before_close",
    "index.provided_name",
    "index.format",
}
KNOWN_PREFIXES = (
    "index.analysis.",
    "index.similarity.",
    "index.routing.",
    "index.blocks.",
    "index.lifecycle.",
    "index.mapping.",
    "index.merge.",
    "index.search.slowlog.",
    "index.indexing.slowlog.",
    "index.translog.",
    "index.unassigned.",
    "index.store.",
    "index.queries.",
    "index.highlight.",
    "index.sort.",
    "index.shard.",
    "index.query.",
    "index.requests.",
    "index.recovery.",
    "index.fielddata.",
    "index.plugin.",
    "index.look_ahead_time",
    "index.time_series.",
    "index.soft_deletes.",
    "index.allocation.",
    "index.ccr.",
    "index.xpack.",
)


def restore_settings_findings(spec: MigrationSpec) -> Findings:
    """Rule 6: restore.index_settings and restore.ignore_index_settings Elasticsearch refuses on
    restore (problems) and setting names it does not know (warnings)."""
    found = Findings()
    for key in spec.restore.index_settings:
        full = full_setting(key)
        if full in UNMODIFIABLE:
            found.problems.append(
                Problem(
                    f"restore.index_settings.{key}",
                    f"Elasticsearch refuses to change {full} on restore (snapshot_restore_exception: cannot modify "
                    "setting)",
                    f"remove {key} from restore.index_settings (reindex on the destination to change it)",
                )
            )
        elif full not in KNOWN_SETTINGS and not full.startswith(KNOWN_PREFIXES):
            found.warnings.append(
                f"restore.index_settings.{key}: not an index setting Elasticsearch knows; the restored index "
                f"would keep it as archived.{full}, with no effect (check the spelling)"
            )
    for pattern in spec.restore.ignore_index_settings:
        matcher = wildcard(full_setting(pattern))
        refused = [name for name in UNREMOVABLE if matcher.fullmatch(name)]
        if refused:
            found.problems.append(
                Problem(
                    "restore.ignore_index_settings",
                    f"{pattern!r} would remove {', '.join(refused)}, which Elasticsearch refuses on restore "
                    "(snapshot_restore_exception: cannot remove setting)",
                    f"remove {pattern!r} from restore.ignore_index_settings (set a value with restore.index_settings)",
                )
            )
    return found
