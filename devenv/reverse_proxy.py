"""The one reverse proxy of the tests and the development tools, in front of Keycloak.

As a load balancer (``ReverseProxy(cert, key)``, the cluster's public URL): it serves https on
a loopback port with the certificate it is given, forwards each request over plain HTTP to
one backend with ``X-Forwarded-For/-Proto/-Host/-Port`` set (and any such header from the
client dropped), and records which backend answered what (``hops``). Routing:

* ``round_robin()`` (the default): every request to the next node, so nothing sticks to a
  node: neither a login's steps nor a client's session;
* ``pin(name)``: everything to one node;
* ``route(fn)``: ``fn(method, path)`` names the node.

A node that refuses the connection is skipped for the next one (nothing was sent yet, as a
load balancer's health check would); a node that dies mid-request is a ``502``. A test can
``intercept(fn)``: ``fn(hop)`` sees each answer before the client does, and returning True
loses it (the client gets a ``502``), e.g. after killing the node that gave it.

Between a tool under test and the session's Keycloak (``ReverseProxy.to(url)``: plain http,
one backend, the request passed on as it came). Keycloak itself is never mocked: every request
reaches it and every answer is Keycloak's. The proxy only adds what a real deployment does to
a client now and then, at a moment a test chooses:

* ``kill_after_write(n, process)``: once Keycloak has answered the n-th Admin API write
  (POST/PUT/DELETE under ``/admin/``), SIGKILL the client process before it sees the
  answer — the write is committed, the client never learns it (``writes``, ``killed``);
* ``answer_with(status, count)``: answer the next requests itself, as an overloaded
  Keycloak or load balancer does (503, 429 with ``Retry-After``);
* ``stall(seconds)``: hold every answer that long (a client timeout).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    def __init__(self, cert: Path | None = None, key: Path | None = None, host: str = "127.0.0.1") -> None:
        """https with ``cert`` and ``key`` and the ``X-Forwarded-*`` headers of a load balancer;
        without them plain http, each request passed on as it came."""
        self.backends: dict[str, tuple[str, int]] = {}
        self.hops: list[Hop] = []
        self.writes: list[str] = []  # "PUT /admin/realms/apsis/users/<id>" of every write a backend answered
        self.killed: str | None = None  # the write after which the client was killed
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._router: Router | None = None
        self._intercept: Callable[[Hop], bool] | None = None
        self._kill_at: int | None = None
        self._victim: subprocess.Popen[Any] | None = None
        self._canned: list[tuple[int, dict[str, str]]] = []
        self._stall = 0.0
        self._tls = cert is not None
        context = None
        if cert is not None:
            assert key is not None
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(cert, key)
        self._server = _Server((host, 0), handler_for(self._serve), context)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="reverse-proxy", daemon=True
        )

    @classmethod
    def to(cls, upstream: str) -> ReverseProxy:
        """Plain http in front of one Keycloak (``upstream``: its http URL), for a test's faults."""
        parts = urlsplit(upstream)
        proxy = cls()
        proxy.add_backend("keycloak", parts.hostname or "127.0.0.1", parts.port or 80)
        return proxy

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    @property
    def requests(self) -> list[str]:
        """``METHOD /path`` (no query) of every request a backend answered."""
        with self._lock:
            return [f"{h.method} {h.path}" for h in self.hops if h.backend is not None]

    def start(self) -> ReverseProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ReverseProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------

    def kill_after_write(self, n: int, process: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._kill_at, self._victim = n, process

    def answer_with(self, status: int, count: int = 1_000_000, retry_after: int | None = None) -> None:
        headers = {"Content-Type": "text/html"}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        with self._lock:
            self._canned = [(status, headers)] * count

    def stall(self, seconds: float) -> None:
        self._stall = seconds

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
        path = req.path.split("?", 1)[0]
        if self._stall:
            time.sleep(self._stall)
        with self._lock:
            canned = self._canned.pop(0) if self._canned else None
        if canned is not None:
            status, canned_headers = canned
            with self._lock:
                self.hops.append(Hop(req.command, path, None, status))
            relay(req, status, list(canned_headers.items()), b"<html><body>upstream unavailable</body></html>")
            return
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
        if self._tls:
            host_header = req.headers.get("Host") or self.url.removeprefix("https://")
            headers = {k: v for k, v in headers.items() if k.lower() not in FORWARDED}
            headers.update(
                {
                    "X-Forwarded-For": req.client_address[0],
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": host_header,
                    "X-Forwarded-Port": str(self._server.server_address[1]),
                }
            )
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
        if answer is not None and self._killed_the_client(req.command, path):
            return  # the client is gone before it could read the answer
        if answer is None:
            answer = (502, [("Content-Type", "text/html")], b"<html><body>502 Bad Gateway</body></html>")
        relay(req, *answer)

    def _killed_the_client(self, method: str, path: str) -> bool:
        """Count an answered Admin API write; SIGKILL the client at the chosen one."""
        if method not in ("POST", "PUT", "DELETE") or not path.startswith("/admin/"):
            return False
        with self._lock:
            self.writes.append(f"{method} {path}")
            kill = self._kill_at is not None and len(self.writes) == self._kill_at and self.killed is None
            if kill:
                self.killed = self.writes[-1]
        if not kill:
            return False
        victim = self._victim
        assert victim is not None
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(30)
        return True


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext | None
    ) -> None:
        self._context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self._context is None:
            return sock, addr
        # The handshake happens in the request's own thread, on its first read.
        return self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hung up mid-handshake or mid-answer (some tests do on purpose) is no error of ours
