"""The sandbox's OSS-compatible server: local directories served as buckets over the OSS REST API.

Place in the flow: the local test bed (sandbox.manager, the docker engine, tests/conftest.py) starts an
OssServer next to the Elasticsearch nodes -> httpd (connections, bodies) -> dispatch (the Route) ->
OssServer.handle (this module: counts, injected latency, the bucket, auth, injected errors) -> the
Route's handler. It also owns the lifecycle (start/stop, the replication thread) and the faults that
reliability tests inject (`set_faults`, or `PUT /-/faults` from another process).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

from migrator.sandbox.oss_server.auth import Credentials, authenticate
from migrator.sandbox.oss_server.httpd import HttpServer
from migrator.sandbox.oss_server.protocol import STATE_DIR, BucketConfig, Faults, OssError, Request, Response
from migrator.sandbox.oss_server.replication import REPLICATION_STATE, Replicator
from migrator.sandbox.oss_server.store import ObjectStore

logger = logging.getLogger(__name__)

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


class OssServer:
    """Serves `<root>/<bucket>` directories as OSS buckets on http://host:port (see the module doc)."""

    def __init__(
        self,
        root: Path,
        buckets: list[BucketConfig],
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
    ) -> None:
        for bucket in buckets:
            if not _BUCKET_NAME.match(bucket.name):
                raise ValueError(
                    f"bucket name {bucket.name!r} is not valid for OSS: 3-63 characters of a-z, 0-9 and '-',"
                    " starting and ending with a letter or digit"
                )
        self.root = Path(root)
        self.buckets = {bucket.name: bucket for bucket in buckets}
        self.credentials = Credentials(access_key_id, access_key_secret, security_token)
        self.host = host
        self.port = port
        self.endpoint = ""
        self.request_count = 0
        self.requests_by_op: Counter[str] = Counter()
        self.store = ObjectStore(self.root, self.root / STATE_DIR)
        self._lock = threading.Lock()
        self._faults: Faults
        self._rng: random.Random
        self.set_faults(faults or Faults())
        self.created = time.time()
        self.replicator = Replicator(
            self.root, self.store.state / REPLICATION_STATE, set(self.buckets), lambda: self.faults.replication_delay_ms
        )
        self._httpd: HttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Create the bucket and state directories, listen, and serve from a background thread."""
        for name in self.buckets:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.store.state / "tmp", ignore_errors=True)
        (self.store.state / "tmp").mkdir(parents=True, exist_ok=True)
        (self.store.state / "uploads").mkdir(parents=True, exist_ok=True)
        self._httpd = HttpServer((self.host, self.port), self)
        host, port = self._httpd.socket.getsockname()[:2]
        self.port = int(port)
        self.endpoint = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oss-server", daemon=True)
        self._thread.start()
        self.replicator.start(on_changed=self.store.digests.forget)
        logger.info("OSS server on %s serving %s (buckets %s)", self.endpoint, self.root, sorted(self.buckets))

    def stop(self) -> None:
        """Stop listening, close open connections and wait for the serving thread."""
        if self._httpd is None:
            return
        self.replicator.stop()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> OssServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_faults(self, faults: Faults) -> None:
        """Inject `faults` from now on (their seed restarts the random choices)."""
        with self._lock:
            self._faults = dataclasses.replace(faults, error_keys=list(faults.error_keys))
            self._rng = random.Random(faults.seed)

    @property
    def faults(self) -> Faults:
        with self._lock:
            return dataclasses.replace(self._faults, error_keys=list(self._faults.error_keys))

    def _count(self, op: str) -> None:
        with self._lock:
            self.request_count += 1
            self.requests_by_op[op] += 1

    def stats(self) -> dict[str, object]:
        """{"request_count": int, "requests_by_op": {operation: int}} since the server started."""
        with self._lock:
            return {"request_count": self.request_count, "requests_by_op": dict(self.requests_by_op)}

    def _roll(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def _inject_faults(self, req: Request) -> None:
        faults = self.faults
        if req.key and any(part in req.key for part in faults.error_keys):
            raise OssError(500, "InternalError", "Injected fault: this key always fails.")
        if self._roll(faults.error_rate):
            raise OssError(503, "ServiceUnavailable", "Injected fault: please reduce your request rate.")

    def should_truncate(self) -> bool:
        """Whether to cut this GET body short (the `truncate_rate` fault)."""
        return self._roll(self.faults.truncate_rate)

    def handle(self, req: Request) -> Response:
        """Answer one parsed request (body already read); OssError for an error answer."""
        self._count(req.op)
        latency = self.faults.latency_ms
        if latency:
            time.sleep(latency / 1000)
        if not req.bucket:
            raise OssError(501, "NotImplemented", "This server implements bucket and object operations only.")
        bucket = self.buckets.get(req.bucket)
        if bucket is None:
            raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=req.bucket)
        authenticate(req, bucket, self.credentials)
        self._inject_faults(req)
        handler = req.route.handler
        if handler is None:
            raise OssError(
                501,
                "NotImplemented",
                f"This server does not implement {req.method} with these parameters: {sorted(req.params)}.",
            )
        return handler(self, req, bucket)

    def replicate_now(self) -> None:
        """Run one replication pass at once (tests; the background thread runs them anyway)."""
        self.replicator.replicate_once()
