"""``EntraEmulator``: the HTTPS server and the Python control API tests use.

Standard library only on the serving side (``ThreadingHTTPServer`` + ``ssl``). The TLS handshake
runs in the per-connection thread, so one slow or broken client never blocks the accept loop.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import ssl
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import controls, graph, oidc
from .admin import DirectoryAdmin
from .certs import ensure_key_material
from .client_assertion import ReceivedAssertion
from .context import Services
from .delta import DeltaEngine
from .faults import FaultInjector, RequestLog
from .state import (
    EmulatorState,
)
from .tokens import TokenIssuer
from .web import Request, Response

log = logging.getLogger("entra_emulator")

_Endpoint = Callable[[Services, Request, str], Response]
_OIDC_ROUTES: list[tuple[re.Pattern[str], _Endpoint]] = [
    (re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$"), oidc.discovery),
    (re.compile(r"^/([^/]+)/discovery/v2\.0/keys$"), oidc.jwks),
    (re.compile(r"^/([^/]+)/oauth2/v2\.0/authorize$"), oidc.authorize),
    (re.compile(r"^/([^/]+)/adminconsent$"), oidc.admin_consent),
    (re.compile(r"^/([^/]+)/oauth2/v2\.0/token$"), oidc.token),
    (re.compile(r"^/([^/]+)/(?:oauth2/)?v2\.0/logout$"), oidc.logout),
]


class EntraEmulator(DirectoryAdmin):
    """A local stand-in for Microsoft Entra ID (identity platform v2.0) and Microsoft Graph v1.0.

    Its control methods (tenants, applications, users, faults: ``DirectoryAdmin``) return
    snapshots of model objects: change the directory through the methods, not by editing what
    they return.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: Path | str | None = None,
        *,
        hostname: str = "localhost",
        persist: bool | None = None,
    ) -> None:
        self._owned_dir: Path | None = None
        if state_dir is None:
            self._owned_dir = Path(tempfile.mkdtemp(prefix="entra-emulator-"))
        self.state_dir = Path(state_dir) if state_dir is not None else self._owned_dir
        assert self.state_dir is not None
        self.persist = (state_dir is not None) if persist is None else persist
        self._host, self._port, self._hostname = host, port, hostname
        hostnames = list(dict.fromkeys([hostname, "localhost", "127.0.0.1"]))
        self._keys = ensure_key_material(self.state_dir, hostnames)
        self._state = EmulatorState(self.state_dir / "state.json" if self.persist else None)
        self._faults = FaultInjector()
        self._svc = Services(self._state, self._keys.signing, TokenIssuer(self._keys.signing), self._faults)
        self._delta = DeltaEngine(self._state)
        self._log = RequestLog()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle

    def start(self) -> EntraEmulator:
        if self._httpd is not None:
            return self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._keys.server_cert, self._keys.server_key)
        httpd = _Server((self._host, self._port), _Handler, context, self)
        self._port = httpd.server_address[1]
        self._svc.base_url = f"https://{self._hostname}:{self._port}"
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="entra-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._state.flush()
        if self._owned_dir is not None and not self.persist:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def __enter__(self) -> EntraEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``https://localhost:PORT``; the authority and the issuer host."""
        if not self._svc.base_url:
            if not self._port:
                raise RuntimeError("start() the emulator first: its port is not chosen yet")
            return f"https://{self._hostname}:{self._port}"
        return self._svc.base_url

    @property
    def authority(self) -> str:
        return self.url

    @property
    def ca_bundle(self) -> Path:
        """PEM of the private CA that signed the server certificate."""
        return self._keys.ca_bundle

    def issuer(self, tenant_id: str) -> str:
        return f"{self.url}/{self._state.tenant(tenant_id).tenant_id}/v2.0"

    def discovery_url(self, tenant: str) -> str:
        return f"{self.url}/{tenant}/v2.0/.well-known/openid-configuration"

    def token_endpoint(self, tenant: str) -> str:
        return f"{self.url}/{tenant}/oauth2/v2.0/token"

    def authorize_endpoint(self, tenant: str) -> str:
        return f"{self.url}/{tenant}/oauth2/v2.0/authorize"

    def received_client_assertions(self, app_id: str | None = None) -> list[ReceivedAssertion]:
        """Client assertions the token endpoint received (header and claims, no signature),
        oldest first; only ``app_id``'s when given."""
        return [a for a in list(self._svc.assertions) if app_id is None or a.app_id == app_id.lower()]

    # --------------------------------------------------------------- routing

    def _delay(self, setting: str) -> None:
        """Injected latency: each request sleeps in its own server thread, so concurrent
        requests overlap as they would against a far-away service."""
        ms = self._state.settings()[setting]
        if ms:
            time.sleep(ms / 1000)

    def _route(self, req: Request) -> Response:
        path = req.path
        if path.startswith("/_emulator/"):
            return controls.handle(self, req)
        if path == "/v1.0" or path.startswith("/v1.0/"):
            self._delay("graph_latency_ms")
            return graph.handle(self._svc, self._delta, req)
        if path == "/oidc/userinfo":
            return oidc.userinfo(self._svc, req)
        for pattern, endpoint in _OIDC_ROUTES:
            match = pattern.match(path)
            if match:
                if endpoint is oidc.token:
                    self._delay("token_latency_ms")
                return endpoint(self._svc, req, match.group(1))
        return Response.json(404, {"error": "not_found", "error_description": f"no endpoint at {path}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # socketserver's default listen backlog is 5: a client opening more connections at once
    # (concurrent token requests) had SYNs dropped and waited a second per retransmission.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext,
        emulator: EntraEmulator,
    ) -> None:
        self.ssl_context = context
        self.emulator = emulator
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(30)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "EntraEmulator/1.0"
    sys_version = ""
    timeout = 60
    disable_nagle_algorithm = True  # headers and body are separate writes; avoid delayed-ACK stalls
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=unquote(split.path),
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            resp = self.server.emulator._route(req)
        except Exception:  # the emulator must answer, and say what broke
            log.exception("handler failed for %s %s", self.command, split.path)
            resp = Response.json(500, {"error": "emulator_bug", "error_description": traceback.format_exc()})
        self.server.emulator._log.record(self.command, req.path, split.query, resp.status)
        try:
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)
