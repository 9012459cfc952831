"""Okta deprovisioning against the real Keycloak and the Okta emulator: a daemon cycle after a
change in Okta, what happened to the APSIS One user and its sessions, through the same guard,
journal and matching as Entra's (tests/test_sync_deprovision.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.entra_emulator import EntraEmulator
from devenv.okta_accounts import OKTA_PASSWORD, OktaAccount, create_okta_account, okta_settings
from devenv.okta_emulator import OktaEmulator
from devenv.reverse_proxy import ReverseProxy
from tests.sync_fixtures import SmtpServer, SyncHarness, build_harness

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def okta(emulator: EntraEmulator) -> Iterator[OktaEmulator]:
    with OktaEmulator(ca_from=emulator.state_dir) as server:
        yield server


@pytest.fixture
def harness(settings: Settings, okta: OktaEmulator, smtp_server: SmtpServer, tmp_path: Path) -> Iterator[SyncHarness]:
    made = build_harness(
        okta_settings(settings, okta), smtp_server, tmp_path / "sync", guard_max_users=3, guard_percent_min_users=1000
    )
    yield made
    made.rt.close()
    made.rt.state.close()


@pytest.fixture
def account(api, harness: SyncHarness, okta: OktaEmulator, unique: str) -> OktaAccount:
    return create_okta_account(
        api, harness.rt.settings, okta, f"{unique}d", stage="live", key_dir=harness.sync_settings.secrets_path
    )


def enabled(api: KeycloakRepository, user_id: str) -> bool:
    user = api.user(user_id)
    assert user is not None
    return bool(user["enabled"])


def test_deactivated_suspended_and_deleted_okta_users_are_disabled_with_their_sessions_ended(
    api: KeycloakRepository, harness: SyncHarness, okta: OktaEmulator, account: OktaAccount, browser
):
    people = {name: account.person(name) for name in ("dee", "sue", "del", "kim")}
    first = harness.cycle(account).result(account.id)
    assert first.status == "ok", first.errors
    assert first.mode == "full" and first.actions == []

    email, dee_id, dee_okta = people["dee"]
    assert browser().idp_login(email, OKTA_PASSWORD, account.alias).ok
    assert len(api.user_sessions(dee_id)) == 1

    okta.deactivate(account.org, dee_okta)
    okta.suspend(account.org, people["sue"][2])
    okta.delete_user(account.org, people["del"][2])
    okta.delete_user(account.org, people["del"][2])  # deactivated, then deleted: no longer listed
    okta.update_profile(account.org, people["kim"][2], firstName="Kimberly")  # a change that is not a leave

    result = harness.cycle(account).result(account.id)
    assert result.status == "ok", result.errors
    assert result.mode == "incremental"
    assert sorted(a.user_id for a in result.actions if a.kind == "disable") == sorted(
        people[n][1] for n in ("dee", "sue", "del")
    )
    for name in ("dee", "sue", "del"):
        assert not enabled(api, people[name][1]), name
    assert enabled(api, people["kim"][1])
    assert api.user_sessions(dee_id) == [], "sessions ended"
    assert not browser().idp_login(email, OKTA_PASSWORD, account.alias).ok

    idle = harness.cycle(account).result(account.id)
    assert idle.status == "ok" and idle.actions == [], "nothing is done twice"


def test_the_guard_holds_a_mass_deactivation_in_okta(
    api: KeycloakRepository, harness: SyncHarness, okta: OktaEmulator, account: OktaAccount
):
    people = [account.person(f"p{i}") for i in range(5)]
    assert harness.cycle(account).result(account.id).status == "ok"
    for _, _, okta_id in people:
        okta.deactivate(account.org, okta_id)
    held = harness.cycle(account).result(account.id)
    assert held.status == "quarantined", held.errors
    assert all(enabled(api, user_id) for _, user_id, _ in people), "nobody was deactivated"


def test_okta_rate_limits_are_waited_out_not_failed(
    api: KeycloakRepository, harness: SyncHarness, okta: OktaEmulator, account: OktaAccount
):
    email, user_id, okta_id = account.person("rate")
    assert harness.cycle(account).result(account.id).status == "ok"
    okta.deactivate(account.org, okta_id)
    okta.inject_fault("rate_limit", count=1, path_contains="/api/v1/users", org=account.org, reset_in=3)
    result = harness.cycle(account).result(account.id)
    assert result.status == "ok", result.errors
    assert [a.user_id for a in result.actions] == [user_id]
    waited = [seconds for reason, seconds in result.graph_waits if reason == "429"]
    assert waited and 2 <= waited[0] <= 5, result.graph_waits
    assert harness.waits, "the wait went through the runtime's sleep"


@pytest.mark.parametrize("kill_after", [1, 2, 3])
def test_a_daemon_killed_amid_okta_deactivations_is_finished_by_the_next_cycle(
    api: KeycloakRepository,
    harness: SyncHarness,
    okta: OktaEmulator,
    account: OktaAccount,
    browser,
    settings: Settings,
    kill_after: int,
):
    """`apsis-sync run --once` as a real process, SIGKILLed right after Keycloak answered its
    n-th write (two users: a PUT and a logout each); one clean cycle later both are done."""
    targets = [account.person(name) for name in ("kay", "lou")]
    stays = account.person("sal")
    for email, _, _ in (*targets, stays):
        assert browser().idp_login(email, OKTA_PASSWORD, account.alias).ok
    assert harness.cycle(account).result(account.id).status == "ok"
    okta.deactivate(account.org, targets[0][2])
    okta.suspend(account.org, targets[1][2])

    env = dict(
        harness.env(),
        APSIS_SSO_KEYCLOAK_URL=None,
        APSIS_SSO_OKTA_CA_BUNDLE=str(okta.ca_bundle),
        APSIS_SYNC_KEYCLOAK_CONCURRENCY="1",
    )
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        env["APSIS_SSO_KEYCLOAK_URL"] = proxy.url
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync", "run", "--once", "--account", account.id],
            cwd=REPO,
            env={k: v for k, v in env.items() if v is not None},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        proxy.kill_after_write(kill_after, proc)
        try:
            proc.wait(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
        assert len(proxy.writes) == kill_after, proxy.writes

    report = harness.cycle(account).result(account.id)
    assert report.status == "ok", report.errors
    for _, user_id, _ in targets:
        assert not enabled(api, user_id)
        assert api.user_sessions(user_id) == []
    assert sorted(r.user_id for r in harness.state.deactivations(account.id)) == sorted(t[1] for t in targets)
    assert enabled(api, stays[1]) and len(api.user_sessions(stays[1])) == 1
    again = harness.cycle(account).result(account.id)
    assert again.status == "ok" and again.actions == [] and again.resumed == []


def test_a_deletion_is_seen_when_oktas_clock_runs_ahead_of_ours(
    api: KeycloakRepository, harness: SyncHarness, okta: OktaEmulator, account: OktaAccount
):
    """The System Log's ``published`` is Okta's time, the window this host's: a window ending at
    our "now" missed a deletion Okta stamped a little later than that (clocks apart)."""
    email, user_id, okta_id = account.person("gone")
    assert harness.cycle(account).result(account.id).status == "ok"
    okta.advance_time(90)  # Okta's clock 90 s ahead of this host's (the last test of the module)
    okta.delete_user(account.org, okta_id)
    okta.delete_user(account.org, okta_id)
    result = harness.cycle(account).result(account.id)
    assert result.status == "ok", result.errors
    assert [(a.kind, a.user_id) for a in result.actions] == [("disable", user_id)]
