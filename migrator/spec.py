"""The plan file a user writes (YAML), validated with pydantic v2 into a :class:`MigrationSpec`.

Place in the flow: **plan spec** → planner → DAG → executor → steps → clients → state.  Everything a
migration needs to know is here, checked before anything is sent to a cluster: every model refuses
unknown fields, secrets are only ever ``${ENV_VAR}`` references (the spec keeps the reference, never the
value), the rename rule is compiled with Elasticsearch's own semantics (:mod:`migrator.rename`), and
every problem comes back as a :class:`PlanError` naming the dotted field, what is wrong and the fix.

Over 400 lines: one pydantic model per plan section, each field with the description `migrator schema`
prints; the cross-section validators need them side by side.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from migrator.errors import PlanError, Problem
from migrator.rename import RenameError, RenameRule

__all__ = [
    "ClusterSpec",
    "EstimateSpec",
    "CutoverSpec",
    "ReplicationSpec",
    "FinishSpec",
    "MigrationSpec",
    "PlanError",
    "Problem",
    "RepositorySettings",
    "RepositorySpec",
    "RestoreSpec",
    "SecretRef",
    "SnapshotSpec",
    "StorageSpec",
    "UnsetSecretError",
    "ValidateSpec",
    "load_plan",
    "parse_plan",
    "plan_json_schema",
]

_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_PLAN_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_BYTE_SIZE = re.compile(r"(?:\d+(?:\.\d+)?\s*(?:b|k|kb|m|mb|g|gb|t|tb|p|pb)|0|-1)", re.IGNORECASE)
_OSS_REGION = re.compile(r"(?:https?://)?(?:vpc\d+-)?oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com/?", re.IGNORECASE)
_DATE_PLACEHOLDER = re.compile(r"\{date(?::([^}]*))?\}")
_NAME_PLACEHOLDER = "{name}"
_SNAPSHOT_FORBIDDEN = set(' ,"*\\<|>/?#')
_SAMPLE_DATES = (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))
_GENERIC_FIX = "see `migrator schema` for the expected shape"


# -- problems (PlanError and Problem live in migrator.errors) -----------------------------------------


class UnsetSecretError(LookupError):
    """A ``${VAR}`` reference whose variable is set neither in the environment nor in the env_file."""

    def __init__(self, env: str) -> None:
        super().__init__(f"environment variable {env} is not set")
        self.env = env


def _invalid(message: str, fix: str, field: str = "") -> PydanticCustomError:
    """A validation error carrying its fix (and a sub-field, for checks made by a parent model)."""
    return PydanticCustomError("plan", "{message}", {"message": message, "fix": fix, "field": field})


# -- secrets ------------------------------------------------------------------------------------------


class SecretRef:
    """A reference to a secret in an environment variable, written ``${NAME}`` in the plan.

    The spec only ever holds the variable's name: ``str()``, ``repr()`` and serialisation show the
    reference, and :meth:`resolve` reads the value when it is needed.
    """

    __slots__ = ("env",)

    def __init__(self, env: str) -> None:
        if not _ENV_NAME.fullmatch(env):
            raise ValueError(f"{env!r} is not an environment variable name ([A-Z_][A-Z0-9_]*)")
        self.env = env

    def resolve(self, environ: Mapping[str, str]) -> str:
        """The secret's value, or UnsetSecretError naming the variable."""
        if self.env not in environ:
            raise UnsetSecretError(self.env)
        return environ[self.env]

    def __str__(self) -> str:
        return f"${{{self.env}}}"

    def __repr__(self) -> str:
        return f"SecretRef({self.env!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and other.env == self.env

    def __hash__(self) -> int:
        return hash(("SecretRef", self.env))

    @classmethod
    def _validate(cls, value: object) -> SecretRef:
        if isinstance(value, SecretRef):
            return value
        reference = _REFERENCE.fullmatch(value) if isinstance(value, str) else None
        if reference is None:
            raise PydanticCustomError("secret_literal", "a literal secret is not allowed here", {})
        if not _ENV_NAME.fullmatch(reference.group(1)):
            raise _invalid(
                "the reference does not name an environment variable",
                "write ${NAME} with NAME made of A-Z, 0-9 and _ (not starting with a digit)",
            )
        return cls(reference.group(1))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": r"^\$\{[A-Z_][A-Z0-9_]*\}$",
            "description": "a secret: ${ENV_VAR}, never the value itself",
        }


# -- small field types --------------------------------------------------------------------------------


def _plan_name(value: str) -> str:
    if not _PLAN_NAME.fullmatch(value):
        raise _invalid(
            "not a valid plan name",
            "use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit",
        )
    return value


def _byte_size(value: str) -> str:
    if not _BYTE_SIZE.fullmatch(value.strip()):
        raise _invalid("not a byte size", 'write a number with a unit, like "500mb" or "40mb"')
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("not an http(s) URL", "write the cluster's address, like https://es.example.com:9200")
    return value


def _index_expression(value: str) -> str:
    if not value or any(c.isspace() or c == "," for c in value):
        raise _invalid("not an index name or pattern", "write one name or wildcard per list item, like logs-*")
    return value


def _scalar(value: object) -> str | int | float | bool | SecretRef:
    if isinstance(value, str) and _REFERENCE.fullmatch(value):
        return SecretRef._validate(value)
    if isinstance(value, str | int | float | bool | SecretRef):
        return value
    raise _invalid("must be a string, a number or a boolean", "write a single value")


PlanName = Annotated[str, AfterValidator(_plan_name)]


MAX_PARALLEL = 32  # restore.parallel: steps running at once


def byte_count(value: str) -> int:
    """A byte size of the plan ("20gb", "500mb", "0") in bytes, 1024 to a unit as Elasticsearch counts;
    -1 (no limit, for throttles) stays -1."""
    number, unit = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*([a-z]*)", value.strip().lower()).groups()  # type: ignore[union-attr]
    return int(float(number) * 1024 ** "bkmgtp".index((unit or "b")[0]))


ByteSize = Annotated[str, AfterValidator(_byte_size)]
ClusterUrl = Annotated[str, AfterValidator(_http_url)]
IndexExpression = Annotated[str, AfterValidator(_index_expression)]
Scalar = Annotated[  # a setting's value; "${VAR}" makes it a SecretRef
    str | int | float | bool | SecretRef,
    PlainValidator(_scalar),
    PlainSerializer(lambda value: str(value) if isinstance(value, SecretRef) else value),
    WithJsonSchema({"type": ["string", "integer", "number", "boolean"]}),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# -- clusters -----------------------------------------------------------------------------------------


class ClusterSpec(_Model):
    """How to reach one Elasticsearch cluster."""

    url: ClusterUrl = Field(description="the cluster's http(s) URL")
    username: str | None = Field(None, description="basic authentication user (needs password)")
    password: SecretRef | None = Field(None, description="basic authentication password, ${ENV_VAR}")
    api_key: SecretRef | None = Field(None, description="API key (instead of username/password), ${ENV_VAR}")
    verify_tls: bool = Field(True, description="verify the cluster's TLS certificate")
    ca_file: Path | None = Field(None, description="CA bundle to verify the certificate with")
    request_timeout_s: float = Field(30, gt=0, allow_inf_nan=False, description="seconds to wait for one request")

    @model_validator(mode="after")
    def _credentials(self) -> ClusterSpec:
        if self.username is not None and self.password is None:
            raise _invalid("username is set without a password", "add password: ${ENV_VAR}", "password")
        if self.password is not None and self.username is None:
            raise _invalid("password is set without a username", "add username", "username")
        if self.api_key is not None and self.username is not None:
            raise _invalid(
                "api_key cannot be combined with username/password",
                "keep either api_key or username and password",
                "api_key",
            )
        return self


# -- repository ---------------------------------------------------------------------------------------


class RepositorySettings(_Model):
    """Settings of the snapshot repository, passed to Elasticsearch (secrets resolved at the last moment)."""

    endpoint: str | None = Field(None, description="OSS endpoint, e.g. oss-cn-hangzhou-internal.aliyuncs.com")
    bucket: str | None = Field(None, description="OSS bucket")
    base_path: str | None = Field(None, description="folder of the repository in the bucket")
    compress: bool | None = Field(None, description="compress metadata files")
    chunk_size: ByteSize | None = Field(None, description='split large files into parts, e.g. "500mb"')
    access_key_id: SecretRef | None = Field(None, description="AccessKey ID, ${ENV_VAR}")
    secret_access_key: SecretRef | None = Field(None, description="AccessKey secret, ${ENV_VAR}")
    security_token: SecretRef | None = Field(None, description="STS token, ${ENV_VAR}")
    ecs_ram_role: str | None = Field(None, description="RAM role of the ECS instances (instead of keys)")
    location: str | None = Field(None, description="folder of an fs repository")
    max_snapshot_bytes_per_sec: ByteSize | None = Field(None, description='snapshot throttle, e.g. "40mb"')
    max_restore_bytes_per_sec: ByteSize | None = Field(None, description='restore throttle, e.g. "40mb"')
    extra: dict[str, Scalar] = Field(default_factory=dict, description="any other repository setting")

    @field_validator("extra")
    @classmethod
    def _extra_keys(cls, extra: dict[str, Any]) -> dict[str, Any]:
        for key in extra:
            if key == "readonly":
                raise _invalid("readonly is set by migrator", "remove it", key)
            if key in cls.model_fields:
                raise _invalid(f"{key} has its own field", f"write it as {key}: beside extra", key)
        return extra

    def as_dict(self) -> dict[str, Any]:
        """The settings that are set (SecretRef values unresolved), extra ones included."""
        named = {name: getattr(self, name) for name in type(self).model_fields if name != "extra"}
        return {**{k: v for k, v in named.items() if v is not None}, **self.extra}


class RepositorySpec(_Model):
    """The snapshot repository both clusters register (read-write on the source, read-only on the other)."""

    name: str = Field("migrator", min_length=1, description="repository name in Elasticsearch")
    type: str = Field("oss", min_length=1, description="repository type passed to Elasticsearch: oss, fs, s3...")
    settings: RepositorySettings = Field(default_factory=RepositorySettings)
    destination_settings: RepositorySettings = Field(
        default_factory=RepositorySettings,
        description="overrides for the destination's registration (e.g. its region's internal endpoint)",
    )

    @field_validator("name")
    @classmethod
    def _repository_name(cls, name: str) -> str:
        if name.startswith("_") or any(c in _SNAPSHOT_FORBIDDEN or c.isspace() for c in name):
            raise _invalid("not a valid repository name", 'avoid spaces, a leading "_" and ,"*\\<|>/?#')
        return name

    @model_validator(mode="after")
    def _type_settings(self) -> RepositorySpec:
        settings = self.settings
        if self.type == "oss":
            for required in ("endpoint", "bucket"):
                if getattr(settings, required) is None:
                    raise _invalid(f"an oss repository needs {required}", f"add {required}", f"settings.{required}")
            if (settings.access_key_id is None) != (settings.secret_access_key is None):
                missing = "secret_access_key" if settings.secret_access_key is None else "access_key_id"
                raise _invalid("an AccessKey needs both its ID and its secret", f"add {missing}", f"settings.{missing}")
        if self.type == "fs" and settings.location is None:
            raise _invalid("an fs repository needs location", "add location", "settings.location")
        return self

    def settings_dict(self) -> dict[str, Any]:
        """Settings for the source registration (SecretRef values unresolved)."""
        return self.settings.as_dict()

    def destination_settings_dict(self) -> dict[str, Any]:
        """Only the destination's overrides, to merge over :meth:`settings_dict`."""
        return self.destination_settings.as_dict()


# -- storage (how migrator itself reads the repository) ------------------------------------------------


def _oss_region(endpoint: str) -> str | None:
    """The region of an Alibaba Cloud OSS endpoint like oss-cn-hangzhou(-internal).aliyuncs.com."""
    found = _OSS_REGION.fullmatch(endpoint.strip())
    return found.group(1).lower() if found else None


class StorageSpec(_Model):
    """How migrator reads the repository itself: an OSS bucket (oss2) or a local folder."""

    kind: Literal["oss", "local"] = Field(description="oss: read the bucket; local: read a folder")
    endpoint: str | None = Field(None, description="oss: endpoint reachable from where migrator runs")
    bucket: str | None = Field(None, description="oss: bucket")
    base_path: str | None = Field(None, description="oss: folder of the repository in the bucket")
    region: str | None = Field(None, description="oss: region (derived from an aliyuncs.com endpoint)")
    access_key_id: SecretRef | None = Field(None, description="oss: AccessKey ID, ${ENV_VAR}")
    access_key_secret: SecretRef | None = Field(None, description="oss: AccessKey secret, ${ENV_VAR}")
    security_token: SecretRef | None = Field(None, description="oss: STS token, ${ENV_VAR}")
    signature: Literal["v4", "v1"] = Field("v4", description="oss: request signature version")
    path: str | None = Field(None, description="local: the repository's root folder")

    @property
    def location(self) -> str:
        """Where the repository lives, as messages and the dry run name it: oss://bucket/base_path, or the folder."""
        if self.kind == "oss":
            return f"oss://{self.bucket}/{(self.base_path or '').strip('/')}"
        return str(self.path)

    @model_validator(mode="after")
    def _kind_fields(self) -> StorageSpec:
        oss_fields = ("endpoint", "bucket", "base_path", "region", "access_key_id", "access_key_secret")
        if self.kind == "local":
            if self.path is None:
                raise _invalid("local storage needs path", "add path: the repository's root folder", "path")
            for name in (*oss_fields, "security_token"):
                if getattr(self, name) is not None:
                    raise _invalid(f"{name} is for kind oss", "remove it", name)
            return self
        if self.path is not None:
            raise _invalid("path is for kind local", "remove it", "path")
        for name in ("endpoint", "bucket", "access_key_id", "access_key_secret"):
            if getattr(self, name) is None:
                raise _invalid(f"oss storage needs {name}", f"add {name}", name)
        if self.region is None:
            self.region = _oss_region(self.endpoint or "")
        if self.region is None and self.signature == "v4":
            raise _invalid(
                "the region cannot be told from this endpoint and v4 signing needs it",
                "add region (e.g. cn-hangzhou)",
                "region",
            )
        return self


class ReplicationSpec(_Model):
    """Cross-region: the destination reads its own region's bucket, filled from the source's."""

    method: Literal["oss", "copy"] = Field(
        "oss",
        description="oss: OSS cross-region replication of the repository's prefix (server side, any size); "
        "copy: migrator copies exactly the blobs the snapshot needs (parallel, resumable, CRC64-checked; "
        "for small snapshots)",
    )
    storage: StorageSpec = Field(description="the destination's bucket as migrator reaches it (same base_path)")
    rule_id: str | None = Field(None, description="oss: the replication rule's ID [default: migrator-<plan name>]")
    workers: int = Field(8, ge=1, le=64, description="copy: blobs copied at once")


# -- snapshot, restore, validation, finish -------------------------------------------------------------


def _template_leftover(template: str) -> str:
    return _DATE_PLACEHOLDER.sub("", template).replace(_NAME_PLACEHOLDER, "")


def render_snapshot_name(template: str, plan_name: str, when: datetime) -> str:
    def date(match: re.Match[str]) -> str:
        return when.strftime(match.group(1) or "%Y.%m.%d")

    return _DATE_PLACEHOLDER.sub(date, template).replace(_NAME_PLACEHOLDER, plan_name).lower()


class SnapshotSpec(_Model):
    """The snapshot taken on the source."""

    name: str = Field(
        "{name}-{date:%Y.%m.%d-%H%M%S}",
        description="template: {name} is the plan name, {date:<strftime>} the run's start (UTC)",
    )
    indices: list[IndexExpression] = Field(min_length=1, description="indices to migrate; wildcards allowed")
    exclude: list[IndexExpression] = Field(default_factory=list, description="indices or wildcards to leave out")
    include_global_state: bool = Field(False, description="also snapshot the cluster state")
    partial: bool = Field(False, description="accept a snapshot missing unavailable shards")
    ignore_unavailable: bool = Field(False, description="skip patterns that match nothing")
    closed_indices: Literal["refuse", "restore_closed", "skip"] = Field(
        "refuse",
        description="a selected index that is closed on the source: refuse the plan naming it (the default), "
        "restore_closed (restored, validated from what a closed index shows, closed again) or skip it",
    )

    @field_validator("name")
    @classmethod
    def _template(cls, template: str) -> str:
        leftover = _template_leftover(template)
        if "{" in leftover or "}" in leftover:
            raise _invalid("unknown placeholder in the snapshot name", "use only {name} and {date:<strftime>}")
        return template


_NO_REPLICAS: dict[str, Scalar] = {"index.number_of_replicas": 0}  # restore.index_settings when the plan sets none


class RestoreSpec(_Model):
    """How the destination restores each index."""

    rename_pattern: str | None = Field(None, description="Java regex matched against each index name")
    rename_replacement: str | None = Field(None, description="replacement, with $1 / ${name} group references")
    index_settings: dict[str, Scalar] = Field(
        default_factory=lambda: _NO_REPLICAS.copy(), description="settings changed on restore"
    )
    ignore_index_settings: list[str] = Field(default_factory=list, description="settings dropped on restore")
    include_aliases: bool = Field(False, description="restore the aliases of the restored indices")
    if_exists: Literal["fail", "skip"] = Field("fail", description="a target index that already exists")
    parallel: int = Field(2, ge=1, le=MAX_PARALLEL, description="restores running at once")
    # 250: while one request's batch recovers, the next request must wait behind it with enough shards queued to
    # cover the cluster-state update of the request sent when the first answers (docs/performance.md, "Many indices").
    batch_indices: int = Field(
        250, ge=1, le=1000, description="indices one restore request moves at most (one cluster-state update each)"
    )
    batch_size: ByteSize = Field(
        "20gb", description='primary bytes one restore request moves at most, e.g. "20gb" (a larger index goes alone)'
    )

    @field_validator("batch_size")
    @classmethod
    def _batch_size(cls, value: str) -> str:
        if byte_count(value) <= 0:
            raise _invalid("a batch must be allowed some bytes", 'write a positive size, like "20gb"')
        return value

    @property
    def batch_bytes(self) -> int:
        """`batch_size` in bytes (units of 1024, as Elasticsearch reads them)."""
        return byte_count(self.batch_size)

    @model_validator(mode="after")
    def _rename(self) -> RestoreSpec:
        try:
            RenameRule(self.rename_pattern, self.rename_replacement)
        except RenameError as exc:
            raise _invalid(str(exc), "fix the rename rule (Java regex syntax)", f"rename_{exc.part}") from None
        return self


class ValidateSpec(_Model):
    """Checks after each restore (read-only requests on both clusters)."""

    doc_counts: bool = Field(True, description="compare document counts of source and restored index")
    mappings: bool = Field(True, description="compare mappings (modulo what a newer version changes by itself)")
    settings: bool = Field(True, description="compare the settings that matter (shards, analysis, sort...)")
    sample_docs: int = Field(
        0, ge=0, le=10_000, description="compare this many documents by id and source hash (0: none)"
    )

    @property
    def enabled(self) -> bool:
        """Whether there is anything to check (the planner adds a validate step per index only then)."""
        return self.doc_counts or self.mappings or self.settings or self.sample_docs > 0


class EstimateSpec(_Model):
    """How the dry run estimates the duration."""

    throughput_mb_s: float = Field(
        50, gt=0, allow_inf_nan=False, description="MB/s the snapshot and the restore each move data at"
    )


class FinishSpec(_Model):
    """What to do once every index is restored."""

    replicas: int | None = Field(None, ge=0, description="set index.number_of_replicas on restored indices")
    aliases: dict[str, list[IndexExpression]] = Field(
        default_factory=dict, description="alias -> source index names; the alias points at their restored names"
    )
    delete_snapshot: bool = Field(False, description="delete the snapshot at the end")
    unregister_repositories: bool = Field(False, description="unregister the repository from both clusters")

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, aliases: dict[str, list[str]]) -> dict[str, list[str]]:
        for alias, sources in aliases.items():
            if not alias or any(c.isspace() or c in _SNAPSHOT_FORBIDDEN for c in alias):
                raise _invalid("not a valid alias name", 'avoid spaces and ,"*\\<|>/?#', alias)
            if not sources:
                raise _invalid("an alias needs at least one source index", "list source index names", alias)
        return aliases


class CutoverSpec(_Model):
    """Two phases: the bulk copy while the source takes writes, then a short write freeze to cut over."""

    enabled: bool = Field(
        False,
        description="apply copies the data while the source keeps taking writes; `apply --phase cutover` then "
        "blocks writes on the source, restores an incremental snapshot over the destination indices, checks the "
        "counts are exactly equal and switches finish.aliases to the destination",
    )


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h)?", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def _seconds(value: Any) -> Any:
    """`15m`, `90s`, `1h` or a number of seconds -> seconds; another string is refused naming the fix (other
    types are left for pydantic to judge)."""
    if isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        return float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "s").lower()]
    if isinstance(value, str):
        raise _invalid(f"{value!r} is not a duration", "write it like 15m, 90s or 1h (or a number of seconds)")
    return value


class WaitsSpec(_Model):
    """How long migrator follows something that does not move before it stops and says so."""

    stall_after: Annotated[float, BeforeValidator(_seconds)] = Field(
        900,
        gt=0,
        allow_inf_nan=False,
        description="seconds (or 15m, 1h) without progress after which a wait (snapshot, restore, recovery, "
        "replication, cutover) stops, naming what did not move",
    )


class MetadataSpec(_Model):
    """The index templates, ingest pipelines and ILM policies that travel with the data (see `migrator.templates`
    and `migrator.pipelines`)."""

    templates: str | list[IndexExpression] = Field(
        "matching",
        description="matching: the legacy and composable templates whose patterns match a migrated index (with "
        "the component templates they compose); none: no template; or a list of template names (wildcards allowed)",
    )
    if_exists: Literal["fail", "skip", "overwrite"] = Field(
        "fail", description="a template, pipeline or policy of the same name and another body on the destination"
    )
    legacy_as: Literal["legacy", "composable"] = Field(
        "legacy", description="legacy templates on a 7.8+ destination: kept legacy, or converted to composable"
    )
    pipelines: Literal["named", "none"] = Field(
        "named",
        description="named: the ingest pipelines the migrated indices and moved templates name "
        "(index.default_pipeline, index.final_pipeline), with those their pipeline processors call; none: no pipeline",
    )
    policies: Literal["named", "none"] = Field(
        "named",
        description="named: the ILM policies the migrated indices and moved templates name "
        "(index.lifecycle.name); none: no policy",
    )

    @field_validator("templates")
    @classmethod
    def _templates(cls, templates: str | list[str]) -> str | list[str]:
        if isinstance(templates, list) and not templates:
            raise _invalid("an empty list moves no template", "write templates: none, or list template names")
        if isinstance(templates, str) and templates not in ("matching", "none"):
            raise _invalid(
                f"{templates!r} is not a choice", "write matching, none, or a list of template names (a YAML list)"
            )
        return templates


# -- the plan -----------------------------------------------------------------------------------------


class MigrationSpec(_Model):
    """A whole plan file."""

    name: PlanName = Field(description="the plan's name: [a-z0-9][a-z0-9_.-]*")
    env_file: str | None = Field(None, description="dotenv file (relative to the plan) for ${VAR} not set")
    source: ClusterSpec
    destination: ClusterSpec
    repository: RepositorySpec
    storage: StorageSpec | None = Field(None, description="optional for type oss: derived from its settings")
    snapshot: SnapshotSpec
    restore: RestoreSpec = Field(default_factory=RestoreSpec)
    validation: ValidateSpec = Field(default_factory=ValidateSpec, alias="validate")
    finish: FinishSpec = Field(default_factory=FinishSpec)
    cutover: CutoverSpec = Field(default_factory=CutoverSpec)
    replication: ReplicationSpec | None = Field(
        None, description="cross-region: the destination's repository is another bucket, replicated from the source's"
    )
    estimate: EstimateSpec = Field(default_factory=EstimateSpec)
    waits: WaitsSpec = Field(default_factory=WaitsSpec)
    metadata: MetadataSpec = Field(default_factory=MetadataSpec)

    @property
    def validate(self) -> ValidateSpec:  # type: ignore[override]  # the plan's `validate:` section
        return self.validation

    @model_validator(mode="after")
    def _cross_checks(self) -> MigrationSpec:
        if self.storage is None:
            derived = self._derived_storage()
            if isinstance(derived, Problem):
                raise _invalid(derived.message, derived.fix, derived.field)
        for when in _SAMPLE_DATES:
            try:
                rendered = render_snapshot_name(self.snapshot.name, self.name, when)
            except ValueError:
                raise _invalid("bad strftime format", "fix the {date:...} format", "snapshot.name") from None
            if (
                not rendered
                or rendered.startswith("_")
                or len(rendered.encode()) > 255
                or any(c.isspace() or c in _SNAPSHOT_FORBIDDEN for c in rendered)
            ):
                raise _invalid(
                    f"gives the snapshot name {rendered!r}, which Elasticsearch refuses",
                    'keep it 1 to 255 bytes, without a leading "_", spaces or ,"*\\<|>/?#',
                    "snapshot.name",
                )
        if self.replication is not None:
            problem = self._replication_problem()
            if problem is not None:
                raise _invalid(problem.message, problem.fix, problem.field)
        selected = [_wildcard(p) for p in self.snapshot.indices]
        for alias, sources in self.finish.aliases.items():
            for position, source in enumerate(sources):
                if not any(p.fullmatch(source) for p in selected):
                    raise _invalid(
                        f"{source!r} is not selected by snapshot.indices",
                        "list only migrated source indices",
                        f"finish.aliases.{alias}[{position}]",
                    )
        return self

    def _replication_problem(self) -> Problem | None:
        """A cross-region plan must make the destination read the replica, and OSS replication keeps keys as
        they are: the replica has the same base_path in another bucket."""
        replication, repository = self.replication, self.repository
        assert replication is not None
        replica = replication.storage
        destination = repository.destination_settings
        if repository.type == "fs" and destination.location is None:
            return Problem(
                "repository.destination_settings.location",
                "a replicated repository is read from another place: the destination would read the source's folder",
                "set repository.destination_settings.location to the replica's folder",
            )
        if repository.type != "fs" and replica.kind == "oss" and destination.bucket != replica.bucket:
            return Problem(
                "repository.destination_settings.bucket",
                f"the destination must read the replica bucket {replica.bucket!r}",
                f"set repository.destination_settings.bucket: {replica.bucket} (and its region's endpoint)",
            )
        if replication.method == "copy":
            return None
        source = self.storage if self.storage is not None else self._derived_storage()
        if isinstance(source, Problem) or source.kind != "oss" or replica.kind != "oss":
            return Problem(
                "replication.method",
                "OSS cross-region replication needs both repositories in OSS buckets (storage and replication.storage "
                "of kind oss)",
                "use method: copy, or give both storages kind: oss",
            )
        if (source.base_path or "").strip("/") != (replica.base_path or "").strip("/"):
            return Problem(
                "replication.storage.base_path",
                "OSS replication keeps object keys as they are: the replica's base_path must be the source's",
                f"set replication.storage.base_path: {source.base_path or '(empty)'}",
            )
        if source.bucket == replica.bucket:
            return Problem("replication.storage.bucket", "a bucket cannot replicate to itself", "name the other bucket")
        return None

    def _derived_storage(self) -> StorageSpec | Problem:
        repository = self.repository
        if repository.type != "oss":
            return Problem(
                "storage",
                f"required for a repository of type {repository.type!r}",
                "add storage: {kind: local, path: ...} or {kind: oss, ...} to say where migrator reads it",
            )
        settings = repository.settings
        for name in ("endpoint", "bucket", "access_key_id", "secret_access_key"):
            if getattr(settings, name) is None:
                return Problem(
                    "storage",
                    f"cannot be derived: repository.settings.{name} is not set",
                    "add storage: {kind: oss, endpoint, bucket, access_key_id, access_key_secret, ...}",
                )
        endpoint = settings.endpoint or ""
        if _oss_region(endpoint) is None:
            return Problem(
                "storage",
                f"cannot be derived: no region in the endpoint {endpoint!r}",
                "add storage: {kind: oss, ..., region: ...}",
            )
        return StorageSpec(
            kind="oss",
            endpoint=endpoint,
            bucket=settings.bucket,
            base_path=settings.base_path,
            access_key_id=settings.access_key_id,
            access_key_secret=settings.secret_access_key,
            security_token=settings.security_token,
        )

    def storage_spec(self) -> StorageSpec:
        """The explicit storage section, or the one derived from the oss repository settings."""
        if self.storage is not None:
            return self.storage
        derived = self._derived_storage()
        if isinstance(derived, Problem):
            raise PlanError([derived])
        return derived

    def environment(self, base_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
        """Variables for ${VAR} references: ``environ`` overlaid on the env_file (relative to base_dir)."""
        values: dict[str, str] = {}
        if self.env_file is not None:
            values = _read_env_file(base_dir / self.env_file)
        values.update(environ)
        return values

    def canonical_json(self) -> str:
        """Stable serialisation (sorted keys) for the plan hash; secrets appear as ${NAME} only."""
        return json.dumps(
            self.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


# -- env_file -----------------------------------------------------------------------------------------


def _read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (``export`` prefix, quotes and comments allowed); values never appear in errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read ({type(exc).__name__})"
        raise PlanError([Problem("env_file", f"{path} {reason}", "create it or remove env_file")]) from None
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, equals, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not _ENV_NAME.fullmatch(key):
            problems.append(Problem("env_file", f"{path} line {number} is not NAME=value", "write NAME=value"))
            continue
        if value[:1] in ("'", '"'):
            end = value.find(value[0], 1)
            if end < 0 or value[end + 1 :].strip()[:1] not in ("", "#"):
                problems.append(Problem("env_file", f"{path} line {number}: unbalanced quotes", "close the quote"))
                continue
            inner = value[1:end]
            value = inner.replace("\\n", "\n") if value[0] == '"' else inner
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[key] = value
    if problems:
        raise PlanError(problems)
    return values


# -- loading ------------------------------------------------------------------------------------------


class _PlanLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (the second one would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_plan(text: str, origin: str = "<plan>") -> MigrationSpec:
    """Validate a plan given as YAML text; every problem becomes a PlanError naming its field."""
    try:
        document = yaml.load(text, Loader=_PlanLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or type(exc).__name__
        raise PlanError([Problem(origin, f"invalid YAML{where}: {what}", "fix the YAML syntax")]) from None
    except RecursionError:
        raise PlanError([Problem(origin, "the YAML nests too deeply", "flatten the document")]) from None
    if not isinstance(document, dict):
        raise PlanError(
            [Problem(origin, "the plan must be a mapping of fields", "start with name:, source:, destination:, ...")]
        )
    try:
        return MigrationSpec.model_validate(document)
    except ValidationError as exc:
        raise PlanError([_problem(error) for error in exc.errors()]) from None
    except RecursionError:
        raise PlanError([Problem(origin, "the plan nests too deeply", "flatten the document")]) from None


def load_plan(path: Path) -> MigrationSpec:
    """Read and validate a plan file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read ({type(exc).__name__})"
        raise PlanError([Problem(str(path), f"the plan file {reason}", "check the path")]) from None
    return parse_plan(text, origin=str(path))


def plan_json_schema() -> dict[str, Any]:
    """JSON Schema of the plan file, for editors (``migrator schema``)."""
    schema = MigrationSpec.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "migrator plan", **schema}


# -- pydantic errors → problems -----------------------------------------------------------------------


def _dotted(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(plan)"


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model a location points into (None when it is not a model)."""
    model: type[BaseModel] | None = MigrationSpec
    for part in loc:
        if model is None:
            return None
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        model = _model_of(field.annotation)
    return model


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(filter(None, (_model_of(arg) for arg in typing.get_args(annotation))), None)
    return None


def _secret_fix(parts: list[str | int]) -> str:
    name = re.sub(r"[^A-Z0-9]+", "_", "_".join(str(p) for p in parts).upper()).strip("_")
    return f"put it in an environment variable and write ${{{name}}}"


def _problem(error: Any) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    parts: list[str | int] = list(loc)
    if kind == "plan":
        parts += [p for p in re.split(r"\.|\[(\d+)\]", ctx["field"]) if p] if ctx["field"] else []
        parts = [int(p) if isinstance(p, str) and p.isdigit() else p for p in parts]
        return Problem(_dotted(parts), ctx["message"], ctx["fix"])
    if kind == "secret_literal":
        return Problem(_dotted(parts), "a literal secret is not allowed here", _secret_fix(parts))
    if kind == "extra_forbidden":
        if loc[-1] == "readonly":
            return Problem(_dotted(parts), "unknown field", "remove it: migrator sets readonly itself")
        parent = _model_at(loc[:-1])
        allowed = sorted(f.alias or n for n, f in parent.model_fields.items()) if parent else []
        fix = f"remove it or fix its spelling (allowed here: {', '.join(allowed)})" if allowed else "remove it"
        return Problem(_dotted(parts), "unknown field", fix)
    if kind == "missing":
        parent = _model_at(loc[:-1])
        field = parent.model_fields.get(str(loc[-1])) if parent else None
        described = f" ({field.description})" if field is not None and field.description else ""
        return Problem(_dotted(parts), "required field is missing", f"add {loc[-1]}{described}")
    if kind == "literal_error":
        return Problem(_dotted(parts), error["msg"], f"use one of {ctx.get('expected', 'the allowed values')}")
    if kind.startswith(("greater_than", "less_than", "too_short", "too_long")):
        return Problem(_dotted(parts), error["msg"], "change the value")
    return Problem(_dotted(parts), error["msg"], _GENERIC_FIX)
