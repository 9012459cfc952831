"""Ask Entra before changing Keycloak: does the tenant exist, does the secret work?

A client-credentials token request proves an application id + secret pair without any
user and without admin consent, so a rotation never swaps in a secret Entra rejects.
"""

from __future__ import annotations

import re
import ssl
import uuid
from urllib.parse import urlsplit

import httpx

from apsis_core.errors import EntraError, EntraUnavailable, InvalidInput
from provisioning.settings import Settings

AADSTS_MESSAGES = {
    7000215: "Entra rejected the client secret (AADSTS7000215: invalid secret); send the secret's Value, not its Secret ID",
    7000222: "the client secret has expired in Entra (AADSTS7000222); ask the customer for a new one",
    700016: "Entra has no application {client_id} in tenant {tenant} (AADSTS700016); check the Application (client) ID",
    90002: "Entra has no tenant {tenant} (AADSTS90002); check the Directory (tenant) ID",
}


def _verify(settings: Settings) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(settings.entra_ca_bundle)) if settings.entra_ca_bundle else True


def graph_scope(settings: Settings) -> str:
    parts = urlsplit(settings.graph_base_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


def resolve_tenant(settings: Settings, tenant: str) -> str:
    """The tenant GUID for a GUID or a domain, from the tenant's OpenID discovery document."""
    try:
        return str(uuid.UUID(tenant))
    except ValueError:
        pass
    url = f"{settings.entra_authority}/{tenant}/v2.0/.well-known/openid-configuration"
    try:
        resp = httpx.get(url, verify=_verify(settings), timeout=15)
    except httpx.HTTPError as exc:
        raise _unreachable(settings, exc) from None
    if resp.status_code != 200:
        _raise_if_temporary(resp, f"tenant {tenant}'s discovery document")
        codes = _error_codes(resp)
        if 90002 in codes or resp.status_code in (400, 404):
            raise InvalidInput(f"Entra has no tenant {tenant} (AADSTS90002); check the Directory (tenant) ID")
        raise EntraError(f"Entra answered HTTP {resp.status_code} for tenant {tenant}'s discovery document")
    issuer = str(resp.json().get("issuer", ""))
    match = re.search(r"/([0-9a-fA-F-]{36})/", issuer + "/")
    if not match:
        raise EntraError(f"Entra's discovery document for {tenant} names no tenant id in its issuer")
    return match.group(1).lower()


def prove_secret(settings: Settings, tenant: str, client_id: str, secret: str) -> None:
    """Raise a one-line error unless Entra issues an app token for this id + secret."""
    url = f"{settings.entra_authority}/{tenant}/oauth2/v2.0/token"
    data = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": graph_scope(settings),
    }
    try:
        resp = httpx.post(url, data=data, verify=_verify(settings), timeout=15)
    except httpx.HTTPError as exc:
        raise _unreachable(settings, exc) from None
    if resp.status_code == 200 and "access_token" in resp.json():
        return
    _raise_if_temporary(resp, f"a token for application {client_id}")
    codes = _error_codes(resp)
    for code in codes:
        if code in AADSTS_MESSAGES:
            raise InvalidInput(AADSTS_MESSAGES[code].format(client_id=client_id, tenant=tenant))
    first = f"AADSTS{codes[0]}" if codes else f"HTTP {resp.status_code}"
    raise EntraError(f"Entra refused a token for application {client_id} ({first})")


def _unreachable(settings: Settings, exc: httpx.HTTPError) -> EntraUnavailable:
    what = "did not answer in time" if isinstance(exc, httpx.TimeoutException) else "is unreachable"
    return EntraUnavailable(f"Entra at {settings.entra_authority} {what} ({type(exc).__name__}); try again later")


def _raise_if_temporary(resp: httpx.Response, what: str) -> None:
    """Throttled (429) or failing (5xx): no verdict on the request; the same one later may pass."""
    if resp.status_code == 429 or 500 <= resp.status_code <= 599:
        wait = resp.headers.get("Retry-After")
        hint = f"; Entra asks to retry after {wait}s" if wait else "; try again later"
        raise EntraUnavailable(f"Entra answered HTTP {resp.status_code} for {what}{hint}")


def _error_codes(resp: httpx.Response) -> list[int]:
    try:
        body = resp.json()
    except ValueError:
        return []
    codes = body.get("error_codes") if isinstance(body, dict) else None
    if isinstance(codes, list):
        return [int(c) for c in codes if isinstance(c, int) or str(c).isdigit()]
    match = re.match(r"AADSTS(\d+)", str(body.get("error_description", ""))) if isinstance(body, dict) else None
    return [int(match.group(1))] if match else []
