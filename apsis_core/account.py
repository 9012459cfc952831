"""The account model: one APSIS One account's SSO, as asked for and as Keycloak holds it.

``Account`` is the account's settings, validated on the way in (``Account.build``): what
``account create``, the declarative file and the stage commands ask Keycloak to hold.
``AccountRecord`` is an account as Keycloak holds it, parsed from its organization (and
identity provider) in exactly one place, ``AccountRecord.parse``: the CLI, the daemon and
the status reports all read accounts through it, so "what is the stage", "which
quarantine" and "is this account complete" are decided once. The keys are the contract's
(``apsis_core.contract``); the Java side reads the same ones (``Account``, ``Stage``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from typing import Any

from pydantic import SecretStr

from apsis_core import contract, stages, validation
from apsis_core.contract import CREDENTIAL_KINDS, STAGES, CredentialKind, ProviderKind, Stage
from apsis_core.domain_ownership import DomainProof, Ownership, OwnershipOverride
from apsis_core.errors import InvalidInput
from apsis_core.providers import kind_of, provider_for

__all__ = [
    "Account",
    "AccountRecord",
    "ItContact",
    "Stage",
    "idp_alias",
    "idp_is_managed",
    "is_managed",
    "parse_credential",
    "parse_stage",
    "secret_fingerprint",
    "secret_hint",
]

UNKNOWN_EXPIRY = date(1970, 1, 1)
"""What an organization without ``apsis.secretExpires`` shows as its secret's expiry."""


def idp_alias(account_id: str) -> str:
    return f"{contract.IDP_ALIAS_PREFIX}{account_id}"


def secret_fingerprint(secret: str) -> str:
    """A short, non-reversible tag of a (high-entropy) client secret, to detect drift."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def secret_hint(secret: str) -> str:
    """Entra shows the first three characters of a secret as its ``hint``."""
    return secret[:3]


def is_managed(org: Mapping[str, Any]) -> bool:
    """The organization carries ``apsis.managedBy = apsis-sso``: this tool may change it."""
    return contract.MANAGED_BY in (org.get("attributes") or {}).get(contract.MANAGED_BY_KEY, [])


def idp_is_managed(idp: Mapping[str, Any]) -> bool:
    return bool((idp.get("config") or {}).get(contract.MANAGED_BY_KEY) == contract.MANAGED_BY)


def parse_stage(values: list[str] | None) -> Stage:
    """The first non-blank value of ``apsis.stage``. Missing means pilot, and so does anything
    unrecognised: a typo must never open SSO to every member (the extension's ``Stage.of``)."""
    for value in values or []:
        if value and value.strip():
            word = value.strip().lower()
            return word if word in STAGES else contract.DEFAULT_STAGE
    return contract.DEFAULT_STAGE


def parse_credential(values: list[str] | None, *, strict: bool = False) -> CredentialKind:
    """The first non-blank value of ``apsis.credential``; missing means ``client-secret``. Stored
    values that are not a kind read as ``client-secret`` (``strict``: asked-for ones are refused)."""
    for value in values or []:
        if value and value.strip():
            word = value.strip().lower()
            if word in CREDENTIAL_KINDS:
                return word
            if strict:
                raise InvalidInput(f"invalid credential {value!r}: expected one of {', '.join(CREDENTIAL_KINDS)}")
            break
    return contract.DEFAULT_CREDENTIAL


@dataclass(frozen=True)
class ItContact:
    name: str
    email: str


@dataclass(frozen=True)
class Account:
    """Desired state of one account's SSO. Built through ``Account.build`` (validating).

    An account awaiting setup (``stage == "awaiting-setup"``) has a name, domains and an IT
    contact but no Entra details yet: ``tenant_id`` and ``client_id`` are empty and
    ``secret_expires`` is None. Every other stage has all three."""

    id: str
    name: str
    tenant_id: str
    client_id: str
    domains: tuple[str, ...]
    secret_expires: date | None
    it_contact: ItContact
    stage: Stage = "pilot"
    pilot: tuple[str, ...] = ()
    credential: CredentialKind = contract.DEFAULT_CREDENTIAL
    """``certificate``: the IdP and the daemon authenticate with APSIS's assertion key (no secret);
    ``secret_expires`` is then the current certificate's expiry."""
    client_secret: SecretStr | None = field(default=None, compare=False, repr=False)
    domain_proofs: tuple[DomainProof, ...] | None = field(default=None, compare=False)
    """The proofs to record (``apsis.domainProofs``); None leaves what the account holds."""
    ownership_overrides: tuple[OwnershipOverride, ...] | None = field(default=None, compare=False)
    """The overrides to record (``apsis.ownershipOverride``); None leaves what the account holds."""
    provider: ProviderKind = contract.DEFAULT_PROVIDER
    """Where its users sign in (``apsis_core.providers``); for Okta ``tenant_id`` is the issuer."""
    okta_api_client_id: str = ""
    """Okta only: the API service app the daemon reads the org with (``apsis.oktaApiClientId``)."""

    @property
    def idp_alias(self) -> str:
        return idp_alias(self.id)

    @property
    def awaiting_setup(self) -> bool:
        return self.stage == contract.AWAITING_SETUP

    @classmethod
    def build(
        cls,
        *,
        id: str,
        name: str,
        domains: list[str] | tuple[str, ...],
        it_contact_name: str,
        it_contact_email: str,
        tenant_id: str | None = None,
        client_id: str | None = None,
        secret_expires: str | date | None = None,
        stage: str | None = None,
        pilot: list[str] | tuple[str, ...] = (),
        client_secret: str | SecretStr | None = None,
        today: date | None = None,
        allow_past_expiry: bool = False,
        credential: str | None = None,
        provider: str | None = None,
        okta_api_client_id: str | None = None,
    ) -> Account:
        """Validate everything. Without tenant, client id and expiry the account awaits setup
        (its IT fills them in through the portal); with them it is in ``stage`` (pilot unless
        said); some of them but not all is a mistake."""
        account = validation.account_id(id)
        credential_kind = parse_credential([credential] if credential else None, strict=True)
        if credential_kind == "certificate" and client_secret is not None:
            raise InvalidInput(f"account {account}: a certificate account has no client secret")
        kind = kind_of(provider)
        if credential_kind == "certificate" and kind != "entra":
            raise InvalidInput(f"account {account}: certificate credentials are for Entra accounts only")

        def text(value: str, what: str) -> str:
            try:
                return validation.free_text(value, what)
            except InvalidInput as exc:
                raise InvalidInput(f"account {account}: {exc}") from None

        clean_name = text(name, "name")
        contact_name = text(it_contact_name, "IT contact's name")
        if not domains:
            raise InvalidInput(f"account {account}: at least one --domain is required")
        clean_domains = tuple(dict.fromkeys(validation.domain(d) for d in domains))
        entra = {"--tenant-id": tenant_id, "--client-id": client_id, "--secret-expires": secret_expires}
        given = [option for option, value in entra.items() if value not in (None, "")]
        if stage is not None and stage not in STAGES:
            raise InvalidInput(f"invalid stage {stage!r}: expected one of {', '.join(STAGES)}")
        if not given:
            if stage not in (None, contract.AWAITING_SETUP):
                raise InvalidInput(
                    f"account {account}: stage {stage} needs --tenant-id, --client-id and --secret-expires"
                )
            if client_secret is not None:
                raise InvalidInput(f"account {account}: a client secret needs --tenant-id and --client-id")
            return cls(
                id=account,
                name=clean_name,
                tenant_id="",
                client_id="",
                domains=clean_domains,
                secret_expires=None,
                it_contact=ItContact(contact_name, validation.email(it_contact_email)),
                stage=contract.AWAITING_SETUP,
                pilot=tuple(dict.fromkeys(validation.email(e) for e in pilot)),
                provider=kind,
            )
        if len(given) < len(entra):
            missing = ", ".join(option for option in entra if option not in given)
            raise InvalidInput(
                f"account {account}: {missing} missing: give --tenant-id, --client-id and --secret-expires "
                "together, or none of them (the customer's IT fills them in through the portal)"
            )
        if stage == contract.AWAITING_SETUP:
            raise InvalidInput(f"account {account}: an account awaiting setup has no Entra details yet")
        assert tenant_id is not None and client_id is not None and secret_expires is not None
        expires = _expiry(secret_expires, today, allow_past_expiry)
        secret = SecretStr(validation.client_secret(client_secret)) if isinstance(client_secret, str) else client_secret
        directory = provider_for(kind)
        if okta_api_client_id and kind != "okta":
            raise InvalidInput(f"account {account}: an Okta API service app is for --provider okta only")
        return cls(
            id=account,
            name=clean_name,
            tenant_id=directory.tenant(tenant_id),
            client_id=directory.client_id(client_id),
            domains=clean_domains,
            secret_expires=expires,
            it_contact=ItContact(contact_name, validation.email(it_contact_email)),
            stage=stage or contract.DEFAULT_STAGE,
            pilot=tuple(dict.fromkeys(validation.email(e) for e in pilot)),
            credential=credential_kind,
            client_secret=secret,
            provider=kind,
            okta_api_client_id=directory.client_id(okta_api_client_id) if okta_api_client_id else "",
        )

    def with_changes(self, **changes: object) -> Account:
        return replace(self, **changes)  # type: ignore[arg-type]


def _expiry(value: str | date, today: date | None, allow_past: bool) -> date:
    if isinstance(value, date):
        if not allow_past and value <= (today or date.today()):
            raise InvalidInput(f"date {value.isoformat()} is not in the future")
        return value
    if not allow_past:
        return validation.future_date(value, today)
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"invalid date {validation.shown(value)}: expected YYYY-MM-DD") from None


@dataclass(frozen=True)
class AccountRecord:
    """One account as Keycloak holds it now. Values are as stored (not validated): an
    attribute edited by hand shows as it is, and a missing one as empty or None."""

    id: str
    org_id: str
    name: str
    stage: Stage
    tenant_id: str
    client_id: str
    domains: tuple[str, ...]
    pilot: tuple[str, ...]
    secret_expires: date | None
    secret_hint: str | None
    it_contact: ItContact
    quarantined: str | None = None
    credential: CredentialKind = contract.DEFAULT_CREDENTIAL
    managed: bool = True
    sso_enabled: bool = False
    """Its identity provider exists and is enabled."""
    complete: bool = False
    """Every step of a create is done: organization, IdP, their link, the mappers (for an
    account awaiting setup: the organization, and no IdP)."""
    redirects_by_domain: bool = False
    """Keycloak's login page sends the account's addresses straight to its Entra."""
    attributes: Mapping[str, list[str]] = field(default_factory=dict, compare=False, repr=False)
    provider: ProviderKind = contract.DEFAULT_PROVIDER
    """``apsis.provider``; absent (every account from before there was a choice) is Entra."""
    okta_api_client_id: str = ""

    @property
    def idp_alias(self) -> str:
        return idp_alias(self.id)

    @classmethod
    def parse(cls, org: Mapping[str, Any], idp: Mapping[str, Any] | None = None) -> AccountRecord:
        """The one reading of an organization (and its IdP, when the caller has it)."""
        attrs: Mapping[str, list[str]] = org.get("attributes") or {}

        def one(key: str) -> str | None:
            values = attrs.get(key) or []
            return values[0] if values and values[0] != "" else None

        try:
            expires = date.fromisoformat(one(contract.SECRET_EXPIRES_KEY) or "")
        except ValueError:
            expires = None
        idp_config = (idp or {}).get("config") or {}
        tenant = one(contract.TENANT_ID_KEY) or ""
        domains = tuple(validation.ascii_lower(str(d["name"])) for d in org.get("domains") or [] if d.get("name"))
        return cls(
            id=str(org["alias"]),
            org_id=str(org["id"]),
            name=str(org.get("name") or org["alias"]),
            stage=parse_stage(attrs.get(contract.STAGE_KEY)),
            tenant_id=tenant,
            client_id=one(contract.CLIENT_ID_KEY) or str(idp_config.get("clientId") or ""),
            domains=domains,
            pilot=tuple(attrs.get(contract.PILOT_KEY) or ()),
            secret_expires=expires,
            secret_hint=one(contract.SECRET_HINT_KEY),
            it_contact=ItContact(one(contract.IT_CONTACT_NAME_KEY) or "", one(contract.IT_CONTACT_EMAIL_KEY) or ""),
            quarantined=one(contract.QUARANTINE_KEY),
            credential=parse_credential(attrs.get(contract.CREDENTIAL_KEY)),
            managed=is_managed(org),
            sso_enabled=bool(idp and idp.get("enabled")),
            complete=_complete(org, idp),
            redirects_by_domain=stages.redirects_by_domain(idp or {}),
            attributes=attrs,
            provider=_provider(one(contract.PROVIDER_KEY)),
            okta_api_client_id=one(contract.OKTA_API_CLIENT_ID_KEY) or "",
        )

    @property
    def awaiting_setup(self) -> bool:
        return self.stage == contract.AWAITING_SETUP

    @cached_property
    def ownership(self) -> Ownership:
        """Proofs, overrides and alerts of the account's domains for its current tenant (read
        when asked: the daemon lists every account each cycle and needs this once a day)."""
        return Ownership.of(self.attributes, self.tenant_id, self.domains)

    def settings(self) -> Account:
        """The account's settings as ``Account`` (what plans, ``show`` and ``export`` compare);
        a missing expiry date shows as 1970-01-01 (none while the account awaits setup)."""
        return Account(
            id=self.id,
            name=self.name,
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            domains=self.domains,
            secret_expires=self.secret_expires or (None if self.awaiting_setup else UNKNOWN_EXPIRY),
            it_contact=self.it_contact,
            stage=self.stage,
            pilot=self.pilot,
            credential=self.credential,
            provider=self.provider,
            okta_api_client_id=self.okta_api_client_id,
        )

    def owns_email(self, email: str) -> bool:
        """Only addresses in the account's own domains are matched by email: the same rule the
        login extension applies, so a tenant cannot reach users of other domains by setting mail."""
        return validation.ascii_lower(email.rpartition("@")[2]) in self.domains


def _provider(value: str | None) -> ProviderKind:
    """The stored kind; a value this version does not know reads as Entra's default, and
    ``status`` shows the stored text (the extension reads an unknown kind as Entra too)."""
    for kind in contract.PROVIDER_KINDS:
        if (value or "").strip().lower() == kind:
            return kind
    return contract.DEFAULT_PROVIDER


def _complete(org: Mapping[str, Any], idp: Mapping[str, Any] | None) -> bool:
    """Every step of a create is done. Awaiting setup, that is the organization alone; with
    SSO, the IdP linked to it and its mappers in place (the hash is written last)."""
    if parse_stage((org.get("attributes") or {}).get(contract.STAGE_KEY)) == contract.AWAITING_SETUP:
        return idp is None
    return bool(
        idp is not None
        and idp.get("organizationId") == org.get("id")
        and (idp.get("config") or {}).get(contract.MAPPERS_HASH_KEY)
    )
