"""The account model: what an APSIS One account's SSO looks like, independent of Keycloak."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal

from pydantic import SecretStr

from provisioning import validation

Stage = Literal["pilot", "live", "disabled"]
STAGES: tuple[Stage, ...] = ("pilot", "live", "disabled")
MANAGED_BY = "apsis-sso"
IDP_PREFIX = "entra-"


def idp_alias(account_id: str) -> str:
    return f"{IDP_PREFIX}{account_id}"


def secret_fingerprint(secret: str) -> str:
    """A short, non-reversible tag of a (high-entropy) client secret, to detect drift."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def secret_hint(secret: str) -> str:
    """Entra shows the first three characters of a secret as its ``hint``."""
    return secret[:3]


@dataclass(frozen=True)
class ItContact:
    name: str
    email: str


@dataclass(frozen=True)
class Account:
    """Desired state of one account's SSO. Built through ``Account.build`` (validating)."""

    id: str
    name: str
    tenant_id: str
    client_id: str
    domains: tuple[str, ...]
    secret_expires: date
    it_contact: ItContact
    stage: Stage = "pilot"
    pilot: tuple[str, ...] = ()
    client_secret: SecretStr | None = field(default=None, compare=False, repr=False)

    @property
    def idp_alias(self) -> str:
        return idp_alias(self.id)

    @classmethod
    def build(
        cls,
        *,
        id: str,
        name: str,
        tenant_id: str,
        client_id: str,
        domains: list[str] | tuple[str, ...],
        secret_expires: str | date,
        it_contact_name: str,
        it_contact_email: str,
        stage: str = "pilot",
        pilot: list[str] | tuple[str, ...] = (),
        client_secret: str | SecretStr | None = None,
        today: date | None = None,
        allow_past_expiry: bool = False,
    ) -> "Account":
        account = validation.account_id(id)

        def text(value: str, what: str) -> str:
            try:
                return validation.free_text(value, what)
            except validation.InvalidInput as exc:
                raise validation.InvalidInput(f"account {account}: {exc}") from None

        clean_name = text(name, "name")
        contact_name = text(it_contact_name, "IT contact's name")
        if not domains:
            raise validation.InvalidInput(f"account {account}: at least one --domain is required")
        clean_domains = tuple(dict.fromkeys(validation.domain(d) for d in domains))
        if isinstance(secret_expires, date):
            expires = secret_expires
            if not allow_past_expiry and expires <= (today or date.today()):
                raise validation.InvalidInput(f"date {expires.isoformat()} is not in the future")
        elif allow_past_expiry:
            try:
                expires = date.fromisoformat(secret_expires.strip())
            except ValueError:
                raise validation.InvalidInput(
                    f"invalid date {validation.shown(secret_expires)}: expected YYYY-MM-DD") from None
        else:
            expires = validation.future_date(secret_expires, today)
        if stage not in STAGES:
            raise validation.InvalidInput(f"invalid stage {stage!r}: expected one of {', '.join(STAGES)}")
        secret: SecretStr | None
        if isinstance(client_secret, str):
            secret = SecretStr(validation.client_secret(client_secret))
        else:
            secret = client_secret
        return cls(
            id=account,
            name=clean_name,
            tenant_id=validation.tenant_id(tenant_id),
            client_id=validation.client_id(client_id),
            domains=clean_domains,
            secret_expires=expires,
            it_contact=ItContact(contact_name, validation.email(it_contact_email)),
            stage=stage,  # type: ignore[arg-type]
            pilot=tuple(dict.fromkeys(validation.email(e) for e in pilot)),
            client_secret=secret,
        )

    def with_changes(self, **changes: object) -> "Account":
        return replace(self, **changes)  # type: ignore[arg-type]
