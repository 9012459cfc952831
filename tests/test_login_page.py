"""The ordinary login page per stage, through the real Keycloak (issue 14, item 1).

A person opens APSIS One's login page (no ``kc_idp_hint``), types her address, and:
live account -> straight to the tenant's Entra sign-in, back signed in and linked;
pilot or disabled -> Keycloak's password form; contractors -> the password form always;
an address in the domains that may not use SSO -> the extension's readable refusal, with
a way to the password form.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
import requests

from apsis_core import stages
from apsis_core.account import Account
from apsis_core.contract import REDIRECT_WHEN_EMAIL_MATCHES_KEY
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import PASSWORD, AccountFactory, create_apsis_user, now_ms, refusals, user_count
from devenv.login_driver import CLIENT_ID, REDIRECT_URI, Browser, forms, visible_text
from provisioning import onboarding
from provisioning.accounts import plan_account
from provisioning.realm import plan_realm
from provisioning.snapshot import Snapshot
from tests.login_checks import assert_refused, linked_idp_user_ids


def test_live_member_types_her_address_and_goes_straight_to_entra(accounts: AccountFactory, api, browser, emulator):
    acct = accounts.create(stage="live")
    email, user_id = acct.person("alice", pilot=False)
    oid = emulator.find_user(acct.tenant_id, email).oid
    before = user_count(api)

    result = browser().login_page(email, PASSWORD)
    assert result.ok, result.text[:500]
    assert result.forms == ["username", "entra"], "no page between the email field and Entra's sign-in"
    assert result.id_claims["sub"] == user_id
    assert result.id_claims["apsis_account"] == acct.id
    assert linked_idp_user_ids(api, user_id, acct.alias) == [oid]
    assert user_count(api) == before

    again = browser().login_page(email.upper(), PASSWORD)  # any case, linked this time
    assert again.ok and again.forms == ["username", "entra"] and again.id_claims["sub"] == user_id


def test_the_application_may_pass_the_address_and_skip_the_email_field(accounts: AccountFactory, browser):
    acct = accounts.create(stage="live")
    email, user_id = acct.person("lisa", pilot=False)
    result = browser().login_page(email, PASSWORD, login_hint=email)
    assert result.ok, result.text[:500]
    assert result.forms == ["entra"]
    assert result.id_claims["sub"] == user_id


def test_pilot_and_disabled_accounts_get_the_password_form(accounts: AccountFactory, api, settings, browser):
    acct = accounts.create()  # pilot
    email, user_id = acct.person("paula")  # even a test user: she uses the test-login link
    result = browser().login_page(email, PASSWORD)
    assert result.ok and result.forms == ["username", "password"]
    assert result.id_claims["sub"] == user_id
    assert linked_idp_user_ids(api, user_id, acct.alias) == []

    onboarding.set_stage(api, settings, acct.id, "disabled")
    result = browser().login_page(email, PASSWORD)
    assert result.ok and result.forms == ["username", "password"]


def test_stage_commands_switch_the_login_page_in_the_same_command(accounts: AccountFactory, api, settings, browser):
    acct = accounts.create()
    email, _ = acct.person("sam", pilot=False)
    assert browser().login_page(email, PASSWORD).forms == ["username", "password"]

    onboarding.set_stage(api, settings, acct.id, "live")
    assert stages.redirects_by_domain(api.identity_provider(acct.alias))
    assert browser().login_page(email, PASSWORD).forms == ["username", "entra"]

    onboarding.set_stage(api, settings, acct.id, "pilot")
    assert not stages.redirects_by_domain(api.identity_provider(acct.alias))
    assert browser().login_page(email, PASSWORD).forms == ["username", "password"]

    onboarding.set_stage(api, settings, acct.id, "live")
    onboarding.set_stage(api, settings, acct.id, "disabled")
    assert browser().login_page(email, PASSWORD).forms == ["username", "password"]


def test_contractors_keep_the_password_form_before_and_after_go_live(accounts: AccountFactory, browser):
    acct = accounts.create()
    contractor = f"contractor-{acct.id}@agency.example"
    user_id = acct.apsis_user(contractor)
    before = browser().login_page(contractor, PASSWORD)
    acct.go_live()
    after = browser().login_page(contractor, PASSWORD)
    for result in (before, after):
        assert result.ok and result.forms == ["username", "password"]
        assert result.id_claims["sub"] == user_id


def test_an_address_in_the_domains_not_allowed_sso_gets_the_readable_refusal(accounts: AccountFactory, api, browser):
    acct = accounts.create(stage="live")
    outsider = f"olga@{acct.domain}"
    acct.entra_user("olga")
    outsider_id = acct.apsis_user(outsider, member=False)
    since = now_ms()
    b = browser()
    refused = b.login_page(outsider, PASSWORD)
    assert refused.forms == ["username", "entra"]
    assert_refused(refused, api, since, "not_member")
    assert refused.status == 403
    assert linked_idp_user_ids(api, outsider_id, acct.alias) == []

    # The sentence says "sign in with your APSIS One password": the page leads there, and this
    # login then stays on the password form although the address is in a live domain.
    password = b.follow(b.links(refused.page)["apsis-password-instead"], PASSWORD, login=outsider)
    assert password.ok, password.text[:500]
    assert password.forms == ["password"]
    assert password.id_claims["sub"] == outsider_id


def test_a_deactivated_user_gets_the_refusal_not_keycloaks_error_page(accounts: AccountFactory, api, browser):
    acct = accounts.create(stage="live")
    email, user_id = acct.person("dan", pilot=False)
    assert browser().login_page(email, PASSWORD).ok  # linked
    rep = api.user(user_id)
    api.update_user(user_id, {**rep, "enabled": False})

    since = now_ms()
    refused = browser().login_page(email, PASSWORD)
    assert_refused(refused, api, since, "user_disabled")
    assert "Account is disabled" not in refused.text
    assert "apsis-password-instead" not in Browser.links(refused.page), "a password does not help a deactivated user"
    event = next(e for e in refusals(api, since) if e["details"].get("reason") == "user_disabled")
    assert event["userId"] == user_id

    # Not linked yet and deactivated: the first-login refusal says the same.
    fresh, _ = acct.person("dina", pilot=False, enabled=False)
    since = now_ms()
    assert_refused(browser().login_page(fresh, PASSWORD), api, since, "user_disabled")


def test_plan_shows_and_repairs_login_page_drift(accounts: AccountFactory, api, settings: Settings):
    acct = accounts.create(stage="live")
    idp = api.identity_provider(acct.alias)
    assert idp is not None
    idp["config"][REDIRECT_WHEN_EMAIL_MATCHES_KEY] = "false"  # someone unticked it in the console
    api.update_identity_provider(acct.alias, idp)

    account = onboarding.load(api, acct.id).settings()
    plan = plan_account(settings, account, Snapshot.for_account(api, acct.id))
    paths = [f.path for c in plan.changes for f in c.fields]
    assert f"config.{REDIRECT_WHEN_EMAIL_MATCHES_KEY}" in paths
    plan.apply(api)
    assert stages.redirects_by_domain(api.identity_provider(acct.alias))
    assert plan_account(settings, account, Snapshot.for_account(api, acct.id)).empty


def test_realm_apply_keeps_the_login_page_flow_in_step(realm: str, settings: Settings):
    admin = KeycloakRepository.for_admin(settings)
    assert admin.get_realm()["browserFlow"] == "apsis browser"
    providers = [e.get("providerId") for e in admin.executions("apsis browser")]
    assert "apsis-identity-first" in providers and "organization" not in providers
    assert "auth-cookie" in providers and "identity-provider-redirector" in providers
    assert "auth-username-password-form" in providers and "auth-otp-form" in providers  # Keycloak's own steps

    admin.update_realm({"realm": settings.realm, "browserFlow": "browser"})
    try:
        plan = plan_realm(admin, settings)
        assert [(c.kind, f.path) for c in plan.changes for f in c.fields] == [("realm", "browserFlow")]
        plan.apply(admin)
    finally:
        admin.update_realm({"realm": settings.realm, "browserFlow": "apsis browser"})
    assert plan_realm(admin, settings).empty


@pytest.mark.unit
def test_stage_rule_is_one_pure_function():
    live = stages.identity_provider_settings("live")
    assert live == {
        "enabled": True,
        "config": {"kc.org.domain": "ANY", "kc.org.broker.redirect.mode.email-matches": "true"},
    }
    assert stages.identity_provider_settings("pilot") == {
        "enabled": True,
        "config": {"kc.org.domain": "", "kc.org.broker.redirect.mode.email-matches": ""},
    }
    assert stages.identity_provider_settings("disabled")["enabled"] is False
    assert not stages.identity_provider_settings("disabled")["config"]["kc.org.domain"]
    assert stages.redirects_by_domain(live)
    assert not stages.redirects_by_domain({**live, "enabled": False})
    assert "acme.com, acme.se" in stages.login_page("live", ("acme.com", "acme.se"))


def test_show_says_what_the_login_page_does_and_flags_drift(cli, onboarded, api):
    acct = onboarded()
    assert cli.json("account", "show", acct.id)["redirects_by_domain"] is False
    live = cli.run("account", "go-live", acct.id)
    assert f"the login page sends every address in {acct.domain} straight to the account's Entra sign-in" in live.stderr
    assert cli.json("account", "show", acct.id)["redirects_by_domain"] is True
    shown = cli.run("account", "show", acct.id).stdout
    assert "straight to Entra" in shown and "drift" not in shown

    idp = api.identity_provider(acct.alias)
    idp["config"][REDIRECT_WHEN_EMAIL_MATCHES_KEY] = "false"
    api.update_identity_provider(acct.alias, idp)
    assert "password form (drift: the live stage says otherwise)" in cli.run("account", "show", acct.id).stdout


def typed(b: Browser, address: str) -> requests.Response:
    """Keycloak's answer to an address typed on its login page (not followed)."""
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = b._request("GET", f"{b.keycloak_url}/realms/{b.realm}/protocol/openid-connect/auth?{urlencode(query)}")
    form = next(f for f in forms(page.text) if "username" in f.fields)
    return b._request("POST", urljoin(page.url, html.unescape(form.action)), data={**form.fields, "username": address})


def with_password(b: Browser, page: requests.Response, password: str) -> requests.Response:
    """The password form of ``page`` submitted (not followed)."""
    form = next(f for f in forms(page.text) if "password" in f.fields)
    return b._request("POST", urljoin(page.url, html.unescape(form.action)), data={**form.fields, "password": password})


def seen(answer: requests.Response, address: str) -> tuple[int, str, list[list[str]], str]:
    """What a person (or a script) can tell from the answer: status, where it leads, the forms'
    fields, the words on the page (the typed address itself taken out)."""
    location = urlsplit(answer.headers.get("Location", ""))
    return (
        answer.status_code,
        f"{location.netloc}{location.path}",
        [sorted(f.fields) for f in forms(answer.text)],
        visible_text(answer.text).replace(address, "<address>"),
    )


def test_the_login_page_never_tells_who_has_an_account(accounts: AccountFactory, api, settings, browser, unique):
    """An unknown, a deactivated and an existing address get the same answer in every stage:
    the password form, or (live) the account's Entra sign-in. Keycloak's own step said "Your
    email domain matches an organization but you don't have an account yet" to the unknown one."""
    awaiting = f"{unique}w"
    onboarding.create(
        api,
        settings,
        Account.build(
            id=awaiting,
            name=f"Awaiting {awaiting}",
            domains=[f"{awaiting}.example"],
            it_contact_name="Ivy IT",
            it_contact_email=f"it@{awaiting}.example",
        ),
    )
    pilot, live, off = accounts.create(), accounts.create(stage="live"), accounts.create(stage="disabled")
    domains = {
        "awaiting-setup": f"{awaiting}.example",
        "pilot": pilot.domain,
        "live": live.domain,
        "disabled": off.domain,
        "no account": f"agency-{unique}.example",
    }
    for stage, domain in domains.items():
        known, gone, unknown = f"known@{domain}", f"gone@{domain}", f"nobody@{domain}"
        create_apsis_user(api, known)
        create_apsis_user(api, gone, enabled=False)
        browsers = {who: browser() for who in (known, gone, unknown)}
        pages = {who: typed(b, who) for who, b in browsers.items()}
        answers = {who: seen(page, who) for who, page in pages.items()}
        assert answers[known] == answers[gone] == answers[unknown], (stage, answers)
        status, leads_to, fields, text = answers[unknown]
        if stage == "live":
            assert status in (302, 303) and leads_to.endswith(f"/broker/{live.alias}/login"), (stage, answers[unknown])
            continue
        assert (status, fields) == (200, [["credentialId", "password"]]), (stage, answers[unknown])
        assert "don't have an account" not in text
        # The right password of a deactivated user is answered as any password of an unknown address.
        after = {who: seen(with_password(browsers[who], pages[who], PASSWORD), who) for who in (gone, unknown)}
        assert after[gone] == after[unknown] and "Invalid username or password" in after[gone][3], (stage, after)
    # The password form still signs the existing user in.
    assert browser().login_page(f"known@{domains['awaiting-setup']}", PASSWORD).ok
