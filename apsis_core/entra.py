"""The one path to Microsoft Entra: endpoints, TLS, tokens and what Entra's refusals mean.

Every part asks Entra the same way. Tokens come from azure-identity's
``ClientSecretCredential`` with the account's own app registration (client credentials
at the tenant-specific authority), built by ``client_secret_credential`` alone: the CLI
proves a customer's secret with it (``prove_secret``), the daemon reads Graph with it.
One ``EntraEndpoints`` says where Entra and Graph are (public cloud, a national cloud, the
test emulator), what the Graph token's scope is, and which CA to trust; one table
(``AADSTS``) says what each AADSTS code means for an operator. Tenant discovery
(``resolve_tenant``) is a plain OpenID discovery request with the same TLS setup.

Imports of azure-identity, aiohttp and httpx happen inside the functions, so a CLI that
only shows ``--help`` never pays for them.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from apsis_core.errors import EntraError, EntraRefused, EntraUnavailable, RefusalKind, retryable_status

if TYPE_CHECKING:
    from azure.identity.aio import CertificateCredential, ClientSecretCredential

    from apsis_core.certificates import KeyPair
    from apsis_core.settings import Settings

DISCOVERY_TIMEOUT = 15.0

# -- where Entra is -------------------------------------------------------------------------


@dataclass(frozen=True)
class EntraEndpoints:
    """Where Entra and Graph live, and how to reach them."""

    authority: str
    graph_base_url: str
    ca_bundle: Path | None = None
    timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings, timeout: float | None = None) -> EntraEndpoints:
        return cls(
            settings.entra_authority,
            settings.graph_base_url,
            settings.entra_ca_bundle,
            timeout if timeout is not None else cls.timeout,
        )

    @property
    def authority_host(self) -> str:
        return urlsplit(self.authority).hostname or self.authority

    @property
    def graph_host(self) -> str:
        return urlsplit(self.graph_base_url).hostname or ""

    @property
    def scope(self) -> str:
        """The app-only Graph token's scope: ``<graph host>/.default`` (national clouds follow)."""
        parts = urlsplit(self.graph_base_url)
        return f"{parts.scheme}://{parts.netloc}/.default"

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | bool:
        """TLS verification for httpx clients: the system's CAs, plus ``ca_bundle`` when set."""
        return ssl.create_default_context(cafile=str(self.ca_bundle)) if self.ca_bundle else True

    @property
    def connection_verify(self) -> str | bool:
        """The same for azure-identity, whose aiohttp transport takes a CA bundle path."""
        return str(self.ca_bundle) if self.ca_bundle else True

    def discovery_url(self, tenant: str) -> str:
        return f"{self.authority}/{tenant}/v2.0/.well-known/openid-configuration"


# -- what Entra's refusals mean -------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One AADSTS code: ``kind`` (what the daemon counts and flags), ``meaning`` (a clause for
    the daemon's messages) and ``advice`` (the CLI's one line: what to check or ask for)."""

    kind: RefusalKind
    meaning: str
    advice: str


AADSTS: dict[int, Refusal] = {
    7000215: Refusal(
        "invalid",
        "the client secret is wrong or was removed",
        "Entra rejected the client secret (AADSTS7000215: invalid secret); send the secret's Value, not its Secret ID",
    ),
    7000222: Refusal(
        "expired",
        "the client secret has expired",
        "the client secret has expired in Entra (AADSTS7000222); ask the customer for a new one",
    ),
    700027: Refusal(
        "invalid",
        "the certificate is not uploaded to the app registration, or has expired there",
        "Entra does not know APSIS's certificate on application {client_id} (AADSTS700027): upload it "
        "under Certificates & secrets › Certificates (apsis-sso account certificate)",
    ),
    700024: Refusal(
        "other",
        "the credentials were refused",
        "Entra found the client assertion outside its time range (AADSTS700024): check this host's clock",
    ),
    700023: Refusal(
        "other",
        "the credentials were refused",
        "Entra refused the client assertion's audience (AADSTS700023): check APSIS_SSO_ENTRA_AUTHORITY",
    ),
    700016: Refusal(
        "other",
        "the credentials were refused",
        "Entra has no application {client_id} in tenant {tenant} (AADSTS700016); check the Application (client) ID",
    ),
    90002: Refusal(
        "other",
        "the credentials were refused",
        "Entra has no tenant {tenant} (AADSTS90002); check the Directory (tenant) ID",
    ),
}
OTHER = Refusal("other", "the credentials were refused", "")

_AADSTS = re.compile(r"AADSTS(\d+)")


def refusal(code: int | None) -> Refusal:
    return AADSTS.get(code or 0, OTHER)


def aadsts_codes(text: str, body: Any = None) -> list[int]:
    """AADSTS codes of a token error: Entra's ``error_codes`` when the body is at hand, else
    those named in its message (``AADSTS7000215: ...``)."""
    codes = body.get("error_codes") if isinstance(body, dict) else None
    if isinstance(codes, list):
        found = [int(c) for c in codes if isinstance(c, int) or str(c).isdigit()]
        if found:
            return found
    return [int(c) for c in _AADSTS.findall(text)]


# -- tokens ---------------------------------------------------------------------------------


def client_secret_credential(
    endpoints: EntraEndpoints, tenant: str, client_id: str, secret: str | KeyPair, transport: Any = None
) -> ClientSecretCredential | CertificateCredential:
    """The account's app registration as azure-identity sees it (async; aiohttp transport).

    ``transport`` (an azure-core ``AioHttpTransport`` that does not own its session, from
    ``shared_token_transport`` / ``shared_transport``) lets many accounts' credentials share one
    connection pool and TLS context; without it the credential opens its own."""
    from azure.identity.aio import CertificateCredential, ClientSecretCredential

    # A shared transport's session carries the TLS setup: a CA path per credential would make
    # azure-core build an SSL context per request, and aiohttp then never reuses a connection.
    extra = {"transport": transport} if transport is not None else {"connection_verify": endpoints.connection_verify}
    if not isinstance(secret, str):
        # A client assertion signed with the key, naming the certificate by thumbprint (the PEM
        # holds key and certificate; it is read from a file mount, never the environment).
        return CertificateCredential(
            tenant,
            client_id,
            certificate_data=secret.pem,
            authority=endpoints.authority,
            disable_instance_discovery=True,
            retry_total=0,
            **extra,
        )
    return ClientSecretCredential(
        tenant,
        client_id,
        secret,
        authority=endpoints.authority,
        disable_instance_discovery=True,
        retry_total=0,  # azure-core would retry on its own clock; callers decide about retries
        **extra,
    )


def shared_token_transport(endpoints: EntraEndpoints) -> Any:
    """One aiohttp session (pool, TLS context) for every account's token requests; its
    credentials come and go, the session stays (``session_owner=False``). Create it inside
    the event loop that uses it; close it with ``close_token_transport``."""
    import aiohttp
    from azure.core.pipeline.transport import AioHttpTransport

    # The connector carries the one TLS context (with the CA bundle when set); verify=True makes
    # azure-core defer to it instead of building a context per request from a bundle path.
    connector = aiohttp.TCPConnector(ssl=endpoints.ssl_context)
    session = aiohttp.ClientSession(connector=connector)
    return AioHttpTransport(session=session, session_owner=False, connection_verify=True)


async def close_token_transport(transport: Any) -> None:
    if transport is not None and transport.session is not None:
        await transport.session.close()


@asynccontextmanager
async def shared_transport(endpoints: EntraEndpoints) -> AsyncIterator[Any]:
    """``shared_token_transport`` for one ``async with`` block (every tenant's token endpoint is
    on the one authority host, so kept-alive connections spare a TLS handshake per request)."""
    transport = shared_token_transport(endpoints)
    try:
        yield transport
    finally:
        await close_token_transport(transport)


def prove_secret(endpoints: EntraEndpoints, tenant: str, client_id: str, secret: str | KeyPair) -> None:
    """Raise a one-line error unless Entra issues an app token for this id + secret.

    A client-credentials token request proves an application id and secret without any user
    and without admin consent, so a rotation never swaps in a secret Entra rejects."""
    asyncio.run(prove_secret_async(endpoints, tenant, client_id, secret))


async def prove_secret_async(
    endpoints: EntraEndpoints, tenant: str, client_id: str, secret: str | KeyPair, transport: Any = None
) -> None:
    """``prove_secret`` for callers that already run an event loop (``transport``: see
    ``client_secret_credential``)."""
    await app_token(endpoints, tenant, client_id, secret, transport)


async def app_token(
    endpoints: EntraEndpoints, tenant: str, client_id: str, secret: str | KeyPair, transport: Any = None
) -> str:
    """An app-only Graph access token of the account's app registration (its refusals as
    one-line errors). The token is opaque to us (Microsoft documents Graph's tokens as not
    for clients to read): what it allows is learnt by using it."""
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError

    credential = client_secret_credential(endpoints, tenant, client_id, secret, transport)
    try:
        return (await credential.get_token(endpoints.scope)).token
    except ClientAuthenticationError as exc:
        raise token_refused(exc, client_id, tenant) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise unreachable(endpoints, exc) from None
    finally:
        await credential.close()


CONSENT_MISSING = (
    "Entra issued a token for application {client_id}, but Graph refused to list users with it "
    "(403 Authorization_RequestDenied): the application permission User.Read.All has no admin consent "
    "in tenant {tenant} yet"
)


def prove_graph_access(endpoints: EntraEndpoints, tenant: str, client_id: str, secret: str | KeyPair) -> None:
    """``prove_secret``, and then that the app may read the directory as the sync daemon will.

    Proved the way the daemon uses it: one Graph request ``User.Read.All`` allows
    (``GET /users?$top=1&$select=id``) with the app-only token. Graph answers 403
    ``Authorization_RequestDenied`` while the permission has no admin consent (the token then
    carries no such role), which is refused here with ``reason="consent"``."""
    asyncio.run(prove_graph_access_async(endpoints, tenant, client_id, secret))


async def prove_graph_access_async(
    endpoints: EntraEndpoints, tenant: str, client_id: str, secret: str | KeyPair
) -> None:
    import httpx

    token = await app_token(endpoints, tenant, client_id, secret)
    try:
        async with httpx.AsyncClient(verify=endpoints.ssl_context, timeout=endpoints.timeout) as client:
            resp = await client.get(
                f"{endpoints.graph_base_url}/users",
                params={"$top": "1", "$select": "id"},
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.HTTPError as exc:
        what = "did not answer in time" if _is_timeout(exc) else "is unreachable"
        raise EntraUnavailable(
            f"Microsoft Graph at {endpoints.graph_base_url} {what} ({type(exc).__name__}); try again later"
        ) from None
    if resp.status_code == 200:
        return
    if retryable_status(resp.status_code):
        raise EntraUnavailable(f"Microsoft Graph answered HTTP {resp.status_code} to listing users; try again later")
    try:
        code = str(resp.json().get("error", {}).get("code", ""))
    except (ValueError, AttributeError):
        code = ""
    if resp.status_code == 403 and code == "Authorization_RequestDenied":
        raise EntraRefused(CONSENT_MISSING.format(client_id=client_id, tenant=tenant), "consent")
    raise EntraError(
        f"Microsoft Graph answered HTTP {resp.status_code} ({code or 'no code'}) to listing users "
        f"with application {client_id}"
    )


def refused(code: int, message: str) -> EntraRefused:
    """``EntraRefused`` for an AADSTS code: ``message`` with the code as ``reason``, ``aadsts``
    and the table's ``kind``."""
    return EntraRefused(message, f"AADSTS{code}", aadsts=code, kind=refusal(code).kind)


def token_codes(exc: Any) -> list[int]:
    """The AADSTS codes of an azure-identity ``ClientAuthenticationError``."""
    return aadsts_codes(str(getattr(exc, "message", None) or exc), _json_body(getattr(exc, "response", None)))


def token_refused(exc: Any, client_id: str, tenant: str) -> EntraError:
    """What an azure-identity ``ClientAuthenticationError`` means for the operator: the
    table's advice for a code it knows (``EntraRefused``), 75 for a busy token endpoint."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    what = f"a token for application {client_id}"
    if retryable_status(status):
        wait = (getattr(response, "headers", None) or {}).get("Retry-After")
        hint = f"; Entra asks to retry after {wait}s" if wait else "; try again later"
        return EntraUnavailable(f"Entra answered HTTP {status} for {what}{hint}")
    codes = token_codes(exc)
    for code in codes:
        if code in AADSTS:
            return refused(code, AADSTS[code].advice.format(client_id=client_id, tenant=tenant))
    first = f"AADSTS{codes[0]}" if codes else f"HTTP {status}"
    return EntraError(f"Entra refused {what} ({first})")


def token_refused_in_cycle(exc: Any, endpoints: EntraEndpoints, client_id: str, tenant: str) -> EntraError:
    """The same refusal as the daemon records it (the caller retried 429/5xx already): the
    table's meaning, and ``kind`` for its flags. No AADSTS code in the answer is no verdict on
    the credentials: the token endpoint failed (75)."""
    codes = token_codes(exc)
    if not codes:
        return EntraUnavailable(
            f"Entra at {endpoints.authority_host} gave no token for tenant {tenant} (no AADSTS code in the answer)"
        )
    code = codes[0]
    where = f"app {client_id} in tenant {tenant}"
    return refused(code, f"Entra refused a token for {where}: {refusal(code).meaning} (AADSTS{code})")


def unreachable(endpoints: EntraEndpoints, exc: BaseException) -> EntraUnavailable:
    what = "did not answer in time" if _is_timeout(exc) else "is unreachable"
    return EntraUnavailable(f"Entra at {endpoints.authority} {what} ({type(exc).__name__}); try again later")


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError) or "Timeout" in type(seen).__name__:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _json_body(response: Any) -> Any:
    try:
        import json

        return json.loads(response.text()) if response is not None else None
    except Exception:  # noqa: BLE001 - a body we cannot read only means: use the message
        return None


# -- tenants --------------------------------------------------------------------------------


def is_tenant_guid(tenant: str) -> bool:
    """A tenant named by its GUID (else by a domain, resolved with ``resolve_tenant``)."""
    try:
        uuid.UUID(tenant)
    except ValueError:
        return False
    return True


def resolve_tenant(endpoints: EntraEndpoints, tenant: str) -> str:
    """The tenant GUID for a GUID or a domain, from the tenant's OpenID discovery document."""
    if is_tenant_guid(tenant):
        return str(uuid.UUID(tenant))
    import httpx

    try:
        resp = httpx.get(endpoints.discovery_url(tenant), verify=endpoints.ssl_context, timeout=DISCOVERY_TIMEOUT)
    except httpx.HTTPError as exc:
        raise unreachable(endpoints, exc) from None
    if resp.status_code != 200:
        what = f"tenant {tenant}'s discovery document"
        if retryable_status(resp.status_code):
            wait = resp.headers.get("Retry-After")
            hint = f"; Entra asks to retry after {wait}s" if wait else "; try again later"
            raise EntraUnavailable(f"Entra answered HTTP {resp.status_code} for {what}{hint}")
        try:
            body = resp.json()
        except ValueError:
            body = None
        codes = aadsts_codes(str((body or {}).get("error_description", "")) if isinstance(body, dict) else "", body)
        if 90002 in codes or resp.status_code in (400, 404):
            raise refused(90002, AADSTS[90002].advice.format(tenant=tenant, client_id=""))
        raise EntraError(f"Entra answered HTTP {resp.status_code} for {what}")
    issuer = str(resp.json().get("issuer", ""))
    match = re.search(r"/([0-9a-fA-F-]{36})/", issuer + "/")
    if not match:
        raise EntraError(f"Entra's discovery document for {tenant} names no tenant id in its issuer")
    return match.group(1).lower()
