"""Deprovisioning against the real Keycloak and the Entra emulator: one daemon cycle after a
change in Entra, what happened to the APSIS One user, its sessions and its logins."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import PASSWORD, AccountFactory
from devenv.entra_emulator import EntraEmulator
from devenv.login_driver import Browser
from tests.sync_fixtures import PLATFORM_TEAM, SmtpServer, SyncHarness, entra_oid


@pytest.fixture
def browser(settings: Settings, emulator: EntraEmulator, realm: str) -> Callable[[], Browser]:
    return lambda: Browser(settings.keycloak_url, realm, ca_bundle=str(emulator.ca_bundle))


def attrs(api: KeycloakRepository, user_id: str) -> dict[str, list[str]]:
    user = api.user(user_id)
    assert user is not None
    return user.get("attributes") or {}


def test_a_user_deleted_in_entra_cannot_log_in_after_one_cycle_and_has_no_sessions(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    browser: Callable[[], Browser],
) -> None:
    # Pilot, so that Dana has both ways in: the test-login link and the login page's password
    # form (in a live account the login page sends her address to Entra).
    acct = accounts.create()
    email, user_id = acct.person("dana")
    keep_email, keep_id = acct.person("kim")
    harness = sync()
    harness.add(acct)
    first = harness.cycle(acct)  # initial full sync: nothing to do, delta link stored
    assert first.result(acct.id).status == "ok", first.result(acct.id).errors
    assert first.result(acct.id).actions == []
    assert harness.state.delta_link(acct.id)

    # Dana signs in with SSO and with her password: two live sessions.
    assert browser().sso_login(email, PASSWORD, acct.alias).ok
    assert browser().password_login(email, PASSWORD).ok
    assert len(api.user_sessions(user_id)) == 2

    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, email))
    report = harness.cycle(acct)
    result = report.result(acct.id)
    assert result.status == "ok", result.errors
    assert result.mode == "incremental"
    assert [(a.kind, a.user_id, a.via) for a in result.actions] == [("disable", user_id, "link")]

    user = api.user(user_id)
    assert user is not None and user["enabled"] is False
    assert api.user_sessions(user_id) == []
    a = attrs(api, user_id)
    assert a["apsis.disabledBy"] == ["apsis-sync"]
    assert a["apsis.disabledReason"] == [f"entra user deleted ({acct.id})"]
    assert a["apsis.disabledAt"][0].endswith("Z")

    sso = browser().sso_login(email, PASSWORD, acct.alias)  # Entra refuses her: she is deleted there
    assert not sso.ok
    password = browser().password_login(email, PASSWORD)  # Keycloak refuses her password
    assert not password.ok
    # The same answer as for an address nobody has: the login page tells nobody who exists.
    assert "invalid username or password" in password.text.lower()

    # Kim, untouched, still signs in.
    assert api.user(keep_id)["enabled"] is True  # type: ignore[index]
    assert browser().sso_login(keep_email, PASSWORD, acct.alias).ok

    # The next cycle has nothing more to do.
    again = harness.cycle(acct).result(acct.id)
    assert again.actions == [] and again.status == "ok"
    assert harness.state.account(acct.id).deactivated_total == 1


def test_disabled_in_entra_deactivates_even_a_user_who_never_signed_in(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    email, user_id = acct.person("erik")  # never signed in: no IdP link, matched by email
    harness = sync()
    harness.add(acct)
    harness.cycle(acct)

    emulator.disable_user(acct.tenant_id, entra_oid(emulator, acct, email))
    result = harness.cycle(acct).result(acct.id)
    assert [(a.kind, a.why, a.via) for a in result.actions] == [("disable", "disabled", "email")]
    assert api.user(user_id)["enabled"] is False  # type: ignore[index]
    assert attrs(api, user_id)["apsis.disabledReason"] == [f"entra user disabled ({acct.id})"]


def test_hard_deleted_unlinked_user_is_found_through_the_remembered_email(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    """``@removed`` carries only the id: the state's oid -> mail map finds the unlinked user."""
    acct = accounts.create(stage="live")
    email, user_id = acct.person("fay")
    harness = sync()
    harness.add(acct)
    harness.cycle(acct)
    emulator.purge_user(acct.tenant_id, entra_oid(emulator, acct, email))

    result = harness.cycle(acct).result(acct.id)
    assert [(a.user_id, a.why, a.via) for a in result.actions] == [(user_id, "deleted", "email")]
    assert attrs(api, user_id)["apsis.disabledReason"] == [f"entra user permanently deleted ({acct.id})"]


def test_member_of_two_accounts_only_loses_this_accounts_membership(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    browser: Callable[[], Browser],
) -> None:
    # a in pilot: Gus's address is in a's domains, and a live account's login page would send
    # it to a's Entra, where Gus no longer exists; his password is what he has left.
    a = accounts.create()
    b = accounts.create(stage="live")
    email, user_id = a.person("gus")
    api.add_member(b.org_id, user_id)  # Gus works for both customers
    assert browser().sso_login(email, PASSWORD, a.alias).ok
    harness = sync()
    harness.add(a, b)
    harness.cycle(a, b)

    emulator.delete_user(a.tenant_id, entra_oid(emulator, a, email))
    result = harness.cycle(a, b).result(a.id)
    assert [(x.kind, x.other_accounts) for x in result.actions] == [("remove_membership", (b.id,))]

    user = api.user(user_id)
    assert user is not None and user["enabled"] is True
    assert "apsis.disabledBy" not in (user.get("attributes") or {})
    orgs = {o["alias"] for o in api.user_organizations(user_id)}
    assert orgs == {b.id}
    assert [f for f in api.federated_identities(user_id) if f["identityProvider"] == a.alias] == []
    assert api.user_sessions(user_id) == []
    assert browser().password_login(email, PASSWORD).ok  # still an APSIS One user of account b


def test_restored_and_re_enabled_users_are_reported_not_re_enabled(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    acct = accounts.create(stage="live")
    deleted_email, deleted_id = acct.person("hana")
    disabled_email, disabled_id = acct.person("ivo")
    harness = sync()
    harness.add(acct)
    harness.cycle(acct)
    hana = entra_oid(emulator, acct, deleted_email)
    ivo = entra_oid(emulator, acct, disabled_email)
    emulator.delete_user(acct.tenant_id, hana)
    emulator.disable_user(acct.tenant_id, ivo)
    assert len(harness.cycle(acct).result(acct.id).actions) == 2

    emulator.restore_user(acct.tenant_id, hana)
    emulator.enable_user(acct.tenant_id, ivo)
    result = harness.cycle(acct).result(acct.id)
    assert result.actions == []
    assert sorted((r.user_id, r.how) for r in result.restored) == sorted(
        [(deleted_id, "restored"), (disabled_id, "re-enabled")]
    )
    assert api.user(deleted_id)["enabled"] is False  # type: ignore[index]
    assert api.user(disabled_id)["enabled"] is False  # type: ignore[index]
    mails = [m for m in smtp_server.messages(to=PLATFORM_TEAM, kind="restored") if m["X-Apsis-Sync-Account"] == acct.id]
    assert len(mails) == 1
    text = mails[0].get_content()
    assert deleted_email in text and disabled_email in text and "not re-enabled" in text

    # Reported once: a further change to them does not report again.
    emulator.update_user(acct.tenant_id, hana, display_name="Hana Again")
    assert harness.cycle(acct).result(acct.id).restored == []


def test_external_contractor_and_other_tenants_users_are_never_touched(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    a = accounts.create(stage="live")
    b = accounts.create(stage="live")
    contractor = f"contractor-{a.id}@agency.example"
    contractor_id = a.apsis_user(contractor)  # password only, never in Entra
    # Tenant a disables a user whose mail is b's member's address: b's member is out of reach.
    victim_email = f"victim@{b.domain}"
    victim_id = b.apsis_user(victim_email)
    a.entra_user("mallory", mail=victim_email)
    harness = sync()
    harness.add(a, b)
    harness.cycle(a, b)
    emulator.disable_user(a.tenant_id, entra_oid(emulator, a, f"mallory@{a.domain}"))

    report = harness.cycle(a, b)
    assert report.result(a.id).actions == []
    assert api.user(contractor_id)["enabled"] is True  # type: ignore[index]
    assert api.user(victim_id)["enabled"] is True  # type: ignore[index]


def test_dry_run_shows_the_plan_and_changes_nothing(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    acct = accounts.create(stage="live", secret_days=20)
    email, user_id = acct.person("jon")
    harness = sync()
    harness.add(acct)
    dry_first = harness.cycle(acct, dry_run=True).result(acct.id)
    assert dry_first.mode == "full"
    assert [n.kind for n in dry_first.notices] == ["secret-expiry"]  # would notify ...
    assert smtp_server.messages(to=f"it@{acct.domain}") == []  # ... but did not
    assert harness.state.accounts() == []  # and stored nothing

    harness.cycle(acct)
    link = harness.state.delta_link(acct.id)
    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, email))
    dry = harness.cycle(acct, dry_run=True).result(acct.id)
    assert [(a.kind, a.user_id) for a in dry.actions] == [("disable", user_id)]
    assert dry.applied == 0
    assert api.user(user_id)["enabled"] is True  # type: ignore[index]
    assert harness.state.delta_link(acct.id) == link
    assert harness.state.account(acct.id).deactivated_total == 0

    real = harness.cycle(acct).result(acct.id)  # the same change is still there to act on
    assert [a.user_id for a in real.actions] == [user_id]
    assert api.user(user_id)["enabled"] is False  # type: ignore[index]
