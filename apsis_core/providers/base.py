"""What the rest of the code asks of an identity provider kind, in one place.

An account's users sign in at one directory (``contract.ProviderKind``): Microsoft Entra ID or
Okta. Provisioning, the daemon and the portal ask the account's ``Provider`` (from
``apsis_core.providers.provider_for``) instead of assuming Entra: which templates describe its
Keycloak identity provider, how a sign-in is bound to the customer's tenant, which claim is the
immutable user id, when an email claim may be trusted for linking, how the customer's
credentials are proved at setup, how the directory's changes are read, where a credential's
expiry comes from and what the portal's setup steps are. The Keycloak extension holds the
login-time half of the same rules (``ProviderKind`` and its decision classes in Java).

A third provider implements this protocol in a module of its own and is added to
``apsis_core.providers.PROVIDERS`` (docs/providers.md says what else it needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from apsis_core.contract import ProviderKind


@dataclass(frozen=True)
class SetupStep:
    """One step the customer's IT takes in its directory (portal and docs)."""

    title: str
    detail: str


class Provider(Protocol):
    """One identity provider kind: pure answers, no I/O."""

    @property
    def kind(self) -> ProviderKind: ...

    @property
    def label(self) -> str:
        """The directory's name as customers know it ("Microsoft Entra ID", "Okta")."""
        ...

    @property
    def idp_template(self) -> str:
        """The Keycloak identity provider template in ``realm-templates/``."""
        ...

    @property
    def mappers_template(self) -> str:
        """Its IdP mappers' template (the extension's tenant binding and user-id mapper)."""
        ...

    @property
    def user_id_claim(self) -> str:
        """The immutable user id claim that keys the Keycloak link (Entra ``oid``, Okta ``sub``)."""
        ...

    @property
    def tenant_binding(self) -> str:
        """How a sign-in is bound to the account's tenant, in words (status, docs)."""
        ...

    @property
    def email_trust(self) -> str:
        """When an email claim may be trusted for linking, in words."""
        ...

    @property
    def credential_expiry(self) -> str:
        """Where the login credential's expiry comes from, in words."""
        ...

    def tenant(self, value: str) -> str:
        """The account's tenant binding (Entra: tenant id or domain; Okta: the issuer URL),
        validated; ``InvalidInput`` with a one-line reason otherwise."""
        ...

    def client_id(self, value: str) -> str:
        """The login app's client id, validated."""
        ...

    def discovery_url(self, tenant: str) -> str:
        """The OpenID Connect discovery document of the tenant's authorization server."""
        ...

    def template_values(self, tenant: str) -> dict[str, str]:
        """The provider's own placeholders of ``idp_template`` and ``mappers_template``."""
        ...

    def setup_steps(self, redirect_uri: str) -> list[SetupStep]:
        """What the customer's IT does in its directory, in order."""
        ...
