"""The ordinary login page per stage, through the real Keycloak (issue 14, item 1).

A person opens APSIS One's login page (no ``kc_idp_hint``), types her address, and:
live account -> straight to the tenant's Entra sign-in, back signed in and linked;
pilot or disabled -> Keycloak's password form; contractors -> the password form always;
an address in the domains that may not use SSO -> the extension's readable refusal, with
a way to the password form.
"""

from __future__ import annotations

import pytest

from apsis_core import stages
from apsis_core.contract import REDIRECT_WHEN_EMAIL_MATCHES_KEY
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.login_driver import Browser
from provisioning import onboarding
from provisioning.accounts import plan_account
from provisioning.realm import plan_realm
from provisioning.snapshot import Snapshot
from tests.helpers import PASSWORD, AccountFactory, now_ms, refusals, user_count
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
    assert live == {"enabled": True, "config": {"kc.org.domain": "ANY",
                                                "kc.org.broker.redirect.mode.email-matches": "true"}}
    assert stages.identity_provider_settings("pilot") == {
        "enabled": True, "config": {"kc.org.domain": "", "kc.org.broker.redirect.mode.email-matches": ""}}
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
