"""Okta as a ``Provider``.

Each Okta org's authorization server has an issuer of its own, ``https://{org}.okta.com`` (the
org authorization server) or ``https://{org}.okta.com/oauth2/{id}`` (a custom one): the issuer,
compared exactly, binds a sign-in to the customer's org as ``tid`` does for Entra. The account
keeps it in ``apsis.tenantId``. The user id is ``sub`` (Okta's user id, ``00u…``, the same in
every app of the org); an email is trusted only with ``email_verified`` true and only in the
account's domains. Endpoints follow Okta's documented layout: ``{issuer}/oauth2/v1/…`` for the
org server, ``{issuer}/v1/…`` for a custom one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from apsis_core.contract import ProviderKind
from apsis_core.errors import InvalidInput
from apsis_core.providers.base import SetupStep
from apsis_core.validation import shown

CLIENT_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
API_SCOPES: Final = ("okta.users.read", "okta.logs.read")
"""What the API service app is granted: the Users API (deprovisioning) and the System Log."""


def issuer(value: str) -> str:
    """An Okta issuer as the customer's org shows it: an https URL without query, fragment or
    credentials; a trailing slash is dropped (Okta's issuers have none, and the comparison is exact)."""
    raw = value.strip().rstrip("/")
    parts = urlsplit(raw)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc:
        raise InvalidInput(
            f"invalid Okta issuer {shown(value)}: expected https://{{org}}.okta.com or https://{{org}}.okta.com/oauth2/{{id}}"
        )
    return raw


def endpoint(issuer_url: str, name: str) -> str:
    """``authorize``, ``token``, ``keys``, ``logout``, ``userinfo`` of the issuer's server."""
    custom = "/oauth2/" in urlsplit(issuer_url).path + "/"
    return f"{issuer_url}/v1/{name}" if custom else f"{issuer_url}/oauth2/v1/{name}"


def org_url(issuer_url: str) -> str:
    """The org's base URL (its APIs live at ``/api/v1``): the issuer without ``/oauth2/{id}``."""
    head, sep, _ = issuer_url.partition("/oauth2/")
    return head if sep else issuer_url


@dataclass(frozen=True)
class OktaProvider:
    kind: ProviderKind = "okta"
    label: str = "Okta"
    idp_template: str = "okta-idp.json"
    mappers_template: str = "okta-idp-mappers.json"
    user_id_claim: str = "sub"
    tenant_binding: str = "iss equals the account's issuer exactly (the org's or a custom authorization server)"
    email_trust: str = "email_verified must be true, and the address in the account's domains"
    credential_expiry: str = "the login app's client secret's expiry, recorded at setup (Okta has no API for it)"

    def tenant(self, value: str) -> str:
        return issuer(value)

    def client_id(self, value: str) -> str:
        raw = value.strip()
        if not CLIENT_ID.match(raw):
            raise InvalidInput(f"invalid client id {shown(value)}: expected the Okta app's Client ID (0oa…)")
        return raw

    def discovery_url(self, tenant: str) -> str:
        return f"{tenant}/.well-known/openid-configuration"

    def template_values(self, tenant: str) -> dict[str, str]:
        """Empty while the account awaits setup (no IdP is created from them then)."""
        names = ("authorize", "token", "keys", "logout")
        return {f"{name}_url": endpoint(tenant, name) if tenant else "" for name in names} | {"issuer": tenant}

    def setup_steps(self, redirect_uri: str) -> list[SetupStep]:
        return [
            SetupStep(
                "App integration",
                "Admin Console › Applications › Create App Integration › OIDC - OpenID Connect › Web Application.",
            ),
            SetupStep("Sign-in redirect URI", redirect_uri),
            SetupStep("Assignments", "Assign the app to the people (or groups) who will sign in to APSIS One."),
            SetupStep(
                "API service app",
                "Create App Integration › API Services; Client authentication: Public key / Private key; "
                "add the public key APSIS shows; grant the Okta API scopes " + " and ".join(API_SCOPES) + ".",
            ),
            SetupStep("Issuer", "Security › API › Authorization Servers: the issuer URI of the server the app uses."),
        ]
