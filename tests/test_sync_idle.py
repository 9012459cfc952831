"""An idle account costs one Graph request per cycle: tokens are kept across cycles and
``applications`` is asked at most daily (after a 403 too, with a new token), through the real client
stack, the emulator and Keycloak."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from devenv.accounts import AccountFactory
from devenv.entra_emulator import EntraEmulator
from tests.sync_fixtures import SyncHarness


def test_an_idle_cycle_is_one_delta_request_per_account(
    accounts: AccountFactory,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    granted = accounts.create(stage="live")
    denied = accounts.create(stage="live")  # no Application.Read.All: applications answers 403
    emulator.grant_application_permission(granted.tenant_id, granted.app_id, "Application.Read.All")
    for acct in (granted, denied):
        acct.person("ann")
    harness = sync()
    harness.add(granted, denied)

    emulator.clear_requests_log()
    first = harness.cycle(granted, denied)
    assert first.ok, [r.errors for r in first.results]
    assert emulator.request_counts() == {"token": 2, "graph users/delta": 2, "graph applications": 2}
    assert first.result(granted.id).expiry.source == "graph"  # type: ignore[union-attr]

    emulator.clear_requests_log()
    idle = harness.cycle(granted, denied)
    assert idle.ok and emulator.request_counts() == {"graph users/delta": 2}
    assert idle.result(granted.id).expiry.source == "graph"  # type: ignore[union-attr]  # from the last answer
    assert [r.graph_requests for r in idle.results] == [1, 1]

    # The next day: both apps are asked again, the denied one with a new token (a grant since
    # the held token was issued shows only in a new one); the day's other cycles stay idle.
    tomorrow = sync(
        today=date.today() + timedelta(days=1),
        data_dir=harness.sync_settings.data_dir,
        secrets_dir=harness.sync_settings.secrets_path,
    )
    emulator.clear_requests_log()
    assert tomorrow.cycle(granted, denied).ok
    counts = emulator.request_counts()
    # tokens: one per account for this new runtime, and the denied one's renewal
    assert counts == {"token": 3, "graph users/delta": 2, "graph applications": 2}
    emulator.clear_requests_log()
    assert tomorrow.cycle(granted, denied).ok
    assert emulator.request_counts() == {"graph users/delta": 2}
