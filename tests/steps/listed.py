"""One check any step test can call: every request the step sends in observe/act/wait is one it lists in
`describe()` + `checks()` (cluster, method, path with its query, body), so the dry run shows what apply sends.

Use: `with sends_only_listed(step) as sent: step.observe(); step.act()`. The step's context clients
(`source`, `destination`) are wrapped for the block; a request sent through `request` or `get` is
recorded and, at the end, compared with what the step listed before the block (the dry run's view).
`decided_at_run` names paths whose body the step can only know when it runs (the ids of sampled
documents, the alias actions read just before): for those, method and path must match, not the body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from migrator.steps.base import Step

Sent = tuple[str, str, str, Any]  # cluster, method, path with query, body


def _key(cluster: str, method: str, path: str, body: Any) -> tuple[str, str, str, str]:
    return cluster, method, "/" + path.lstrip("/"), json.dumps(body, sort_keys=True, default=str)


class _Recording:
    """A client's stand-in that records each request it forwards."""

    def __init__(self, client: Any, cluster: str, sent: list[Sent]) -> None:
        self._client, self._cluster, self._sent = client, cluster, sent

    def request(self, method: str, path: str, body: Any = None, **options: Any) -> Any:
        self._sent.append((self._cluster, method, path, body))
        return self._client.request(method, path, body, **options)

    def get(self, path: str, **options: Any) -> Any:
        self._sent.append((self._cluster, "GET", path, None))
        return self._client.get(path, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@contextmanager
def sends_only_listed(
    step: Step, *, decided_at_run: tuple[str, ...] = (), masked: Callable[[Any], Any] = lambda body: body
) -> Iterator[list[Sent]]:
    """Record what `step` sends in the block; then assert it sent something and only what it listed.
    `masked` turns a sent body (not None) into its dry-run form (secrets masked) before comparing."""
    listed = [*step.describe(), *step.checks()]
    exact = {_key(r.cluster, r.method, r.path, r.body) for r in listed}
    loose = {(r.cluster, r.method, "/" + r.path.lstrip("/")) for r in listed}
    sent: list[Sent] = []
    clients = {name: getattr(step.ctx, name) for name in ("source", "destination") if hasattr(step.ctx, name)}
    for name, client in clients.items():
        setattr(step.ctx, name, _Recording(client, name, sent))
    try:
        yield sent
    finally:
        for name, client in clients.items():
            setattr(step.ctx, name, client)
    assert sent, "the step sent nothing: the check would assert nothing"
    unlisted = []
    for cluster, method, path, body in sent:
        key = _key(cluster, method, path, body if body is None else masked(body))
        if key in exact:
            continue
        if path.split("?")[0].lstrip("/") in decided_at_run and key[:3] in loose:
            continue
        unlisted.append(f"{cluster} {method} {path} {json.dumps(body, default=str)[:200]}")
    shown = "\n  ".join(f"{r.cluster} {r.method} {r.path} {json.dumps(r.body, default=str)[:200]}" for r in listed)
    assert not unlisted, (
        "sent but not listed by describe()+checks():\n  " + "\n  ".join(unlisted) + f"\nlisted:\n  {shown}"
    )
