"""Okta sign-in through the real Keycloak (with the extension) and the Okta emulator: the same
kinds of tests as Entra's (tests/test_login_e2e.py), with Okta's claims and refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apsis_core.account import Account
from apsis_core.errors import Conflict, InvalidInput
from apsis_core.settings import Settings
from devenv.accounts import now_ms, refusals, user_count
from devenv.entra_emulator import EntraEmulator
from devenv.okta_accounts import OKTA_PASSWORD, OktaAccount, create_okta_account, okta_settings
from devenv.okta_emulator import OktaEmulator
from provisioning import links, onboarding
from tests.login_checks import linked_idp_user_ids, message


@pytest.fixture(scope="module")
def okta(emulator: EntraEmulator) -> Iterator[OktaEmulator]:
    # The Entra emulator's CA, which the test Keycloak already trusts.
    with OktaEmulator(ca_from=emulator.state_dir) as server:
        yield server


@pytest.fixture
def osettings(settings: Settings, okta: OktaEmulator) -> Settings:
    return okta_settings(settings, okta)


@pytest.fixture
def make(api, osettings: Settings, okta: OktaEmulator, unique: str):
    made: list[str] = []

    def create(stage: str = "pilot", domain: str | None = None) -> OktaAccount:
        made.append(f"{unique}o{len(made) + 1}")
        return create_okta_account(api, osettings, okta, made[-1], stage=stage, domain=domain)

    return create


def okta_refused(result, api, since: int, reason: str) -> None:
    """Refused with the Okta wording of ``reason``, and the event recorded."""
    assert not result.ok, f"login was expected to be refused ({reason})"
    assert message(f"apsisSso.okta.{reason}") in result.text, result.text[:500]
    assert reason in [e.get("details", {}).get("reason") for e in refusals(api, since)]


def test_a_first_okta_login_links_the_existing_user_by_okta_user_id_and_a_returning_one_reuses_it(
    make, api, browser, okta: OktaEmulator
):
    acct = make()
    email, user_id, okta_id = acct.person("alice")
    before = user_count(api)

    first = browser().idp_login(email, OKTA_PASSWORD, acct.alias)
    assert first.ok, first.text[:500]
    assert first.id_claims["sub"] == user_id and first.id_claims["apsis_account"] == acct.id
    assert linked_idp_user_ids(api, user_id, acct.alias) == [okta_id], "the link is Okta's sub"

    okta.update_profile(acct.org, okta_id, email=f"alice.renamed@{acct.domain}")
    again = browser().idp_login(email, OKTA_PASSWORD, acct.alias)
    assert again.ok and again.id_claims["sub"] == user_id, "a returning login finds the link by sub, not email"
    assert user_count(api) == before


def test_an_unverified_okta_email_is_refused(make, api, browser, okta: OktaEmulator):
    acct = make()
    email, user_id, okta_id = acct.person("unverified")
    okta.set_email_verified(acct.org, okta_id, False)
    since = now_ms()
    result = browser().idp_login(email, OKTA_PASSWORD, acct.alias)
    okta_refused(result, api, since, "email_unverified")
    assert linked_idp_user_ids(api, user_id, acct.alias) == []


def test_a_token_of_another_orgs_issuer_is_refused(make, api, browser, osettings, okta: OktaEmulator, unique):
    """The account is bound to its org's issuer (its mapper holds it). Its identity provider
    re-pointed at another org (an edit in the admin console, say) passes Keycloak's own issuer
    check, which follows the provider's config, but not the account's binding."""
    acct = make()
    email, user_id, _ = acct.person("moved")
    other = f"{unique}evil".replace("-", "")
    okta.add_org(other)
    app, secret = okta.add_web_app(other, "look-alike", [links.redirect_uri(osettings, acct.id)])
    okta.add_user(other, email, OKTA_PASSWORD)
    idp = api.identity_provider(acct.alias)
    assert idp is not None
    idp["config"].update(
        {
            "issuer": okta.issuer(other),
            "authorizationUrl": okta.endpoint(other, "authorize"),
            "tokenUrl": okta.endpoint(other, "token"),
            "jwksUrl": okta.endpoint(other, "keys"),
            "logoutUrl": okta.endpoint(other, "logout"),
            "clientId": app.client_id,
            "clientSecret": secret,
        }
    )
    api.update_identity_provider(acct.alias, idp)

    result = browser().idp_login(email, OKTA_PASSWORD, acct.alias)
    assert not result.ok and message("apsisSso.okta.tenant_mismatch") in result.text, result.text[:500]
    assert linked_idp_user_ids(api, user_id, acct.alias) == []


def test_a_second_okta_org_cannot_claim_an_accounts_domain_nor_sign_in_to_it(make, api, browser, okta):
    first = make()
    victim, victim_id, _ = first.person("victim")
    with pytest.raises(Conflict, match=first.domain):
        make(domain=first.domain)
    # An org of another account gives one of its users the victim's address, verified by its admin.
    second = make(stage="live")
    second.okta_user("mallory", email=victim)
    since = now_ms()
    result = browser().idp_login(f"mallory@{second.domain}", OKTA_PASSWORD, second.alias)
    okta_refused(result, api, since, "domain_not_allowed")
    assert linked_idp_user_ids(api, victim_id, second.alias) == []


def test_go_live_sends_an_okta_accounts_addresses_to_okta(make, api, browser):
    acct = make()
    email, user_id, okta_id = acct.person("bob", pilot=False)
    since = now_ms()
    okta_refused(browser().idp_login(email, OKTA_PASSWORD, acct.alias), api, since, "not_pilot")

    onboarding.set_stage(api, acct.settings, acct.id, "live")
    live = browser().login_page(email, OKTA_PASSWORD)
    assert live.ok, live.text[:500]
    assert live.forms == ["username", "password"] and live.id_claims["sub"] == user_id
    assert linked_idp_user_ids(api, user_id, acct.alias) == [okta_id]


def test_an_okta_setup_proves_the_issuer_and_the_secret_before_anything_is_created(
    api, osettings, okta: OktaEmulator, unique
):
    org = f"{unique}proof".replace("-", "")
    okta.add_org(org)
    app, secret = okta.add_web_app(org, "APSIS One", [links.redirect_uri(osettings, f"{unique}p")])

    def build(**kw: str) -> Account:
        base = {"tenant_id": okta.issuer(org), "client_id": app.client_id, "client_secret": secret}
        return Account.build(
            id=f"{unique}p",
            name="Proof",
            provider="okta",
            domains=[f"{unique}p.example"],
            secret_expires="2999-01-01",
            it_contact_name="Ivy",
            it_contact_email="ivy@x.example",
            **(base | kw),
        )

    with pytest.raises(InvalidInput, match="names its issuer"):
        onboarding.create(api, osettings, build(tenant_id=okta.issuer(org).replace("localhost", "LOCALHOST")))
    with pytest.raises(InvalidInput, match="invalid_client"):
        onboarding.create(api, osettings, build(client_secret="not-the-secret-at-all"))
    with pytest.raises(InvalidInput, match="no Okta authorization server"):
        onboarding.create(api, osettings, build(tenant_id=okta.issuer(org) + "x"))
    assert api.organization_by_alias(f"{unique}p") is None, "nothing was created"
