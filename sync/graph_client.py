"""Microsoft Graph, read with one account's own app registration.

msgraph-sdk over httpx for Graph; the token, the endpoints, the TLS setup and the meaning
of Entra's refusals come from the one path to Entra, ``apsis_core.entra`` (azure-identity's
client-credentials token from the tenant-specific authority). The authority and the Graph
base URL are settings, so national clouds and the test emulator work like the public cloud.

Retries are ours, not the SDK's: the SDK's retry handler sleeps on its own clock and cannot
be observed, while the daemon must honour ``Retry-After`` exactly, cap how long one account
may stall a worker, and let tests assert the waits Graph asked for without waiting them.
Every failure becomes one of a few exceptions with a one-line message that names the
tenant or app, never a secret or a token.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.applications_with_app_id.applications_with_app_id_request_builder import (
    ApplicationsWithAppIdRequestBuilder,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
from msgraph_core import GraphClientFactory
from pydantic import SecretStr

from apsis_core import entra
from apsis_core.entra import EntraEndpoints, RefusalKind
from apsis_core.errors import EX_USAGE, ApsisError, TemporaryFailure

USER_SELECT = ["id", "accountEnabled", "mail", "userPrincipalName"]
T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]


# -- errors ---------------------------------------------------------------------------


class GraphFailure(ApsisError):
    """Base: the message is one line an operator can act on."""


class GraphUnavailable(TemporaryFailure, GraphFailure):
    """Graph or the token endpoint could not be reached, or kept failing (5xx, 429, transport):
    exit code 75, the next cycle tries again."""


class GraphRequestFailed(GraphFailure):
    """Graph answered an error the daemon cannot work around (4xx other than the ones below)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class DeltaTokenExpired(GraphFailure):
    """The stored delta (or skip) token is gone: ``syncStateNotFound`` or ``resyncRequired``/410.

    ``location`` is the restart URL Graph offers with a 410, when it offered one.
    """

    def __init__(self, message: str, code: str, location: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.location = location


class TokenRejected(GraphFailure):
    """Entra refused the client credentials. ``aadsts`` is the AADSTS code, ``kind`` what it means
    for the operator: ``expired`` (7000222), ``invalid`` (7000215), or ``other``. A person
    must act (a new secret, consent): exit code 2."""

    exit_code = EX_USAGE

    def __init__(self, message: str, aadsts: int | None, kind: RefusalKind) -> None:
        super().__init__(message)
        self.aadsts = aadsts
        self.kind = kind


# -- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EntraUser:
    """One item of a ``users/delta`` page. ``removed`` is ``changed`` (soft-deleted) or
    ``deleted`` (permanently deleted); ``enabled`` is None when Graph did not send it."""

    oid: str
    enabled: bool | None = None
    mail: str | None = None
    upn: str | None = None
    removed: str | None = None

    @property
    def emails(self) -> list[str]:
        """Addresses to match an APSIS One user by: ``mail`` first, then the UPN."""
        out: list[str] = []
        for value in (self.mail, self.upn):
            if value and value.lower() not in out:
                out.append(value.lower())
        return out


@dataclass(frozen=True)
class DeltaRound:
    """A complete round: every page up to the ``@odata.deltaLink``. ``full`` when it started
    from the initial query, i.e. it lists every current user rather than changes."""

    users: list[EntraUser]
    delta_link: str
    full: bool
    pages: int


@dataclass(frozen=True)
class PasswordCredential:
    key_id: str
    hint: str | None
    display_name: str | None
    end: datetime | None


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
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


# -- client ---------------------------------------------------------------------------


class GraphClient:
    """Graph as one account's app registration sees it. Use as an async context manager."""

    def __init__(
        self,
        endpoints: EntraEndpoints,
        tenant_id: str,
        client_id: str,
        secret: SecretStr | None = None,
        *,
        credential: AsyncTokenCredential | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.retry = retry or RetryPolicy()
        self.requests = 0
        if credential is None:
            if secret is None:
                raise ValueError("a client secret or a credential is required")
            # azure-core would retry on its own clock; our policy retries the call
            credential = entra.client_secret_credential(endpoints, tenant_id, client_id, secret.get_secret_value())
        self._credential = credential
        self._http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(verify=endpoints.ssl_context, timeout=endpoints.timeout),
            options={RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0, should_retry=False)},
        )
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[endpoints.scope], allowed_hosts=[endpoints.graph_host]
        )
        adapter = GraphRequestAdapter(auth, client=self._http)
        adapter.base_url = endpoints.graph_base_url  # before the client is built
        self._client = GraphServiceClient(request_adapter=adapter)

    async def __aenter__(self) -> "GraphClient":
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()
        await self._credential.close()

    # -- calls ------------------------------------------------------------------------

    async def delta_round(self, link: str | None = None) -> DeltaRound:
        """Walk ``users/delta`` from ``link`` (None: the initial query, a full listing) to the
        deltaLink. ``$select`` goes on the initial request only: Graph encodes it in the tokens."""
        full = link is None
        if link is None:
            config = RequestConfiguration(
                query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=list(USER_SELECT))
            )
            page = await self._call("users/delta", lambda: self._client.users.delta.get(request_configuration=config))
        else:
            page = await self._call("users/delta", lambda: self._client.users.delta.with_url(link).get())
        users: list[EntraUser] = []
        pages = 0
        while True:
            if page is None:
                raise GraphRequestFailed("Graph answered users/delta with an empty body")
            pages += 1
            users.extend(_entra_user(u) for u in page.value or [])
            if page.odata_next_link:
                next_link = page.odata_next_link
                page = await self._call("users/delta", lambda: self._client.users.delta.with_url(next_link).get())
                continue
            if page.odata_delta_link:
                return DeltaRound(users=users, delta_link=page.odata_delta_link, full=full, pages=pages)
            raise GraphRequestFailed("a users/delta page carried neither @odata.nextLink nor @odata.deltaLink")

    async def restart_round(self, expired: DeltaTokenExpired) -> DeltaRound:
        """Start over after an expired token: from the 410's ``Location`` when Graph gave one
        on its own host (it is the initial query), else from our own initial query."""
        location = expired.location
        if location and urlsplit(location).hostname == self.endpoints.graph_host:
            round_ = await self.delta_round(location)
            return DeltaRound(round_.users, round_.delta_link, full=True, pages=round_.pages)
        return await self.delta_round(None)

    async def password_credentials(self, app_id: str) -> list[PasswordCredential] | None:
        """The app's client secrets (metadata only), or None when the tenant did not grant
        ``Application.Read.All`` (403 ``Authorization_RequestDenied``): that permission is optional."""
        config = RequestConfiguration(
            query_parameters=ApplicationsWithAppIdRequestBuilder.ApplicationsWithAppIdRequestBuilderGetQueryParameters(
                select=["id", "appId", "passwordCredentials"]
            )
        )
        try:
            app = await self._call(
                "applications", lambda: self._client.applications_with_app_id(app_id).get(request_configuration=config)
            )
        except GraphRequestFailed as exc:
            if exc.status == 403:
                return None
            raise
        if app is None:
            return []
        return [
            PasswordCredential(
                key_id=str(c.key_id) if c.key_id else "",
                hint=c.hint,
                display_name=c.display_name,
                end=c.end_date_time,
            )
            for c in app.password_credentials or []
        ]

    # -- plumbing ---------------------------------------------------------------------

    async def _call(self, what: str, make: Callable[[], Awaitable[T]]) -> T:
        """One Graph call (and the token it needs), retried on 429, 5xx and transport errors."""
        for attempt in range(1, self.retry.max_attempts + 1):
            self.requests += 1
            try:
                return await make()
            except APIError as exc:
                status = exc.response_status_code or 0
                if not entra.retryable(status):
                    raise self._map_api_error(what, exc) from None
                reason = "throttled" if status == 429 else "server_error"
                await self._retry(f"Graph {what}", reason, status, exc.response_headers, attempt)
            except ClientAuthenticationError as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None) or 0
                if not entra.retryable(status):  # a verdict on our credentials, not a busy endpoint
                    raise self._token_error(exc) from None
                reason = "token_throttled" if status == 429 else "token_server_error"
                headers = getattr(exc.response, "headers", None)
                await self._retry("Entra's token endpoint", reason, status, headers, attempt)
            except httpx.TransportError as exc:
                await self._retry(f"Graph at {self.endpoints.graph_host}", "transport", 0, None, attempt,
                                  f"is unreachable ({type(exc).__name__})")
            except (ServiceRequestError, ServiceResponseError) as exc:
                await self._retry(f"Entra at {self.endpoints.authority_host}", "transport", 0, None,
                                  attempt, f"is unreachable for tenant {self.tenant_id} ({type(exc).__name__})")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _retry(self, who: str, reason: str, status: int, headers: Any, attempt: int,
                     gave_up: str | None = None) -> None:
        """Wait before the next attempt (Retry-After when given, else backoff), or give up
        with a one-line GraphUnavailable after the last attempt or when asked to wait too long."""
        policy = self.retry
        if attempt == policy.max_attempts:
            raise GraphUnavailable(
                f"{who} {gave_up}" if gave_up else
                f"{who} for tenant {self.tenant_id} kept failing with HTTP {status} after {attempt} attempts"
            )
        asked = retry_after_seconds(headers)
        wait = asked if asked is not None else policy.backoff_for(attempt)
        if wait > policy.max_wait:
            raise GraphUnavailable(
                f"{who} for tenant {self.tenant_id} asked to retry after {wait:.0f}s "
                f"(more than the {policy.max_wait:.0f}s allowed per wait); trying again next cycle"
            )
        await policy.wait(reason, wait, status)

    def _map_api_error(self, what: str, exc: APIError) -> GraphFailure:
        status = exc.response_status_code
        code = message = None
        if isinstance(exc, ODataError) and exc.error is not None:
            code, message = exc.error.code, exc.error.message
        if code in ("syncStateNotFound", "resyncRequired") or status == 410:
            location = None
            if exc.response_headers:
                location = exc.response_headers.get("location") or exc.response_headers.get("Location")
            return DeltaTokenExpired(
                f"the delta token of tenant {self.tenant_id} is no longer valid ({code or status})",
                code or str(status),
                location,
            )
        first = (message or str(exc)).splitlines()[0][:200]
        return GraphRequestFailed(
            f"Graph refused {what} for tenant {self.tenant_id} (HTTP {status}{', ' + code if code else ''}: {first})",
            status=status,
            code=code,
        )

    def _token_error(self, exc: ClientAuthenticationError) -> GraphFailure:
        codes = entra.aadsts_codes(str(exc.message or exc))
        if not codes:  # no AADSTS verdict: the token endpoint failed, not our credentials
            return GraphUnavailable(
                f"Entra at {self.endpoints.authority_host} gave no token for tenant "
                f"{self.tenant_id} (no AADSTS code in the answer)"
            )
        code = codes[0]
        refused = entra.refusal(code)
        where = f"app {self.client_id} in tenant {self.tenant_id}"
        return TokenRejected(f"Entra refused a token for {where}: {refused.meaning} (AADSTS{code})", code, refused.kind)


def _entra_user(user: Any) -> EntraUser:
    extra = getattr(user, "additional_data", None) or {}
    removed = extra.get("@removed")
    reason = None
    if isinstance(removed, dict):
        reason = str(removed.get("reason") or "changed")
    elif removed is not None:
        reason = "changed"
    return EntraUser(
        oid=str(user.id),
        enabled=getattr(user, "account_enabled", None),
        mail=getattr(user, "mail", None),
        upn=getattr(user, "user_principal_name", None),
        removed=reason,
    )
