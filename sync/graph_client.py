"""Microsoft Graph, read with one account's own app registration.

The daemon reads two Graph resources, ``users/delta`` and ``applications(appId=…)``, each a
plain GET: they are sent with httpx directly (the URLs msgraph-sdk's request builders
produce, a bearer token, ``Accept: application/json``), not through msgraph-sdk's request
adapter and msgraph-core's middleware chain, which cost an idle tenant about a quarter of its
CPU (bench/README.md, "Figures behind the code"). What that chain did that Graph needs is here:
the token only to the Graph host and only over HTTPS, redirects followed (at most 5; httpx
drops the token when one leaves the origin), a ``client-request-id`` per request (what
Microsoft support asks for), Graph's error body (``{"error": {"code", "message"}}``) read
for the mapping below. Bodies are parsed by ``sync.graph_pages`` (why: there).

The token, the endpoints, the TLS setup and the meaning of Entra's refusals come from the
one path to Entra, ``apsis_core.entra`` (azure-identity's client-credentials token from the
tenant-specific authority). The authority and the Graph base URL are settings, so national
clouds and the test emulator work like the public cloud. What is per account is small and
kept across cycles: its ``AccountToken`` (the token, reused until shortly before it expires;
a short-lived azure-identity credential fetches the next one), so many accounts cost a
token each, not an SDK client each (far larger: bench/README.md).

Retries are ours, not the SDK's: the SDK's retry handler sleeps on its own clock and cannot
be observed, while the daemon must honour ``Retry-After`` exactly, cap how long one account
may stall a worker, and let tests assert the waits Graph asked for without waiting them.
Every failure becomes one of the Entra branch of ``apsis_core.errors`` (``EntraRefused``,
``EntraUnavailable``, ``GraphRequestFailed``, ``DeltaTokenExpired``) with a one-line message
that names the tenant or app, never a secret or a token: Graph's answers are mapped here
(``_map_api_error``), the token endpoint's by ``apsis_core.entra`` with its AADSTS table.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from pydantic import SecretStr

from apsis_core import entra
from apsis_core.certificates import KeyPair
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import (
    DeltaTokenExpired,
    EntraError,
    EntraUnavailable,
    GraphRequestFailed,
    retryable_status,
)
from sync.graph_pages import (
    DeltaPage,
    EntraUser,
    MalformedAnswer,
    PasswordCredential,
    parse_delta_page,
    parse_password_credentials,
)

USER_SELECT = ["id", "accountEnabled", "mail", "userPrincipalName"]
APPLICATION_SELECT = ["id", "appId", "passwordCredentials"]
MAX_REDIRECTS = 5  # msgraph-core's redirect handler's limit
T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]


# -- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeltaRound:
    """A complete round: every page up to the ``@odata.deltaLink``. ``full`` when it started
    from the initial query, i.e. it lists every current user rather than changes."""

    users: list[EntraUser]
    delta_link: str
    full: bool
    pages: int


# -- retry ----------------------------------------------------------------------------


@dataclass
class RetryPolicy:
    """How the client waits. ``sleep`` is injectable so tests record the waits instead of
    sleeping them; ``on_wait`` lets the daemon log and count them."""

    max_attempts: int = 5
    backoff: float = 1.0
    max_wait: float = 120.0
    sleep: Sleep = asyncio.sleep
    on_wait: Callable[[str, float, int], None] | None = None
    waits: list[tuple[str, float]] = field(default_factory=list)

    def backoff_for(self, attempt: int) -> float:
        """Exponential backoff with jitter (half fixed, half random) for answers without Retry-After."""
        base = self.backoff * (2 ** (attempt - 1))
        return min(self.max_wait, base / 2 + random.uniform(0, base / 2))

    async def wait(self, reason: str, seconds: float, status: int) -> None:
        self.waits.append((reason, seconds))
        if self.on_wait:
            self.on_wait(reason, seconds, status)
        await self.sleep(seconds)


def retry_after_seconds(headers: Any) -> float | None:
    """``Retry-After`` as seconds: delta-seconds (Graph sends fractions such as ``2.128``) or an HTTP date."""
    if not headers:
        return None
    value = None
    for key in ("retry-after", "Retry-After"):
        try:
            value = headers.get(key)
        except AttributeError:
            return None
        if value:
            break
    if not value:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# -- tokens ---------------------------------------------------------------------------

REFRESH_SECONDS = 300  # azure-core's own margin: fetch a new token this long before expiry


class AccountToken:
    """One account's Graph token, kept across cycles and reused until it is about to expire.

    ``credential`` (a test's, or one kept by a standalone client) is asked directly;
    otherwise ``fetch`` builds a short-lived azure-identity credential, asks it, and closes
    it: a credential object is many times a token's size, and one request an hour per
    account does not need a credential in between."""

    def __init__(
        self,
        scope: str,
        *,
        credential: AsyncTokenCredential | None = None,
        fetch: Callable[[], AsyncTokenCredential] | None = None,
        fingerprint: str = "",
    ) -> None:
        if credential is None and fetch is None:
            raise ValueError("a credential or a way to build one is required")
        self.scope = scope
        self.fingerprint = fingerprint
        self._credential = credential
        self._fetch = fetch
        self._token: AccessToken | None = None
        self._lock: asyncio.Lock | None = None

    @classmethod
    def for_secret(
        cls,
        endpoints: EntraEndpoints,
        tenant_id: str,
        client_id: str,
        secret: SecretStr | KeyPair,
        transport: Any = None,
    ) -> AccountToken:
        """A client secret, or (a certificate account) the assertion key pair."""
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret

        def fetch() -> AsyncTokenCredential:
            return entra.client_secret_credential(endpoints, tenant_id, client_id, value, transport=transport)

        return cls(endpoints.scope, fetch=fetch, fingerprint=secret_fingerprint(tenant_id, client_id, secret))

    @property
    def held(self) -> AccessToken | None:
        """The token in hand (None before the first request)."""
        return self._token

    def renew(self) -> None:
        """Ask Entra for a new token at the next request: permissions granted since the held
        one was issued are only in a new token."""
        self._token = None

    async def get(self) -> str:
        token = self._token
        if token is not None and token.expires_on - time.time() > REFRESH_SECONDS:
            return token.token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # a prefetched page and the current one: one token request
            token = self._token
            if token is not None and token.expires_on - time.time() > REFRESH_SECONDS:
                return token.token
            if self._credential is not None:
                self._token = await self._credential.get_token(self.scope)
            else:
                assert self._fetch is not None
                credential = self._fetch()
                try:
                    self._token = await credential.get_token(self.scope)
                finally:
                    await credential.close()
            return self._token.token

    async def close(self) -> None:
        if self._credential is not None:
            await self._credential.close()


def secret_fingerprint(tenant_id: str, client_id: str, secret: SecretStr | KeyPair) -> str:
    """Names the credentials without revealing them (a new secret or certificate, a new token)."""
    held = secret.get_secret_value() if isinstance(secret, SecretStr) else f"cert:{secret.certificate.sha1_thumbprint}"
    text = f"{tenant_id}\n{client_id}\n{held}".encode()
    return hashlib.sha256(text).hexdigest()[:16]


class GraphAnswer(Exception):
    """Graph answered with an error status: the status, its headers (``Retry-After``,
    ``Location``) and the ``code``/``message`` of its error body when it had one."""

    def __init__(self, status: int, headers: httpx.Headers, code: str | None = None, message: str | None = None):
        super().__init__(f"HTTP {status}")
        self.status, self.headers, self.code, self.message = status, headers, code, message

    @classmethod
    def of(cls, response: httpx.Response) -> GraphAnswer:
        code = message = None
        try:
            error = json.loads(response.content).get("error")
        except (ValueError, AttributeError):  # not JSON (a gateway's HTML page), or not an object
            error = None
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), str) else None
            message = error.get("message") if isinstance(error.get("message"), str) else None
        return cls(response.status_code, response.headers, code, message)


def delta_url(base_url: str) -> str:
    """The initial ``users/delta`` query, as msgraph-sdk's request builder writes it."""
    return f"{base_url}/users/delta()?$select={','.join(USER_SELECT)}"


def application_url(base_url: str, app_id: str) -> str:
    """``applications(appId='…')`` with the fields the expiry check reads."""
    return f"{base_url}/applications(appId='{quote(app_id, safe='')}')?$select={','.join(APPLICATION_SELECT)}"


# -- the shared stack ------------------------------------------------------------------


class GraphStack:
    """An httpx client (connection pool, TLS context) for Graph requests and, on the
    process's first stack, the aiohttp session every account's token requests share. Create
    and close it inside the event loop that uses it."""

    def __init__(self, endpoints: EntraEndpoints, *, max_connections: int = 100) -> None:
        self.endpoints = endpoints
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.http = httpx.AsyncClient(
            verify=endpoints.ssl_context,
            timeout=endpoints.timeout,
            limits=limits,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={"Accept": "application/json"},
        )
        self._token_transport: Any = None

    @property
    def token_transport(self) -> Any:
        if self._token_transport is None:
            self._token_transport = entra.shared_token_transport(self.endpoints)
        return self._token_transport

    async def close(self) -> None:
        await self.http.aclose()
        await entra.close_token_transport(self._token_transport)
        self._token_transport = None


# -- client ---------------------------------------------------------------------------


class GraphClient:
    """Graph as one account's app registration sees it, for one cycle (requests counted,
    waits recorded). The daemon passes the shared ``stack`` and the account's kept
    ``token``; standalone (tests, tools) it builds and owns both. Use as an async context
    manager."""

    def __init__(
        self,
        endpoints: EntraEndpoints,
        tenant_id: str,
        client_id: str,
        secret: SecretStr | None = None,
        *,
        credential: AsyncTokenCredential | None = None,
        retry: RetryPolicy | None = None,
        stack: GraphStack | None = None,
        token: AccountToken | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.retry = retry or RetryPolicy()
        self.requests = 0
        self._owns = stack is None
        self.stack = stack or GraphStack(endpoints)
        if token is None:
            if credential is None:
                if secret is None:
                    raise ValueError("a client secret or a credential is required")
                credential = entra.client_secret_credential(endpoints, tenant_id, client_id, secret.get_secret_value())
            token = AccountToken(endpoints.scope, credential=credential)
        self.token = token

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns:
            await self.stack.close()
            await self.token.close()

    # -- calls ------------------------------------------------------------------------

    async def delta_pages(self, link: str | None = None) -> AsyncIterator[DeltaPage]:
        """``users/delta`` from ``link`` (None: the initial query, a full listing) page by
        page to the deltaLink. The next page is requested as soon as this one is parsed, so
        Graph's latency overlaps the caller's work on this one. ``$select`` goes on the
        initial request only: Graph encodes it in the tokens."""
        pending: asyncio.Task[DeltaPage] | None = asyncio.ensure_future(self._delta_page(link))
        try:
            while pending is not None:
                page = await pending
                pending = asyncio.ensure_future(self._delta_page(page.next_link)) if page.next_link else None
                yield page
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):  # an abandoned prefetch
                    await pending

    async def delta_round(self, link: str | None = None) -> DeltaRound:
        """A whole round in memory (small rounds, tests); the daemon streams ``delta_pages``."""
        users: list[EntraUser] = []
        pages = 0
        async for page in self.delta_pages(link):
            pages += 1
            users.extend(page.users)
            if page.delta_link:
                return DeltaRound(users=users, delta_link=page.delta_link, full=link is None, pages=pages)
        raise GraphRequestFailed("a users/delta round ended without a deltaLink")  # pragma: no cover

    def restart_link(self, expired: DeltaTokenExpired) -> str | None:
        """Where to start over after an expired token: the 410's ``Location`` when Graph gave
        one on its own host (it is the initial query), else None (our own initial query)."""
        location = expired.location
        if location and urlsplit(location).hostname == self.endpoints.graph_host:
            return location
        return None

    async def restart_round(self, expired: DeltaTokenExpired) -> DeltaRound:
        round_ = await self.delta_round(self.restart_link(expired))
        return DeltaRound(round_.users, round_.delta_link, full=True, pages=round_.pages)

    async def password_credentials(self, app_id: str) -> list[PasswordCredential] | None:
        """The app's client secrets (metadata only), or None when the tenant did not grant
        ``Application.Read.All`` (403 ``Authorization_RequestDenied``): that permission is optional."""
        try:
            body = await self._get("applications", application_url(self.endpoints.graph_base_url, app_id))
        except GraphRequestFailed as exc:
            if exc.status == 403:
                return None
            raise
        if not body:
            return []
        return self._parsed("applications", lambda: parse_password_credentials(body))

    async def key_credential_thumbprints(self, app_id: str) -> list[str] | None:
        """The certificates uploaded to the app (``keyCredentials``' ``customKeyIdentifier``: SHA-1
        thumbprints), or None without ``Application.Read.All`` (403), like ``password_credentials``."""
        url = f"{self.endpoints.graph_base_url}/applications(appId='{quote(app_id, safe='')}')?$select=keyCredentials"
        try:
            body = await self._get("applications", url)
        except GraphRequestFailed as exc:
            if exc.status == 403:
                return None
            raise
        doc = json.loads(body) if body else {}
        return [str(k.get("customKeyIdentifier") or "") for k in doc.get("keyCredentials") or []]

    async def _delta_page(self, link: str | None) -> DeltaPage:
        body = await self._get("users/delta", link or delta_url(self.endpoints.graph_base_url))
        if not body:
            raise GraphRequestFailed("Graph answered users/delta with an empty body")
        return self._parsed("users/delta", lambda: parse_delta_page(body))

    async def _get(self, what: str, url: str) -> bytes | None:
        """One GET, its body as bytes (None when empty), retried by ``_call``."""

        async def send() -> bytes | None:
            headers = {"client-request-id": str(uuid.uuid4())}
            if self._for_graph(url):
                headers["Authorization"] = "Bearer " + await self.token.get()
            try:
                response = await self.stack.http.get(url, headers=headers)
            except httpx.TooManyRedirects:
                raise GraphRequestFailed(
                    f"Graph redirected {what} more than {MAX_REDIRECTS} times (tenant {self.tenant_id})"
                ) from None
            if not response.is_success and response.status_code != 304:
                raise GraphAnswer.of(response)
            return response.content or None

        return await self._call(what, send)

    def _for_graph(self, url: str) -> bool:
        """Whether ``url`` gets the token: the Graph host only, and only over HTTPS (a link
        to another host goes without it; plain HTTP to Graph's host is refused)."""
        parts = urlsplit(url)
        if parts.hostname != self.endpoints.graph_host:
            return False
        if parts.scheme != "https":
            raise ValueError("Graph tokens are only sent over HTTPS")
        return True

    def _parsed(self, what: str, parse: Callable[[], T]) -> T:
        try:
            return parse()
        except MalformedAnswer as exc:
            raise GraphRequestFailed(f"{exc} (tenant {self.tenant_id})") from None

    # -- plumbing ---------------------------------------------------------------------

    async def ensure_token(self) -> None:
        """The account's token in hand (Entra's refusals mapped like any call's)."""
        await self._call("token", self.token.get, count=False)

    async def _call(self, what: str, make: Callable[[], Awaitable[T]], count: bool = True) -> T:
        """One Graph call (and the token it needs), retried on 429, 5xx and transport errors."""
        for attempt in range(1, self.retry.max_attempts + 1):
            self.requests += int(count)
            try:
                return await make()
            except GraphAnswer as exc:
                if not retryable_status(exc.status):
                    raise self._map_answer(what, exc) from None
                reason = "throttled" if exc.status == 429 else "server_error"
                await self._retry(f"Graph {what}", reason, exc.status, exc.headers, attempt)
            except ClientAuthenticationError as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None) or 0
                if not retryable_status(status):  # a verdict on our credentials, not a busy endpoint
                    raise self._token_error(exc) from None
                reason = "token_throttled" if status == 429 else "token_server_error"
                headers = getattr(exc.response, "headers", None)
                await self._retry("Entra's token endpoint", reason, status, headers, attempt)
            except httpx.TransportError as exc:
                await self._retry(
                    f"Graph at {self.endpoints.graph_host}",
                    "transport",
                    0,
                    None,
                    attempt,
                    f"is unreachable ({type(exc).__name__})",
                )
            except (ServiceRequestError, ServiceResponseError) as exc:
                await self._retry(
                    f"Entra at {self.endpoints.authority_host}",
                    "transport",
                    0,
                    None,
                    attempt,
                    f"is unreachable for tenant {self.tenant_id} ({type(exc).__name__})",
                )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _retry(
        self, who: str, reason: str, status: int, headers: Any, attempt: int, gave_up: str | None = None
    ) -> None:
        """Wait before the next attempt (Retry-After when given, else backoff), or give up
        with a one-line EntraUnavailable after the last attempt or when asked to wait too long."""
        policy = self.retry
        if attempt == policy.max_attempts:
            raise EntraUnavailable(
                f"{who} {gave_up}"
                if gave_up
                else f"{who} for tenant {self.tenant_id} kept failing with HTTP {status} after {attempt} attempts"
            )
        asked = retry_after_seconds(headers)
        wait = asked if asked is not None else policy.backoff_for(attempt)
        if wait > policy.max_wait:
            raise EntraUnavailable(
                f"{who} for tenant {self.tenant_id} asked to retry after {wait:.0f}s "
                f"(more than the {policy.max_wait:.0f}s allowed per wait); trying again next cycle"
            )
        await policy.wait(reason, wait, status)

    def _map_answer(self, what: str, exc: GraphAnswer) -> EntraError:
        status, code, message = exc.status, exc.code, exc.message
        if code in ("syncStateNotFound", "resyncRequired") or status == 410:
            location = exc.headers.get("location")
            return DeltaTokenExpired(
                f"the delta token of tenant {self.tenant_id} is no longer valid ({code or status})",
                code or str(status),
                location,
            )
        first = (message or "no error message").splitlines()[0][:200]
        return GraphRequestFailed(
            f"Graph refused {what} for tenant {self.tenant_id} (HTTP {status}{', ' + code if code else ''}: {first})",
            status=status,
            code=code,
        )

    def _token_error(self, exc: ClientAuthenticationError) -> EntraError:
        return entra.token_refused_in_cycle(exc, self.endpoints, self.client_id, self.tenant_id)
