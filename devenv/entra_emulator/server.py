"""``EntraEmulator``: the HTTPS server and the Python control API tests use.

Standard library only on the serving side (``ThreadingHTTPServer`` + ``ssl``). The TLS handshake
runs in the per-connection thread, so one slow or broken client never blocks the accept loop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import shutil
import ssl
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import controls, graph, oidc
from .certs import ensure_key_material
from .context import Services
from .delta import DeltaEngine
from .faults import FaultInjector, RequestLog
from .state import (
    DEFAULT_PERMISSIONS,
    Application,
    EmulatorState,
    PasswordCredential,
    Tenant,
    User,
    hash_secret,
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


class EntraEmulator:
    """A local stand-in for Microsoft Entra ID (identity platform v2.0) and Microsoft Graph v1.0.

    Model objects returned by the control methods are snapshots: change the directory through
    the methods, not by editing what they return.
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
    def graph_base_url(self) -> str:
        return f"{self.url}/v1.0"

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

    # ------------------------------------------------------------- tenants

    def add_tenant(self, domains: list[str], tenant_id: str | None = None, display_name: str | None = None) -> Tenant:
        """A tenant with its custom domains plus an ``<name>.onmicrosoft.com`` initial domain."""
        return self._state.add_tenant(domains, tenant_id=tenant_id, display_name=display_name)

    def get_tenant(self, tenant: str) -> Tenant:
        """By GUID or domain; raises ``LookupError``."""
        return self._state.snapshot(lambda: self._state.tenant(tenant))

    def find_tenant(self, tenant: str) -> Tenant | None:
        return self._state.snapshot(lambda: self._state.resolve_tenant(tenant))

    def list_tenants(self) -> list[Tenant]:
        return self._state.snapshot(lambda: list(self._state.tenants.values()))

    def add_domain(self, tenant_id: str, domain: str) -> Tenant:
        """Add ``domain`` to the tenant, verified (discovery for it then names this tenant).
        Refused when another tenant has it verified: Entra verifies a domain in one tenant only."""
        return self._state.add_domain(tenant_id, domain)

    def remove_domain(self, tenant_id: str, domain: str, *, force: bool = False) -> Tenant:
        """Delete the tenant's custom ``domain`` (discovery for it then answers AADSTS90002).
        Refused while user principal names use it, unless ``force``: those users are renamed to
        the initial domain, as Graph's ``forceDelete`` does."""
        return self._state.remove_domain(tenant_id, domain, force=force)

    def move_domain(self, domain: str, to_tenant: str, *, force: bool = False) -> Tenant:
        """``remove_domain`` where it is verified, then ``add_domain`` to ``to_tenant``."""
        return self._state.move_domain(domain, to_tenant, force=force)

    # -------------------------------------------------------- applications

    def add_application(
        self,
        tenant_id: str,
        display_name: str,
        redirect_uris: Iterable[str] = (),
        app_id: str | None = None,
        permissions: Iterable[str] = DEFAULT_PERMISSIONS,
        consented: bool = True,
    ) -> Application:
        """An app registration (and its service principal) with ``permissions`` configured
        (``User.Read.All`` by default), granted unless ``consented=False``: then they wait
        for admin consent (``/adminconsent`` or ``grant_application_permission``) and app
        tokens carry no ``roles`` for them, as in Entra."""
        return self._state.add_application(tenant_id, display_name, redirect_uris, app_id, permissions, consented)

    def get_application(self, tenant_id: str, app_id: str) -> Application:
        return self._state.snapshot(lambda: self._state.app(tenant_id, app_id))

    def list_applications(self, tenant_id: str) -> list[Application]:
        return self._state.snapshot(lambda: list(self._state.apps[self._state.tenant(tenant_id).tenant_id].values()))

    def update_application(self, tenant_id: str, app_id: str, **changes: Any) -> Application:
        """Change ``display_name``, ``redirect_uris``, ``optional_claims`` or ``admin_consent_granted``."""
        return self._state.update_application(tenant_id, app_id, **changes)

    def set_redirect_uris(self, tenant_id: str, app_id: str, redirect_uris: list[str]) -> Application:
        return self._state.update_application(tenant_id, app_id, redirect_uris=redirect_uris)

    def set_optional_claims(self, tenant_id: str, app_id: str, claims: list[str]) -> Application:
        """ID token optional claims, e.g. ``["xms_edov"]`` (the default) or ``[]``."""
        return self._state.update_application(tenant_id, app_id, optional_claims=claims)

    def add_secret(
        self,
        tenant_id: str,
        app_id: str,
        expires: dt.datetime,
        display_name: str = "apsis-sso",
        *,
        start: dt.datetime | None = None,
        secret_text: str | None = None,
    ) -> str:
        """A client secret; returns its text (40 characters, the first three are its ``hint``).
        ``secret_text`` fixes the value (for seeds and demos); Entra itself always generates it."""
        return self.add_secret_credential(
            tenant_id, app_id, expires, display_name, start=start, secret_text=secret_text
        )[0]

    def add_secret_credential(
        self,
        tenant_id: str,
        app_id: str,
        expires: dt.datetime,
        display_name: str = "apsis-sso",
        *,
        start: dt.datetime | None = None,
        secret_text: str | None = None,
    ) -> tuple[str, PasswordCredential]:
        return self._state.add_secret(tenant_id, app_id, expires, display_name, start, secret_text)

    def has_secret(self, tenant_id: str, app_id: str, secret_text: str | None) -> bool:
        if not secret_text:
            return False
        app = self.get_application(tenant_id, app_id)
        return any(c.secret_hash == hash_secret(secret_text) for c in app.password_credentials)

    def expire_secret(self, tenant_id: str, app_id: str, hint_or_key_id: str) -> None:
        """Move the secret's end date into the past: the token endpoint answers AADSTS7000222."""
        self._state.expire_secret(tenant_id, app_id, hint_or_key_id)

    def remove_secret(self, tenant_id: str, app_id: str, hint_or_key_id: str) -> None:
        """Delete the credential: the token endpoint answers AADSTS7000215 for its text."""
        self._state.remove_secret(tenant_id, app_id, hint_or_key_id)

    def grant_application_permission(self, tenant_id: str, app_id: str, permission: str) -> None:
        """Admin-consent an application permission; it appears in ``roles`` of new app tokens."""
        self._state.set_permission(tenant_id, app_id, permission, True)

    def revoke_application_permission(self, tenant_id: str, app_id: str, permission: str) -> None:
        self._state.set_permission(tenant_id, app_id, permission, False)

    # --------------------------------------------------------------- users

    def add_user(
        self,
        tenant_id: str,
        user_principal_name: str,
        password: str,
        mail: str | None = None,
        display_name: str | None = None,
        given_name: str | None = None,
        surname: str | None = None,
        account_enabled: bool = True,
        email_domain_verified: bool | None = None,
        oid: str | None = None,
    ) -> User:
        """A member user; the UPN's domain must be one of the tenant's domains. Its ID tokens'
        ``xms_edov`` says whether its ``mail``'s domain is verified in the tenant (as Entra
        computes it); ``email_domain_verified`` fixes it instead, for tests."""
        return self._state.add_user(
            tenant_id,
            user_principal_name,
            password,
            mail=mail,
            display_name=display_name,
            given_name=given_name,
            surname=surname,
            account_enabled=account_enabled,
            email_domain_verified=email_domain_verified,
            oid=oid,
        )

    def add_users(self, tenant_id: str, users: Iterable[dict[str, Any]], password: str = "pw") -> list[str]:
        """Many member users at once (benchmarks, large directories); returns their object ids.
        Each item takes ``add_user``'s keyword arguments (``user_principal_name`` required,
        ``password`` optional). The password is hashed once per distinct value, not per user,
        and nothing is added when one item is invalid."""
        return self._state.add_users(tenant_id, users, password)

    def get_user(self, tenant_id: str, oid: str) -> User:
        return self._state.snapshot(lambda: self._state.user(tenant_id, oid))

    def find_user(self, tenant_id: str, user_principal_name: str) -> User | None:
        return self._state.snapshot(lambda: self._state.user_by_upn(tenant_id, user_principal_name))

    def list_users(self, tenant_id: str) -> list[User]:
        return self._state.snapshot(lambda: list(self._state.users[self._state.tenant(tenant_id).tenant_id].values()))

    def update_user(self, tenant_id: str, oid: str, **changes: Any) -> User:
        """Change ``mail``, ``display_name``, ``given_name``, ``surname``, ``account_enabled``,
        ``user_principal_name``, ``email_domain_verified``, ``password`` or ``id_token_overrides``."""
        return self._state.update_user(tenant_id, oid, **changes)

    def set_user_mail(self, tenant_id: str, oid: str, mail: str | None) -> User:
        return self._state.update_user(tenant_id, oid, mail=mail)

    def disable_user(self, tenant_id: str, oid: str) -> User:
        return self._state.update_user(tenant_id, oid, account_enabled=False)

    def enable_user(self, tenant_id: str, oid: str) -> User:
        return self._state.update_user(tenant_id, oid, account_enabled=True)

    def set_email_domain_verified(self, tenant_id: str, oid: str, verified: bool | None) -> User:
        """Fixes the ``xms_edov`` claim (None: computed again); not a Graph property, so no delta change."""
        return self._state.update_user(tenant_id, oid, email_domain_verified=verified)

    def override_id_token_claims(self, tenant_id: str, oid: str, claims: dict[str, Any]) -> User:
        """Attack control, not Entra behaviour: the user's ID tokens carry these claims exactly
        as given (``{"xms_edov": None}`` sends JSON null, ``"true"`` a string); ``{}`` clears.
        Entra itself sends ``xms_edov`` as a JSON boolean; this is for testing what a relying
        party accepts when a token says something else."""
        return self._state.update_user(tenant_id, oid, id_token_overrides=dict(claims))

    def delete_user(self, tenant_id: str, oid: str) -> User:
        """Soft delete (to deleted items): delta reports ``@removed: {"reason": "changed"}``."""
        return self._state.delete_user(tenant_id, oid)

    def restore_user(self, tenant_id: str, oid: str) -> User:
        """Restore a soft-deleted user: delta reports it as a normal object again."""
        return self._state.restore_user(tenant_id, oid)

    def purge_user(self, tenant_id: str, oid: str) -> None:
        """Permanent delete: delta reports ``@removed: {"reason": "deleted"}``."""
        self._state.purge_user(tenant_id, oid)

    hard_delete_user = purge_user

    # ---------------------------------------------------- delta and faults

    def expire_delta_tokens(self, tenant_id: str, response: str = "syncStateNotFound") -> None:
        """Invalidate every outstanding delta/skip token of the tenant. The next call with one
        answers 400 ``syncStateNotFound`` (default) or, with ``response="resyncRequired"``,
        410 Gone ``resyncRequired`` with a ``Location`` header."""
        self._state.expire_delta_tokens(tenant_id, response)

    def inject_graph_fault(
        self,
        kind: str,
        count: int = 1,
        retry_after: int | None = 2,
        path_contains: str | None = None,
        status: int | None = None,
        tenant_id: str | None = None,
    ) -> None:
        """The next ``count`` matching Graph calls fail: ``throttle`` (429 + Retry-After) or
        ``server_error`` (503 by default; ``status`` may be any 5xx)."""
        self._faults.add("graph", kind, count, retry_after, path_contains, status, tenant_id)

    def inject_token_fault(
        self,
        kind: str,
        count: int = 1,
        retry_after: int | None = 2,
        status: int | None = None,
        tenant_id: str | None = None,
    ) -> None:
        """The next ``count`` token requests fail: ``throttle`` (429) or ``server_error`` (503)."""
        self._faults.add("token", kind, count, retry_after, None, status, tenant_id)

    def pending_faults(self) -> list[dict[str, Any]]:
        return self._faults.pending()

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_delta_page_size(self, size: int) -> None:
        self._state.set_settings(delta_page_size=size)

    def configure(self, **settings: int) -> dict[str, int]:
        """``delta_page_size``, ``token_lifetime`` (seconds), ``delta_token_lifetime`` (seconds), ``opaque_access_tokens`` (1: access tokens are opaque strings, not JWTs), ``graph_latency_ms`` and ``token_latency_ms`` (injected latency per Graph / token answer, benchmarks)."""
        return self._state.set_settings(**settings)

    def settings(self) -> dict[str, int]:
        return self._state.settings()

    @property
    def requests_log(self) -> list[dict[str, Any]]:
        """Recent requests: time, method, path, query (secrets redacted), status."""
        return self._log.entries()

    def clear_requests_log(self) -> None:
        """Forget the recent requests and reset ``request_counts``."""
        self._log.clear()

    def request_counts(self) -> dict[str, int]:
        """Requests served since the last ``clear_requests_log``, by kind: ``token``,
        ``graph users/delta``, ``graph applications``, ``graph other``, ``other`` (the recent-request
        log keeps only the last 2,000; these count every one)."""
        return self._log.counts()

    def load_seed(self, seed: dict[str, Any] | str | Path) -> dict[str, Any]:
        return controls.apply_seed(self, seed)

    def reset(self) -> None:
        """Forget every tenant, application and user, and any pending fault."""
        self._state.reset()
        self._faults.clear()

    def describe(self) -> dict[str, Any]:
        """The directory as JSON-ready data (no secrets, no password hashes)."""
        out = []
        for tenant in self.list_tenants():
            out.append(
                {
                    **controls.tenant_dict(tenant),
                    "applications": [controls.application_dict(a) for a in self.list_applications(tenant.tenant_id)],
                    "users": [controls.user_dict(u) for u in self.list_users(tenant.tenant_id)],
                }
            )
        return {"url": self.url, "graph_base_url": self.graph_base_url, "settings": self.settings(), "tenants": out}

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
