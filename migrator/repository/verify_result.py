"""What a verification finds: each finding with its place, and the verdict on one snapshot.

Place in the flow: verify (the checks of the root) and verify_index (the checks of an index, its shards
and files) -> verify_result (this module) -> `migrator verify`, the storage-verification step and the
replica copy, which print the summary or the JSON document.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "garbage"]
Level = Literal["normal", "deep", "full"]
SAMPLES = 5  # keys of leftovers named in one garbage finding


@dataclass(frozen=True)
class Finding:
    """One thing found: what is wrong (or left over), and exactly where."""

    severity: Severity
    code: str
    message: str
    snapshot: str | None = None
    index: str | None = None
    shard: int | None = None
    file: str | None = None
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass
class VerifyResult:
    """The verdict on one snapshot: restorable when no finding is an error."""

    storage: str
    snapshot: str
    level: Level
    uuid: str | None = None
    state: str | None = None
    generation: int | None = None
    indices: int = 0
    shards: int = 0
    files: int = 0
    blobs: int = 0
    bytes: int = 0
    listed: int = 0
    requests: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def restorable(self) -> bool:
        return not self.errors

    def summary(self, limit: int = 5) -> str:
        """One paragraph for a log line or a failed step: the verdict and the first errors."""
        if self.restorable:
            return (
                f"snapshot {self.snapshot} is restorable: {self.indices} indices, {self.shards} shards, "
                f"{self.files} files ({self.blobs} blobs, {self.bytes} bytes) checked ({self.level})"
            )
        errors = self.errors
        lines = [f"snapshot {self.snapshot} is NOT restorable from {self.storage}: {len(errors)} problem(s)"]
        lines += [f"- {f.message}" for f in errors[:limit]]
        if len(errors) > limit:
            lines.append(f"- ... and {len(errors) - limit} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        document = {name: value for name, value in asdict(self).items() if name != "findings"}
        document["restorable"] = self.restorable
        document["findings"] = [f.to_dict() for f in self.findings]
        return document


@dataclass
class Garbage:
    """Leftover blobs of one kind: how many, their total size in bytes, and the first few keys."""

    count: int = 0
    size: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, key: str, size: int) -> None:
        self.count += 1
        self.size += size
        if len(self.samples) < SAMPLES:
            self.samples.append(key)
