"""The oss2 session every OSS client of migrator sends its requests through: oss2's, on a shorter path.

Place in the flow: clients/storage (OssClient, OssStorage) -> oss2.Bucket (signing, result objects) ->
this session -> urllib3's connection pool (the one requests' HTTPAdapter keeps). oss2 stays the one OSS
layer; only the last hop changes. oss2's own session hands each signed request to
`requests.Session.request`, which merges the session's settings into it (headers, cookies, params, auth,
hooks, the environment's proxies), follows redirects and keeps cookies; then requests prepares the URL
(parsed, IDNA-checked and re-quoted), urllib3 parses and re-encodes it once more, and requests builds
its own answer object (its header dictionary, cookies extracted from every answer). oss2 has already
built a URL that needs none of it: its key is quoted with `urlquote` (only unreserved characters stay
bare), the bucket is a DNS name and its query parameters are plain strings. So a request without a
body and without a proxy is sent with its path as built (`_target`: the same bytes requests and urllib3
would send, pinned by tests/clients/test_oss_session.py) straight to the pool's `urlopen`; anything else
(a body, a proxy, a URL oss2 did not build) is prepared by requests and sent through its adapter, with
the proxy and CA bundle read from the environment once per session (never `~/.netrc`: its basic
credentials would replace oss2's signature). oss2's debug lines of each request and answer (which
format the whole header dictionaries) are formatted only when the `oss2` logger would emit them.

Kept on both paths: the connection pool (its size, reuse, TLS settings and CA bundle, from the adapter),
timeouts (oss2's, connect and read), no retry and no redirect (the adapter's `max_retries`: a 3xx
is an answer, which oss2 turns into a ServerError), streaming (an answer's body is read as oss2 reads
it: a large blob in chunks, decoded when the server compressed it). Errors stay oss2's (`RequestError`
around the requests or urllib3 exception when no answer came; an HTTP status outside 2xx becomes
oss2's `ServerError`), so the retry loop and error model of clients/storage.py see what they saw
before; a fault while a body streams is urllib3's (requests wrapped it), which clients/storage.py
classifies as the same transient connection failure.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3

from migrator.clients.oss_sdk import oss2

_OSS2_LOG = logging.getLogger("oss2.http")  # the logger oss2's request and answer lines go to
_CHUNK_SIZE = 8 * 1024  # oss2's chunk when it iterates an answer's body
_BODYLESS = frozenset({"GET", "HEAD"})  # methods requests sends without `Content-Length: 0`


def _target(url: str, params: dict[str, Any] | None) -> tuple[str, str] | None:
    """(`scheme://netloc`, path and query) of an oss2 URL with its query `params`, as requests and urllib3
    would send them; None when the URL is not one oss2's `_UrlMaker` builds (already has a query or a
    fragment, is not ASCII) or a parameter is not a plain string or number, which requests then prepares."""
    if not url.isascii() or "?" in url or "#" in url:
        return None
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in ("http", "https"):
        return None
    netloc, _, path = rest.partition("/")
    target = "/" + path
    if params:
        pairs = []
        for name, value in params.items():
            if value is None:
                continue  # requests leaves out a parameter whose value is None
            if not isinstance(value, str | int) or isinstance(value, bool):
                return None
            pairs.append((name, value))
        if pairs:
            target += "?" + urlencode(pairs)
    return f"{scheme}://{netloc}", target


class DirectSession(oss2.Session):
    """An oss2 session (its buckets share `self.session`'s connection pool) whose requests skip
    `requests.Session.request`: sent to the adapter's urllib3 pool with oss2's URL as built, or (with a
    body or a proxy) prepared by requests from oss2's signed request and sent to the pooled adapter.

    `endpoint` picks the environment's proxy once (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY);
    REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE, is the CA bundle (else the system's). Both are also set on
    `self.session` (with `trust_env` off) for anything that would send through it directly."""

    def __init__(self, endpoint: str, pool_size: int) -> None:
        super().__init__(pool_size=pool_size)
        http = self.session
        http.proxies = requests.utils.get_environ_proxies(endpoint)
        http.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        http.trust_env = False
        # per `scheme://netloc`: the adapter and urllib3's pool key attributes for it (TLS settings included)
        self._pools: dict[str, tuple[requests.adapters.HTTPAdapter, dict[str, Any], dict[str, Any]]] = {}

    def do_request(self, req: Any, timeout: float) -> Any:
        """Send oss2's signed `req` (an `oss2.http.Request`); an `oss2.http.Response` streaming the answer.
        Raises oss2's RequestError when no answer came (connection, timeout, proxy)."""
        http = self.session
        proxies = {**http.proxies, **req.proxies} if req.proxies else http.proxies
        if _OSS2_LOG.isEnabledFor(logging.DEBUG):
            _OSS2_LOG.debug(
                "Send request, method: %s, url: %s, params: %s, headers: %s, timeout: %s, proxies: %s",
                req.method,
                req.url,
                req.params,
                req.headers,
                timeout,
                proxies,
            )
        # oss2 marks with None a header requests must not add (Accept-Encoding): it is left out
        headers = {name: value for name, value in req.headers.items() if value is not None}
        split = None if proxies or req.data else _target(req.url, req.params)
        try:
            if split is None:
                return _Answer(self._through_requests(req, headers, timeout, proxies))
            return _Answer(self._direct(req.method, split[0], split[1], headers, timeout))
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:  # urllib3 wraps socket errors
            raise oss2.exceptions.RequestError(exc) from exc

    def _direct(
        self, method: str, base: str, target: str, headers: dict[str, str], timeout: float
    ) -> urllib3.BaseHTTPResponse:
        """A bodyless request to `base` (`scheme://netloc`) for `target` (path and query, sent as is)."""
        found = self._pools.get(base)
        if found is None:
            found = self._pools[base] = self._pool_key(base)
        adapter, host, pool_kwargs = found
        if method not in _BODYLESS and "content-length" not in {name.lower() for name in headers}:
            headers["Content-Length"] = "0"
        pool = adapter.poolmanager.connection_from_host(**host, pool_kwargs=pool_kwargs)
        adapter.cert_verify(pool, base, self.session.verify, self.session.cert)  # the CA bundle, as requests sets it
        return pool.urlopen(
            method,
            target,
            body=None,
            headers=headers,
            retries=adapter.max_retries,
            redirect=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            preload_content=False,
            decode_content=False,
        )

    def _pool_key(self, base: str) -> tuple[requests.adapters.HTTPAdapter, dict[str, Any], dict[str, Any]]:
        """The session's adapter for `base` and the key attributes of its urllib3 pool there (scheme, host,
        port; TLS settings), as the adapter computes them for each request it sends."""
        http = self.session
        adapter = http.get_adapter(base)
        if not isinstance(adapter, requests.adapters.HTTPAdapter):
            raise TypeError(f"the session's adapter for {base} is a {type(adapter).__name__}, not an HTTPAdapter")
        at_base = requests.PreparedRequest()
        at_base.url = base  # all that the pool key attributes read of a request
        host, pool_kwargs = adapter.build_connection_pool_key_attributes(at_base, http.verify, http.cert)
        return adapter, dict(host), dict(pool_kwargs)

    def _through_requests(
        self, req: Any, headers: dict[str, str], timeout: float, proxies: dict[str, str]
    ) -> urllib3.BaseHTTPResponse:
        """Prepared by requests (its body, proxy and URL handling) and sent through the pooled adapter."""
        http = self.session
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=req.method,
            url=req.url,
            headers=headers,
            data=req.data,
            params=req.params or None,  # an empty dict costs requests its Protocol checks, for nothing
        )
        answer = http.get_adapter(prepared.url).send(
            prepared, stream=True, timeout=timeout, verify=http.verify, cert=http.cert, proxies=proxies
        )
        raw: urllib3.BaseHTTPResponse = answer.raw
        return raw


class _Answer(oss2.http.Response):
    """oss2's answer object over urllib3's streaming answer: `status`, `headers` (case-insensitive, a repeated
    header's values joined with ", ", as requests joined them), `request_id`, `read(amt)` and iteration in
    oss2's chunks; its debug line (status and every header) is formatted only when logged."""

    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self.response = raw  # oss2's result objects close() it
        self.status = raw.status
        self.headers = raw.headers
        self.request_id = raw.headers.get("x-oss-request-id", "")
        self._all_read = False
        if _OSS2_LOG.isEnabledFor(logging.DEBUG):
            _OSS2_LOG.debug(
                "Get response headers, req-id:%s, status: %s, headers: %s", self.request_id, self.status, self.headers
            )

    def read(self, amt: int | None = None) -> bytes:
        """The rest of the body (`amt` None) or up to `amt` bytes of it (fewer only at its end); b"" once all
        of it was read. The connection goes back to the pool when the body ends."""
        if self._all_read:
            return b""
        data: bytes = self.response.read(amt, decode_content=True)
        if amt is None or not data:
            self._all_read = True
        return data

    def __iter__(self) -> Any:
        return self.response.stream(_CHUNK_SIZE, decode_content=True)
