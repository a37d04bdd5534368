"""A canned HTTP 'cluster' for unit tests: a loopback server whose every GET gets the answer a test chooses.

Used where a test needs real HTTP under a client (EsClient, the CLI's discovery) but no real node: the version
cache, TLS verification, malformed answers.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (content type, body) for a request path with its query.
Answer = Callable[[str], tuple[str, bytes]]


@contextmanager
def canned_server(answer: Answer, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve `answer(path)` with status 200 to every GET on 127.0.0.1 (a free port); yields the base URL.

    With `tls`, the socket is wrapped in it and the URL is https. The server stops when the block ends.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            content_type, body = answer(self.path)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
