"""Full resyncs: an expired delta token (both of Graph's answers) or a lost state database
leads to a reconciliation of the whole member list — never to mass action."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import PASSWORD, AccountFactory
from devenv.entra_emulator import EntraEmulator
from devenv.login_driver import Browser
from tests.sync_fixtures import SyncHarness, entra_oid


@pytest.mark.parametrize("response", ["syncStateNotFound", "resyncRequired"])
def test_expired_delta_token_triggers_a_full_resync_that_reconciles(
    response: str,
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    settings,
    realm: str,
) -> None:
    acct = accounts.create(stage="live")
    gone_email, gone_id = acct.person("lena")  # linked, then deleted while the token is stale
    off_email, off_id = acct.person("mo")  # never signed in, disabled while the token is stale
    stay_email, stay_id = acct.person("nia")  # untouched
    contractor_id = acct.apsis_user(f"contractor-{acct.id}@agency.example")  # never in Entra
    browser = Browser(settings.keycloak_url, realm, ca_bundle=str(emulator.ca_bundle))
    assert browser.sso_login(gone_email, PASSWORD, acct.alias).ok
    harness = sync()
    harness.add(acct)
    harness.cycle(acct)
    old_link = harness.state.delta_link(acct.id)

    emulator.purge_user(acct.tenant_id, entra_oid(emulator, acct, gone_email))
    emulator.disable_user(acct.tenant_id, entra_oid(emulator, acct, off_email))
    emulator.expire_delta_tokens(acct.tenant_id, response=response)

    result = harness.cycle(acct).result(acct.id)
    assert result.status == "ok", result.errors
    assert result.mode == "full" and result.resync_cause == response
    assert sorted((a.user_id, a.why) for a in result.actions) == sorted([(gone_id, "absent"), (off_id, "disabled")])
    assert api.user(gone_id)["enabled"] is False  # type: ignore[index]
    assert api.user(off_id)["enabled"] is False  # type: ignore[index]
    assert api.user(stay_id)["enabled"] is True  # type: ignore[index]
    assert api.user(contractor_id)["enabled"] is True  # type: ignore[index]
    new_link = harness.state.delta_link(acct.id)
    assert new_link and new_link != old_link

    # Back to incremental rounds from the fresh link.
    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, stay_email))
    after = harness.cycle(acct).result(acct.id)
    assert after.mode == "incremental"
    assert [a.user_id for a in after.actions] == [stay_id]
    if response == "resyncRequired":
        restarts = [
            r for r in emulator.requests_log if r["path"].endswith("/users/delta") and "deltatoken=&" in r["query"]
        ]
        assert restarts, "the 410's Location (the initial query) was not followed"


def test_a_lost_state_database_leads_to_a_full_resync_without_mass_action(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    settings,
    realm: str,
) -> None:
    acct = accounts.create(stage="live")
    people = [acct.person(f"p{i}") for i in range(12)]
    contractors = [acct.apsis_user(f"c{i}-{acct.id}@agency.example") for i in range(5)]
    for email, user_id in people[:6]:  # one browser per person: a shared one would reuse the session
        login = Browser(settings.keycloak_url, realm, ca_bundle=str(emulator.ca_bundle)).sso_login(
            email, PASSWORD, acct.alias
        )
        assert login.ok and login.id_claims["sub"] == user_id
    harness = sync()
    harness.add(acct)
    harness.cycle(acct)
    unlinked_gone_email, unlinked_gone_id = people[9]
    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, unlinked_gone_email))
    linked_gone_email, linked_gone_id = people[1]
    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, linked_gone_email))

    # The state database is lost (new volume, wiped disk): a fresh harness, same accounts.
    fresh = sync()
    fresh.add(acct)
    result = fresh.cycle(acct).result(acct.id)
    assert result.status == "ok", result.errors
    assert result.mode == "full" and result.resync_cause == "no_delta_link"
    # The linked user is provably gone; the unlinked one cannot be told from a contractor
    # without the lost memory, so the resync leaves them alone rather than guess.
    assert [(a.user_id, a.why) for a in result.actions] == [(linked_gone_id, "absent")]
    enabled = {uid: api.user(uid)["enabled"] for _, uid in people}  # type: ignore[index]
    assert [uid for uid, on in enabled.items() if not on] == [linked_gone_id]
    assert all(api.user(uid)["enabled"] for uid in contractors)  # type: ignore[index]
    assert fresh.state.delta_link(acct.id)

    # The old daemon, state intact, still finds the unlinked user through its memory.
    old = harness.cycle(acct).result(acct.id)
    assert [(a.user_id, a.via) for a in old.actions] == [(unlinked_gone_id, "email")]


def test_full_resync_reports_a_restored_user_the_lost_state_had_deactivated(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    settings,
    realm: str,
) -> None:
    """The user's own attributes remember who disabled them, even when the state is gone."""
    acct = accounts.create(stage="live")
    email, user_id = acct.person("olga")
    browser = Browser(settings.keycloak_url, realm, ca_bundle=str(emulator.ca_bundle))
    assert browser.sso_login(email, PASSWORD, acct.alias).ok
    harness = sync()
    harness.add(acct)
    harness.cycle(acct)
    oid = entra_oid(emulator, acct, email)
    emulator.disable_user(acct.tenant_id, oid)
    assert [a.user_id for a in harness.cycle(acct).result(acct.id).actions] == [user_id]
    emulator.enable_user(acct.tenant_id, oid)

    fresh = sync()
    fresh.add(acct)
    result = fresh.cycle(acct).result(acct.id)
    assert result.actions == []
    assert [(r.user_id, r.oid) for r in result.restored] == [(user_id, oid)]
    assert api.user(user_id)["enabled"] is False  # type: ignore[index]
    assert fresh.cycle(acct).result(acct.id).restored == []  # reported once
