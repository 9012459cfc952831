"""The Python side of docs/contracts.md: every name the parts share, once.

The realm templates, the Java extension, the provisioning CLI, the sync daemon and the
tests all meet in Keycloak, on these names and values. Python code imports them from here;
the files that cannot import Python (the JSON templates, the Java sources, the Maven
build, the Dockerfiles and the compose file) keep their literal, and
``tests/unit/test_contract.py`` checks that each literal is the one named here.

Change a name only together with all its users (docs/contracts.md says who they are).
"""

from __future__ import annotations

from typing import Final, Literal

# -- Keycloak -------------------------------------------------------------------------------

KEYCLOAK_VERSION: Final = "26.7.3"
"""The pinned Keycloak: the local distribution, the extension's build, the images."""

DEFAULT_REALM: Final = "apsis"
IDP_ALIAS_PREFIX: Final = "entra-"
IDP_TYPE: Final = "oidc"

FIRST_BROKER_LOGIN_FLOW: Final = "apsis first broker login"
POST_BROKER_LOGIN_FLOW: Final = "apsis post broker login"
"""Earlier versions bound every provider to this flow (the guard as a step); the guard now runs
in the identity provider, and a plan unbinds the flow from a provider that still has it."""
BROWSER_FLOW: Final = "apsis browser"

SAFE_LINK_AUTHENTICATOR: Final = "apsis-safe-link"
SSO_GUARD_AUTHENTICATOR: Final = "apsis-sso-guard"
"""The guard as a post-broker-login step, still registered for providers bound to that flow."""
IDENTITY_FIRST_AUTHENTICATOR: Final = "apsis-identity-first"
OID_MAPPER: Final = "apsis-entra-oid-mapper"
OKTA_ISSUER_MAPPER: Final = "apsis-okta-issuer-mapper"
"""An Okta account's IdP mapper: the token's ``iss`` must be the account's issuer, exactly."""
LINKS_RESOURCE: Final = "apsis-sso"
"""The extension's realm resource, ``/realms/{realm}/apsis-sso``: ``links/{idp alias}`` and
``users`` (link rows in bulk) and ``idp-mappers`` (every IdP mapper of the realm)."""
IDP_MAPPERS_PATH: Final = "idp-mappers"
IDP_MAPPERS_RESOURCE: Final = f"{LINKS_RESOURCE}/{IDP_MAPPERS_PATH}"

TOOLING_CLIENT: Final = "apsis-sso-admin"
EXAMPLE_CLIENT: Final = "apsis-one"
ADMIN_CONSENT_STATE: Final = "apsis-admin-consent"
"""Entra sends it back with its admin-consent answer; the extension's broker endpoint knows it."""

ACCOUNT_SESSION_NOTE: Final = "apsis.account"
ACCOUNT_CLAIM: Final = "apsis_account"

# -- ownership --------------------------------------------------------------------------------

MANAGED_BY: Final = "apsis-sso"
"""The value of ``apsis.managedBy``: this tool owns the organization (and the IdP)."""
SYNC_DAEMON: Final = "apsis-sync"
"""The value of ``apsis.disabledBy`` on a user the sync daemon deactivated."""

# -- organization attributes (multi-valued lists of strings) ----------------------------------

MANAGED_BY_KEY: Final = "apsis.managedBy"
ACCOUNT_KEY: Final = "apsis.account"
STAGE_KEY: Final = "apsis.stage"
PILOT_KEY: Final = "apsis.pilot"
TENANT_ID_KEY: Final = "apsis.tenantId"
CLIENT_ID_KEY: Final = "apsis.clientId"
SECRET_EXPIRES_KEY: Final = "apsis.secretExpires"
SECRET_HINT_KEY: Final = "apsis.secretHint"
IT_CONTACT_NAME_KEY: Final = "apsis.itContactName"
IT_CONTACT_EMAIL_KEY: Final = "apsis.itContactEmail"
QUARANTINE_KEY: Final = "apsis.quarantined"
CREDENTIAL_KEY: Final = "apsis.credential"
"""How the account's app registration authenticates: ``client-secret`` (also when missing) or
``certificate`` (``private_key_jwt`` with APSIS's assertion key; ``apsis.secretExpires`` then holds
the current certificate's expiry date)."""
PROVIDER_KEY: Final = "apsis.provider"
"""The account's identity provider kind (``ProviderKind``), on the organization and in the IdP's
config (the extension reads it there); absent means ``entra``. For ``okta``, ``apsis.tenantId``
holds the Okta authorization server's issuer, the value a sign-in is bound to."""
OKTA_API_CLIENT_ID_KEY: Final = "apsis.oktaApiClientId"
"""An Okta account's API service app (``private_key_jwt``, ``okta.users.read`` and
``okta.logs.read``): the client id ``apsis-sync`` reads the org's Users API and System Log as."""
INVITATIONS_KEY: Final = "apsis.invitations"
"""The portal's invitations: one value per link, its token's hash only (``apsis_core.invitations``)."""
DOMAIN_PROOFS_KEY: Final = "apsis.domainProofs"
"""One value per proven domain: ``<domain> <tenant id> <time> <method>`` (``apsis_core.domain_ownership``).
Only proofs of the account's current ``apsis.tenantId`` count; the extension trusts an email
without ``xms_edov`` only in a domain proven for that tenant."""
OWNERSHIP_OVERRIDE_KEY: Final = "apsis.ownershipOverride"
"""One value per domain linked without proof by an operator: ``<domain> <tenant id> <time> <reason>``."""
DOMAIN_ALERTS_KEY: Final = "apsis.domainAlerts"
"""One value per domain the last check found not owned by the tenant:
``<domain> <tenant id> <time> other-tenant|unverified [<owner tenant id>]``."""

# -- identity provider config keys ------------------------------------------------------------

# The IdP carries ``apsis.managedBy`` too (config key, same name and value).
MAPPERS_HASH_KEY: Final = "apsis.mappersHash"
"""Written last by a create: its presence marks a complete account."""
SECRET_FINGERPRINT_KEY: Final = "apsis.secretFingerprint"
"""A short non-reversible tag of the IdP's client secret (Keycloak masks the secret on read)."""
SETUP_CLAIM_KEY: Final = "apsis.setupClaim"
"""``<time> <nonce>``: which run created the IdP of a setup. Creating the IdP is the setup's first
write and Keycloak refuses a second provider of the alias, so of two setups at once one wins;
the other sees a claim younger than ``provisioning.onboarding.SETUP_CLAIM_STALE`` and is refused."""
ORG_DOMAIN_KEY: Final = "kc.org.domain"
REDIRECT_WHEN_EMAIL_MATCHES_KEY: Final = "kc.org.broker.redirect.mode.email-matches"
ANY_DOMAIN: Final = "ANY"
"""Keycloak's OrganizationDomainModel.ANY_DOMAIN: every domain of the organization."""

# -- user attributes written by the sync daemon -----------------------------------------------

DISABLED_BY_KEY: Final = "apsis.disabledBy"
DISABLED_AT_KEY: Final = "apsis.disabledAt"
DISABLED_REASON_KEY: Final = "apsis.disabledReason"

# -- certificate credentials ------------------------------------------------------------------

CredentialKind = Literal["client-secret", "certificate"]
CREDENTIAL_KINDS: Final[tuple[CredentialKind, ...]] = ("client-secret", "certificate")
DEFAULT_CREDENTIAL: Final[CredentialKind] = "client-secret"
ASSERTION_ALGORITHM: Final = "PS256"
"""The algorithm of the client-assertion key (``clientAssertionSigningAlg`` of certificate IdPs).
Keycloak signs an IdP's assertion with the realm's active key *of that algorithm*; the realm's
own tokens use RS256, so PS256 keeps the two keys apart. Entra documents RS256 and PS256."""
ASSERTION_KEY_PROVIDER: Final = "apsis-client-assertion"
"""Name prefix of the realm's ``rsa`` key providers holding the assertion key (one per certificate,
``<prefix>-<SHA-1 thumbprint>``): the current one active, the next one passive until the switch."""

# -- states -----------------------------------------------------------------------------------

Stage = Literal["awaiting-setup", "pilot", "live", "disabled"]
STAGES: Final[tuple[Stage, ...]] = ("awaiting-setup", "pilot", "live", "disabled")
AWAITING_SETUP: Final[Stage] = "awaiting-setup"
"""The organization only (name, domains, IT contact), no identity provider: no SSO yet. The
customer's IT fills in the Entra details through the portal, which moves it to pilot."""
DEFAULT_STAGE: Final[Stage] = "pilot"
"""A missing (or unrecognised) ``apsis.stage`` means pilot, as the extension reads it."""
SYNCED_STAGES: Final[tuple[Stage, ...]] = ("pilot", "live")
"""Stages in which the sync daemon deprovisions (SSO is on)."""
SSO_STAGES: Final[tuple[Stage, ...]] = ("pilot", "live", "disabled")
"""Stages of an account with an identity provider: the ones the stage commands move between."""

ProviderKind = Literal["entra", "okta"]
"""Where an account's users sign in (``apsis_core.providers``)."""
PROVIDER_KINDS: Final[tuple[ProviderKind, ...]] = ("entra", "okta")
DEFAULT_PROVIDER: Final[ProviderKind] = "entra"
"""An account without ``apsis.provider`` (every account created before there was a choice)."""

InvitationIntent = Literal["setup", "renew"]
"""What a portal link lets its holder do: fill in the Entra details, or renew the client secret."""
INVITATION_INTENTS: Final[tuple[InvitationIntent, ...]] = ("setup", "renew")

RunStatus = Literal["ok", "error", "quarantined", "skipped"]
"""One account's sync cycle (``apsis-sync run -o json``: ``status``; metrics ``outcome``)."""
CycleOutcome = Literal["ok", "partial", "failed"]
"""A whole cycle, as the ``apsis_sync_cycles`` metric labels it."""
ActionKind = Literal["disable", "remove_membership"]
"""A deactivation: the user is disabled, or (a member of other accounts too) only leaves this one."""
NoticeKind = Literal[
    "secret-expiry",
    "secret-expired",
    "token-expired",
    "token-invalid",
    "secret-file-stale",
    "quarantine",
    "restored",
    "domain-ownership",
    "certificate-renewal",
]
"""What a notification is about: the mail header ``X-Apsis-Sync-Kind`` and the webhook's ``kind``."""

# -- the extension's refusals -----------------------------------------------------------------

REFUSAL_EVENT_ERROR: Final = "apsis_sso_refused"
RefusalReason = Literal[
    "no_organization",
    "sso_disabled",
    "email_missing",
    "email_unverified",
    "domain_not_allowed",
    "domain_unproven",
    "no_user",
    "ambiguous_email",
    "user_disabled",
    "not_member",
    "not_pilot",
    "linked_to_other_identity",
]
