"""The one HTTP layer to Elasticsearch, for every major version at once (the flow's bottom layer).

Source and destination are often different majors (7.10 without the product header, 7.17, 8.x,
9.x). The official client rewrites Accept/Content-Type to `compatible-with=<major>` and demands
the `X-Elastic-Product` header, which breaks older servers; so this layer sends plain JSON through
`elastic_transport.Transport`, which does neither. Transient answers (429/502/503/504, connection
errors) are retried with backoff by the transport; every request has a timeout. Every request is
reported to an optional observer (the executor's event log) with its body, once before it is sent
(status None: the record exists even if the process dies mid-request) and once answered (the
status, or NO_ANSWER).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, NodeConfig, Transport, TransportError

RETRY_STATUSES = (429, 502, 503, 504)
NO_ANSWER = -1
MUTATING_METHODS = frozenset({"PUT", "POST", "DELETE"})


@dataclass(frozen=True, order=True)
class Version:
    """An Elasticsearch version, comparable (`8.19.21` > `7.17.29`)."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        match = re.match(r"^(\d+)\.(\d+)\.(\d+)", text)
        if not match:
            raise ValueError(f"not an Elasticsearch version: {text!r}")
        return cls(*(int(part) for part in match.groups()))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class Request:
    """One request as sent, for the event log and the dry run."""

    method: str
    path: str
    body: Any = None

    @property
    def mutating(self) -> bool:
        return self.method in MUTATING_METHODS


class EsError(Exception):
    """A request failed for good; the message names the cluster, the request and the answer."""

    def __init__(self, cluster: str, request: Request, status: int | None, message: str) -> None:
        self.cluster = cluster
        self.request = request
        self.status = status
        super().__init__(f"{cluster}: {request.method} {request.path} -> {status or 'no answer'}: {message}")


def error_reason(body: Any) -> str:
    """The most useful line of an Elasticsearch error body."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            root = error.get("root_cause") or [error]
            first = root[0] if isinstance(root, list) and root else error
            if isinstance(first, Mapping):
                return f"{first.get('type', 'error')}: {first.get('reason', '')}".strip()
        if isinstance(error, str):
            return error
    return str(body)[:500]


def build_path(*parts: str, params: Mapping[str, Any] | None = None) -> str:
    """`/` + url-quoted parts (commas and wildcards kept) + query string."""
    path = "/" + "/".join(quote(part, safe=",*_-.") for part in parts if part != "")
    if params:
        query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items() if v is not None}
        if query:
            path += "?" + urlencode(query, safe=",*")
    return path


class EsClient:
    """Plain-JSON requests to one cluster, with retries, timeouts and an observer hook."""

    def __init__(
        self,
        url: str,
        *,
        label: str = "cluster",
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        verify_tls: bool = True,
        ca_file: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        connections: int = 10,
        observer: Callable[[str, Request, int | None], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.label = label
        self.timeout_s = timeout_s
        self.observer = observer
        headers: dict[str, str] = {"accept": "application/json", "content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"ApiKey {api_key}"
        elif username is not None and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            headers["authorization"] = f"Basic {token}"
        self._headers = headers
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{label}: not an http(s) URL: {url!r}")
        config = NodeConfig(
            scheme=parts.scheme,
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            path_prefix=parts.path.rstrip("/"),
            verify_certs=verify_tls,
            ca_certs=ca_file,
            ssl_show_warn=False,
            headers=headers,
            http_compress=False,
            connections_per_node=connections,
        )
        self._transport = Transport(
            [config],
            max_retries=max_retries,
            retry_on_status=RETRY_STATUSES,
            retry_on_timeout=False,
            retry_backoff_base=0.5,
            retry_backoff_cap=8.0,
            meta_header=False,
        )

    def close(self) -> None:
        self._transport.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ok: tuple[int, ...] = (200,),
        timeout_s: float | None = None,
    ) -> tuple[int, Any]:
        """Send one request; statuses outside `ok` raise EsError. Returns (status, parsed body)."""
        request = Request(method, path, body)
        self._notify(request, None)
        try:
            response = self._transport.perform_request(
                method,
                path,
                body=body,
                headers=self._headers,
                request_timeout=timeout_s or self.timeout_s,
                retry_on_timeout=method in ("GET", "HEAD"),
            )
        except (TransportConnectionError, ConnectionTimeout) as exc:
            self._notify(request, NO_ANSWER)
            raise EsError(
                self.label,
                request,
                None,
                f"{self.url} unreachable ({exc.message}); check the URL and that the cluster runs",
            ) from exc
        except (TransportError, ValueError) as exc:  # ValueError: an answer that does not parse
            self._notify(request, NO_ANSWER)
            raise EsError(self.label, request, None, f"unusable answer: {exc}") from exc
        status = response.meta.status
        self._notify(request, status)
        if status not in ok:
            raise EsError(self.label, request, status, error_reason(response.body))
        if method != "HEAD" and not isinstance(response.body, dict | list):
            sample = str(response.body)[:120].replace("\n", " ")
            raise EsError(self.label, request, status, f"the answer is not JSON ({sample!r}): is this Elasticsearch?")
        return status, response.body

    def get(self, path: str, *, ok: tuple[int, ...] = (200,)) -> Any:
        return self.request("GET", path, ok=ok)[1]

    def _notify(self, request: Request, status: int | None) -> None:
        if self.observer is not None:
            self.observer(self.label, request, status)

    # Facts every step needs -------------------------------------------------------------

    def version(self) -> Version:
        """The minimum version over all nodes: what this cluster can read and restore."""
        nodes = self.get("/_nodes/_all/version?filter_path=nodes.*.version").get("nodes", {})
        versions = [Version.parse(node["version"]) for node in nodes.values()]
        if not versions:
            raise EsError(self.label, Request("GET", "/_nodes"), 200, "no nodes reported a version")
        return min(versions)

    def health(self, wait_for_status: str | None = None, timeout: str = "30s") -> dict[str, Any]:
        params = {"wait_for_status": wait_for_status, "timeout": timeout} if wait_for_status else None
        return self.get(build_path("_cluster", "health", params=params), ok=(200, 408))

    def indices(self, expression: str = "*", expand_wildcards: str = "all") -> list[dict[str, Any]]:
        """`_cat/indices` rows (index, health, status, docs.count, store.size in bytes, pri)."""
        path = build_path(
            "_cat",
            "indices",
            expression,
            params={
                "format": "json",
                "bytes": "b",
                "expand_wildcards": expand_wildcards,
                "h": "index,health,status,pri,rep,docs.count,store.size,pri.store.size",
            },
        )
        return self.get(path, ok=(200,))

    def doc_count(self, index: str) -> int:
        return int(self.get(build_path(index, "_count"))["count"])
