"""The one HTTP layer to Elasticsearch, for every major version at once (the flow's bottom layer).

Source and destination are often different majors (7.10 without the product header, 7.17, 8.x,
9.x). The official client rewrites Accept/Content-Type to `compatible-with=<major>` and demands
the `X-Elastic-Product` header, which breaks older servers; so this layer sends plain JSON through
`elastic_transport.Transport`, which does neither. Transient answers (429/502/503/504, connection
errors) are retried with backoff by the transport; every request has a timeout. An answer that is
still an error becomes an EsError, classified by `migrator.errors`. Every request is
reported to an optional observer (a migration's RequestTap, migrator.clients.tap) with its body, once before it is sent
(status None: the record exists even if the process dies mid-request) and once answered (the
status, or NO_ANSWER).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, NodeConfig, Transport, TransportError

from migrator.errors import TRANSIENT_STATUSES, MigratorError, classify_es

RETRY_STATUSES = tuple(sorted(TRANSIENT_STATUSES))
ERROR_TYPE = re.compile(r"^([a-z_]+_exception): ")
NO_ANSWER = -1
MUTATING_METHODS = frozenset({"PUT", "POST", "DELETE"})


ELASTICSEARCH = "elasticsearch"
OPENSEARCH = "opensearch"


@dataclass(frozen=True, order=True)
class Version:
    """A cluster's version: `8.19.21`, or `opensearch-2.19.0` for OpenSearch (its `GET /` names the
    distribution; its numbers restart at 1.0.0, so they compare only within one distribution: the
    compatibility table in migrator.compatibility decides across them)."""

    major: int
    minor: int
    patch: int
    distribution: str = field(default=ELASTICSEARCH, compare=False)

    @classmethod
    def parse(cls, text: str) -> Version:
        """`7.10.2`, `7.10.2-SNAPSHOT` or `opensearch-2.19.0`; ValueError otherwise."""
        match = re.match(rf"^(?:({OPENSEARCH})-)?(\d+)\.(\d+)\.(\d+)", text)
        if not match:
            raise ValueError(f"not an Elasticsearch or OpenSearch version: {text!r}")
        major, minor, patch = (int(part) for part in match.groups()[1:])
        return cls(major, minor, patch, distribution=match.group(1) or ELASTICSEARCH)

    @property
    def opensearch(self) -> bool:
        return self.distribution == OPENSEARCH

    @property
    def es_major(self) -> int:
        """The Elasticsearch major whose APIs and mappings this cluster follows: OpenSearch forked from
        Elasticsearch 7.10.2 (typeless mappings, 7.x settings), so its 1.x and 2.x count as 7."""
        return 7 if self.opensearch else self.major

    @property
    def keeps_closed_shards(self) -> bool:
        """Whether a closed index keeps its shards here (Elasticsearch 7.2+'s replicated closed indices, and
        OpenSearch): only then can it be snapshotted or its statistics read (`forbid_closed_indices=false`).
        Before 7.2 a closed index has no shard: `_stats` answers 400 `index_closed_exception`, a snapshot 403
        "blocked by: [FORBIDDEN/4/index closed]" (seen on 5.6.16 and 6.8.23)."""
        return self.opensearch or (self.major, self.minor) >= (7, 2)

    def __str__(self) -> str:
        number = f"{self.major}.{self.minor}.{self.patch}"
        return f"{OPENSEARCH}-{number}" if self.opensearch else number


@dataclass(frozen=True)
class Request:
    """One request as sent, for the event log and the dry run."""

    method: str
    path: str
    body: Any = None

    @property
    def mutating(self) -> bool:
        return self.method in MUTATING_METHODS


class EsError(MigratorError):
    """A request failed (after the transport's own retries); the message names the cluster, the request
    and the answer. `error_type` is the answer's `error.type` (None without one; by default the
    `<type>: ` that starts `message`, as `error_reason` writes it); whether it is transient and what
    continues after it come from `errors.classify_es`."""

    def __init__(
        self, cluster: str, request: Request, status: int | None, message: str, *, error_type: str | None = None
    ) -> None:
        self.cluster = cluster
        self.request = request
        self.status = status
        match = ERROR_TYPE.match(message)
        self.error_type = error_type or (match.group(1) if match else None)
        kind = classify_es(status, self.error_type, message)
        super().__init__(
            f"{cluster}: {request.method} {request.path} -> {status or 'no answer'}: {message}",
            transient=kind.transient,
            cure=kind.cure,
        )


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


NAMES_PER_READ = 3000  # characters of index names in one read: Elasticsearch refuses request lines over 4 KB


def name_groups(names: list[str]) -> list[list[str]]:
    """The names in groups whose comma-joined length stays within NAMES_PER_READ."""
    groups: list[list[str]] = [[]]
    length = 0
    for name in names:
        if groups[-1] and length + len(name) + 1 > NAMES_PER_READ:
            groups.append([])
            length = 0
        groups[-1].append(name)
        length += len(name) + 1
    return [group for group in groups if group]


# Every node's version: `GET _nodes` with no metric (each node's version is always in its answer; the
# specification has no `version` metric, which servers ignore).
NODE_VERSIONS = build_path("_nodes", params={"filter_path": "nodes.*.version"})
# How long a version read stays the cluster's version for this client (seconds): discovery's read serves
# preflight a few milliseconds later (two requests fewer per cluster and run), while a run that sat at its
# confirmation prompt for longer reads it again; a cluster's version changes only through node restarts.
VERSION_FRESH_S = 60.0


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
        self._version: Version | None = None  # learnt once, by version(): older versions take fewer parameters
        self._version_read_at = 0.0  # time.monotonic() of that read
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
        retry_timeout: bool = True,
    ) -> tuple[int, Any]:
        """Send one request; statuses outside `ok` raise EsError. Returns (status, parsed body). A read (GET,
        HEAD) that times out is sent again unless `retry_timeout` is False (a slow read another try makes no
        faster: its caller says why it is slow)."""
        request = Request(method, path, body)
        self._notify(request, None)
        try:
            response = self._transport.perform_request(
                method,
                path,
                body=body,
                headers=self._headers,
                request_timeout=timeout_s or self.timeout_s,
                retry_on_timeout=retry_timeout and method in ("GET", "HEAD"),
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
        """The minimum version over all nodes (what this cluster can read and restore), in its
        distribution: `GET /` answers `version.distribution: opensearch` on OpenSearch; Elasticsearch has
        no such field, and 8.9+ builds without the `rest-root` module answer `GET /` with 400 or 404.
        Two reads (`GET /`, NODE_VERSIONS), sent again only when the last were VERSION_FRESH_S ago or more."""
        if self._version is not None and time.monotonic() - self._version_read_at < VERSION_FRESH_S:
            return self._version
        status, root = self.request("GET", "/", ok=(200, 400, 404, 405))
        about = root.get("version") if status == 200 and isinstance(root, dict) else None
        distribution = about.get("distribution", ELASTICSEARCH) if isinstance(about, dict) else ELASTICSEARCH
        nodes = self.get(NODE_VERSIONS).get("nodes", {})
        versions = [Version.parse(node["version"]) for node in nodes.values()]
        if not versions:
            raise EsError(self.label, Request("GET", "/_nodes"), 200, "no nodes reported a version")
        lowest = min(versions)
        self._version = Version(lowest.major, lowest.minor, lowest.patch, distribution=distribution)
        self._version_read_at = time.monotonic()
        return self._version

    def knows_hidden(self) -> bool:
        """Whether this cluster has hidden indices (`expand_wildcards=hidden`, Elasticsearch 7.7+ and
        OpenSearch): older versions refuse the value ("No valid expand wildcard value [hidden]")."""
        version = self._version or self.version()
        return version.opensearch or (version.major, version.minor) >= (7, 7)

    def expand_wildcards(self, value: str) -> str:
        """`value` (e.g. "open,hidden") without `hidden` on a cluster that has no hidden indices."""
        if self.knows_hidden():
            return value
        return ",".join(part for part in value.split(",") if part != "hidden")

    def health(self, wait_for_status: str | None = None, timeout: str = "30s") -> dict[str, Any]:
        params = {"wait_for_status": wait_for_status, "timeout": timeout} if wait_for_status else None
        return self.get(build_path("_cluster", "health", params=params), ok=(200, 408))

    def indices(self, expression: str = "*", expand_wildcards: str = "all") -> list[dict[str, Any]]:
        """`_cat/indices` rows (index, health, status, docs.count, store.size in bytes, pri).
        `expand_wildcards` is sent from Elasticsearch 7.7 (and on OpenSearch) only: older versions refuse
        it ("unrecognized parameter") and list open and closed indices alike (hidden ones came with 7.7)."""
        takes_expand = self.knows_hidden()
        path = build_path(
            "_cat",
            "indices",
            expression,
            params={
                "format": "json",
                "bytes": "b",
                "expand_wildcards": expand_wildcards if takes_expand else None,
                "h": "index,health,status,pri,rep,docs.count,store.size,pri.store.size",
            },
        )
        return self.get(path, ok=(200,))

    def doc_count(self, index: str) -> int:
        return int(self.get(build_path(index, "_count"))["count"])
