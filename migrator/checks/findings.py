"""What each dry-run check returns (problems refuse the plan, warnings are shown) and the helpers the
checks share. Pure; see migrator/checks/__init__.py for the rules and where they sit in the flow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from migrator.spec import MigrationSpec, Problem


@dataclass
class Findings:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: Findings) -> Findings:
        self.problems.extend(other.problems)
        self.warnings.extend(other.warnings)
        return self


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def rename_field(spec: MigrationSpec) -> str:
    return "restore.rename_replacement" if spec.restore.rename_pattern else "snapshot.indices"


def full_setting(key: str) -> str:
    """A setting name as Elasticsearch stores it: `number_of_replicas` is `index.number_of_replicas`."""
    return key if key.startswith("index.") else f"index.{key}"


def wildcard(pattern: str) -> re.Pattern[str]:
    """An Elasticsearch name pattern (`*` the only wildcard) as a regex to fullmatch."""
    return re.compile(".*".join(map(re.escape, pattern.split("*"))))


def matches_any(patterns: str, values: list[str]) -> bool:
    """Whether a comma-separated list of patterns matches any of `values`."""
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    return any(wildcard(p).fullmatch(v) for p in wanted for v in values)
