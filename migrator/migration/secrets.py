"""migration (opened) -> secrets: the plan's `${VAR}` references, resolved once, and the redactor of their values.

Place in the flow: CLI -> migration (opened) -> secrets. The spec holds only references; `resolve`
reads the ones a command needs from the environment (overlaid on the plan's env_file) and returns
them with the `Redactor` that masks every value in what migrator prints or records. Clients, the
storage readers and the repository settings take their values from here, never from the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from migrator.errors import PlanError, Problem
from migrator.redact import Redactor
from migrator.spec import MigrationSpec, SecretRef


def secret_refs(model: Any, prefix: str = "") -> Iterator[tuple[str, SecretRef]]:
    """Every SecretRef in the spec, with its dotted field path (e.g. `source.password`)."""
    if isinstance(model, SecretRef):
        yield prefix, model
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            yield from secret_refs(getattr(model, name), f"{prefix}.{name}" if prefix else name)
        for name, value in (model.model_extra or {}).items():
            yield from secret_refs(value, f"{prefix}.{name}" if prefix else name)
    elif isinstance(model, dict):
        for key, value in model.items():
            yield from secret_refs(value, f"{prefix}.{key}")
    elif isinstance(model, list):
        for position, value in enumerate(model):
            yield from secret_refs(value, f"{prefix}[{position}]")


def every_field(field_path: str) -> bool:
    return True


def repository_fields(field_path: str) -> bool:
    """The fields that reach the repository's bucket: `storage`, the oss repository's settings it may be
    derived from, and the replica's storage (what `migrator verify --plan` reads; no cluster's password)."""
    return field_path.split(".", 1)[0] in ("storage", "repository") or field_path.startswith("replication.storage")


@dataclass(frozen=True)
class Secrets:
    """The resolved values, by variable name (`{"SRC_PASSWORD": "..."}`): a mapping `SecretRef.resolve` reads."""

    values: Mapping[str, str]
    redactor: Redactor

    def of(self, ref: SecretRef | None) -> str:
        """The value of `ref` ("" for an absent optional field)."""
        return ref.resolve(self.values) if ref is not None else ""


def resolve(
    spec: MigrationSpec, environment: Mapping[str, str], wanted: Callable[[str], bool] = every_field
) -> Secrets:
    """Read every reference of the spec whose field `wanted` accepts; raises PlanError naming each field
    whose variable is unset, with the fix (export it, or add it to the env_file)."""
    problems, values = [], {}
    for field_path, ref in secret_refs(spec):
        if not wanted(field_path):
            continue
        try:
            values[ref.env] = ref.resolve(environment)
        except Exception as exc:  # noqa: BLE001 - reported as a plan problem naming the field
            problems.append(Problem(field_path, str(exc), f"export {ref.env} (or add it to env_file)"))
    if problems:
        raise PlanError(problems)
    return Secrets(values, Redactor(values.values()))
