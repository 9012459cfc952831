"""The customer's Entra admin approves the admin-consent link and lands on a page that says
so, through the real Keycloak and the one redirect URI the customer registers (issue 14,
item 2). Entra answers with ``admin_consent=True&tenant=...`` (or ``error``), not with a login
response; Keycloak alone shows "Missing state parameter" for it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from apsis_core.contract import ADMIN_CONSENT_STATE
from devenv.accounts import PASSWORD, AccountFactory
from devenv.login_driver import visible_text
from provisioning import onboarding
from provisioning.links import redirect_uri
from tests.login_checks import message


def consent_link(api, settings, account_id: str) -> str:
    account = onboarding.load(api, account_id).settings()
    return onboarding.customer_links(settings, account)["admin_consent_url"]


def sentence(key: str, *values: str) -> str:
    """The extension's sentence for ``apsisSso.<key>`` with its parameters filled in."""
    text = message(key)
    for i, value in enumerate(values):
        text = text.replace(f"{{{i}}}", value)
    return text


def test_the_link_uses_the_registered_redirect_uri_and_our_state(accounts: AccountFactory, api, settings):
    acct = accounts.create()
    query = parse_qs(urlsplit(consent_link(api, settings, acct.id)).query)
    assert query["redirect_uri"] == [redirect_uri(settings, acct.id)]  # the only one the customer registers
    assert query["state"] == [ADMIN_CONSENT_STATE]
    assert query["client_id"] == [acct.app_id]


def test_the_admin_lands_on_a_page_that_says_consent_was_granted(
    accounts: AccountFactory, api, settings, browser, emulator
):
    acct = accounts.create()
    acct.entra_user("ivy")
    landed = browser().admin_consent(consent_link(api, settings, acct.id), f"ivy@{acct.domain}", PASSWORD)
    assert landed.status == 200, landed.text[:500]
    assert landed.url.startswith(redirect_uri(settings, acct.id))
    assert sentence("consent_granted", acct.tenant_id) in landed.text
    assert "test-login link" in landed.text
    assert "Missing state" not in landed.text
    assert emulator.get_application(acct.tenant_id, acct.app_id).admin_consent_granted


def test_a_cancelled_consent_lands_on_our_neutral_page(accounts: AccountFactory, api, settings, browser, emulator):
    """Entra's documented cancel (``error=permission_denied``, "The admin canceled the request"):
    our page, in our words, with the code and how to try again; not Keycloak's "We are sorry"."""
    acct = accounts.create()
    acct.entra_user("ivy")
    landed = browser().admin_consent(consent_link(api, settings, acct.id), f"ivy@{acct.domain}", PASSWORD, accept=False)
    assert landed.status == 200
    assert message("consent_declined_title") in landed.text
    assert (
        sentence("consent_declined", message("consent_reason.cancelled"), sentence("consent_code", "permission_denied"))
        in landed.text
    )
    assert "We are sorry" not in landed.text and "The admin canceled the request" not in landed.text
    assert not emulator.get_application(acct.tenant_id, acct.app_id).admin_consent_granted


def test_entras_refusal_is_shown_by_its_code_in_our_words(accounts: AccountFactory, settings, browser):
    acct = accounts.create()
    page = browser()._request(
        "GET",
        f"{redirect_uri(settings, acct.id)}?state={ADMIN_CONSENT_STATE}&error=access_denied"
        "&error_description=AADSTS65004%3A+User+declined+to+consent+to+access+the+app."
        "%0D%0ATrace+ID%3A+0000",
    )
    assert page.status_code == 200
    text = visible_text(page.text)
    assert (
        sentence("consent_declined", message("consent_reason.declined"), sentence("consent_code", "AADSTS65004"))
        in text
    )
    assert "User declined" not in text and "Trace ID" not in text


def test_links_printed_before_the_state_existed_work_too(accounts: AccountFactory, settings, browser):
    """Entra sends no state when the link had none: still an admin-consent answer, not an error."""
    acct = accounts.create()
    granted = browser()._request("GET", f"{redirect_uri(settings, acct.id)}?admin_consent=True&tenant={acct.tenant_id}")
    assert granted.status_code == 200
    assert "Consent granted" in granted.text and "Missing state" not in granted.text


def test_an_anonymous_answer_reveals_no_configuration(accounts: AccountFactory, settings, browser, keycloak):
    """Anybody can open the endpoint with any tenant: the page is the same whether that is the
    account's tenant or not, and names neither the company nor the configured tenant (it was a
    409 naming both). The mismatch goes to the log, for the platform team."""
    acct = accounts.create(name="Globex Secret Corp")
    other = "11111111-1111-4111-8111-111111111111"

    def landed(tenant: str) -> requests.Response:
        return browser()._request(
            "GET", f"{redirect_uri(settings, acct.id)}?admin_consent=True&tenant={tenant}&state={ADMIN_CONSENT_STATE}"
        )

    right, wrong = landed(acct.tenant_id), landed(other)
    assert right.status_code == wrong.status_code == 200
    assert visible_text(right.text).replace(acct.tenant_id, "<tenant>") == visible_text(wrong.text).replace(
        other, "<tenant>"
    )
    for page in (right, wrong):
        assert "Globex" not in page.text and acct.id not in visible_text(page.text)
    assert acct.tenant_id not in wrong.text
    assert sentence("consent_granted", other) in visible_text(wrong.text)
    log = Path(str(keycloak.log_file)).read_text(errors="replace")
    assert (
        f"Admin consent for {acct.alias} reported in tenant {other}, but the account's tenant is {acct.tenant_id}"
        in log
    )


def test_a_crafted_answer_cannot_put_text_or_a_link_on_the_page(accounts: AccountFactory, settings, browser):
    acct = accounts.create()
    crafted = (
        f"{redirect_uri(settings, acct.id)}?state={ADMIN_CONSENT_STATE}&error=x"
        "&error_description=Your+account+is+suspended%2C+call+%3Ca%20href%3D%22https%3A%2F%2Fevil.example%2F%22%3E"
        "support%3C%2Fa%3E"
    )
    page = browser()._request("GET", crafted)
    assert page.status_code == 200
    assert "evil.example" not in page.text and "suspended" not in page.text
    assert sentence(
        "consent_declined", message("consent_reason.unknown"), sentence("consent_code", "x")
    ) in visible_text(page.text)


def test_nothing_from_the_answer_forges_a_log_line(accounts: AccountFactory, settings, browser, keycloak, unique):
    acct = accounts.create()
    forged = f"FORGED-{unique}"
    for query in (
        f"admin_consent=True&tenant=x%0D%0A{forged}-tenant%0A",
        f"error=x%0D%0A{forged}-error&error_description=y%0A{forged}-description%E2%80%A8",
    ):
        browser()._request("GET", f"{redirect_uri(settings, acct.id)}?{query}")
    log = Path(str(keycloak.log_file)).read_text(errors="replace")
    assert f"\\u000d\\u000a{forged}-tenant" in log and f"\\u000a{forged}-description\\u2028" in log
    assert "\u2028" not in log and not [line for line in log.split("\n") if line.lstrip("\r").startswith(forged)]


def test_sign_ins_through_the_same_endpoint_are_unchanged(accounts: AccountFactory, browser):
    acct = accounts.create()
    email, user_id = acct.person("tess")
    result = browser().sso_login(email, PASSWORD, acct.alias)
    assert result.ok and result.id_claims["sub"] == user_id
