"""Redaction: secret values never reach the terminal, the event log, the state file or a report.

The spec keeps only `${ENV}` references; the executor resolves them, and every text or record it
writes passes through a Redactor that knows the resolved values and replaces them with `******`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MASK = "******"


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({value for value in secrets if value and len(value) >= 3}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for value in self.secrets:
            text = text.replace(value, MASK)
        return text

    def data(self, data: Any) -> Any:
        if not self.secrets:
            return data
        return json.loads(self.text(json.dumps(data)))
