"""The whole self-serve journey in headless Chromium, as the customer's IT contact lives it.

The platform team types `account create` (name, domains, IT contact), `account invite` and,
at the end, `account go-live`; nothing else. The IT contact gets the link by mail (a real
SMTP server process), registers the app in their "Entra" (the emulator) with the redirect
URI the page shows, submits the form; a test user signs in through the test-login link in
a browser of her own, and the IT contact's page shows it without being reloaded by hand;
"Ready for everyone". Later an `apsis-sync` cycle mails a secret-expiry notice with a renewal
link; the IT contact renews from it, and the test user still signs in. No secret reaches a
page, a mail, the portal's log or its audit trail."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import create_apsis_user
from devenv.login_driver import Browser
from provisioning import links
from provisioning.onboarding import load
from sync.scheduler import run_once
from tests.cli_fixtures import Cli
from tests.portal_fixtures import PORTAL_SECRETS, PortalProcess, assert_no_portal_secret
from tests.sync_fixtures import PLATFORM_TEAM, SmtpServer, SyncHarness
from tests.test_login_browser import CHROMIUM, FLAGS

PASSWORD = "Entra-Passw0rd!"


def link_in(mail_text: str, portal: PortalProcess, account: str) -> str:
    found = re.findall(rf"{re.escape(portal.url)}/i/{account}/[A-Za-z0-9_-]{{43}}", mail_text)
    assert len(found) == 1, mail_text
    PORTAL_SECRETS.add(found[0].rsplit("/", 1)[1])
    return found[0]


@pytest.mark.browser
def test_it_contact_sets_up_sso_tests_it_and_renews_the_secret_in_chromium(
    cli: Cli,
    portal: PortalProcess,
    smtp_server: SmtpServer,
    emulator,
    api: KeycloakRepository,
    settings,
    sync: Callable[..., SyncHarness],
    unique: str,
) -> None:
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), f"Chromium is not installed at {CHROMIUM}"
    account, domain = f"{unique}web", f"{unique}web.example"
    it, ann = f"it@{domain}", f"ann@{domain}"
    env = {
        "APSIS_SSO_PORTAL_URL": portal.url,
        "APSIS_SYNC_SMTP_HOST": smtp_server.host,
        "APSIS_SYNC_SMTP_PORT": str(smtp_server.port),
        "APSIS_SYNC_PLATFORM_TEAM_EMAIL": PLATFORM_TEAM,
    }

    # The platform team: the account awaiting setup, and the invitation.
    cli.run(
        "account",
        "create",
        account,
        "--name",
        "Fabrikam Web",
        "--domain",
        domain,
        "--it-contact-name",
        "Ivy IT",
        "--it-contact-email",
        it,
        env=env,
    )
    org = api.organization_by_alias(account)
    assert org is not None
    for person in ("ann", "ben"):  # APSIS One's users of the account exist beforehand
        api.add_member(org["id"], create_apsis_user(api, f"{person}@{domain}"))
    invited = cli.run("account", "invite", account, env=env)
    (invitation,) = smtp_server.messages(to=it)
    assert invitation["Subject"] == "[APSIS One SSO] Set up single sign-on for Fabrikam Web"
    setup_link = link_in(invitation.get_content(), portal, account)
    assert invited.stdout.strip() == setup_link

    # The customer's tenant and people; the app is registered while following the page.
    tenant = emulator.add_tenant([domain], display_name="Fabrikam")
    for person in ("ann", "ben"):
        emulator.add_user(tenant.tenant_id, f"{person}@{domain}", PASSWORD, mail=f"{person}@{domain}")
    shown: list[str] = []
    expires = date.today() + timedelta(days=10)

    with (
        sync_playwright() as pw,
        tempfile.TemporaryDirectory() as it_profile,
        tempfile.TemporaryDirectory() as ann_profile,
    ):
        it_browser = pw.chromium.launch_persistent_context(
            it_profile, executable_path=CHROMIUM, headless=True, args=FLAGS, ignore_https_errors=True
        )
        ann_browser = pw.chromium.launch_persistent_context(
            ann_profile, executable_path=CHROMIUM, headless=True, args=FLAGS, ignore_https_errors=True
        )
        try:
            page = it_browser.new_page()
            page.goto(setup_link)
            assert page.url == f"{portal.url}/setup"  # the token left the address bar
            page.wait_for_selector("button[data-copy='redirect-uri']:not([hidden])")  # our script ran (CSP 'self')
            redirect = page.input_value("#redirect-uri")
            app = emulator.add_application(tenant.tenant_id, "APSIS One SSO", [redirect])
            secret = emulator.add_secret(tenant.tenant_id, app.app_id, datetime.now(UTC) + timedelta(days=10))
            PORTAL_SECRETS.add(secret)
            shown.append(page.content())
            page.fill("#tenant", domain)  # a verified domain works as well as the GUID
            page.fill("#client_id", app.app_id)
            page.fill("#client_secret", secret)
            page.fill("#secret_expires", expires.isoformat())
            page.fill("#test_users", f"{ann}\nben@{domain}")
            page.click("button[type=submit]")
            page.wait_for_selector("text=is set up for testing")
            shown.append(page.content())
            record = load(api, account)
            assert (record.stage, record.tenant_id, record.client_id) == ("pilot", tenant.tenant_id, app.app_id)
            test_link = page.input_value("#test-login")
            assert test_link == links.test_login_url(settings, account)

            # Ann opens the test-login link in her own browser: straight to Entra, back in APSIS One.
            ann_page = ann_browser.new_page()
            ann_page.goto(test_link)
            ann_page.wait_for_selector("input[name=passwd]")
            ann_page.fill("input[name=login]", ann)
            ann_page.fill("input[name=passwd]", PASSWORD)
            ann_page.click("[type=submit]")
            ann_page.wait_for_url(re.compile(rf"{re.escape(settings.keycloak_url)}/realms/{settings.realm}/account"))

            # The IT contact's page refreshes itself (meta refresh) and shows Ann signed in.
            page.wait_for_selector("tr.ok", timeout=60_000)
            assert "Signed in" in page.inner_text("tr.ok") and ann in page.inner_text("tr.ok")
            shown.append(page.content())
            page.click("form[action='/setup/ready'] button")
            page.wait_for_selector("text=we take it from here")
            shown.append(page.content())
        finally:
            it_browser.close()
            ann_browser.close()

    (ready,) = [
        m for m in smtp_server.messages(to=PLATFORM_TEAM) if account in m["Subject"] and "go live" in m["Subject"]
    ]
    assert ann in ready.get_content()
    cli.run("account", "go-live", account, env=env)

    # Ten days before expiry apsis-sync mails the IT contact, with a renewal link (outside
    # Playwright's block: its event loop would be the daemon's).
    harness = sync(secrets_dir=portal.secrets_dir)  # the portal handed the daemon its copy there
    harness.rt.settings = harness.rt.settings.model_copy(update={"portal_url": portal.url})
    result = run_once(harness.rt, [account], None, False).result(account)
    assert result.status == "ok", result.errors
    (notice,) = smtp_server.messages(to=it, kind="secret-expiry")
    renew_link = link_in(notice.get_content(), portal, account)

    new_secret = emulator.add_secret(tenant.tenant_id, app.app_id, datetime.now(UTC) + timedelta(days=400))
    PORTAL_SECRETS.add(new_secret)
    new_expiry = date.today() + timedelta(days=400)
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as it_profile:
        renewer = pw.chromium.launch_persistent_context(
            it_profile, executable_path=CHROMIUM, headless=True, args=FLAGS, ignore_https_errors=True
        )
        try:
            page = renewer.new_page()
            page.goto(renew_link)
            assert page.url == f"{portal.url}/renew"
            shown.append(page.content())
            page.fill("#client_secret", new_secret)
            page.fill("#secret_expires", new_expiry.isoformat())
            page.click("button[type=submit]")
            page.wait_for_selector("text=The new client secret is in place")
            shown.append(page.content())
        finally:
            renewer.close()

    record = load(api, account)
    assert (record.stage, record.secret_hint, record.secret_expires) == ("live", new_secret[:3], new_expiry)
    assert (portal.secrets_dir / account).read_text().strip() == new_secret
    (renewed,) = [
        m for m in smtp_server.messages(to=PLATFORM_TEAM) if account in m["Subject"] and "renewed" in m["Subject"]
    ]
    # With the new secret in Keycloak, Ann still signs in (no downtime: Entra accepts both).
    again = Browser(settings.keycloak_url, settings.realm, ca_bundle=str(emulator.ca_bundle)).sso_login(
        ann, PASSWORD, f"entra-{account}"
    )
    assert again.ok and again.id_claims["apsis_account"] == account

    # The platform team typed create, invite and go-live; no secret anywhere it must not be.
    mails = [m.as_string() for m in smtp_server.messages() if account in m.get("X-Apsis-Account", "") + m["Subject"]]
    for text in [*shown, *mails, renewed.as_string()]:
        assert secret not in text and new_secret not in text
    assert_no_portal_secret(*shown, portal.log.read_text(), portal.audit.read_text())
    actions = [(r["action"], r["outcome"]) for r in portal.audit_records() if r.get("account") == account]
    assert actions == [
        ("link-opened", "ok"),
        ("setup-submitted", "ok"),
        ("ready", "ok"),
        ("link-opened", "ok"),
        ("renewal-submitted", "ok"),
    ]
