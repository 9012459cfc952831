"""What keeps the portal's pages safe: the session cookie, CSRF tokens and response headers.

* **Session**: opening a valid link sets one cookie, signed with ``itsdangerous`` (HMAC,
  key from ``APSIS_PORTAL_SESSION_KEY``), holding the account, the invitation's hash (never
  the token) and the session's CSRF token. It is never re-issued, so it lasts at most
  ``session_minutes`` (an hour) from the moment the link was opened; every request also
  re-checks the invitation in Keycloak, so a revoked or completed link ends its sessions.
  ``HttpOnly``, ``SameSite=Strict``, and on https ``Secure`` with the ``__Host-`` prefix.
* **CSRF**: every form carries the session's token; a POST without it (or another one) is
  refused. The cookie is ``SameSite=Strict`` as well, and a POST whose ``Origin`` names
  another site is refused (``null`` is accepted: browsers send it for forms of a page with
  ``Referrer-Policy: no-referrer``).
* **Headers** on every response: a CSP without inline script (only our own static files),
  ``frame-ancestors 'none'``, ``Referrer-Policy: no-referrer``, ``nosniff``, no caching of
  pages, and HSTS when the portal is served over https.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CSRF_FIELD = "csrf"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), clipboard-write=(self)",
}
HSTS = "max-age=31536000; includeSubDomains"


@dataclass(frozen=True)
class Session:
    """One visitor's session: which account and invitation it was opened from."""

    account: str
    invitation: str
    """The invitation's hash (its id in logs is a prefix of it)."""
    csrf: str


class SessionCodec:
    """Signs and reads the session cookie; a cookie older than ``max_age`` is no session."""

    def __init__(self, key: str, max_age_seconds: int, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="apsis-portal-session")
        self.max_age = max_age_seconds
        self.secure = secure

    @property
    def cookie_name(self) -> str:
        # __Host-: only set over https, for this host, path / (no Domain): no subdomain can plant it.
        return "__Host-apsis-portal" if self.secure else "apsis-portal"

    def new(self, account: str, invitation: str) -> tuple[Session, str]:
        session = Session(account, invitation, secrets.token_urlsafe(32))
        return session, self._serializer.dumps({"a": account, "i": invitation, "c": session.csrf})

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("a", "i", "c")):
            return None
        return Session(data["a"], data["i"], data["c"])

    def cookie_header(self, value: str) -> str:
        parts = [f"{self.cookie_name}={value}", "Path=/", f"Max-Age={self.max_age}", "HttpOnly", "SameSite=Strict"]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)

    def clear_header(self) -> str:
        parts = [f"{self.cookie_name}=", "Path=/", "Max-Age=0", "HttpOnly", "SameSite=Strict"]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf.encode(), str(submitted).encode())


def origin_ok(origin: str | None, portal_url: str) -> bool:
    """A POST may come from our own pages only: no Origin, ``null`` (no-referrer pages), or ours."""
    if origin is None or origin == "null":
        return True
    ours = urlsplit(portal_url)
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)


def response_headers(https: bool) -> dict[str, str]:
    headers = dict(HEADERS)
    if https:
        headers["strict-transport-security"] = HSTS
    return headers


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response (pages, static files,
    errors); pages are never cached (they show account details and links)."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in response_headers(https).items()]

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if not static and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
