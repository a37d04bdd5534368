"""The oss2 session every OSS client of migrator sends its requests through: oss2's, on a shorter path.

Place in the flow: clients/storage (OssClient, OssStorage) -> oss2.Bucket (signing, result objects) ->
this session -> requests' pooled HTTPAdapter -> urllib3. oss2 stays the one OSS layer; only the last hop
changes. oss2's own session hands each signed request to `requests.Session.request`, which merges the
session's settings into it (headers, cookies, params, auth, hooks, the environment's proxies), follows
redirects and keeps cookies: about a quarter of a small GET's CPU (merges through `runtime_checkable`
Protocol checks among it), for nothing migrator uses. Here the signed request is prepared once and sent
straight to the session's adapter, with the proxy and CA bundle read from the environment once per
session (never `~/.netrc`: its basic credentials would replace oss2's signature). oss2's debug lines of
each request and answer (which format the whole header dictionaries) are formatted only when the
`oss2` logger would emit them.

What the adapter keeps: the connection pool, timeouts (oss2's, connect and read), streaming (an answer's
body is read as oss2 reads it: a large blob in chunks), the proxy for the endpoint and its credentials,
TLS verification. Errors stay oss2's (`RequestError` around a requests exception; an HTTP status
outside 2xx, a 3xx included since no redirect is followed, becomes oss2's `ServerError`), so the retry
loop and error model of clients/storage.py see what they saw before.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import requests

from migrator.clients.oss_sdk import oss2

_OSS2_LOG = logging.getLogger("oss2.http")  # the logger oss2's request and answer lines go to


class DirectSession(oss2.Session):
    """An oss2 session (its buckets share `self.session`'s connection pool) whose requests skip
    `requests.Session.request`: prepared from oss2's signed request, sent to the pooled adapter.

    `endpoint` picks the environment's proxy once (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY);
    REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE, is the CA bundle (else the system's). Both are also set on
    `self.session` (with `trust_env` off) for anything that would send through it directly."""

    def __init__(self, endpoint: str, pool_size: int) -> None:
        super().__init__(pool_size=pool_size)
        http = self.session
        http.proxies = requests.utils.get_environ_proxies(endpoint)
        http.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        http.trust_env = False

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
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=req.method,
            url=req.url,
            # oss2 marks with None a header requests must not add (Accept-Encoding): it is left out
            headers={name: value for name, value in req.headers.items() if value is not None},
            data=req.data,
            params=req.params or None,  # an empty dict costs requests its Protocol checks, for nothing
        )
        try:
            answer = http.get_adapter(prepared.url).send(
                prepared, stream=True, timeout=timeout, verify=http.verify, cert=http.cert, proxies=proxies
            )
        except requests.RequestException as exc:
            raise oss2.exceptions.RequestError(exc) from exc
        return _Answer(answer)


class _Answer(oss2.http.Response):
    """oss2's answer object, whose debug line (status and every header) is formatted only when logged."""

    def __init__(self, response: requests.Response) -> None:
        if _OSS2_LOG.isEnabledFor(logging.DEBUG):
            super().__init__(response)
            return
        self.response = response
        self.status = response.status_code
        self.headers = response.headers
        self.request_id = response.headers.get("x-oss-request-id", "")
        self._Response__all_read = False  # oss2.http.Response's private flag (set by its __init__), read by read()
