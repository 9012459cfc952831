"""End-to-end SSO logins through the real Keycloak (with the extension) and the emulator.

Each test logs in as a person would (redirects followed, forms submitted), asserts the
outcome, the refusal reason recorded as an event, and that no user was created.
"""

from __future__ import annotations

from devenv.accounts import PASSWORD, AccountFactory, create_apsis_user, now_ms, user_count
from provisioning import onboarding
from tests.login_checks import assert_refused, linked_idp_user_ids


def test_pilot_user_links_then_reuses_the_link_even_after_an_email_change(
    accounts: AccountFactory, api, browser, emulator
):
    acct = accounts.create()
    email, user_id = acct.person("alice")
    oid = emulator.find_user(acct.tenant_id, email).oid
    before = user_count(api)

    first = browser().sso_login(email, PASSWORD, acct.alias)
    assert first.ok, first.text[:500]
    assert first.id_claims["sub"] == user_id
    assert first.id_claims["apsis_account"] == acct.id
    assert linked_idp_user_ids(api, user_id, acct.alias) == [oid]

    again = browser().sso_login(email, PASSWORD, acct.alias)
    assert again.ok and again.id_claims["sub"] == user_id

    emulator.set_user_mail(acct.tenant_id, oid, f"alice.renamed@{acct.domain}")
    after_rename = browser().sso_login(email, PASSWORD, acct.alias)
    assert after_rename.ok, after_rename.text[:500]
    assert after_rename.id_claims["sub"] == user_id
    assert after_rename.id_claims["email"] == email  # the APSIS One user keeps its email
    assert user_count(api) == before


def test_member_not_on_pilot_list_is_refused_until_go_live(accounts: AccountFactory, api, browser):
    acct = accounts.create()
    email, user_id = acct.person("bob", pilot=False)
    before = user_count(api)
    since = now_ms()

    refused = browser().sso_login(email, PASSWORD, acct.alias)
    assert_refused(refused, api, since, "not_pilot")
    assert linked_idp_user_ids(api, user_id, acct.alias) == []

    acct.go_live()
    live = browser().sso_login(email, PASSWORD, acct.alias)
    assert live.ok, live.text[:500]
    assert live.id_claims["sub"] == user_id
    assert user_count(api) == before


def test_email_without_apsis_user_is_refused(accounts: AccountFactory, api, browser):
    acct = accounts.create(stage="live")
    acct.entra_user("nobody")
    before = user_count(api)
    since = now_ms()
    result = browser().sso_login(f"nobody@{acct.domain}", PASSWORD, acct.alias)
    assert_refused(result, api, since, "no_user")
    assert user_count(api) == before
    assert api.users_by_email(f"nobody@{acct.domain}") == []


def test_user_of_tenant_a_with_email_of_account_b_is_refused(accounts: AccountFactory, api, browser):
    a = accounts.create(stage="live")
    b = accounts.create(stage="live")
    victim_email = f"victim@{b.domain}"
    victim_id = b.apsis_user(victim_email)
    # An admin of tenant A gives one of their users the victim's address. Entra would say
    # xms_edov: false (the domain is verified in B's tenant); as if it vouched for it anyway,
    # the domain check still refuses.
    a.entra_user("mallory", mail=victim_email, email_domain_verified=True)
    before = user_count(api)
    since = now_ms()

    result = browser().sso_login(f"mallory@{a.domain}", PASSWORD, a.alias)
    assert_refused(result, api, since, "domain_not_allowed")
    assert linked_idp_user_ids(api, victim_id, a.alias) == []

    # Same story with a victim whose address is in A's own domain but who belongs to B only.
    outsider_email = f"outsider@{a.domain}"
    outsider_id = b.apsis_user(outsider_email)
    a.entra_user("outsider")
    since = now_ms()
    result = browser().sso_login(outsider_email, PASSWORD, a.alias)
    assert_refused(result, api, since, "not_member")
    assert linked_idp_user_ids(api, outsider_id, a.alias) == []
    assert user_count(api) == before + 1  # only the outsider this test created itself


def test_foreign_domain_and_unverified_email_are_refused(accounts: AccountFactory, api, browser):
    acct = accounts.create(stage="live")
    foreign = "someone@elsewhere.example"
    create_apsis_user(api, foreign)
    acct.entra_user("someone", mail=foreign, email_domain_verified=True)  # even if Entra vouched for it
    since = now_ms()
    assert_refused(
        browser().sso_login(f"someone@{acct.domain}", PASSWORD, acct.alias), api, since, "domain_not_allowed"
    )

    email, user_id = acct.person("unverified")
    oid = acct.emulator.find_user(acct.tenant_id, email).oid
    acct.emulator.set_email_domain_verified(acct.tenant_id, oid, False)
    since = now_ms()
    assert_refused(browser().sso_login(email, PASSWORD, acct.alias), api, since, "email_unverified")
    assert linked_idp_user_ids(api, user_id, acct.alias) == []


def test_disabled_apsis_user_is_refused(accounts: AccountFactory, api, browser):
    acct = accounts.create(stage="live")
    email, user_id = acct.person("dora", enabled=False)
    since = now_ms()
    assert_refused(browser().sso_login(email, PASSWORD, acct.alias), api, since, "user_disabled")
    assert linked_idp_user_ids(api, user_id, acct.alias) == []


def test_case_and_username_never_link_the_wrong_user(accounts: AccountFactory, api, browser):
    acct = accounts.create(stage="live")
    # Entra sends the address in another case: it is the same person.
    carol_email = f"carol@{acct.domain}"
    carol_id = acct.apsis_user(carol_email)
    acct.entra_user("carol", mail=f"Carol@{acct.domain.upper()}")
    result = browser().sso_login(carol_email, PASSWORD, acct.alias)
    assert result.ok, result.text[:500]
    assert result.id_claims["sub"] == carol_id

    # A member whose *username* is dave's address, while dave has no user: refused, not linked.
    decoy_id = acct.apsis_user(f"decoy@{acct.domain}", username=f"dave@{acct.domain}")
    acct.entra_user("dave")
    since = now_ms()
    assert_refused(browser().sso_login(f"dave@{acct.domain}", PASSWORD, acct.alias), api, since, "no_user")
    assert linked_idp_user_ids(api, decoy_id, acct.alias) == []

    # Keycloak itself refuses an email equal to another user's username, so the decoy goes
    # before dave gets a user of his own; dave's login then links to dave.
    api.delete_user(decoy_id)
    dave_id = acct.apsis_user(f"dave@{acct.domain}", username=f"dave-{acct.id}")
    result = browser().sso_login(f"dave@{acct.domain}", PASSWORD, acct.alias)
    assert result.ok, result.text[:500]
    assert result.id_claims["sub"] == dave_id


def test_removal_from_account_or_back_to_pilot_takes_effect_at_next_login(
    accounts: AccountFactory, api, settings, browser
):
    acct = accounts.create(stage="live")
    email, user_id = acct.person("erin", pilot=False)
    assert browser().sso_login(email, PASSWORD, acct.alias).ok

    onboarding.set_stage(api, settings, acct.id, "pilot")
    since = now_ms()
    assert_refused(browser().sso_login(email, PASSWORD, acct.alias), api, since, "not_pilot")

    onboarding.set_stage(api, settings, acct.id, "live")
    assert browser().sso_login(email, PASSWORD, acct.alias).ok
    api.remove_member(acct.org_id, user_id)  # the link stays: the guard must refuse
    assert linked_idp_user_ids(api, user_id, acct.alias)
    since = now_ms()
    assert_refused(browser().sso_login(email, PASSWORD, acct.alias), api, since, "not_member")


def test_external_contractor_keeps_password_login_while_sso_is_on(accounts: AccountFactory, api, browser):
    acct = accounts.create(stage="live")
    contractor = f"contractor-{acct.id}@agency.example"
    user_id = acct.apsis_user(contractor)
    result = browser().password_login(contractor, PASSWORD)
    assert result.ok, result.text[:500]
    assert result.id_claims["sub"] == user_id
    assert api.federated_identities(user_id) == []
