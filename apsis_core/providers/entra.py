"""Microsoft Entra ID as a ``Provider``: the answers the code gave before there was a choice.

It delegates to the functions that implement them (``apsis_core.entra``, ``validation``): the
provider says which to use, those functions stay where they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from apsis_core import validation
from apsis_core.contract import ProviderKind
from apsis_core.entra import EntraEndpoints
from apsis_core.providers.base import SetupStep


@dataclass(frozen=True)
class EntraProvider:
    authority: str
    kind: ProviderKind = "entra"
    label: str = "Microsoft Entra ID"
    idp_template: str = "entra-idp.json"
    mappers_template: str = "entra-idp-mappers.json"
    user_id_claim: str = "oid"
    tenant_binding: str = "tid equals the account's tenant id, issuer {authority}/{tenant}/v2.0"
    email_trust: str = "xms_edov true when sent; without it, only in a domain proven to belong to the tenant"
    credential_expiry: str = "the client secret's expiry: recorded at setup, and the app's passwordCredentials"

    def tenant(self, value: str) -> str:
        return validation.tenant_id(value)

    def client_id(self, value: str) -> str:
        return validation.client_id(value)

    def discovery_url(self, tenant: str) -> str:
        return EntraEndpoints(self.authority, "").discovery_url(tenant)

    def template_values(self, tenant: str) -> dict[str, str]:
        return {"authority": self.authority}

    def setup_steps(self, redirect_uri: str) -> list[SetupStep]:
        return list(ENTRA_STEPS) + [SetupStep("Redirect URI", f"Platform Web, redirect URI {redirect_uri}")]


ENTRA_STEPS: Final = (
    SetupStep("App registration", "Entra admin center › App registrations › New registration, single tenant."),
    SetupStep("Client secret", "Certificates & secrets › New client secret; note its value and expiry."),
    SetupStep("Permissions", "Microsoft Graph: User.Read (delegated), User.Read.All (application); grant consent."),
)
