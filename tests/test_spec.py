"""migrator.spec: the plan file schema, its refusals, secrets, env_file, storage derivation, examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.spec import (
    MigrationSpec,
    PlanError,
    SecretRef,
    UnsetSecretError,
    load_plan,
    parse_plan,
    plan_json_schema,
)

PLANS = Path(__file__).resolve().parents[1] / "plans"
LITERAL = "hunter2-not-a-reference"

FULL: dict[str, Any] = {
    "name": "full-plan",
    "env_file": "secrets.env",
    "source": {
        "url": "https://source.example.com:9200",
        "username": "elastic",
        "password": "${SRC_ES_PASSWORD}",
        "verify_tls": False,
        "ca_file": "/etc/ca.pem",
        "request_timeout_s": 45,
    },
    "destination": {"url": "http://127.0.0.1:19201", "api_key": "${DST_ES_API_KEY}"},
    "repository": {
        "name": "migrator_repo",
        "type": "oss",
        "settings": {
            "endpoint": "oss-cn-hangzhou-internal.aliyuncs.com",
            "bucket": "snapshots",
            "base_path": "es/move",
            "compress": True,
            "chunk_size": "500mb",
            "access_key_id": "${OSS_ACCESS_KEY_ID}",
            "secret_access_key": "${OSS_ACCESS_KEY_SECRET}",
            "security_token": "${OSS_STS_TOKEN}",
            "max_snapshot_bytes_per_sec": "40mb",
            "extra": {"max_retries": 3, "endpoint_token": "${OSS_EXTRA_TOKEN}"},
        },
        "destination_settings": {"endpoint": "oss-cn-shanghai-internal.aliyuncs.com"},
    },
    "storage": {
        "kind": "oss",
        "endpoint": "https://oss-cn-hangzhou.aliyuncs.com",
        "bucket": "snapshots",
        "base_path": "es/move",
        "access_key_id": "${OSS_ACCESS_KEY_ID}",
        "access_key_secret": "${OSS_ACCESS_KEY_SECRET}",
        "security_token": "${OSS_STS_TOKEN}",
        "signature": "v1",
    },
    "snapshot": {
        "name": "{name}-{date:%Y%m%d}",
        "indices": ["logs-*", "orders"],
        "exclude": ["logs-debug*"],
        "include_global_state": False,
        "partial": True,
        "ignore_unavailable": True,
    },
    "restore": {
        "rename_pattern": "(?<base>.+)",
        "rename_replacement": "restored-${base}",
        "index_settings": {"index.number_of_replicas": 0, "index.refresh_interval": "30s"},
        "ignore_index_settings": ["index.routing.allocation.require._name"],
        "include_aliases": True,
        "if_exists": "skip",
        "parallel": 4,
    },
    "validate": {"doc_counts": False},
    "finish": {
        "replicas": 1,
        "aliases": {"orders-current": ["orders"]},
        "delete_snapshot": True,
        "unregister_repositories": True,
    },
}

SECRET_FIELDS = [
    "source.password",
    "destination.api_key",
    "repository.settings.access_key_id",
    "repository.settings.secret_access_key",
    "repository.settings.security_token",
    "storage.access_key_id",
    "storage.access_key_secret",
    "storage.security_token",
]


def plan(**changes: Any) -> dict[str, Any]:
    """FULL with dotted-path changes (a value of None deletes the key)."""
    document = copy.deepcopy(FULL)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return document


def refusal(document: Any) -> PlanError:
    with pytest.raises(PlanError) as caught:
        parse_plan(yaml.safe_dump(document))
    return caught.value


def fields(error: PlanError) -> list[str]:
    return [problem.field for problem in error.problems]


# -- a valid plan -------------------------------------------------------------------------------------


def test_full_plan_round_trips_and_keeps_only_references() -> None:
    spec = parse_plan(yaml.safe_dump(FULL))
    dumped = spec.model_dump(mode="json", by_alias=True)
    assert parse_plan(yaml.safe_dump(dumped)) == spec
    assert dumped["source"]["password"] == "${SRC_ES_PASSWORD}"
    assert dumped["repository"]["settings"]["extra"] == {"max_retries": 3, "endpoint_token": "${OSS_EXTRA_TOKEN}"}
    assert spec.validate.doc_counts is False
    assert spec.restore.if_exists == "skip" and spec.restore.parallel == 4
    assert spec.storage_spec().region == "cn-hangzhou"
    canonical = spec.canonical_json()
    validate = {"doc_counts": False, "mappings": True, "settings": True, "sample_docs": 0}
    assert json.loads(canonical)["validate"] == validate
    reordered = dict(reversed(list(FULL.items())))
    assert parse_plan(yaml.safe_dump(reordered, sort_keys=False)).canonical_json() == canonical


def test_defaults_of_a_minimal_plan() -> None:
    spec = parse_plan(
        "name: mini\nsource: {url: 'http://a:9200'}\ndestination: {url: 'http://b:9200'}\n"
        "repository: {type: fs, settings: {location: /srv/repo}}\nstorage: {kind: local, path: /srv/repo}\n"
        "snapshot: {indices: [orders]}\n"
    )
    assert spec.repository.name == "migrator"
    assert spec.snapshot.name == "{name}-{date:%Y.%m.%d-%H%M%S}"
    assert spec.restore.index_settings == {"index.number_of_replicas": 0}
    assert spec.restore.if_exists == "fail" and spec.restore.parallel == 2 and spec.validate.doc_counts
    assert spec.finish.replicas is None and spec.source.verify_tls and spec.source.request_timeout_s == 30


def test_repository_settings_for_each_side() -> None:
    spec = parse_plan(yaml.safe_dump(FULL))
    source = spec.repository.settings_dict()
    assert source["endpoint"] == "oss-cn-hangzhou-internal.aliyuncs.com"
    assert source["access_key_id"] == SecretRef("OSS_ACCESS_KEY_ID")
    assert source["max_retries"] == 3 and source["endpoint_token"] == SecretRef("OSS_EXTRA_TOKEN")
    assert "location" not in source
    assert spec.repository.destination_settings_dict() == {"endpoint": "oss-cn-shanghai-internal.aliyuncs.com"}


def test_validation_and_estimate_sections() -> None:
    spec = parse_plan(yaml.safe_dump(plan(validate={"sample_docs": 25}, estimate={"throughput_mb_s": 12.5})))
    assert spec.validate.sample_docs == 25 and spec.validate.mappings and spec.validate.settings
    assert spec.estimate.throughput_mb_s == 12.5
    assert parse_plan(yaml.safe_dump(plan(estimate=None))).estimate.throughput_mb_s == 50
    nothing = {"doc_counts": False, "mappings": False, "settings": False}
    assert not parse_plan(yaml.safe_dump(plan(validate=nothing))).validate.enabled
    assert parse_plan(yaml.safe_dump(plan(validate={**nothing, "sample_docs": 1}))).validate.enabled
    assert fields(refusal(plan(estimate={"throughput_mb_s": 0}))) == ["estimate.throughput_mb_s"]
    assert fields(refusal(plan(validate={"sample_docs": -1}))) == ["validate.sample_docs"]
    assert fields(refusal(plan(estimate={"mb_s": 3}))) == ["estimate.mb_s"]


# -- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SECRET_FIELDS)
def test_a_literal_secret_is_refused_naming_the_field_and_never_echoed(path: str) -> None:
    error = refusal(plan(**{path.replace(".", "__"): LITERAL}))
    assert fields(error) == [path]
    assert "${" in error.problems[0].fix and "environment variable" in error.problems[0].fix
    assert LITERAL not in str(error)


def test_a_reference_must_name_an_environment_variable() -> None:
    error = refusal(plan(source__password="${lower-case}"))
    assert fields(error) == ["source.password"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"nmae": "x"}, "nmae"),
        ({"source__user": "x"}, "source.user"),
        ({"repository__settings__readonly": True}, "repository.settings.readonly"),
        ({"repository__destination_settings__region": "x"}, "repository.destination_settings.region"),
        ({"storage__bucketname": "x"}, "storage.bucketname"),
        ({"restore__rename": "x"}, "restore.rename"),
        ({"validate__doc_count": True}, "validate.doc_count"),
        ({"finish__alias": {}}, "finish.alias"),
    ],
)
def test_unknown_fields_are_refused_at_every_depth(changes: dict[str, Any], field: str) -> None:
    error = refusal(plan(**changes))
    assert fields(error) == [field]
    assert "unknown field" in error.problems[0].message


def test_unknown_field_fix_lists_the_allowed_ones() -> None:
    fix = refusal(plan(validate__doc_count=True)).problems[0].fix
    assert "doc_counts" in fix
    assert "readonly" in refusal(plan(repository__settings__readonly=True)).problems[0].fix


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"restore__rename_pattern": "(unclosed"}, "restore.rename_pattern", "unclosed group"),
        ({"restore__rename_replacement": "v8-$2"}, "restore.rename_replacement", "no group 2"),
        ({"restore__rename_replacement": None}, "restore.rename_replacement", "without"),
        ({"snapshot__name": "{nam}-x"}, "snapshot.name", "placeholder"),
        ({"snapshot__name": "snap {date}"}, "snapshot.name", "refuses"),
        ({"snapshot__name": "_{name}"}, "snapshot.name", "refuses"),
        ({"snapshot__indices": None}, "snapshot.indices", "missing"),
        ({"snapshot__indices": []}, "snapshot.indices", "at least 1"),
        ({"snapshot__indices": ["a,b"]}, "snapshot.indices[0]", "index name"),
        ({"source__url": None}, "source.url", "missing"),
        ({"source__url": "ftp://x"}, "source.url", "url"),
        ({"name": None}, "name", "missing"),
        ({"name": "Upper"}, "name", "plan name"),
        ({"source__password": None}, "source.password", "without a password"),
        ({"destination__username": "elastic"}, "destination.password", "without a password"),
        ({"source__api_key": "${K}"}, "source.api_key", "cannot be combined"),
        ({"restore__if_exists": "overwrite"}, "restore.if_exists", "'fail' or 'skip'"),
        ({"restore__parallel": 0}, "restore.parallel", "greater than or equal"),
        ({"restore__parallel": 33}, "restore.parallel", "less than or equal"),
        ({"repository__settings__chunk_size": "big"}, "repository.settings.chunk_size", "byte size"),
        ({"repository__settings__bucket": None}, "repository.settings.bucket", "needs bucket"),
        ({"repository__settings__extra": {"readonly": True}}, "repository.settings.extra.readonly", "readonly"),
        ({"storage__kind": "s3"}, "storage.kind", "'oss' or 'local'"),
        ({"storage__path": "/x"}, "storage.path", "kind local"),
        ({"finish__aliases": {"x": ["not-selected"]}}, "finish.aliases.x[0]", "not selected"),
        ({"finish__replicas": -1}, "finish.replicas", "greater than or equal"),
        ({"waits__stall_after": "soon"}, "waits.stall_after", "like 15m, 90s or 1h"),
        ({"waits__stall_after": 0}, "waits.stall_after", "greater than 0"),
    ],
)
def test_refusals_name_the_dotted_field(changes: dict[str, Any], field: str, words: str) -> None:
    error = refusal(plan(**changes))
    assert field in fields(error), str(error)
    assert words.lower() in str(error).lower()
    assert all(problem.fix for problem in error.problems)


def test_plan_error_lists_every_problem_one_per_line() -> None:
    error = refusal(plan(nmae="x", source__password=LITERAL, restore__if_exists="maybe"))
    lines = str(error).splitlines()
    assert len(lines) == 3
    assert all(line.count(": ") >= 1 and "(fix: " in line for line in lines)
    assert {line.split(":")[0] for line in lines} == {"nmae", "source.password", "restore.if_exists"}


def test_storage_is_required_unless_derivable() -> None:
    error = refusal(plan(storage=None, repository={"type": "fs", "settings": {"location": "/x"}}))
    assert fields(error) == ["storage"]
    no_region = refusal(plan(storage=None, repository__settings__endpoint="http://127.0.0.1:9000"))
    assert fields(no_region) == ["storage"] and "region" in str(no_region)
    no_keys = plan(storage=None)
    del no_keys["repository"]["settings"]["access_key_id"], no_keys["repository"]["settings"]["secret_access_key"]
    no_keys["repository"]["settings"]["ecs_ram_role"] = "EsSnapshotRole"
    assert fields(refusal(no_keys)) == ["storage"]


# -- loading ------------------------------------------------------------------------------------------


def test_load_plan_problems_are_plan_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PlanError, match="does not exist"):
        load_plan(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nsource: {url: [\n")
    with pytest.raises(PlanError, match=r"invalid YAML at line \d+"):
        load_plan(broken)
    for text, words in [("- a list\n", "mapping"), ("", "mapping"), ("name: a\nname: b\n", "duplicate key")]:
        with pytest.raises(PlanError, match=words):
            parse_plan(text)


# -- secrets ------------------------------------------------------------------------------------------


def test_secret_ref_resolves_and_never_shows_a_value() -> None:
    ref = SecretRef("SRC_ES_PASSWORD")
    assert ref.resolve({"SRC_ES_PASSWORD": "s3cret"}) == "s3cret"
    assert str(ref) == "${SRC_ES_PASSWORD}" and repr(ref) == "SecretRef('SRC_ES_PASSWORD')"
    with pytest.raises(UnsetSecretError, match="SRC_ES_PASSWORD") as caught:
        ref.resolve({})
    assert caught.value.env == "SRC_ES_PASSWORD"
    with pytest.raises(ValueError):
        SecretRef("lower")
    spec = parse_plan(yaml.safe_dump(FULL))
    assert spec.source.password == ref
    assert "s3cret" not in repr(spec) + str(spec) + spec.canonical_json()
    assert "${SRC_ES_PASSWORD}" in spec.canonical_json()


def test_env_file_values_are_overlaid_by_the_environment(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text(
        "# comment\n"
        "SRC_ES_PASSWORD=from-file\n"
        "export OSS_ACCESS_KEY_ID='quoted # not a comment'\n"
        'OSS_ACCESS_KEY_SECRET="double \\n quoted"  # a comment\n'
        "DST_ES_API_KEY=plain value # trailing comment\n"
        "\n"
    )
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(FULL))
    spec = load_plan(tmp_path / "plan.yaml")
    environment = spec.environment(tmp_path, {"SRC_ES_PASSWORD": "from-env", "OTHER": "x"})
    assert environment["SRC_ES_PASSWORD"] == "from-env"
    assert environment["OSS_ACCESS_KEY_ID"] == "quoted # not a comment"
    assert environment["OSS_ACCESS_KEY_SECRET"] == "double \n quoted"
    assert environment["DST_ES_API_KEY"] == "plain value"
    assert environment["OTHER"] == "x"
    assert spec.storage_spec().access_key_id.resolve(environment) == "quoted # not a comment"


def test_env_file_problems_never_echo_values(tmp_path: Path) -> None:
    spec = parse_plan(yaml.safe_dump(FULL))
    with pytest.raises(PlanError) as missing:
        spec.environment(tmp_path, {})
    assert fields(missing.value) == ["env_file"]
    (tmp_path / "secrets.env").write_text("this line has a secret-value but no equals sign\nOK='unclosed\n")
    with pytest.raises(PlanError) as broken:
        spec.environment(tmp_path, {})
    assert len(broken.value.problems) == 2
    assert "secret-value" not in str(broken.value) and "unclosed" not in str(broken.value)


# -- storage derivation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("oss-cn-hangzhou-internal.aliyuncs.com", "cn-hangzhou"),
        ("http://oss-cn-hangzhou.aliyuncs.com", "cn-hangzhou"),
        ("https://oss-ap-southeast-1-internal.aliyuncs.com", "ap-southeast-1"),
        ("vpc100-oss-cn-beijing.aliyuncs.com", "cn-beijing"),
    ],
)
def test_storage_is_derived_from_oss_settings(endpoint: str, region: str) -> None:
    spec = parse_plan(yaml.safe_dump(plan(storage=None, repository__settings__endpoint=endpoint)))
    storage = spec.storage_spec()
    assert (storage.kind, storage.endpoint, storage.region, storage.signature) == ("oss", endpoint, region, "v4")
    assert (storage.bucket, storage.base_path) == ("snapshots", "es/move")
    assert storage.access_key_id == SecretRef("OSS_ACCESS_KEY_ID")
    assert storage.access_key_secret == SecretRef("OSS_ACCESS_KEY_SECRET")
    assert storage.security_token == SecretRef("OSS_STS_TOKEN")


def test_explicit_storage_wins_and_v4_needs_a_region() -> None:
    spec = parse_plan(yaml.safe_dump(FULL))
    assert spec.storage_spec().endpoint == "https://oss-cn-hangzhou.aliyuncs.com"
    local = parse_plan(yaml.safe_dump(plan(storage={"kind": "local", "path": "/srv/repo"})))
    assert (local.storage_spec().kind, local.storage_spec().path) == ("local", "/srv/repo")
    error = refusal(plan(storage__endpoint="http://127.0.0.1:9000", storage__signature="v4"))
    assert fields(error) == ["storage.region"]


def test_json_schema_describes_the_plan() -> None:
    schema = plan_json_schema()
    json.dumps(schema)
    assert {"name", "source", "destination", "repository", "snapshot", "validate"} <= set(schema["properties"])
    cluster = schema["$defs"]["ClusterSpec"]["properties"]
    assert cluster["password"]["anyOf"][0]["pattern"] == r"^\$\{[A-Z_][A-Z0-9_]*\}$"
    assert schema["$defs"]["RepositorySettings"]["additionalProperties"] is False


# -- example plans ------------------------------------------------------------------------------------


def test_example_plans_load() -> None:
    same_region = load_plan(PLANS / "alibaba-same-region.yaml")
    assert same_region.storage is None and same_region.repository.type == "oss"
    storage = same_region.storage_spec()
    assert storage.region == "cn-hangzhou" and "internal" in (storage.endpoint or "")
    assert storage.access_key_id == SecretRef("OSS_ACCESS_KEY_ID")
    assert storage.access_key_secret == SecretRef("OSS_ACCESS_KEY_SECRET")

    upgrade = load_plan(PLANS / "upgrade-7-to-8-rename.yaml")
    assert (upgrade.restore.rename_pattern, upgrade.restore.rename_replacement) == ("(.+)", "v8-$1")
    assert upgrade.restore.include_aliases and upgrade.finish.replicas == 1
    assert upgrade.finish.aliases["orders"] == ["orders"]


# -- never anything but PlanError ----------------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["${X}", "${}", "${lower}", "{name}", "(", "$1", "oss", "local", "fail", "*", "http://h:1"]),
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def _mutated_plans(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(FULL)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            document = draw(_DOCUMENTS)
            continue
        *parents, last = path
        node = document
        for part in parents:
            node = node[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del node[last]
        elif action == "add" and isinstance(node[last], dict):
            node[last][draw(st.text(max_size=8))] = draw(_DOCUMENTS)
        else:
            node[last] = draw(_DOCUMENTS)
        if not isinstance(document, dict):
            break
    return document


def _only_plan_errors(text: str) -> None:
    try:
        assert isinstance(parse_plan(text), MigrationSpec)
    except PlanError as error:
        assert error.problems and all(p.field and p.message and p.fix for p in error.problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_DOCUMENTS, _mutated_plans()))
def test_any_document_gives_a_spec_or_plan_error(document: Any) -> None:
    _only_plan_errors(yaml.safe_dump(document))


_YAML_TOKENS = [*":-[]{}&*!|>'\"%@`#,? \n\tabc01$", "name: ", "source:", "\n  url: ", "!!python/object ", "<<: "]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(_YAML_TOKENS), max_size=30).map("".join)))
def test_any_text_gives_a_spec_or_plan_error(text: str) -> None:
    _only_plan_errors(text)


def test_waits_stall_after_takes_a_duration_and_defaults_to_15_minutes() -> None:
    assert parse_plan(yaml.safe_dump(plan())).waits.stall_after == 900
    assert parse_plan(yaml.safe_dump(plan(waits__stall_after="90s"))).waits.stall_after == 90
    assert parse_plan(yaml.safe_dump(plan(waits__stall_after="1h"))).waits.stall_after == 3600
    assert parse_plan(yaml.safe_dump(plan(waits__stall_after=30))).waits.stall_after == 30


# -- metadata: the templates that travel with the data ------------------------------------------------


def test_metadata_section_defaults_and_choices() -> None:
    default = parse_plan(yaml.safe_dump(plan())).metadata
    assert (default.templates, default.if_exists, default.legacy_as) == ("matching", "fail", "legacy")
    chosen = parse_plan(
        yaml.safe_dump(plan(metadata={"templates": ["logs", "metrics-*"], "if_exists": "overwrite"}))
    ).metadata
    assert chosen.templates == ["logs", "metrics-*"] and chosen.if_exists == "overwrite"
    assert parse_plan(yaml.safe_dump(plan(metadata={"templates": "none"}))).metadata.templates == "none"


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"templates": []}, "metadata.templates"),
        ({"templates": "all"}, "metadata.templates"),
        ({"if_exists": "replace"}, "metadata.if_exists"),
        ({"legacy_as": "v2"}, "metadata.legacy_as"),
    ],
)
def test_metadata_section_refusals_name_the_field(section: dict[str, Any], field: str) -> None:
    error = refusal(plan(metadata=section))
    assert fields(error) == [field]
    assert error.problems[0].fix
