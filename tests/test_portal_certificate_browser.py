"""The portal's certificate path in headless Chromium: the IT contact downloads APSIS's public
certificate from the setup page, uploads it to the app registration ("Entra": the emulator),
submits without any secret, and the test user signs in; an account with a secret is switched to
the certificate from a renewal link, proved with Entra first."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from apsis_core import certificates
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import AccountFactory, create_apsis_user
from devenv.login_driver import Browser
from provisioning.onboarding import load
from tests.certificate_fixtures import AssertionKey
from tests.cli_fixtures import Cli
from tests.portal_fixtures import PORTAL_SECRETS, PortalProcess, assert_no_portal_secret, start_portal
from tests.sync_fixtures import SmtpServer
from tests.test_login_browser import CHROMIUM, FLAGS

PASSWORD = "Entra-Passw0rd!"


@pytest.fixture(scope="module")
def cert_portal(
    settings: Settings,
    realm: str,
    smtp_server: SmtpServer,
    assertion_key: AssertionKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PortalProcess]:
    running = start_portal(
        settings,
        smtp_server,
        tmp_path_factory.mktemp("cert-portal"),
        APSIS_SSO_ASSERTION_KEY_FILE=str(assertion_key.path),
    )
    try:
        yield running
    finally:
        running.stop()
        log = running.log.read_text()
        assert_no_portal_secret(log, running.audit.read_text() if running.audit.exists() else "")
        assert "PRIVATE KEY" not in log


def link_from(output: str, portal: PortalProcess, account: str) -> str:
    found = re.findall(rf"{re.escape(portal.url)}/i/{account}/[A-Za-z0-9_-]{{43}}", output)
    assert len(found) == 1, output
    PORTAL_SECRETS.add(found[0].rsplit("/", 1)[1])
    return found[0]


def chromium(pw, profile: str):  # type: ignore[no-untyped-def]
    return pw.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, headless=True, args=FLAGS, ignore_https_errors=True
    )


@pytest.mark.browser
def test_setup_with_the_certificate_and_a_switch_from_a_secret_in_chromium(
    cli: Cli,
    cert_portal: PortalProcess,
    emulator,
    api: KeycloakRepository,
    settings: Settings,
    assertion_key: AssertionKey,
    cert_accounts: AccountFactory,
    unique: str,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), f"Chromium is not installed at {CHROMIUM}"
    cert = assertion_key.pair.certificate
    account, domain = f"{unique}cw", f"{unique}cw.example"
    env = {"APSIS_SSO_PORTAL_URL": cert_portal.url}
    cli.run(
        "account", "create", account, "--name", "Contoso Cert", "--domain", domain,
        "--it-contact-name", "Ivy IT", "--it-contact-email", f"it@{domain}", env=env,
    )  # fmt: skip
    org = api.organization_by_alias(account)
    assert org is not None
    api.add_member(org["id"], create_apsis_user(api, f"ann@{domain}"))
    setup_link = link_from(cli.run("account", "invite", account, "--no-mail", env=env).stdout, cert_portal, account)
    tenant = emulator.add_tenant([domain], display_name="Contoso")
    emulator.add_user(tenant.tenant_id, f"ann@{domain}", PASSWORD, mail=f"ann@{domain}")

    # A second account, on a client secret, gets a renewal link.
    secret_acct = cert_accounts.create()
    PORTAL_SECRETS.add(secret_acct.secret)
    renew_link = link_from(
        cli.run("account", "invite", secret_acct.id, "--intent", "renew", "--no-mail", env=env).stdout,
        cert_portal,
        secret_acct.id,
    )
    shown: list[str] = []

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = chromium(pw, profile)
        try:
            page = browser.new_page()
            page.goto(setup_link)
            assert page.url == f"{cert_portal.url}/setup"
            assert page.is_visible("text=Upload a certificate (recommended)")
            assert page.is_checked("#credential-certificate")  # the recommended way is the default
            assert page.input_value("#certificate-thumbprint") == cert.sha1_thumbprint
            with page.expect_download() as download:
                page.click("#certificate-download")
            saved = tmp_path / "apsis-sso.cer"
            download.value.save_as(saved)
            assert certificates.parse_public(saved.read_bytes()) == cert  # public only
            assert "PRIVATE KEY" not in saved.read_text()

            redirect = page.input_value("#redirect-uri")
            app = emulator.add_application(tenant.tenant_id, "APSIS One SSO", [redirect])
            page.fill("#tenant", tenant.tenant_id)
            page.fill("#client_id", app.app_id)
            page.fill("#test_users", f"ann@{domain}")
            page.click("form[action='/setup'] button[type=submit]")  # not uploaded yet: refused, nothing made
            page.wait_for_selector("text=does not know APSIS's certificate")
            assert load(api, account).awaiting_setup
            shown.append(page.content())

            emulator.upload_certificate(tenant.tenant_id, app.app_id, saved.read_bytes())  # the IT contact uploads
            page.check("#credential-certificate")
            page.fill("#test_users", f"ann@{domain}")
            page.click("form[action='/setup'] button[type=submit]")
            page.wait_for_selector("text=is set up for testing")
            shown.append(page.content())
            record = load(api, account)
            assert (record.stage, record.credential, record.secret_expires) == (
                "pilot", "certificate", cert.not_after.date(),
            )  # fmt: skip

            # The switch flow from a renewal link.
            page.goto(renew_link)
            assert page.url == f"{cert_portal.url}/renew"
            page.click("#switch-to-certificate")  # not uploaded yet: refused, unchanged
            page.wait_for_selector("text=does not know APSIS's certificate")
            assert load(api, secret_acct.id).credential == "client-secret"
            emulator.upload_certificate(secret_acct.tenant_id, secret_acct.app_id, cert.pem)
            page.click("#switch-to-certificate")
            page.wait_for_selector("text=Your app now uses APSIS's certificate")
            assert page.is_visible("text=delete the old client secret")
            shown.append(page.content())
        finally:
            browser.close()

    assert load(api, secret_acct.id).credential == "certificate"
    ann = Browser(settings.keycloak_url, settings.realm, ca_bundle=str(emulator.ca_bundle))
    assert ann.sso_login(f"ann@{domain}", PASSWORD, f"entra-{account}").ok
    for html in shown:
        assert "PRIVATE KEY" not in html
        assert_no_portal_secret(html)
