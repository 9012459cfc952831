"""Accounts for tests and benchmarks: an account onboarded through the real library
(``provisioning``, installed beside this package), with its Entra tenant in the emulator and
its APSIS One users in the real Keycloak; settings for a local Keycloak and the emulator."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from apsis_core.account import Account
from apsis_core.certificates import load_key_pair
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.entra_emulator import EntraEmulator
from provisioning import onboarding
from provisioning.links import redirect_uri

PASSWORD = "Correct-Horse-7"


def local_settings(keycloak_url: str, admin_password: str, emulator: EntraEmulator, **overrides: Any) -> Settings:
    """Settings for a local Keycloak and the emulator, ignoring the developer's .env and shell."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        keycloak_url=keycloak_url,
        keycloak_admin_password=admin_password,
        keycloak_client_secret=secrets.token_urlsafe(32),
        entra_authority=emulator.authority,
        graph_base_url=emulator.graph_base_url,
        entra_ca_bundle=Path(emulator.ca_bundle),
        **overrides,
    )


def create_apsis_user(
    api: KeycloakRepository,
    email: str,
    *,
    username: str | None = None,
    password: str = PASSWORD,
    enabled: bool = True,
    email_verified: bool = True,
) -> str:
    """An APSIS One user as they exist before SSO: a password, no link."""
    user_id = api.create_user(
        {
            "username": username or email,
            "email": email,
            "firstName": email.split("@")[0].capitalize(),
            "lastName": "Tester",
            "enabled": enabled,
            "emailVerified": email_verified,
            "credentials": [{"type": "password", "value": password, "temporary": False}],
        }
    )
    return str(user_id)


def user_count(api: KeycloakRepository) -> int:
    return api.users_count()


def refusals(api: KeycloakRepository, since_ms: int) -> list[dict[str, Any]]:
    """Our refusal events (newest first) recorded at or after ``since_ms``."""
    events = api.events(max=200)
    return [e for e in events if e.get("error") == "apsis_sso_refused" and e.get("time", 0) >= since_ms]


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000) - 1000


@dataclass
class OnboardedAccount:
    """An account onboarded through the library, with its tenant, app and secret in the emulator."""

    id: str
    domain: str
    tenant_id: str
    app_id: str
    secret: str
    api: KeycloakRepository
    settings: Settings
    emulator: EntraEmulator
    org_id: str = ""
    users: dict[str, str] = field(default_factory=dict)

    @property
    def alias(self) -> str:
        return f"entra-{self.id}"

    def entra_user(self, local: str, *, mail: str | None = "same", password: str = PASSWORD, **kw: Any) -> str:
        """A person in the customer's Entra tenant; returns the object id."""
        upn = f"{local}@{self.domain}"
        user = self.emulator.add_user(self.tenant_id, upn, password, mail=upn if mail == "same" else mail, **kw)
        return user.oid

    def apsis_user(self, email: str, *, member: bool = True, pilot: bool = False, **kw: Any) -> str:
        """An APSIS One user of this account (a member of its organization)."""
        user_id = create_apsis_user(self.api, email, **kw)
        if member:
            self.api.add_member(self.org_id, user_id)
        if pilot:
            onboarding.pilot_add(self.api, self.settings, self.id, [email])
        self.users[email] = user_id
        return user_id

    def person(self, local: str, *, pilot: bool = True, **kw: Any) -> tuple[str, str]:
        """The common case: the same person in Entra and in APSIS One. Returns (email, user id)."""
        email = f"{local}@{self.domain}"
        self.entra_user(local)
        return email, self.apsis_user(email, pilot=pilot, **kw)

    def go_live(self) -> None:
        onboarding.set_stage(self.api, self.settings, self.id, "live")


@dataclass
class AccountFactory:
    api: KeycloakRepository
    settings: Settings
    emulator: EntraEmulator
    prefix: str
    created: int = 0

    def create(
        self, *, name: str | None = None, stage: str = "pilot", secret_days: int = 365, certificate: bool = False
    ) -> OnboardedAccount:
        """An onboarded account; with ``certificate`` its app registration holds the certificate of
        ``settings.assertion_key_file`` (uploaded as its IT would) instead of a client secret."""
        self.created += 1
        account_id = f"{self.prefix}a{self.created}"
        domain = f"{account_id}.example"
        tenant = self.emulator.add_tenant([domain])
        app = self.emulator.add_application(
            tenant.tenant_id, f"APSIS One SSO ({account_id})", [redirect_uri(self.settings, account_id)]
        )
        secret = ""
        if certificate:
            assert self.settings.assertion_key_file is not None, "certificate accounts need assertion_key_file"
            cert = load_key_pair(self.settings.assertion_key_file).certificate
            self.emulator.upload_certificate(tenant.tenant_id, app.app_id, cert.pem)
            expires_on = cert.not_after.date()
        else:
            expires = datetime.now(UTC) + timedelta(days=secret_days)
            secret = self.emulator.add_secret(tenant.tenant_id, app.app_id, expires)
            expires_on = date.today() + timedelta(days=secret_days)
        account = Account.build(
            id=account_id,
            name=name or f"Account {account_id}",
            tenant_id=tenant.tenant_id,
            client_id=app.app_id,
            domains=[domain],
            secret_expires=expires_on.isoformat(),
            it_contact_name="Ivy IT",
            it_contact_email=f"it@{domain}",
            client_secret=secret or None,
            credential="certificate" if certificate else None,
        )
        result = onboarding.create(self.api, self.settings, account)
        assert result.applied
        org = self.api.organization_by_alias(account_id)
        assert org is not None
        onboarded = OnboardedAccount(
            id=account_id,
            domain=domain,
            tenant_id=tenant.tenant_id,
            app_id=app.app_id,
            secret=secret,
            api=self.api,
            settings=self.settings,
            emulator=self.emulator,
            org_id=org["id"],
        )
        if stage != "pilot":
            onboarding.set_stage(self.api, self.settings, account_id, stage)  # type: ignore[arg-type]
        return onboarded


def random_password() -> str:
    return secrets.token_urlsafe(12)
