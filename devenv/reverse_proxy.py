"""A TLS-terminating reverse proxy in front of Keycloak nodes: what a load balancer does in
production, with the routing in the tests' hands.

It serves https on a loopback port with the certificate it is given, forwards each request
over plain HTTP to one backend with ``X-Forwarded-For/-Proto/-Host/-Port`` set (and any such
header from the client dropped), and records which backend answered what. Routing:

* ``round_robin()`` (the default): every request to the next node, so nothing sticks to a
  node: neither a login's steps nor a client's session;
* ``pin(name)``: everything to one node;
* ``route(fn)``: ``fn(method, path)`` names the node.

A node that refuses the connection is skipped for the next one (nothing was sent yet, as a
load balancer's health check would); a node that dies mid-request is a ``502``. A test can
``intercept(fn)``: ``fn(hop)`` sees each answer before the client does, and returning True
loses it (the client gets a ``502``), e.g. after killing the node that gave it.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
FORWARDED = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "forwarded")

Router = Callable[[str, str], str]


@dataclass(frozen=True)
class Hop:
    """One request the proxy passed on: method, path (no query) and the node that answered
    (``None``: no node could be reached)."""

    method: str
    path: str
    backend: str | None
    status: int


class ReverseProxy:
    def __init__(self, cert: Path, key: Path, host: str = "127.0.0.1") -> None:
        self.backends: dict[str, tuple[str, int]] = {}
        self.hops: list[Hop] = []
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._router: Router | None = None
        self._intercept: Callable[[Hop], bool] | None = None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        self._server = _TlsServer((host, 0), handler_for(self._serve), context)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="reverse-proxy", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"https://{host}:{port}"

    def start(self) -> ReverseProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_backend(self, name: str, host: str, port: int) -> None:
        self.backends[name] = (host, port)

    # -- routing ---------------------------------------------------------------------------

    def round_robin(self) -> None:
        self._router = None

    def pin(self, name: str) -> None:
        assert name in self.backends, name
        self._router = lambda method, path: name

    def route(self, router: Router) -> None:
        self._router = router

    def intercept(self, fn: Callable[[Hop], bool] | None) -> None:
        self._intercept = fn

    def _order(self, method: str, path: str) -> list[str]:
        """The nodes to try, first choice first."""
        names = list(self.backends)
        first = self._router(method, path) if self._router is not None else names[next(self._turn) % len(names)]
        return [first] + [n for n in names if n != first]

    # -- serving ---------------------------------------------------------------------------

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else None
        host_header = req.headers.get("Host") or self.url.removeprefix("https://")
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() not in FORWARDED}
        headers.update(
            {
                "X-Forwarded-For": req.client_address[0],
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": host_header,
                "X-Forwarded-Port": str(self._server.server_address[1]),
            }
        )
        path = req.path.split("?", 1)[0]
        status, answer, backend = 502, None, None
        for name in self._order(req.command, path):
            host, port = self.backends[name]
            conn = http.client.HTTPConnection(host, port, timeout=120)
            try:
                conn.connect()
            except OSError:
                conn.close()
                continue  # refused: try the next node, nothing was sent
            backend = name
            try:
                conn.request(req.command, req.path, body=body, headers=headers)
                resp = conn.getresponse()
                answer = (resp.status, resp.getheaders(), resp.read())
                status = resp.status
            except (OSError, http.client.HTTPException):
                answer = None  # the node died mid-request: the client gets a 502, as from a real proxy
            finally:
                conn.close()
            break
        hop = Hop(req.command, path, backend, status)
        if answer is not None and self._intercept is not None and self._intercept(hop):
            answer, hop = None, Hop(req.command, path, backend, 502)
        with self._lock:
            self.hops.append(hop)
        if answer is None:
            answer = (502, [("Content-Type", "text/html")], b"<html><body>502 Bad Gateway</body></html>")
        relay(req, *answer)


def handler_for(serve: Callable[[BaseHTTPRequestHandler], None]) -> type[BaseHTTPRequestHandler]:
    """A quiet request handler that hands every request, whatever its method, to ``serve``;
    one request per connection (simple, and enough for a test's proxy)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
            return

        def _any(self) -> None:
            # the client went away (its timeout): nothing to answer
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                serve(self)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _any

    return Handler


def relay(req: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
    """Send an upstream's answer to the client: hop-by-hop headers dropped, length recomputed."""
    req.send_response(status)
    for key, value in headers:
        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
            req.send_header(key, value)
    req.send_header("Content-Length", str(len(payload)))
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(payload)


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext
    ) -> None:
        self._context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        # The handshake happens in the request's own thread, on its first read.
        return self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hung up mid-handshake is no error of ours
