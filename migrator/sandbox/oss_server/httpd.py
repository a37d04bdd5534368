"""The sandbox OSS server's HTTP side: connections, request bodies, answers, and the `/-/` admin endpoints.

Place in the flow: a client (oss2, the OSS Java SDK in the test bed's repository plugin, migrator's
storage layer) -> httpd (this module: parses the path-style URL `/<bucket>/<key>`, the query and the
headers, reads or spools the body) -> dispatch.route -> OssServer.handle -> a Response or an OssError,
written back here (OSS error XML; for HEAD, the error in `x-oss-err`). `GET/PUT /-/faults` and
`GET /-/stats` let another process inject faults and read the request counters.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

from migrator.sandbox.oss_server.dispatch import route
from migrator.sandbox.oss_server.protocol import CHUNK, Faults, OssError, Request, Response, Spool, error_xml, new_crc64

if TYPE_CHECKING:
    from migrator.sandbox.oss_server.server import OssServer

logger = logging.getLogger(__name__)


class HttpServer(ThreadingHTTPServer):
    """Serves one OssServer, one thread per connection, and can close every open connection at stop."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], oss: OssServer) -> None:
        self.oss = oss
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def handle_error(self, request: object, client_address: object) -> None:
        logger.debug("OSS server: connection from %s failed", client_address, exc_info=True)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class RequestHandler(BaseHTTPRequestHandler):
    """One connection's requests (HTTP/1.1 keep-alive), each answered through the server's dispatch."""

    protocol_version = "HTTP/1.1"
    server: HttpServer
    timeout = 120  # idle keep-alive connections

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK add 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def version_string(self) -> str:
        return "AliyunOSS"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET  # noqa: N815

    # body --------------------------------------------------------------------------------------

    def _body_chunks(self) -> Iterator[bytes]:
        """The request body, whole: Content-Length or chunked. ConnectionError when framing breaks."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            yield from self._read_exactly(self.headers.get("Content-Length") or "0")
            return
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            yield from self._read_exactly(size_line.decode("ascii", "replace") or "-", base=16)
            if size_line.strip(b"0") == b"":
                break
            self.rfile.readline(1024)  # the CRLF after the chunk
        while self.rfile.readline(8192).strip():  # trailers up to the empty line
            pass

    def _read_exactly(self, count: str, base: int = 10) -> Iterator[bytes]:
        try:
            remaining = int(count, base)
        except ValueError:
            raise ConnectionError(f"bad request body framing: {count!r}") from None
        if remaining < 0:
            raise ConnectionError(f"bad request body length: {count!r}")
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, CHUNK))
            if not chunk:
                raise ConnectionError("request body ended early")
            remaining -= len(chunk)
            yield chunk

    def _spool(self) -> Spool:
        path = self.server.oss.store.tmp_path()
        md5 = hashlib.md5()
        crc = new_crc64()
        size = 0
        try:
            with open(path, "wb") as f:
                for chunk in self._body_chunks():
                    f.write(chunk)
                    md5.update(chunk)
                    crc.update(chunk)
                    size += len(chunk)
        except BaseException:
            os.unlink(path)
            raise
        return Spool(path, size, md5.digest(), crc.crcValue)

    # dispatch ----------------------------------------------------------------------------------

    def _serve(self) -> None:
        request_id = uuid.uuid4().hex[:24].upper()
        raw_path, _, query = self.path.partition("?")
        if raw_path == "/-" or raw_path.startswith("/-/"):
            self._admin(raw_path)
            return
        params = dict(parse_qsl(query, keep_blank_values=True))
        bucket, _, raw_key = raw_path.lstrip("/").partition("/")
        try:
            key = unquote(raw_key, errors="strict")
        except UnicodeDecodeError:
            key = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(
            self.command,
            bucket,
            key or "",
            params,
            headers,
            list(self.headers.items()),
            route(self.command, key or "", params, headers),
        )
        try:
            if req.route.streams_body:
                req.spool = self._spool()
            else:
                req.body = b"".join(self._body_chunks())
            if key is None:
                raise OssError(400, "InvalidURI", "The object name is not valid percent-encoded UTF-8.")
            response = self.server.oss.handle(req)
        except OssError as error:
            self._send_error(error, request_id, bucket)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # answer 500 rather than dropping the connection
            logger.exception("OSS server: %s %s failed", self.command, self.path)
            self._send_error(OssError(500, "InternalError", f"{type(exc).__name__}: {exc}"), request_id, bucket)
        else:
            self._send(response, request_id)
        finally:
            if req.spool is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(req.spool.path)

    def _send_error(self, error: OssError, request_id: str, bucket: str) -> None:
        body = error_xml(error, request_id, f"{bucket}.{self.server.socket.getsockname()[0]}" if bucket else "")
        headers = {"Content-Type": "application/xml"}
        if self.command == "HEAD":
            headers["x-oss-err"] = base64.b64encode(body).decode()
        if error.status == 304:
            headers, body = {}, b""
        self._send(Response(error.status, headers, body, length=len(body)), request_id)

    def _send(self, response: Response, request_id: str) -> None:
        file = response.file
        try:
            self.send_response(response.status)
            length = response.length if file is not None or self.command == "HEAD" else len(response.body)
            if self.command == "HEAD" and response.status >= 300:
                length = 0
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(length))
            self.send_header("x-oss-request-id", request_id)
            self.send_header("Connection", "close" if self.close_connection else "keep-alive")
            self.end_headers()
            if self.command == "HEAD":
                return
            if file is None:
                self.wfile.write(response.body)
                return
            send = length
            if length and self.server.oss.should_truncate():
                send = length // 2
                self.close_connection = True
            file.seek(response.offset)
            while send > 0:
                chunk = file.read(min(send, CHUNK))
                if not chunk:  # the file shrank under us: the client sees a short body
                    self.close_connection = True
                    break
                self.wfile.write(chunk)
                send -= len(chunk)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            if file is not None:
                file.close()

    # admin -------------------------------------------------------------------------------------

    def _admin(self, path: str) -> None:
        oss = self.server.oss
        status, payload = 200, None
        try:
            body = b"".join(self._body_chunks())
            if path == "/-/faults" and self.command == "GET":
                payload = oss.faults.to_json()
            elif path == "/-/faults" and self.command == "PUT":
                oss.set_faults(Faults.from_json(json.loads(body or b"{}")))
                payload = oss.faults.to_json()
            elif path == "/-/stats" and self.command == "GET":
                payload = oss.stats()
            else:
                status, payload = 404, {"error": f"no admin endpoint {self.command} {path}"}
        except (ValueError, TypeError) as exc:
            status, payload = 400, {"error": str(exc)}
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
