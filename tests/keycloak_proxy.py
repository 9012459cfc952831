"""A reverse proxy between a tool under test and the session's real Keycloak.

Keycloak itself is never mocked: every request reaches it and every answer is Keycloak's.
The proxy only adds what a real deployment does to a client now and then, at a moment a
test chooses:

* ``kill_after_write(n, process)``: once Keycloak has answered the n-th Admin API write
  (POST/PUT/DELETE under ``/admin/``), SIGKILL the client process before it sees the
  answer — the write is committed, the client never learns it;
* ``answer_with(status, count)``: answer the next requests itself, as an overloaded
  Keycloak or load balancer does (503, 429 with ``Retry-After``);
* ``stall(seconds)``: hold every answer that long (a client timeout).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from devenv.reverse_proxy import HOP_BY_HOP, handler_for, relay


class KeycloakProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.writes: list[str] = []  # "PUT /admin/realms/apsis/users/<id>" of every write Keycloak answered
        self.requests: list[str] = []  # "GET /realms/apsis/apsis-sso/links/..." of every request relayed
        self.killed: str | None = None  # the write after which the client was killed
        self._lock = threading.Lock()
        self._kill_at: int | None = None
        self._victim: subprocess.Popen[Any] | None = None
        self._canned: list[tuple[int, dict[str, str]]] = []
        self._stall = 0.0
        self._server = _QuietServer(("127.0.0.1", 0), handler_for(self._serve))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="keycloak-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> KeycloakProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> KeycloakProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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

    # -- serving ------------------------------------------------------------------------

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else None
        if self._stall:
            time.sleep(self._stall)
        with self._lock:
            canned = self._canned.pop(0) if self._canned else None
        if canned is not None:
            status, headers = canned
            relay(req, status, list(headers.items()), b"<html><body>upstream unavailable</body></html>")
            return
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            conn.request(req.command, req.path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        write = req.command in ("POST", "PUT", "DELETE") and req.path.startswith("/admin/")
        with self._lock:
            self.requests.append(f"{req.command} {req.path.split('?')[0]}")
        if write:
            with self._lock:
                self.writes.append(f"{req.command} {req.path.split('?')[0]}")
                kill = self._kill_at is not None and len(self.writes) == self._kill_at and self.killed is None
                if kill:
                    self.killed = self.writes[-1]
            if kill:
                victim = self._victim
                assert victim is not None
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait(30)
                return  # the client is gone before it could read Keycloak's answer
        relay(req, resp.status, resp.getheaders(), payload)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that went away mid-answer is what some tests do on purpose
