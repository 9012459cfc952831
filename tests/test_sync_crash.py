"""A daemon killed in the middle of deprovisioning: the next cycle finishes the job.

`apsis-sync run --once` runs as a real process against the real Keycloak, through a proxy
that SIGKILLs it right after Keycloak has answered its n-th write (the write is committed,
the daemon never learns it). One clean cycle later every target must be deactivated
completely — disabled (or out of the account), no sessions, one deactivation record — and
nobody else touched. Kill points: after each of the cycle's Keycloak writes.

Every test runs on both state backends: the crash journal in a SQLite file, and in a
PostgreSQL database that replicas share (``backend``).

It is the daemon that is killed here, never Keycloak (whose dev-mode H2 database can lose
committed writes when it is killed itself).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import PASSWORD, AccountFactory, OnboardedAccount
from devenv.entra_emulator import EntraEmulator
from devenv.login_driver import Browser
from devenv.reverse_proxy import ReverseProxy
from tests.sync_fixtures import SyncHarness, entra_oid

REPO = Path(__file__).resolve().parent.parent
# lin and mel are disabled (PUT user, POST logout); bo, a member of two accounts, only
# leaves this one (DELETE membership, DELETE IdP link, POST logout).
WRITES = 7


@dataclass
class Scene:
    a: OnboardedAccount
    b: OnboardedAccount
    targets: dict[str, str]  # email -> user id
    bystanders: dict[str, str]
    sessions: dict[str, int]  # user id -> live sessions before the cycle
    harness: SyncHarness


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def scene(
    backend: str,
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    settings: Settings,
    realm: str,
    sync: Callable[..., SyncHarness],
) -> Scene:
    # Pilot accounts: mel, sam and ola sign in with their passwords below, and a live
    # account's login page would send their addresses to Entra instead.
    a = accounts.create()
    b = accounts.create()
    lin, lin_id = a.person("lin")  # signed in with SSO: found by the IdP link
    mel, mel_id = a.person("mel")  # never used SSO: found by email
    bo, bo_id = a.person("bo")  # works for both customers
    api.add_member(b.org_id, bo_id)
    sam, sam_id = a.person("sam")  # stays
    ola, ola_id = b.person("ola")  # the other account's user

    def browser() -> Browser:
        return Browser(settings.keycloak_url, realm, ca_bundle=str(emulator.ca_bundle))

    for email in (lin, bo, sam):
        assert browser().sso_login(email, PASSWORD, a.alias).ok
    for email in (mel, sam, ola):
        assert browser().password_login(email, PASSWORD).ok
    harness = sync(guard_max_percent=100, backend=backend)  # three of four members leave: no quarantine here
    harness.add(a, b)
    first = harness.cycle(a, b)
    assert first.ok, [r.errors for r in first.results]

    emulator.delete_user(a.tenant_id, entra_oid(emulator, a, lin))
    emulator.disable_user(a.tenant_id, entra_oid(emulator, a, mel))
    emulator.delete_user(a.tenant_id, entra_oid(emulator, a, bo))
    every = {lin: lin_id, mel: mel_id, bo: bo_id, sam: sam_id, ola: ola_id}
    sessions = {uid: len(api.user_sessions(uid)) for uid in every.values()}
    assert all(sessions[uid] >= 1 for uid in every.values())
    return Scene(a, b, {lin: lin_id, mel: mel_id, bo: bo_id}, {sam: sam_id, ola: ola_id}, sessions, harness)


def killed_run(
    scene: Scene, proxy: ReverseProxy, kill_after: int | None, concurrency: int = 1
) -> subprocess.CompletedProcess[str] | int:
    # One Keycloak request at a time makes the order of writes, and so each kill point, exact;
    # test_a_daemon_killed_amid_concurrent_deactivations covers the concurrent default.
    env = dict(
        scene.harness.env(),
        APSIS_SSO_KEYCLOAK_URL=proxy.url,
        APSIS_SYNC_GUARD_MAX_PERCENT="100",
        APSIS_SYNC_KEYCLOAK_CONCURRENCY=str(concurrency),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync", "run", "--once", "--account", scene.a.id],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if kill_after is not None:
        proxy.kill_after_write(kill_after, proc)
    try:
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode


def assert_finished(scene: Scene, api: KeycloakRepository) -> None:
    a, b = scene.a, scene.b
    lin_id, mel_id, bo_id = scene.targets.values()
    for uid in (lin_id, mel_id):
        user = api.user(uid)
        assert user is not None and user["enabled"] is False
        assert user["attributes"]["apsis.disabledBy"] == ["apsis-sync"]
        assert user["attributes"]["apsis.disabledReason"][0].endswith(f"({a.id})")
    bo = api.user(bo_id)
    assert bo is not None and bo["enabled"] is True and "apsis.disabledBy" not in (bo.get("attributes") or {})
    assert {o["alias"] for o in api.user_organizations(bo_id)} == {b.id}
    assert [f for f in api.federated_identities(bo_id) if f["identityProvider"] == a.alias] == []
    for uid in scene.targets.values():
        assert api.user_sessions(uid) == [], f"user {uid} still has sessions"
    records = scene.harness.state.deactivations(a.id)
    assert sorted(r.user_id for r in records) == sorted(scene.targets.values())  # one record each
    assert scene.harness.state.account(a.id).deactivated_total == 3
    assert scene.harness.state.pending_deactivations(a.id) == []
    # Nobody else touched: still enabled, unmarked, in their accounts, sessions intact.
    for uid in scene.bystanders.values():
        user = api.user(uid)
        assert user is not None and user["enabled"] is True and "apsis.disabledBy" not in (user.get("attributes") or {})
        assert len(api.user_sessions(uid)) == scene.sessions[uid]
    assert {o["alias"] for o in api.user_organizations(scene.bystanders[f"sam@{a.domain}"])} == {a.id}
    assert scene.harness.state.deactivations(b.id) == []


@pytest.mark.parametrize("kill_after", range(1, WRITES + 1))
def test_a_daemon_killed_after_any_keycloak_write_is_finished_by_the_next_cycle(
    scene: Scene,
    api: KeycloakRepository,
    settings: Settings,
    kill_after: int,
) -> None:
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        assert killed_run(scene, proxy, kill_after) == -signal.SIGKILL
        assert proxy.killed is not None and len(proxy.writes) == kill_after, proxy.writes

    report = scene.harness.cycle(scene.a, scene.b)  # one clean cycle
    assert report.ok, [r.errors for r in report.results]
    assert_finished(scene, api)
    # ...and the one after it has nothing left to do.
    again = scene.harness.cycle(scene.a, scene.b).result(scene.a.id)
    assert again.actions == [] and again.resumed == [] and again.status == "ok"


@pytest.mark.parametrize("kill_after", [1, 3])
def test_a_daemon_killed_amid_concurrent_deactivations_is_finished_by_the_next_cycle(
    scene: Scene,
    api: KeycloakRepository,
    settings: Settings,
    kill_after: int,
) -> None:
    """Three deactivations at once (the default runs them concurrently): a kill while several
    are in flight leaves each half done in its own way; every intent was stored before its
    first write, so the next cycle finishes all of them."""
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        assert killed_run(scene, proxy, kill_after, concurrency=8) == -signal.SIGKILL
        assert proxy.killed is not None and len(proxy.writes) >= kill_after, proxy.writes
    report = scene.harness.cycle(scene.a, scene.b)
    assert report.ok, [r.errors for r in report.results]
    assert_finished(scene, api)
    again = scene.harness.cycle(scene.a, scene.b).result(scene.a.id)
    assert again.actions == [] and again.resumed == [] and again.status == "ok"


def test_the_uninterrupted_cycle_makes_exactly_the_writes_the_kill_points_cover(
    scene: Scene,
    api: KeycloakRepository,
    settings: Settings,
) -> None:
    """Pins WRITES: if deprovisioning gains a write, the kill points above must cover it."""
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        assert killed_run(scene, proxy, None) == 0
        assert len(proxy.writes) == WRITES, proxy.writes
    assert_finished(scene, api)


def test_a_half_done_deactivation_is_finished_even_when_the_state_database_is_lost(
    backend: str,
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    settings: Settings,
    realm: str,
    sync: Callable[..., SyncHarness],
) -> None:
    """Killed after disabling (PUT), before the logout; then the state volume is lost too.
    The user's own marks (apsis.disabledBy) say what is left: sessions and the record."""
    acct = accounts.create(stage="live")
    email, user_id = acct.person("zoe")
    keep_email, keep_id = acct.person("yan")
    for who in (email, keep_email):
        assert (
            Browser(settings.keycloak_url, realm, ca_bundle=str(emulator.ca_bundle))
            .sso_login(who, PASSWORD, acct.alias)
            .ok
        )
    harness = sync(backend=backend)
    harness.add(acct)
    harness.cycle(acct)
    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, email))
    scene = Scene(acct, acct, {}, {}, {}, harness)
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        assert killed_run(scene, proxy, 1) == -signal.SIGKILL
        assert proxy.killed is not None and proxy.killed.startswith("PUT ") and proxy.killed.endswith(user_id)
    assert api.user(user_id)["enabled"] is False  # type: ignore[index]
    assert api.user_sessions(user_id) != []  # the crash window

    fresh = sync(backend=backend)  # a new, empty state database
    fresh.add(acct)
    result = fresh.cycle(acct).result(acct.id)
    assert result.status == "ok", result.errors
    assert [(a.user_id, a.finish) for a in result.actions] == [(user_id, True)]
    assert api.user_sessions(user_id) == []
    assert [r.user_id for r in fresh.state.deactivations(acct.id)] == [user_id]
    assert api.user(keep_id)["enabled"] is True and api.user_sessions(keep_id) != []  # type: ignore[index]
