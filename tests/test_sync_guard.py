"""The accidental-deletion guard: past its threshold an account is quarantined, nothing is
deactivated, the platform team is told; ``apsis-sync release`` lets the held changes through."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import AccountFactory
from devenv.entra_emulator import EntraEmulator
from sync.guard import GuardLimits, verdict
from tests.sync_fixtures import PLATFORM_TEAM, SmtpServer, SyncHarness, entra_oid

REPO = Path(__file__).resolve().parent.parent


def cli(harness: SyncHarness, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync", *args], cwd=REPO, env=harness.env(), capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("count", "members", "allowance", "max_percent", "tripped"),
    [
        (25, 1000, 0, 10.0, False),  # at the absolute limit
        (26, 1000, 0, 10.0, True),  # over it
        (2, 5, 0, 10.0, False),  # 40 % of a small account, but below the 3 the percentage rule needs
        (3, 20, 0, 10.0, True),  # 15 % > 10 %
        (3, 40, 0, 10.0, False),  # 7.5 %
        (30, 1000, 30, 10.0, False),  # released: the 30 held may pass
        (33, 40, 30, 5.0, True),  # ... 3 more on top are judged on their own: 7.5 % > 5 %
        (56, 1000, 30, 10.0, True),  # ... and 26 more exceed the absolute limit
    ],
)
def test_verdict_applies_absolute_and_percentage_limits(
    count: int, members: int, allowance: int, max_percent: float, tripped: bool
) -> None:
    limits = GuardLimits(max_users=25, max_percent=max_percent, percent_min_users=3)
    assert (verdict(count, members, limits, allowance) is not None) is tripped


def test_guard_quarantines_past_the_threshold_and_release_lets_the_held_changes_through(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    acct = accounts.create(stage="live")
    people = [acct.person(f"q{i}") for i in range(8)]
    harness = sync(guard_max_users=25, guard_max_percent=30, guard_percent_min_users=3)
    harness.add(acct)
    harness.cycle(acct)
    link = harness.state.delta_link(acct.id)
    doomed = people[:4]  # half the account disappears at once
    for email, _ in doomed:
        emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, email))

    result = harness.cycle(acct).result(acct.id)
    assert result.status == "quarantined"
    assert "50% of 8 members" in (result.quarantine or "")
    assert len(result.actions) == 4 and result.applied == 0
    assert all(api.user(uid)["enabled"] for _, uid in people)  # type: ignore[index]
    org = api.organization(acct.org_id)
    assert org is not None
    (stamp,) = org["attributes"]["apsis.quarantined"]
    assert stamp.split(" ", 1)[1] == result.quarantine and stamp[:4].isdigit()
    assert harness.state.delta_link(acct.id) == link  # the changes stay to be read again
    mails = [
        m for m in smtp_server.messages(to=PLATFORM_TEAM, kind="quarantine") if m["X-Apsis-Sync-Account"] == acct.id
    ]
    assert len(mails) == 1
    assert f"apsis-sync release {acct.id}" in mails[0].get_content()
    assert all(email in mails[0].get_content() for email, _ in doomed)

    # While quarantined, cycles act on nobody and do not mail again; a dry run lists what is held.
    held = harness.cycle(acct).result(acct.id)
    assert held.status == "quarantined" and held.actions == []
    preview = harness.cycle(acct, dry_run=True).result(acct.id)
    assert preview.status == "quarantined" and len(preview.actions) == 4
    assert "held by the quarantine until `apsis-sync release`" in preview.notes
    assert all(api.user(uid)["enabled"] for _, uid in people)  # type: ignore[index]
    (status,) = json.loads(cli(harness, "status", "--account", acct.id, "--output", "json").stdout)["accounts"]
    quarantined = api.organization(acct.org_id)["attributes"]["apsis.quarantined"][0]  # type: ignore[index]
    assert status["quarantined"] == quarantined and status["quarantine_held"] == 4

    dry = cli(harness, "release", acct.id, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert api.organization(acct.org_id)["attributes"].get("apsis.quarantined")  # type: ignore[index]
    released = cli(harness, "release", acct.id)
    assert released.returncode == 0, released.stderr
    assert "released" in released.stdout and "4 held" in released.stdout
    assert "apsis.quarantined" not in api.organization(acct.org_id)["attributes"]  # type: ignore[index]
    again = cli(harness, "release", acct.id)
    assert again.returncode == 2 and again.stderr.strip() == f"error: account {acct.id!r} is not quarantined"

    after = harness.cycle(acct).result(acct.id)
    assert after.status == "ok", after.errors
    assert sorted(a.user_id for a in after.actions) == sorted(uid for _, uid in doomed)
    assert [uid for _, uid in people if not api.user(uid)["enabled"]] == [uid for _, uid in doomed]  # type: ignore[index]
    assert harness.state.account(acct.id).quarantined_at is None
    assert (
        len(
            [
                m
                for m in smtp_server.messages(to=PLATFORM_TEAM, kind="quarantine")
                if m["X-Apsis-Sync-Account"] == acct.id
            ]
        )
        == 1
    )


def test_guard_in_a_dry_run_only_says_it_would_quarantine(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    people = [acct.person(f"r{i}") for i in range(3)]
    harness = sync(guard_max_users=1)
    harness.add(acct)
    harness.cycle(acct)
    for email, _ in people[:2]:
        emulator.disable_user(acct.tenant_id, entra_oid(emulator, acct, email))
    dry = harness.cycle(acct, dry_run=True).result(acct.id)
    assert dry.status == "quarantined" and any(n.startswith("would quarantine") for n in dry.notes)
    assert "apsis.quarantined" not in (api.organization(acct.org_id) or {}).get("attributes", {})
    assert harness.state.account(acct.id).quarantined_at is None


def test_a_quarantine_set_on_the_organization_holds_even_without_state(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    """The organization attribute is the quarantine's source of truth: a new state database
    (or another replica) respects it."""
    acct = accounts.create(stage="live")
    email, user_id = acct.person("sam")
    org = api.organization(acct.org_id)
    assert org is not None
    org["attributes"]["apsis.quarantined"] = ["2030-01-01T00:00:00Z set by an operator"]
    api.update_organization(acct.org_id, org)
    emulator.disable_user(acct.tenant_id, entra_oid(emulator, acct, email))
    harness = sync()
    harness.add(acct)
    result = harness.cycle(acct).result(acct.id)
    assert result.status == "quarantined" and result.actions == []
    assert api.user(user_id)["enabled"] is True  # type: ignore[index]
    assert harness.state.account(acct.id).quarantine_reason == "set by an operator"
    # The platform team hears of it once (this daemon had not told them yet).
    harness.cycle(acct)
    told = [
        m for m in smtp_server.messages(to=PLATFORM_TEAM, kind="quarantine") if m["X-Apsis-Sync-Account"] == acct.id
    ]
    assert len(told) == 1 and "set by an operator" in told[0].get_content()
    assert harness.state.account(acct.id).last_success is None  # a held cycle is no successful sync

    # Released by removing the attribute (what `apsis-sync release` does): the held change goes through.
    org = api.organization(acct.org_id)
    assert org is not None
    del org["attributes"]["apsis.quarantined"]
    api.update_organization(acct.org_id, org)
    after = harness.cycle(acct).result(acct.id)
    assert after.status == "ok" and [a.user_id for a in after.actions] == [user_id]
    st = harness.state.account(acct.id)
    assert st.quarantined_at is None and st.last_success is not None
