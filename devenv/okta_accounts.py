"""Okta accounts for tests, demo and benchmarks: an org in the Okta emulator, its web app, and the
account onboarded through the library as an operator would (``provider okta``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from apsis_core import okta_keys
from apsis_core.account import Account
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import create_apsis_user
from devenv.okta_emulator import OktaEmulator
from provisioning import links, onboarding

OKTA_PASSWORD = "Okta-only-pw-7"
"""Okta users' password: not the APSIS One users' own, so a login that succeeds with it went through Okta."""


@dataclass
class OktaAccount:
    id: str
    org: str
    domain: str
    issuer: str
    client_id: str
    api: KeycloakRepository
    settings: Settings
    okta: OktaEmulator
    org_id: str = ""
    users: dict[str, str] = field(default_factory=dict)

    @property
    def alias(self) -> str:
        return f"entra-{self.id}"

    def okta_user(self, local: str, *, email: str | None = None, **kw: Any) -> str:
        """A person in the customer's Okta org; returns the Okta user id (the ``sub``)."""
        login = f"{local}@{self.domain}"
        return str(self.okta.add_user(self.org, login, OKTA_PASSWORD, email=email or login, **kw).id)

    def apsis_user(self, email: str, *, pilot: bool = True) -> str:
        user_id = create_apsis_user(self.api, email)
        self.api.add_member(self.org_id, user_id)
        if pilot:
            onboarding.pilot_add(self.api, self.settings, self.id, [email])
        return user_id

    def person(self, local: str, *, pilot: bool = True, **kw: Any) -> tuple[str, str, str]:
        """The same person in Okta and in APSIS One: (email, APSIS user id, Okta user id)."""
        email = f"{local}@{self.domain}"
        okta_id = self.okta_user(local, **kw)
        return email, self.apsis_user(email, pilot=pilot), okta_id


def okta_settings(settings: Settings, okta: OktaEmulator) -> Settings:
    return settings.model_copy(update={"okta_ca_bundle": okta.ca_bundle})


def create_okta_account(
    api: KeycloakRepository,
    settings: Settings,
    okta: OktaEmulator,
    account_id: str,
    *,
    stage: str = "pilot",
    domain: str | None = None,
    key_dir: Path | None = None,
) -> OktaAccount:
    """An Okta org (named after the account), its web app with the account's redirect URI, and
    the account created through ``onboarding.create`` with ``provider="okta"``."""
    org = account_id.replace("-", "")
    okta.add_org(org)
    domain = domain or f"{account_id}.example"
    app, secret = okta.add_web_app(org, "APSIS One", [links.redirect_uri(settings, account_id)])
    api_app = ""
    if key_dir is not None:  # the daemon's key pair, its public JWK registered in an API service app
        jwk = okta_keys.ensure(key_dir, account_id)
        api_app = okta.add_service_app(org, "APSIS sync", [jwk], ["okta.users.read", "okta.logs.read"]).client_id
    account = Account.build(
        id=account_id,
        name=f"Okta {account_id}",
        provider="okta",
        tenant_id=okta.issuer(org),
        client_id=app.client_id,
        client_secret=secret,
        domains=[domain],
        secret_expires=(date.today() + timedelta(days=365)).isoformat(),
        it_contact_name="Ivy IT",
        it_contact_email=f"it@{domain}",
        okta_api_client_id=api_app or None,
    )
    result = onboarding.create(api, settings, account)
    assert result.applied
    held = api.organization_by_alias(account_id)
    assert held is not None
    made = OktaAccount(account_id, org, domain, okta.issuer(org), app.client_id, api, settings, okta, held["id"])
    if stage != "pilot":
        onboarding.set_stage(api, settings, account_id, stage)  # type: ignore[arg-type]
    return made
