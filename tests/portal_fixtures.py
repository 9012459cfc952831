"""Fixtures for the portal tests (see tests/test_portal*.py).

* ``portal``: the real ``apsis-portal run`` console script in its own process, configured
  only through environment variables as an operator would, against the session's Keycloak,
  the Entra emulator and the real SMTP server process. Its log (stderr) and audit trail go
  to files the tests read; at the end of the session both are scanned for every secret and
  token the tests handed to it.
* ``customer``: a customer as the portal meets them: an account awaiting setup (created by
  the library, as `account create` does), their APSIS One users as members, their tenant
  and app registration in the emulator, and a setup link minted by the library.
* ``visitor``: an HTTP client of the portal (a ``requests`` session: cookies, forms).
"""

from __future__ import annotations

import html
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from apsis_core.account import Account, AccountRecord
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import create_apsis_user
from devenv.entra_emulator import EntraEmulator
from devenv.login_driver import forms, visible_text
from provisioning import invite, onboarding
from provisioning.links import redirect_uri
from tests.sync_fixtures import PLATFORM_TEAM, SmtpServer, free_port

PORTAL_SCRIPT = Path(sys.executable).parent / "apsis-portal"

# Every secret and link token the tests hand to the portal; no response, log line or audit
# record may contain one.
PORTAL_SECRETS: set[str] = set()


@dataclass
class PortalProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    audit: Path
    secrets_dir: Path
    env: dict[str, str]

    def audit_records(self) -> list[dict[str, Any]]:
        import json

        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def portal_environment(
    settings: Settings, smtp: SmtpServer, *, url: str, secrets_dir: Path, audit: Path, **extra: str
) -> dict[str, str]:
    assert settings.keycloak_client_secret is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APSIS_SSO_", "APSIS_SYNC_", "APSIS_PORTAL_"))}
    env.update(
        {
            "APSIS_SSO_KEYCLOAK_URL": settings.keycloak_url,
            "APSIS_SSO_REALM": settings.realm,
            "APSIS_SSO_KEYCLOAK_CLIENT_SECRET": settings.keycloak_client_secret.get_secret_value(),
            "APSIS_SSO_ENTRA_AUTHORITY": settings.entra_authority,
            "APSIS_SSO_GRAPH_BASE_URL": settings.graph_base_url,
            "APSIS_SSO_ENTRA_CA_BUNDLE": str(settings.entra_ca_bundle),
            "APSIS_SSO_PORTAL_URL": url,
            "APSIS_SSO_SYNC_SECRETS_DIR": str(secrets_dir),
            "APSIS_SYNC_SMTP_HOST": smtp.host,
            "APSIS_SYNC_SMTP_PORT": str(smtp.port),
            "APSIS_SYNC_MAIL_FROM": "sso@apsis.example",
            "APSIS_SYNC_PLATFORM_TEAM_EMAIL": PLATFORM_TEAM,
            "APSIS_PORTAL_SESSION_KEY": secrets.token_urlsafe(40),
            "APSIS_PORTAL_AUDIT_LOG": str(audit),
            "APSIS_PORTAL_LOG_FORMAT": "json",
            "APSIS_PORTAL_LOG_LEVEL": "DEBUG",
            **extra,
        }
    )
    return env


def start_portal(settings: Settings, smtp: SmtpServer, workdir: Path, **extra: str) -> PortalProcess:
    """`apsis-portal run` as a process; returns once /healthz answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    secrets_dir = workdir / "secrets"
    log, audit = workdir / "portal.log", workdir / "audit.jsonl"
    env = portal_environment(settings, smtp, url=url, secrets_dir=secrets_dir, audit=audit, **extra)
    PORTAL_SECRETS.add(env["APSIS_PORTAL_SESSION_KEY"])
    empty = workdir / "empty.env"
    empty.write_text("")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(PORTAL_SCRIPT), "--env-file", str(empty), "run", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    running = PortalProcess(url, proc, log, audit, secrets_dir, env)
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return running
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            running.stop()
            raise RuntimeError(f"apsis-portal did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def assert_no_portal_secret(*texts: str) -> None:
    for text in texts:
        for secret in PORTAL_SECRETS:
            assert secret not in text, "a secret or link token appeared where it must not"


@pytest.fixture(scope="session")
def portal(
    settings: Settings, realm: str, smtp_server: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PortalProcess]:
    running = start_portal(settings, smtp_server, tmp_path_factory.mktemp("portal"))
    try:
        yield running
    finally:
        running.stop()
        # Whatever the tests did, no secret and no link token reached the log or the audit trail.
        assert_no_portal_secret(running.log.read_text(), running.audit.read_text() if running.audit.exists() else "")


@dataclass
class Customer:
    """An account awaiting setup, its people, its Entra tenant and app, and a setup link."""

    id: str
    domain: str
    tenant_id: str
    app_id: str
    secret: str
    link: str
    token: str
    api: KeycloakRepository
    settings: Settings
    emulator: EntraEmulator
    org_id: str
    users: dict[str, str] = field(default_factory=dict)

    @property
    def test_users(self) -> list[str]:
        return [e for e in self.users if e.startswith(("ann@", "ben@"))]

    def record(self) -> AccountRecord:
        return onboarding.load(self.api, self.id)

    def form(self, **overrides: str) -> dict[str, str]:
        """What the IT contact types into the setup form (overrides replace fields)."""
        values = {
            "tenant": self.tenant_id,
            "client_id": self.app_id,
            "client_secret": self.secret,
            "secret_expires": (date.today() + timedelta(days=200)).isoformat(),
            "test_users": "\n".join(self.test_users),
        }
        values.update(overrides)
        return values

    def new_secret(self, days: int = 400) -> str:
        secret = self.emulator.add_secret(self.tenant_id, self.app_id, datetime.now(UTC) + timedelta(days=days))
        PORTAL_SECRETS.add(secret)
        return secret

    def link_for(self, intent: str = "setup") -> tuple[str, str]:
        """Another link, minted as `account invite --no-mail` does: (url, token)."""
        result = invite.invite(self.api, self.settings, None, self.id, intent=intent)  # type: ignore[arg-type]
        token = result.url.rsplit("/", 1)[1]
        PORTAL_SECRETS.add(token)
        return result.url, token


@pytest.fixture
def customer(
    api: KeycloakRepository, settings: Settings, emulator: EntraEmulator, portal: PortalProcess, unique: str
) -> Callable[..., Customer]:
    """`customer(consented=True)`: a fresh customer whose setup link points at ``portal``."""
    made = 0

    def make(*, consented: bool = True, name: str | None = None) -> Customer:
        nonlocal made
        made += 1
        account_id = f"{unique}p{made}"
        domain = f"{account_id}.example"
        tenant = emulator.add_tenant([domain], display_name=f"Tenant of {account_id}")
        app = emulator.add_application(
            tenant.tenant_id, "APSIS One SSO", [redirect_uri(settings, account_id)], consented=consented
        )
        secret = emulator.add_secret(tenant.tenant_id, app.app_id, datetime.now(UTC) + timedelta(days=200))
        PORTAL_SECRETS.add(secret)
        own = settings.model_copy(update={"portal_url": portal.url})
        account = Account.build(
            id=account_id,
            name=name or f"Customer {account_id}",
            domains=[domain],
            it_contact_name="Ivy IT",
            it_contact_email=f"it@{domain}",
        )
        onboarding.create(api, own, account)
        org = api.organization_by_alias(account_id)
        assert org is not None
        people: dict[str, str] = {}
        for local in ("ann", "ben", "cid"):
            email = f"{local}@{domain}"
            emulator.add_user(tenant.tenant_id, email, "Entra-Passw0rd!", mail=email)
            people[email] = create_apsis_user(api, email)
            api.add_member(org["id"], people[email])  # APSIS One's users of the account
        found = Customer(
            account_id, domain, tenant.tenant_id, app.app_id, secret, "", "", api, own, emulator, org["id"], people
        )
        found.link, found.token = found.link_for("setup")
        return found

    return make


class Visitor:
    """The IT contact's browser, over HTTP: a cookie jar, the page it is on, its forms."""

    def __init__(self, portal: PortalProcess) -> None:
        self.portal = portal
        self.session = requests.Session()
        self.last: requests.Response | None = None
        self.seen: list[str] = []

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self._keep(self.session.get(url if url.startswith("http") else self.portal.url + url, timeout=60, **kw))

    def post(self, path: str, data: dict[str, str], **kw: Any) -> requests.Response:
        return self._keep(self.session.post(self.portal.url + path, data=data, timeout=120, **kw))

    def _keep(self, resp: requests.Response) -> requests.Response:
        """Every response on the way (redirects too), headers and body, is kept and scanned:
        a link's token may be in the address the visitor opened, never in what comes back."""
        self.last = resp
        for hop in [*resp.history, resp]:
            self.seen.append("\n".join(f"{k}: {v}" for k, v in hop.headers.items()) + "\n" + hop.text)
            assert_no_portal_secret(self.seen[-1])
        return resp

    def csrf(self) -> str:
        assert self.last is not None
        for form in forms(self.last.text):
            if "csrf" in form.fields:
                return html.unescape(form.fields["csrf"])
        raise AssertionError(f"no form with a CSRF token on {self.last.url}: {visible_text(self.last.text)[:300]}")

    def submit(self, path: str, fields: dict[str, str]) -> requests.Response:
        """A form of the current page, as the browser sends it (with the page's CSRF token)."""
        return self.post(path, {"csrf": self.csrf(), **fields})

    @property
    def text(self) -> str:
        assert self.last is not None
        return visible_text(self.last.text)


@pytest.fixture
def visitor(portal: PortalProcess) -> Callable[[], Visitor]:
    return lambda: Visitor(portal)
