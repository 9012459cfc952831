"""When the daemon asks Graph for the app's client secrets (``applications(appId=...)``), with
opaque access tokens from the emulator (Microsoft: clients must not read access tokens): after
a 403 at most once a day per account, a later grant of ``Application.Read.All`` used the next
day, a new secret asked with at once, and an idle cycle still costs one Graph request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import SecretStr

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import AccountFactory
from devenv.accounts import OnboardedAccount as Acct
from devenv.entra_emulator import EntraEmulator
from tests.sync_fixtures import SyncHarness
from tests.test_sync_expiry import set_recorded_expiry


@pytest.fixture
def opaque_tokens(emulator: EntraEmulator) -> Iterator[None]:
    emulator.configure(opaque_access_tokens=1)
    try:
        yield
    finally:
        emulator.configure(opaque_access_tokens=0)


def asked(emulator: EntraEmulator, acct: Acct) -> list[int]:
    """Statuses of Graph's answers to this account's ``applications`` requests, in order."""
    return [
        r["status"]
        for r in emulator.requests_log
        if r["path"].startswith("/v1.0/applications(appId=") and acct.app_id in r["path"]
    ]


def on(harness: SyncHarness, day: date, acct: Acct):  # noqa: ANN201 - the account's result
    harness.rt.today = lambda: day
    result = harness.cycle(acct).result(acct.id)
    assert result.status == "ok", result.errors
    return result


def test_a_grant_after_a_403_is_used_the_next_day_and_graph_is_asked_once_a_day_meanwhile(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    opaque_tokens: None,
) -> None:
    acct = accounts.create(stage="live", secret_days=10)
    today = date.today()
    set_recorded_expiry(api, acct, today + timedelta(days=300))
    harness = sync()
    harness.add(acct)

    assert on(harness, today, acct).expiry.source == "recorded"
    idle = on(harness, today, acct)
    assert idle.graph_requests == 1  # the delta round alone: the 403 is not asked again today
    assert asked(emulator, acct) == [403]

    later = today + timedelta(days=1)
    on(harness, later, acct)
    assert on(harness, later, acct).graph_requests == 1
    assert asked(emulator, acct) == [403, 403]  # once a day while it stays 403

    emulator.grant_application_permission(acct.tenant_id, acct.app_id, "Application.Read.All")
    assert on(harness, later, acct).expiry.source == "recorded"  # asked today already
    assert asked(emulator, acct) == [403, 403]

    next_day = today + timedelta(days=2)
    granted = on(harness, next_day, acct)
    assert asked(emulator, acct) == [403, 403, 200]
    assert granted.expiry.source == "graph"  # the secret's real end date, from Graph
    again = on(harness, next_day, acct)
    assert again.expiry.source == "graph" and again.graph_requests == 1
    assert asked(emulator, acct) == [403, 403, 200]


def test_a_new_secret_is_asked_with_at_once_after_a_403(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    settings,
    sync: Callable[..., SyncHarness],
    opaque_tokens: None,
) -> None:
    from provisioning import onboarding

    acct = accounts.create(stage="live")
    today = date.today()
    harness = sync()
    harness.add(acct)
    on(harness, today, acct)
    assert asked(emulator, acct) == [403]

    emulator.grant_application_permission(acct.tenant_id, acct.app_id, "Application.Read.All")
    new = emulator.add_secret(
        acct.tenant_id, acct.app_id, datetime.now(UTC) + timedelta(days=200), secret_text="N3w" + "n" * 37
    )
    onboarding.rotate_secret(api, settings, acct.id, new, today + timedelta(days=200))
    harness.secrets.put(acct.id, SecretStr(new))
    on(harness, today, acct)
    assert asked(emulator, acct) == [403, 200]
