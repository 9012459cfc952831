"""The customer's Entra admin approves the admin-consent link and lands on a page that says
so, through the real Keycloak and the one redirect URI the customer registers (issue 14,
item 2). Entra answers with ``admin_consent=True&tenant=...`` (or ``error``), not with a login
response; Keycloak alone shows "Missing state parameter" for it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from apsis_core.contract import ADMIN_CONSENT_STATE
from provisioning import onboarding
from provisioning.links import redirect_uri
from tests.helpers import PASSWORD, AccountFactory
from tests.login_checks import message


def consent_link(api, settings, account_id: str) -> str:
    account = onboarding.load(api, account_id).settings()
    return onboarding.customer_links(settings, account)["admin_consent_url"]


def sentence(key: str, *values: str) -> str:
    text = message(key)
    for i, value in enumerate(values):
        text = text.replace("{%d}" % i, value)
    return text


def test_the_link_uses_the_registered_redirect_uri_and_our_state(accounts: AccountFactory, api, settings):
    acct = accounts.create()
    query = parse_qs(urlsplit(consent_link(api, settings, acct.id)).query)
    assert query["redirect_uri"] == [redirect_uri(settings, acct.id)]  # the only one the customer registers
    assert query["state"] == [ADMIN_CONSENT_STATE]
    assert query["client_id"] == [acct.app_id]


def test_the_admin_lands_on_a_page_that_says_consent_was_granted(accounts: AccountFactory, api, settings, browser, emulator):
    acct = accounts.create()
    acct.entra_user("ivy")
    landed = browser().admin_consent(consent_link(api, settings, acct.id), f"ivy@{acct.domain}", PASSWORD)
    assert landed.status == 200, landed.text[:500]
    assert landed.url.startswith(redirect_uri(settings, acct.id))
    account = f"Account {acct.id} (APSIS One account {acct.id})"
    assert sentence("consent_granted", account) in landed.text
    assert "test-login link" in landed.text
    assert "Missing state" not in landed.text
    assert emulator.get_application(acct.tenant_id, acct.app_id).admin_consent_granted


def test_a_cancelled_consent_says_why_in_entras_words(accounts: AccountFactory, api, settings, browser, emulator):
    acct = accounts.create()
    acct.entra_user("ivy")
    landed = browser().admin_consent(consent_link(api, settings, acct.id), f"ivy@{acct.domain}", PASSWORD, accept=False)
    assert landed.status == 403
    account = f"Account {acct.id} (APSIS One account {acct.id})"
    assert sentence("consent_refused", account, "The admin canceled the request") in landed.text
    assert not emulator.get_application(acct.tenant_id, acct.app_id).admin_consent_granted


def test_links_printed_before_the_state_existed_work_too(accounts: AccountFactory, settings, browser):
    """Entra sends no state when the link had none: still an admin-consent answer, not an error."""
    acct = accounts.create()
    b = browser()
    granted = b._request("GET", f"{redirect_uri(settings, acct.id)}?admin_consent=True&tenant={acct.tenant_id}")
    assert granted.status_code == 200
    assert "Consent granted" in granted.text and "Missing state" not in granted.text

    other = "11111111-1111-4111-8111-111111111111"
    elsewhere = b._request("GET", f"{redirect_uri(settings, acct.id)}?admin_consent=True&tenant={other}")
    assert elsewhere.status_code == 409
    assert other in elsewhere.text and acct.tenant_id in elsewhere.text


def test_a_crafted_answer_cannot_put_a_link_on_the_page(accounts: AccountFactory, settings, browser):
    acct = accounts.create()
    crafted = (f"{redirect_uri(settings, acct.id)}?state={ADMIN_CONSENT_STATE}&error=x"
               "&error_description=%3Ca%20href%3D%22https%3A%2F%2Fevil.example%2F%22%3Eclick%3C%2Fa%3E")
    page = browser()._request("GET", crafted)
    assert page.status_code == 403
    assert "evil.example" in page.text and 'href="https://evil.example/"' not in page.text


def test_sign_ins_through_the_same_endpoint_are_unchanged(accounts: AccountFactory, browser):
    acct = accounts.create()
    email, user_id = acct.person("tess")
    result = browser().sso_login(email, PASSWORD, acct.alias)
    assert result.ok and result.id_claims["sub"] == user_id
