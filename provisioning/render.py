"""An account as Keycloak should hold it: the templates of ``realm-templates/`` rendered.

The organization, the Entra identity provider (with the stage rule of ``apsis_core.stages``
overlaid) and its mappers. Secrets go into the IdP only when the account carries one, and
the IdP then records a fingerprint of it: Keycloak masks the secret on read, and the
fingerprint is how a plan sees that the secret is another one. The IdP also records a hash
of the template's mappers (``apsis.mappersHash``), written with the IdP itself, so a create
needs no extra write for it; plans still compare the mappers themselves, never the hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, cast

from apsis_core import contract, stages
from apsis_core.account import Account, secret_fingerprint, secret_hint
from apsis_core.contract import (
    ASSERTION_ALGORITHM,
    CREDENTIAL_KEY,
    DOMAIN_PROOFS_KEY,
    MAPPERS_HASH_KEY,
    OWNERSHIP_OVERRIDE_KEY,
    SECRET_FINGERPRINT_KEY,
    SECRET_HINT_KEY,
)
from apsis_core.keycloak.port import IdentityProvider, IdentityProviderMapper, Organization
from apsis_core.providers import provider_for
from apsis_core.settings import Settings
from provisioning import templates
from provisioning.plan import merge

CERTIFICATE_IDP_CONFIG = {
    "clientAuthMethod": "private_key_jwt",
    "clientAssertionSigningAlg": ASSERTION_ALGORITHM,
    "jwtX509HeadersEnabled": "true",
}


@dataclass(frozen=True)
class Rendered:
    organization: Organization
    identity_provider: IdentityProvider
    mappers: list[IdentityProviderMapper]

    @property
    def mappers_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.mappers, sort_keys=True).encode()).hexdigest()[:16]


def render(account: Account, settings: Settings) -> Rendered:
    directory = provider_for(account.provider, settings.entra_authority)
    values: dict[str, Any] = {
        "account": account.id,
        "account_name": account.name,
        "tenant_id": account.tenant_id,
        "client_id": account.client_id,
        "client_secret": account.client_secret.get_secret_value() if account.client_secret else "",
        "authority": settings.entra_authority,
        "domains": [{"name": d, "verified": True} for d in account.domains],
        "stage": account.stage,
        "pilot": list(account.pilot),
        "secret_expires": account.secret_expires.isoformat() if account.secret_expires else "",
        "secret_hint": secret_hint(account.client_secret.get_secret_value()) if account.client_secret else "",
        "it_contact_name": account.it_contact.name,
        "it_contact_email": account.it_contact.email,
    } | directory.template_values(account.tenant_id)
    org = templates.render_file(settings.templates_dir, "organization.json", values)
    if not account.client_secret:
        org["attributes"].pop(SECRET_HINT_KEY, None)
    org["attributes"] = {k: v for k, v in org["attributes"].items() if v not in ([""], "")}
    # Domain ownership is recorded only when the account carries new records (a create, a
    # tenant or domain change, an override); otherwise what Keycloak holds stays as it is.
    if account.domain_proofs is not None:
        org["attributes"][DOMAIN_PROOFS_KEY] = [p.value() for p in account.domain_proofs]
    if account.ownership_overrides is not None:
        org["attributes"][OWNERSHIP_OVERRIDE_KEY] = [o.value() for o in account.ownership_overrides]
    if account.provider != contract.DEFAULT_PROVIDER:  # absent is Entra: existing accounts stay as they are
        org["attributes"][contract.PROVIDER_KEY] = [account.provider]
    if account.okta_api_client_id:
        org["attributes"][contract.OKTA_API_CLIENT_ID_KEY] = [account.okta_api_client_id]
    idp = merge(
        templates.render_file(settings.templates_dir, directory.idp_template, values),
        stages.identity_provider_settings(account.stage),
    )
    if account.client_secret:
        idp["config"][SECRET_FINGERPRINT_KEY] = secret_fingerprint(account.client_secret.get_secret_value())
    else:
        idp["config"].pop("clientSecret", None)
    if account.credential == "certificate":
        # private_key_jwt signed with the realm's active ASSERTION_ALGORITHM key, with the x5t
        # header Entra finds the uploaded certificate by (keycloak#20366).
        org["attributes"][CREDENTIAL_KEY] = [account.credential]
        idp["config"].update(CERTIFICATE_IDP_CONFIG)
    else:
        # No value means client-secret: an account never switched has none (no change), one
        # switched back from a certificate loses it.
        org["attributes"][CREDENTIAL_KEY] = []
    mappers = templates.render_file(settings.templates_dir, directory.mappers_template, values)
    # The templates are the representations' one source: rendered JSON of their shapes.
    rendered = Rendered(
        cast(Organization, org), cast(IdentityProvider, idp), cast(list[IdentityProviderMapper], mappers)
    )
    idp["config"][MAPPERS_HASH_KEY] = rendered.mappers_hash
    return rendered
