"""``OktaEmulator``: the HTTPS server and the Python control API tests use.

Orgs are addressed by path: ``https://localhost:PORT/{org}`` stands for ``https://{org}.okta.com``
(its org authorization server's issuer); custom authorization servers live under
``/{org}/oauth2/{authServerId}``. TLS comes from the Entra emulator's key material code: a private
CA (reusable from another emulator's state directory, so one truststore serves both).
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

from devenv.entra_emulator.certs import CA_CERT, CA_KEY, ensure_key_material
from devenv.entra_emulator.faults import RequestLog
from devenv.entra_emulator.web import Request, Response

from . import api, controls, oauth
from .admin import OktaAdmin
from .limits import Faults, RateLimiter, bucket
from .model import Directory, Org

log = logging.getLogger("okta_emulator")

_OAuthEndpoint = Callable[[oauth.Context, Request, Org, str | None], Response]
_V1: dict[str, _OAuthEndpoint] = {
    "authorize": oauth.authorize,
    "token": oauth.token,
    "keys": oauth.keys,
    "userinfo": oauth.userinfo,
    "logout": oauth.logout,
}
_ORG_PATH = re.compile(r"^/([a-z0-9][a-z0-9.-]*)(/.*)?$")


class OktaEmulator(OktaAdmin):
    """A local stand-in for Okta orgs: OIDC (org and custom authorization servers), the service
    app client credentials flow, the Users API and the System Log API. Methods return the live
    model objects' snapshots as dicts or the objects themselves; change things through methods."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: Path | str | None = None,
        *,
        hostname: str = "localhost",
        ca_from: Path | str | None = None,
    ) -> None:
        self._owned_dir: Path | None = None
        if state_dir is None:
            self._owned_dir = Path(tempfile.mkdtemp(prefix="okta-emulator-"))
        self.state_dir = Path(state_dir) if state_dir is not None else self._owned_dir
        assert self.state_dir is not None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if ca_from is not None:  # share another emulator's CA: clients trust both with one bundle
            for name in (CA_CERT, CA_KEY):
                shutil.copyfile(Path(ca_from) / name, self.state_dir / name)
                (self.state_dir / name).chmod(0o600)
        self._host, self._port, self._hostname = host, port, hostname
        self._keys = ensure_key_material(self.state_dir, list(dict.fromkeys([hostname, "localhost", "127.0.0.1"])))
        self.directory = Directory()
        self.ctx = oauth.Context(self.directory)
        self.limiter = RateLimiter()
        self.faults = Faults()
        self._log = RequestLog()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle

    def start(self) -> OktaEmulator:
        if self._httpd is not None:
            return self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._keys.server_cert, self._keys.server_key)
        httpd = _Server((self._host, self._port), _Handler, context, self)
        self._port = httpd.server_address[1]
        self.ctx.base_url = f"https://{self._hostname}:{self._port}"
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="okta-emulator", daemon=True
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
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def __enter__(self) -> OktaEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------- addresses

    @property
    def url(self) -> str:
        if not self.ctx.base_url:
            raise RuntimeError("start() the emulator first: its port is not chosen yet")
        return self.ctx.base_url

    @property
    def port(self) -> int:
        return self._port

    @property
    def ca_bundle(self) -> Path:
        return self._keys.ca_bundle

    # ------------------------------------------------------------- routing

    def _route(self, req: Request) -> Response:
        path = req.path
        if path.startswith("/_emulator/"):
            return controls.handle(self, req)
        match = _ORG_PATH.match(path)
        org = self.directory.orgs.get(match.group(1)) if match else None
        if match is None or org is None:
            return api.okta_error(404, "E0000007", f"Not found: Resource not found: {path} (Org)")
        rest = match.group(2) or "/"
        fault = self.faults.take(org.name, rest)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay_ms / 1000)
            fault = None
        allowed, headers = self.limiter.take(org.name, bucket(rest))
        if fault is not None and fault.kind == "rate_limit":
            headers = {
                **headers,
                "X-Rate-Limit-Remaining": "0",
                "X-Rate-Limit-Reset": str(int(time.time()) + fault.reset_in),
            }
            allowed = False
        if not allowed:
            resp = api.okta_error(429, "E0000047", "API call exceeded rate limit due to too many requests.")
        elif fault is not None:
            resp = api.okta_error(fault.status, "E0000009", "Internal Server Error")
        else:
            resp = self._org_route(req, org, rest)
        resp.headers.update(headers)
        return resp

    def _org_route(self, req: Request, org: Org, rest: str) -> Response:
        if rest == "/.well-known/openid-configuration":
            return oauth.discovery(self.ctx, req, org, None)
        if rest == "/.well-known/oauth-authorization-server":
            return oauth.discovery(self.ctx, req, org, None, oauth=True)
        m = re.match(r"^/oauth2/(?:([A-Za-z0-9]+)/)?v1/([a-z]+)$", rest)
        if m and m.group(2) in _V1:
            return _V1[m.group(2)](self.ctx, req, org, m.group(1))
        m = re.match(r"^/oauth2/([A-Za-z0-9]+)/\.well-known/(openid-configuration|oauth-authorization-server)$", rest)
        if m and m.group(1) != "v1":
            return oauth.discovery(self.ctx, req, org, m.group(1), oauth=m.group(2) != "openid-configuration")
        if rest == "/api/v1/users" or rest.startswith("/api/v1/users/"):
            return api.users(self.ctx, req, org, rest[len("/api/v1/users") :])
        if rest == "/api/v1/logs":
            return api.logs(self.ctx, req, org)
        return api.okta_error(404, "E0000022", f"The endpoint does not exist: {rest}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext,
        emulator: OktaEmulator,
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
    server_version = "OktaEmulator/1.0"
    sys_version = ""
    timeout = 60
    disable_nagle_algorithm = True
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
            resp = Response.json(500, {"errorCode": "emulator_bug", "errorSummary": traceback.format_exc()})
        self.server.emulator._log.record(self.command, req.path, split.query, resp.status)
        try:
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                for line in value.split("\n"):  # one header per line (Okta's several Link headers)
                    self.send_header(name, line)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)
